//! The pump link end to end: a pump (the link client, as `infusafe pump` uses it) sends an occlusion alarm;
//! it reaches the patient's and the nurse's streams within a second, is in the record, and escalates to the
//! nurse and the on-call contact (signed webhooks, each attempt recorded) when nobody acknowledges it. Also:
//! acknowledgement stops the ladder, a silent pump raises `pump_silent`, re-sent batches are not duplicated.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use link::LinkClient;
use link::Telemetry;
use serde_json::{Value, json};

use crate::support::{self, Backend, TestServer, User, wait_until};

fn infusing(alarms: &[&str]) -> Telemetry {
    Telemetry {
        state: if alarms.is_empty() {
            "infusing".into()
        } else {
            "stopped_by_alarm".into()
        },
        rate_ml_per_h: 100.0,
        delivered_ml: 12.5,
        remaining_ml: 87.5,
        minutes_left: Some(52.5),
        battery_percent: 80.0,
        battery_minutes_left: Some(300.0),
        downstream_pressure_mmhg: Some(if alarms.is_empty() { 40.0 } else { 450.0 }),
        mains_present: Some(false),
        active_alarms: alarms.iter().map(|s| s.to_string()).collect(),
    }
}

/// A webhook receiver on 127.0.0.1 that answers 500 to the first request and 200 after, recording bodies.
/// (signature header, body) of every request received.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn webhook_receiver() -> (String, Seen) {
    use axum::routing::post;
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let seen = seen2.clone();
                async move {
                    let sig = headers
                        .get("x-infusafe-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let mut s = seen.lock().unwrap();
                    s.push((sig, body.to_vec()));
                    if s.len() == 1 {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

async fn occlusion_reaches_streams_and_escalates(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let (hook_url, hook_seen) = webhook_receiver().await;

    let admin = app.login(User::Admin).await;
    let r = app
        .set_webhook(&admin, Some(&hook_url))
        .await
        .expect_status(200);
    let secret = r.json()["secret"].as_str().unwrap().to_string();

    // Escalation after 2 "minutes" (200 ms in tests) on the patient's screen and 3 more for the nurse.
    let nurse = app.login(User::Nurse).await;
    app.put_plan(&nurse, &w.p1, support::plan_json(2, 3))
        .await
        .expect_status(200);

    let patient = app.login(User::Patient1).await;
    let mut patient_stream = app.patient_stream(&patient, &w.p1).await;
    let mut nurse_stream = app.nurse_stream(&nurse).await;
    patient_stream
        .expect(Duration::from_secs(2), "the snapshot", |e, _| {
            e == "snapshot"
        })
        .await;

    let mut pump = LinkClient::new(&app.url, &w.pump1_token);
    pump.flush(Some(infusing(&[]))).await.unwrap();
    let sent_at = std::time::Instant::now();
    pump.push("alarm_raised", jiff::Timestamp::now(), json!({"alarm": "occlusion_downstream", "priority": "high", "detail": "450 mmHg > 300 mmHg"}));
    let reply = pump
        .flush(Some(infusing(&["occlusion_downstream"])))
        .await
        .unwrap();
    assert_eq!(reply.accepted.len(), 1);

    let is_occlusion =
        |e: &str, d: &Value| e == "alarm" && d["data"]["alarm"]["alarm"] == "occlusion_downstream";
    patient_stream
        .expect(
            Duration::from_secs(1),
            "the occlusion on the patient's stream",
            is_occlusion,
        )
        .await;
    nurse_stream
        .expect(
            Duration::from_secs(1),
            "the occlusion on the nurse's stream",
            is_occlusion,
        )
        .await;
    assert!(
        sent_at.elapsed() < Duration::from_secs(1),
        "took {:?}",
        sent_at.elapsed()
    );

    // Nobody acknowledges: nurse, then on-call.
    let rung = |want: &'static str| {
        move |e: &str, d: &Value| e == "escalation" && d["data"]["rung"] == want
    };
    nurse_stream
        .expect(Duration::from_secs(3), "the nurse rung", rung("nurse"))
        .await;
    nurse_stream
        .expect(Duration::from_secs(3), "the on-call rung", rung("on_call"))
        .await;
    // From here on a repeated rung would be a bug: the marker proves the ticker ran well past the last rung.
    let marker = app.ticker_marker(&w).await;
    patient_stream
        .expect(
            Duration::from_secs(1),
            "the on-call rung on the patient's screen",
            rung("on_call"),
        )
        .await;

    // The webhook: first attempt answered 500, retried, each body signed with the clinic secret.
    let seen = wait_until(
        Duration::from_secs(5),
        "three webhook requests, one of them for the on-call rung",
        async || {
            let seen = hook_seen.lock().unwrap().clone();
            let on_call_delivered = seen
                .iter()
                .filter(|(_, b)| serde_json::from_slice::<Value>(b).unwrap()["rung"] == "on_call")
                .count();
            if seen.len() >= 3 && on_call_delivered >= 1 {
                Ok(seen)
            } else {
                Err(format!("{} webhook requests", seen.len()))
            }
        },
    )
    .await;
    let on_call: Value = seen
        .iter()
        .map(|(_, b)| serde_json::from_slice::<Value>(b).unwrap())
        .find(|v| v["rung"] == "on_call")
        .unwrap();
    assert_eq!(
        on_call["contact"]["phone"], "+31 20 555 0199",
        "the plan's on-call number: {on_call}"
    );
    for (sig, body) in &seen {
        assert!(
            server::services::webhook::verify(&secret, body, sig),
            "bad signature {sig}"
        );
    }

    // The record has the alarm, both rungs and the webhook outcome, with who and when. The outcome is recorded
    // after the receiver has answered, so the record is polled until it has it.
    let wanted = [
        "alarm_raised",
        "alarm_escalated",
        "escalation_sent",
        "plan_changed",
        "record_read",
        "device_assigned",
        "patient_registered",
    ];
    wait_until(
        Duration::from_secs(5),
        "the alarm, its rungs and the webhook outcome in the record",
        async || {
            let events = app.timeline(&nurse, &w.p1, &[]).await;
            let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
            match wanted.iter().find(|want| !kinds.contains(want)) {
                None => Ok(()),
                Some(missing) => Err(format!("{missing} missing from {kinds:?}")),
            }
        },
    )
    .await;
    // Read again once the ticker has run well past the last rung: a repeated rung would be in the record now.
    marker.passed().await;
    let events = app.timeline(&nurse, &w.p1, &[]).await;
    let rungs: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "alarm_escalated")
        .map(|e| e["payload"]["rung"].as_str().unwrap())
        .collect();
    assert_eq!(
        rungs.iter().filter(|r| **r == "nurse").count(),
        1,
        "{rungs:?}"
    );
    assert_eq!(
        rungs.iter().filter(|r| **r == "on_call").count(),
        1,
        "{rungs:?}"
    );
    let n = app.count_rows("srv_webhook_attempts").await;
    assert!(n >= 3, "webhook attempts recorded: {n}");

    // The nurse acknowledges: recorded with who; the pump is asked to acknowledge too.
    let r = app
        .acknowledge(
            &nurse,
            &w.p1,
            "occlusion_downstream",
            Some("called the patient"),
        )
        .await
        .expect_status(200);
    assert_eq!(r.json()["acknowledgements"][0]["role"], "nurse");
    patient_stream
        .expect(Duration::from_secs(1), "the acknowledgement", |e, _| {
            e == "acknowledged"
        })
        .await;
    let reply = pump
        .flush(Some(infusing(&["occlusion_downstream"])))
        .await
        .unwrap();
    // A screen's acknowledgement is not sent to the pump (its own button can mean "the air was removed").
    assert!(reply.commands.is_empty(), "{:?}", reply.commands);

    // The pump clears it: gone from the streams and the active list.
    pump.push(
        "alarm_cleared",
        jiff::Timestamp::now(),
        json!({"alarm": "occlusion_downstream", "resolution": "line unkinked"}),
    );
    pump.flush(Some(infusing(&[]))).await.unwrap();
    patient_stream
        .expect(Duration::from_secs(1), "the clearance", |e, _| {
            e == "alarm_cleared"
        })
        .await;
    assert_eq!(app.alarms(&patient, &w.p1).await, json!([]));
}

async fn acknowledged_alarm_does_not_reach_the_nurse(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let nurse = app.login(User::Nurse).await;
    app.put_plan(&nurse, &w.p1, support::plan_json(5, 5))
        .await
        .expect_status(200);
    let caregiver = app.login(User::Caregiver1).await;
    let mut nurse_stream = app.nurse_stream(&nurse).await;
    let mut pump = LinkClient::new(&app.url, &w.pump1_token);
    pump.push(
        "alarm_raised",
        jiff::Timestamp::now(),
        json!({"alarm": "air_in_line", "priority": "high"}),
    );
    pump.flush(Some(infusing(&["air_in_line"]))).await.unwrap();
    // The ladder's clock starts no later than here; the marker proves a tick ran more than 600 ms later.
    let marker = app.ticker_marker(&w).await;
    nurse_stream
        .expect(Duration::from_secs(1), "the alarm", |e, _| e == "alarm")
        .await;
    app.acknowledge(&caregiver, &w.p1, "air_in_line", None)
        .await
        .expect_status(200);
    // Well past the 500 ms patient time (the marker's tick is over 600 ms after the alarm): no nurse rung, neither
    // announced nor recorded.
    marker.passed().await;
    for (e, d) in nurse_stream.received() {
        assert!(
            !(e == "escalation" && d["data"]["rung"] == "nurse"),
            "escalated after acknowledgement: {d}"
        );
    }
    let rungs = app.timeline(&nurse, &w.p1, &["alarm_escalated"]).await;
    assert!(
        rungs.iter().all(|e| e["payload"]["rung"] != "nurse"),
        "escalated after acknowledgement: {rungs:?}"
    );
    let acks = app.timeline(&nurse, &w.p1, &["alarm_acknowledged"]).await;
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["source"], "caregiver");
    assert_eq!(acks[0]["payload"]["alarm"], "air_in_line");
    assert!(acks[0]["actor"].as_str().unwrap().starts_with("usr_"));
    // The plan's time zone (Europe/Amsterdam) gives the local offset kept with the event.
    let offset = acks[0]["local_offset_s"].as_i64().unwrap();
    assert!(offset == 3600 || offset == 7200, "local offset {offset}");
}

async fn silent_pump_raises_pump_silent(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let patient = app.login(User::Patient1).await;
    let nurse = app.login(User::Nurse).await;
    let mut patient_stream = app.patient_stream(&patient, &w.p1).await;
    let mut nurse_stream = app.nurse_stream(&nurse).await;
    let mut pump = LinkClient::new(&app.url, &w.pump1_token);
    pump.flush(Some(infusing(&[]))).await.unwrap();
    // The pump goes quiet for longer than the 600 ms allowed.
    let silent = |e: &str, d: &Value| e == "alarm" && d["data"]["alarm"]["alarm"] == "pump_silent";
    patient_stream
        .expect(
            Duration::from_secs(3),
            "pump_silent on the patient's stream",
            silent,
        )
        .await;
    nurse_stream
        .expect(
            Duration::from_secs(1),
            "pump_silent on the nurse's stream",
            silent,
        )
        .await;
    let rows = app.dashboard(&nurse).await;
    assert_eq!(
        rows[0]["patient_id"],
        w.p1.as_str(),
        "the silent pump's patient comes first: {rows}"
    );
    assert_eq!(rows[0]["top_priority"], "high");
    // It talks again: cleared.
    pump.flush(Some(infusing(&[]))).await.unwrap();
    patient_stream
        .expect(Duration::from_secs(1), "pump_silent cleared", |e, d| {
            e == "alarm_cleared" && d["data"]["alarm"] == "pump_silent"
        })
        .await;
    let kinds: Vec<(String, String)> = app
        .timeline(&nurse, &w.p1, &["alarm_raised", "alarm_cleared"])
        .await
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().into(),
                e["payload"]["alarm"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("alarm_raised".into(), "pump_silent".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("alarm_cleared".into(), "pump_silent".into())),
        "{kinds:?}"
    );
}

async fn resent_batches_are_not_duplicated(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let events = json!([
        {"seq": 7, "occurred_at": "2026-01-01T10:00:00Z", "kind": "infusion_started", "data": {"rate_ml_per_h": 100.0, "vtbi_ml": 250.0}},
        {"seq": 8, "occurred_at": "2026-01-01T10:00:01Z", "kind": "alarm_raised", "data": {"alarm": "battery_low", "priority": "low"}}
    ]);
    let pump = app.pump(&w.pump1_token);
    for round in 0..3 {
        let reply = pump
            .batch(events.clone(), None)
            .await
            .expect_status(200)
            .json();
        if round == 0 {
            assert_eq!(reply["accepted"], json!([7, 8]));
        } else {
            assert_eq!(reply["duplicates"], json!([7, 8]), "round {round}");
        }
    }
    let nurse = app.login(User::Nurse).await;
    let recorded = app
        .timeline(&nurse, &w.p1, &["infusion_started", "alarm_raised"])
        .await;
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let alarms = app.alarms(&nurse, &w.p1).await;
    assert_eq!(alarms.as_array().unwrap().len(), 1);
}

async fn a_restated_state_is_acknowledged_counted_and_not_chained(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    // Times of now, so no clock-skew note is chained about the pump (it would end the restating).
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    let report = |seq: u64, data: serde_json::Value| {
        let at = start + jiff::SignedDuration::from_secs(seq as i64);
        json!({"seq": seq, "occurred_at": at.to_string(), "kind": "state_changed", "data": data})
    };
    let infusing = json!({"state": "infusing"});
    let pump = app.pump(&w.pump1_token);
    let reply = pump
        .batch(
            json!([report(1, infusing.clone()), report(2, infusing.clone())]),
            None,
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(reply["accepted"], json!([1, 2]));
    let reply = pump
        .batch(
            json!([
                report(2, infusing.clone()),
                report(3, infusing.clone()),
                report(4, json!({"state": "paused"})),
                report(5, json!({"from": "paused", "to": "infusing"})),
                report(6, json!({"from": "paused", "to": "infusing"}))
            ]),
            None,
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(reply["accepted"], json!([3, 4, 5, 6]), "{reply}");
    assert_eq!(reply["duplicates"], json!([2]), "{reply}");
    let nurse = app.login(User::Nurse).await;
    let recorded = app.timeline(&nurse, &w.p1, &["state_changed"]).await;
    let seqs: Vec<u64> = recorded
        .iter()
        .map(|e| e["payload"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        vec![6, 5, 4, 1],
        "newest first: one report of each state, every transition"
    );
}

async fn active_alarms_survive_a_restart(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let nurse = app.login(User::Nurse).await;
    app.put_plan(&nurse, &w.p1, support::plan_json(2, 60))
        .await
        .expect_status(200);
    let mut pump = LinkClient::new(&app.url, &w.pump1_token);
    pump.push(
        "alarm_raised",
        jiff::Timestamp::now(),
        json!({"alarm": "occlusion_downstream", "priority": "high"}),
    );
    pump.flush(Some(infusing(&["occlusion_downstream"])))
        .await
        .unwrap();
    // Wait for the nurse rung (200 ms) to be in the record (what a restart restores from), then restart.
    wait_until(
        Duration::from_secs(3),
        "the nurse rung in the record",
        async || {
            let rungs = app.timeline(&nurse, &w.p1, &["alarm_escalated"]).await;
            if rungs.iter().any(|e| e["payload"]["rung"] == "nurse") {
                Ok(())
            } else {
                Err(format!("{rungs:?}"))
            }
        },
    )
    .await;
    let app = app.restart().await;
    // The marker proves that the restarted server's ticker has run for more than 600 ms (a repeated rung would
    // come on its first ticks).
    let marker = app.ticker_marker(&w).await;
    let nurse = app.login(User::Nurse).await;
    let alarms = app.alarms(&nurse, &w.p1).await;
    assert_eq!(alarms[0]["alarm"], "occlusion_downstream", "{alarms}");
    assert_eq!(alarms[0]["escalation"], "nurse", "{alarms}");
    // The nurse acknowledges on the restarted server; the rungs were not repeated by the restart.
    app.acknowledge(&nurse, &w.p1, "occlusion_downstream", None)
        .await
        .expect_status(200);
    marker.passed().await;
    let rungs: Vec<String> = app
        .timeline(&nurse, &w.p1, &["alarm_escalated"])
        .await
        .iter()
        .map(|e| e["payload"]["rung"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        rungs.iter().filter(|r| *r == "nurse").count(),
        1,
        "{rungs:?}"
    );
    assert_eq!(
        rungs.iter().filter(|r| *r == "patient").count(),
        1,
        "{rungs:?}"
    );
}

async fn dashboard_orders_by_urgency(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let nurse = app.login(User::Nurse).await;
    // Alphabetically "Pat One" comes first; a low alarm for P1 and a high one for P2 must reverse that.
    let mut pump1 = LinkClient::new(&app.url, &w.pump1_token);
    pump1.push(
        "alarm_raised",
        jiff::Timestamp::now(),
        json!({"alarm": "battery_low", "priority": "low"}),
    );
    pump1.flush(Some(infusing(&["battery_low"]))).await.unwrap();
    let rows = app.dashboard(&nurse).await;
    assert_eq!(rows[0]["patient_id"], w.p1.as_str(), "{rows}");
    let mut pump2 = LinkClient::new(&app.url, &w.pump2_token);
    pump2.push(
        "alarm_raised",
        jiff::Timestamp::now(),
        json!({"alarm": "air_in_line", "priority": "high"}),
    );
    pump2.flush(Some(infusing(&["air_in_line"]))).await.unwrap();
    let rows = app.dashboard(&nurse).await;
    assert_eq!(
        rows.as_array().unwrap().len(),
        2,
        "only clinic A's patients: {rows}"
    );
    assert_eq!(
        rows[0]["patient_id"],
        w.p2.as_str(),
        "the high-priority alarm first: {rows}"
    );
    assert_eq!(rows[0]["top_priority"], "high");
    assert_eq!(rows[1]["top_priority"], "low");
}

both_backends!(
    dashboard_orders_by_urgency,
    active_alarms_survive_a_restart,
    occlusion_reaches_streams_and_escalates,
    acknowledged_alarm_does_not_reach_the_nurse,
    silent_pump_raises_pump_silent,
    resent_batches_are_not_duplicated,
    a_restated_state_is_acknowledged_counted_and_not_chained
);

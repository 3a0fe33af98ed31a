//! A simulated pump (the simulator driving the real pump core, sent over the link by the same code as
//! `infusafe pump`) gets its tubing kinked; the occlusion alarm reaches the patient's and the nurse's streams
//! within a second of the pump raising it and escalates when nobody acknowledges it. The practice pump does the
//! same in teaching mode without escalating. The server stops cleanly with streams open.

use std::time::Duration;

use link::LinkClient;
use link::simpump::{self, SimPumpConfig};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::support::{self, Backend, TestServer, User, wait_until};

const KINKED: &str = r#"
name = "kinked at 2 s"
duration = "1h"
seed = 3

[program]
rate_ml_per_h = 250.0
vtbi_ml = 500.0

[[event]]
at = "0s"
action = "start"

[[event]]
at = "2s"
action = "kink"
"#;

async fn simulated_pump_occlusion_escalates(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let nurse = app.login(User::Nurse).await;
    app.put_plan(&nurse, &w.p1, support::plan_json(2, 2))
        .await
        .expect_status(200);
    let patient = app.login(User::Patient1).await;
    let mut patient_stream = app.patient_stream(&patient, &w.p1).await;
    let mut nurse_stream = app.nurse_stream(&nurse).await;

    let scenario = simpump::scenario(Some(KINKED), "test").unwrap();
    let sim = sim::Simulation::new(&scenario);
    let (stop, stopped) = watch::channel(false);
    let (_actions, control) = mpsc::channel(1);
    let config = SimPumpConfig {
        speed: 20.0,
        step_every: Duration::from_millis(100),
        ..SimPumpConfig::default()
    };
    let pump = tokio::spawn(simpump::run(
        sim,
        LinkClient::new(&app.url, &w.pump1_token),
        config,
        control,
        stopped,
    ));

    let is_occlusion =
        |e: &str, d: &Value| e == "alarm" && d["data"]["alarm"]["alarm"] == "occlusion_downstream";
    let alarm = patient_stream
        .expect(
            Duration::from_secs(30),
            "the occlusion on the patient's stream",
            is_occlusion,
        )
        .await;
    let received = jiff::Timestamp::now().as_millisecond();
    let raised = alarm["data"]["alarm"]["raised_at_ms"].as_i64().unwrap();
    // raised_at is when the pump raised it (mapped from simulated to wall time); one pump step (100 ms) of
    // batching plus the network and the stream must stay under a second.
    assert!(
        received - raised < 1000,
        "reached the patient's screen {} ms after the pump raised it",
        received - raised
    );
    nurse_stream
        .expect(
            Duration::from_secs(1),
            "the occlusion on the nurse's stream",
            is_occlusion,
        )
        .await;
    let rung = |want: &'static str| {
        move |e: &str, d: &Value| {
            e == "escalation"
                && d["data"]["rung"] == want
                && d["data"]["alarm"] == "occlusion_downstream"
        }
    };
    nurse_stream
        .expect(Duration::from_secs(3), "the nurse rung", rung("nurse"))
        .await;
    nurse_stream
        .expect(Duration::from_secs(3), "the on-call rung", rung("on_call"))
        .await;

    // The pump's own events are in the record, numbered by the pump.
    let events = app
        .timeline(&nurse, &w.p1, &["infusion_started", "alarm_raised"])
        .await;
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"infusion_started") && kinds.contains(&"alarm_raised"),
        "{kinds:?}"
    );
    // Its telemetry is in the record's telemetry table (written in groups, within a second).
    let journal = app.running.state.journal.clone();
    let p1 = w.p1.clone();
    wait_until(
        Duration::from_secs(5),
        "the pump's telemetry in the record",
        async || {
            let n = journal
                .telemetry_samples(&p1, 1)
                .await
                .map_err(|e| e.to_string())?
                .len();
            if n > 0 {
                Ok(())
            } else {
                Err("no samples".to_string())
            }
        },
    )
    .await;
    stop.send(true).unwrap();
    pump.await.unwrap().unwrap();
}

async fn practice_pump_rehearses_without_escalating(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let nurse = app.login(User::Nurse).await;
    let patient = app.login(User::Patient1).await;
    app.put_plan(&nurse, &w.p1, support::plan_json(1, 1))
        .await
        .expect_status(200);
    let mut patient_stream = app.patient_stream(&patient, &w.p1).await;
    // Patients cannot start a practice pump or inject faults.
    app.practice_start(&patient, &w.p1).await.expect_status(403);
    let r = app.practice_start(&nurse, &w.p1).await.expect_status(200);
    assert_eq!(r.json()["running"], true);
    patient_stream
        .expect(Duration::from_secs(3), "practice telemetry", |e, d| {
            e == "telemetry" && d["data"]["state"] == "infusing"
        })
        .await;
    let r = app.practice_action(&patient, &w.p1, "door").await;
    assert_eq!(r.status, 403, "faults are the nurse's: {}", r.text());
    app.practice_action(&nurse, &w.p1, "door")
        .await
        .expect_status(200);
    let alarm = patient_stream
        .expect(Duration::from_secs(3), "the door alarm", |e, d| {
            e == "alarm" && d["data"]["alarm"]["alarm"] == "door_open"
        })
        .await;
    assert_eq!(alarm["data"]["alarm"]["teaching"], true);
    // The door alarm is up: the marker proves a tick ran more than 600 ms after this.
    let marker = app.ticker_marker(&w).await;
    // The patient practises the fix.
    app.practice_action(&patient, &w.p1, "close_door")
        .await
        .expect_status(200);
    let r = app
        .practice_action(&patient, &w.p1, "fly")
        .await
        .expect_status(422);
    assert!(r.text().contains("kink"), "{}", r.text());
    // Well past the 100 ms + 100 ms ladder: a practice alarm never escalates (checked on the stream here and in
    // the record below).
    marker.passed().await;
    for (e, d) in patient_stream.received() {
        assert!(
            !(e == "escalation" && d["data"]["rung"] != "patient"),
            "practice alarm escalated: {d}"
        );
    }
    let r = app.practice_stop(&nurse, &w.p1).await.expect_status(200);
    assert_eq!(r.json()["running"], false);
    // Every practice event is marked as teaching in the record.
    let events = app.record(&w.p1).await;
    let practice: Vec<_> = events
        .iter()
        .filter(|e| {
            e.kind.starts_with("practice_")
                || (e.kind == "alarm_raised" && e.payload["alarm"] == "door_open")
        })
        .collect();
    assert!(practice.len() >= 4, "{practice:?}");
    assert!(practice.iter().all(|e| e.teaching), "{practice:?}");
    assert!(
        events
            .iter()
            .all(|e| e.kind != "alarm_escalated" || e.payload["rung"] == "patient")
    );
}

/// Every fault on the practice page raises its alarm within the simulator's physics (low battery included),
/// each on a freshly started practice pump; the pump's own screen (state, the word on its display) is shown to
/// the nurse; after a fix, Acknowledge and Start, the pump runs again so the next fault can be rehearsed.
/// The practice runtime does not depend on the database backend, so this runs on SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_practice_fault_raises_its_alarm() {
    let Some((app, w)) = TestServer::seeded(Backend::Sqlite).await else {
        return;
    };
    let nurse = app.login(User::Nurse).await;
    let patient = app.login(User::Patient1).await;
    let mut stream = app.patient_stream(&patient, &w.p1).await;
    for fault in server::services::practice::FAULTS {
        app.practice_start(&nurse, &w.p1).await.expect_status(200);
        stream
            .expect(Duration::from_secs(5), "practice telemetry", |e, d| {
                e == "telemetry" && d["data"]["state"] == "infusing"
            })
            .await;
        app.practice_action(&nurse, &w.p1, fault.id)
            .await
            .expect_status(200);
        // The core averages the battery gauge over a minute before it judges the minutes left, and a blocked line
        // is judged over held strokes (about 30 s at the practice rate).
        let within = 90;
        let alarm = stream
            .expect(
                Duration::from_secs(within),
                &format!("the {} alarm after {}", fault.alarm, fault.id),
                |e, d| e == "alarm" && d["data"]["alarm"]["alarm"] == fault.alarm,
            )
            .await;
        assert_eq!(alarm["data"]["alarm"]["teaching"], true, "{alarm}");
        if fault.id == "kink" {
            // The nurse's page shows the practice pump's own screen with the pump's word for the alarm.
            let page = app
                .get(&format!("/nurse/patients/{}/practice", w.p1), &nurse)
                .await
                .text();
            assert!(
                page.contains("The practice pump's screen")
                    && page.contains("<strong>Occlusion</strong>"),
                "{page}"
            );
            // Fix, acknowledge on the pump, resume (what the pump's screen says next): it runs again.
            let page = app.get(&format!("/p/{}/pump", w.p1), &patient).await.text();
            assert!(page.contains("then Resume"), "{page}");
            for press in ["unkink", "acknowledge"] {
                app.practice_action(&patient, &w.p1, press)
                    .await
                    .expect_status(200);
            }
            // Once the line has relaxed the pump clears the alarm; then Resume runs it again.
            stream
                .expect(Duration::from_secs(20), "the occlusion cleared", |e, d| {
                    e == "alarm_cleared" && d["data"]["alarm"] == "occlusion_downstream"
                })
                .await;
            app.practice_action(&patient, &w.p1, "resume")
                .await
                .expect_status(200);
            stream
                .expect(Duration::from_secs(10), "the pump running again", |e, d| {
                    e == "telemetry" && d["data"]["state"] == "infusing"
                })
                .await;
        }
        app.practice_stop(&nurse, &w.p1).await.expect_status(200);
    }
}

/// A practice pump beside the patient's own pump: it never takes over the real pump's live slot (telemetry, link
/// time, queued commands), its events never touch a real alarm of the same name, and ending practice never clears
/// a real alarm.
async fn practice_never_touches_the_real_pump(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let practice =
        server::services::directory::create_device(app.state(), &w.p1, "Practice", true, None)
            .await
            .unwrap();
    let send = async |token: &str, events: Value, telemetry: Option<Value>| {
        app.pump(token)
            .batch(events, telemetry)
            .await
            .expect_status(200);
    };
    let telemetry = |state: &str| {
        json!({"state": state, "rate_ml_per_h": 100.0, "delivered_ml": 1.0, "remaining_ml": 99.0,
               "battery_percent": 90.0, "downstream_pressure_mmhg": 40.0, "mains_present": true})
    };
    send(
        &w.pump1_token,
        json!([{"seq": 1, "occurred_at": "2026-01-01T10:00:00Z", "kind": "alarm_raised",
                "data": {"alarm": "occlusion_downstream", "priority": "high"}}]),
        Some(telemetry("stopped_by_alarm")),
    )
    .await;
    send(
        &practice.token,
        json!([{"seq": 1, "occurred_at": "2026-01-01T10:00:01Z", "kind": "alarm_raised",
                "data": {"alarm": "occlusion_downstream", "priority": "high"}}]),
        Some(telemetry("infusing")),
    )
    .await;
    let nurse = app.login(User::Nurse).await;
    let snapshot = async || app.patient(&nurse, &w.p1).await["live"].clone();
    let alarms = |snap: &Value| {
        let mut v: Vec<(String, bool)> = snap["active_alarms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["alarm"].as_str().unwrap().to_string(),
                    a["teaching"].as_bool().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let snap = snapshot().await;
    assert_eq!(
        snap["teaching"], false,
        "the real pump keeps its slot: {snap}"
    );
    assert_eq!(snap["telemetry"]["state"], "stopped_by_alarm", "{snap}");
    assert_eq!(
        alarms(&snap),
        vec![
            ("occlusion_downstream".to_string(), false),
            ("occlusion_downstream".to_string(), true)
        ]
    );
    // Acknowledging by name picks the practice alarm; the real pump is not asked to acknowledge anything and its
    // alarm keeps no acknowledgement.
    let r = app
        .acknowledge(&nurse, &w.p1, "occlusion_downstream", None)
        .await
        .expect_status(200);
    assert_eq!(r.json()["teaching"], true, "{}", r.text());
    let snap = snapshot().await;
    let real = snap["active_alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["teaching"] == false)
        .unwrap()
        .clone();
    assert_eq!(real["acknowledgements"], json!([]), "{snap}");
    let r = app
        .pump(&w.pump1_token)
        .heartbeat(telemetry("stopped_by_alarm"))
        .await
        .expect_status(200);
    assert_eq!(r.json()["commands"], json!([]), "{}", r.text());
    let events = app.record(&w.p1).await;
    let ack = events
        .iter()
        .find(|e| e.kind == "alarm_acknowledged")
        .expect("the acknowledgement is recorded");
    assert!(ack.teaching, "recorded as practice: {ack:?}");
    // The practice pump clears its alarm: the real one stays.
    send(
        &practice.token,
        json!([{"seq": 2, "occurred_at": "2026-01-01T10:00:02Z", "kind": "alarm_cleared",
                "data": {"alarm": "occlusion_downstream"}}]),
        None,
    )
    .await;
    let snap = snapshot().await;
    assert_eq!(
        alarms(&snap),
        vec![("occlusion_downstream".to_string(), false)]
    );
    // Ending practice clears teaching state only.
    send(
        &practice.token,
        json!([{"seq": 3, "occurred_at": "2026-01-01T10:00:03Z", "kind": "alarm_raised",
                "data": {"alarm": "door_open", "priority": "high"}}]),
        None,
    )
    .await;
    server::services::alarms::clear_teaching(app.state(), &w.p1);
    let snap = snapshot().await;
    assert_eq!(
        alarms(&snap),
        vec![("occlusion_downstream".to_string(), false)]
    );
    assert_eq!(snap["telemetry"]["state"], "stopped_by_alarm", "{snap}");
}

async fn stops_cleanly_with_streams_open(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let patient = app.login(User::Patient1).await;
    let mut stream = app.patient_stream(&patient, &w.p1).await;
    stream
        .expect(Duration::from_secs(2), "the snapshot", |e, _| {
            e == "snapshot"
        })
        .await;
    tokio::time::timeout(Duration::from_secs(5), app.running.stop())
        .await
        .expect("graceful shutdown with an open stream")
        .unwrap();
}

both_backends!(
    simulated_pump_occlusion_escalates,
    practice_pump_rehearses_without_escalating,
    practice_never_touches_the_real_pump,
    stops_cleanly_with_streams_open
);

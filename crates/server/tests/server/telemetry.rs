//! Telemetry over the API: `GET /api/patients/{id}/telemetry` reads the record's telemetry table and the
//! legacy `telemetry` events as one series (issue 15, item 3).

use serde_json::Value;

use crate::support::{Backend, TestServer, User};

both_backends!(the_api_serves_table_rows_and_legacy_events_as_one_series);

fn sample(
    patient: &str,
    device: &str,
    at: jiff::Timestamp,
    delivered_ml: f64,
) -> record::TelemetrySample {
    record::TelemetrySample {
        patient: record::PatientId::new(patient).unwrap(),
        device_id: device.into(),
        at,
        bucket_s: 0,
        state: "infusing".into(),
        rate_ml_per_h: 100.0,
        delivered_ml,
        remaining_ml: 100.0 - delivered_ml,
        battery_percent: 90.0,
        mains_present: true,
        downstream_pressure_mmhg: 80.0,
        teaching: false,
    }
}

async fn the_api_serves_table_rows_and_legacy_events_as_one_series(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let store = app.state().journal.store().clone();
    // Millisecond times, as the table keeps them.
    let now = jiff::Timestamp::from_millisecond(jiff::Timestamp::now().as_millisecond()).unwrap();
    let minutes = |m: i64| now - jiff::SignedDuration::from_mins(m);
    let legacy = sample(&w.p1, &w.pump1_id, minutes(30), 1.0);
    store
        .append(&[record::NewEvent {
            patient: legacy.patient.clone(),
            device_id: legacy.device_id.clone(),
            device_seq: 1,
            occurred_at: legacy.at,
            local_offset_s: 0,
            source: record::Source::Pump,
            actor: legacy.device_id.clone(),
            teaching: false,
            body: record::Body::Telemetry {
                state: legacy.state.clone(),
                rate_ml_per_h: legacy.rate_ml_per_h,
                delivered_ml: legacy.delivered_ml,
                remaining_ml: legacy.remaining_ml,
                battery_percent: legacy.battery_percent,
                mains_present: legacy.mains_present,
                downstream_pressure_mmhg: legacy.downstream_pressure_mmhg,
            },
        }])
        .await
        .unwrap();
    let rows = vec![
        sample(&w.p1, &w.pump1_id, minutes(20), 2.0),
        sample(&w.p1, &w.pump1_id, minutes(10), 3.0),
        // Two days ago: outside the default day.
        sample(&w.p1, &w.pump1_id, minutes(48 * 60), 0.5),
    ];
    assert_eq!(store.append_telemetry(&rows).await.unwrap(), 3);

    let nurse = app.login(User::Nurse).await;
    let got = app
        .get(&format!("/api/patients/{}/telemetry", w.p1), &nurse)
        .await
        .expect_status(200)
        .json();
    let delivered: Vec<f64> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["delivered_ml"].as_f64().unwrap())
        .collect();
    assert_eq!(delivered, vec![1.0, 2.0, 3.0], "{got}");
    let week: Vec<record::TelemetrySample> = serde_json::from_value(
        app.get(&format!("/api/patients/{}/telemetry?days=7", w.p1), &nurse)
            .await
            .expect_status(200)
            .json(),
    )
    .unwrap();
    let mut expected = vec![rows[2].clone(), legacy, rows[0].clone(), rows[1].clone()];
    expected.iter_mut().for_each(|s| s.bucket_s = 0);
    assert_eq!(week, expected);
    for bad in ["days=0", "days=91", "days=x", "limit=3"] {
        let reply = app
            .get(&format!("/api/patients/{}/telemetry?{bad}", w.p1), &nurse)
            .await
            .expect_status(422);
        let body: Value = reply.json();
        assert!(
            body.to_string().contains("days") || bad == "limit=3",
            "{bad}: {body}"
        );
    }
}

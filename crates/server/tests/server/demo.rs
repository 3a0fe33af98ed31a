//! `infusafe demo`'s library side: the demo clinic is seeded once (a restart on the same data directory
//! seeds nothing twice and reuses the pumps), every demo login works, and each patient's simulated pump is
//! live on the link within seconds.

use std::time::Duration;

use serde_json::json;

use crate::support::{Http, Session, TempDir, wait_until};

/// The demo dashboard once every demo pump is live and infusing (within 10 s).
async fn live_dashboard(http: &Http, base: &str) -> serde_json::Value {
    let nurse = http
        .login_with(base, "nurse", server::demo::DEMO_PASSWORD)
        .await;
    wait_until(Duration::from_secs(10), "demo pumps live", async || {
        let rows = http
            .get(&format!("{base}/api/dashboard"), &nurse)
            .await
            .json();
        let all_live = rows
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["link"] == "live" && r["state"] == "infusing");
        if all_live {
            Ok(rows)
        } else {
            Err(rows.to_string())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_seeds_once_and_its_pumps_go_live() {
    let dir = TempDir::new();
    let mut config = server::ServerConfig::with_data_dir(&dir.0);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.secure_cookies = false;
    let http = Http::new();

    let demo = server::demo::start(config.clone()).await.unwrap();
    let base = demo.running.url();
    let rows = live_dashboard(&http, &base).await;
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    for login in server::demo::DEMO_LOGINS {
        let r = http
            .post_json(
                &format!("{base}/api/session"),
                &Session::default(),
                &json!({"username": login.username, "password": server::demo::DEMO_PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "{}: {}", login.username, r.text());
        assert_eq!(r.json()["role"], login.role);
    }
    tokio::time::timeout(Duration::from_secs(10), demo.stop())
        .await
        .expect("the demo stops promptly")
        .unwrap();

    // Again on the same data directory: nothing seeded twice, the same pumps come back.
    let demo = server::demo::start(config).await.unwrap();
    let base = demo.running.url();
    let again = live_dashboard(&http, &base).await;
    assert_eq!(again.as_array().unwrap().len(), 2, "{again}");
    let ids = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["patient_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&rows), ids(&again));
    let devices = sqlx::query("SELECT COUNT(*) AS n FROM srv_devices")
        .fetch_one(&demo.running.state.db.pool)
        .await
        .unwrap();
    assert_eq!(sqlx::Row::try_get::<i64, _>(&devices, "n").unwrap(), 2);
    tokio::time::timeout(Duration::from_secs(10), demo.stop())
        .await
        .expect("the demo stops promptly")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_pcd_listener_jordans_pump_goes_live_over_hl7_v2() {
    let dir = TempDir::new();
    let mut config = server::ServerConfig::with_data_dir(&dir.0);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.pcd_bind = Some("127.0.0.1:0".parse().unwrap());
    config.secure_cookies = false;
    let http = Http::new();
    let demo = server::demo::start(config).await.unwrap();
    let base = demo.running.url();
    let rows = live_dashboard(&http, &base).await;
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    // Jordan's pump is known by its PCD id and its telemetry came through ORU^R01 (no HTTP batch from it).
    let device = server::store::pcd::device_by_pcd_id(
        &demo.running.state.db,
        server::demo::DEMO_PCD_DEVICE_ID,
    )
    .await
    .unwrap()
    .expect("Jordan's pump has its PCD id");
    let jordan = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["patient_id"] == device.1.as_str())
        .expect("Jordan on the dashboard");
    assert_eq!(jordan["link"], "live", "{jordan}");
    // Over PCD only alarms travel as events (ORU^R40) and the rest as ORU^R01 telemetry: the pump's own
    // infusion_started, which the HTTP link carries, is absent from Jordan's record.
    // Telemetry is written by the grouped writer (every `FLUSH_EVERY`) to the telemetry table, not inside the
    // pump's request and not among the events.
    let mut samples = 0;
    for _ in 0..50 {
        samples = demo
            .running
            .state
            .journal
            .telemetry_samples(&device.1, 1)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.device_id == device.0)
            .count();
        if samples > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        samples > 0,
        "Jordan's ORU^R01 telemetry is in the record's telemetry"
    );
    let kinds: Vec<String> = demo
        .running
        .state
        .journal
        .timeline(&device.1, &[], 1000, 1)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.device_id == device.0)
        .map(|e| e.kind)
        .collect();
    assert!(!kinds.iter().any(|k| k == "infusion_started"), "{kinds:?}");
    tokio::time::timeout(Duration::from_secs(10), demo.stop())
        .await
        .expect("the demo stops promptly")
        .unwrap();
}

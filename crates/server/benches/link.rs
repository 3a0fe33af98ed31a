//! Pump-link throughput and alarm latency on the real server (HTTP on 127.0.0.1, SQLite in a temporary
//! directory): a heartbeat, a batch of one alarm, a batch of 100 events, and the time from a pump's alarm
//! batch to the event on a patient's live stream.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use link::LinkClient;
use link::Telemetry;
use serde_json::json;
use server::Role;
use server::services::auth::NewUser;

fn telemetry() -> Telemetry {
    Telemetry {
        state: "infusing".into(),
        rate_ml_per_h: 100.0,
        delivered_ml: 10.0,
        remaining_ml: 90.0,
        minutes_left: Some(54.0),
        battery_percent: 80.0,
        battery_minutes_left: Some(300.0),
        downstream_pressure_mmhg: Some(40.0),
        mains_present: Some(true),
        active_alarms: vec![],
    }
}

struct Setup {
    _running: server::Running,
    url: String,
    token: String,
    patient: String,
    dir: std::path::PathBuf,
}

async fn setup() -> Setup {
    let dir = std::env::temp_dir().join(format!(
        "infusafe-server-bench-{}",
        server::ids::random_hex(6)
    ));
    let mut config = server::ServerConfig::with_data_dir(&dir);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.secure_cookies = false;
    let running = server::start(config).await.unwrap();
    let state = &running.state;
    let clinic = server::services::directory::create_clinic(state, "Bench")
        .await
        .unwrap();
    let patient =
        server::services::directory::create_patient(state, &clinic, "Bench Patient", None)
            .await
            .unwrap();
    server::services::auth::create_user(
        state,
        &NewUser {
            username: "p".into(),
            display_name: "P".into(),
            password: "bench-password".into(),
            role: Role::Patient,
            clinic_id: clinic,
            patient_ids: vec![patient.clone()],
        },
    )
    .await
    .unwrap();
    let device =
        server::services::directory::create_device(state, &patient, "Bench pump", false, None)
            .await
            .unwrap();
    Setup {
        url: running.url(),
        _running: running,
        token: device.token,
        patient,
        dir,
    }
}

fn link(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(setup());
    let mut client = LinkClient::new(&s.url, &s.token);
    let mut g = c.benchmark_group("link");
    g.bench_function("heartbeat", |b| {
        b.iter(|| rt.block_on(client.flush(Some(telemetry()))).unwrap())
    });
    g.bench_function("batch_1_alarm", |b| {
        b.iter(|| {
            client.push(
                "alarm_raised",
                jiff::Timestamp::now(),
                json!({"alarm": "battery_low", "priority": "low"}),
            );
            client.push(
                "alarm_cleared",
                jiff::Timestamp::now(),
                json!({"alarm": "battery_low"}),
            );
            rt.block_on(client.flush(Some(telemetry()))).unwrap()
        })
    });
    g.bench_function("batch_100_events", |b| {
        b.iter(|| {
            for i in 0..100 {
                client.push(
                    "note",
                    jiff::Timestamp::now(),
                    json!({"text": format!("event {i}")}),
                );
            }
            rt.block_on(client.flush(Some(telemetry()))).unwrap()
        })
    });
    g.finish();

    // Alarm to live stream: raise on the link, wait for the `alarm` event on the patient's stream.
    let latency = rt.block_on(async {
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let login = http::Request::post(format!("{}/api/session", s.url))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                r#"{"username":"p","password":"bench-password"}"#,
            )))
            .unwrap();
        let res = http.request(login).await.unwrap();
        let cookie = res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let req = http::Request::get(format!("{}/api/patients/{}/stream", s.url, s.patient))
            .header("cookie", cookie)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let mut body = http.request(req).await.unwrap().into_body();
        use http_body_util::BodyExt;
        let mut samples = Vec::new();
        let mut pump = LinkClient::new(&s.url, &s.token);
        for i in 0..50 {
            let alarm = if i % 2 == 0 {
                "door_open"
            } else {
                "air_in_line"
            };
            let start = Instant::now();
            pump.push(
                "alarm_raised",
                jiff::Timestamp::now(),
                json!({"alarm": alarm, "priority": "high"}),
            );
            pump.flush(None).await.unwrap();
            loop {
                let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                if let Ok(data) = frame.into_data()
                    && String::from_utf8_lossy(&data).contains("event: alarm\n")
                {
                    break;
                }
            }
            samples.push(start.elapsed());
            pump.push(
                "alarm_cleared",
                jiff::Timestamp::now(),
                json!({"alarm": alarm}),
            );
            pump.flush(None).await.unwrap();
        }
        samples.sort();
        samples
    });
    println!(
        "alarm batch → patient stream over {} runs: median {:?}, p95 {:?}, max {:?}",
        latency.len(),
        latency[latency.len() / 2],
        latency[latency.len() * 95 / 100],
        latency[latency.len() - 1]
    );
    let _ = std::fs::remove_dir_all(&s.dir);
}

criterion_group!(benches, link);
criterion_main!(benches);

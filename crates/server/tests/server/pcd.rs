//! IHE PCD (HL7 v2.6 over MLLP), in and out, against the real server: the PCD-speaking simulated pump kinks its
//! line and the alarm travels through HL7 v2 to the patient's and the nurse's streams, escalates, reaches the FHIR
//! export and goes out again as ORU^R40 to an alarm manager; bad input gets the right ACK or a closed connection
//! and loses nothing already stored; the listener holds under slow, partial and oversized frames and many
//! connections. Every message produced or accepted here is validated by hl7apy (`crates/pcd/tests/validate_hl7.py`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use link::pcdlink::{MllpClient, PcdUplink};
use link::simpump::{self, SimPumpConfig};
use pcd::profile::{self, AlarmReport, Observation, Party};
use pcd::{AckCode, Inactivation, Phase};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::support::{self, Backend, TestServer, User, World, wait_until};

const EUI: &str = "0012210000000001";

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

/// hl7apy (HL7 v2.6, strict) must accept every message; panics naming the first it refuses.
fn hl7apy_validates(messages: &[String]) {
    assert!(!messages.is_empty(), "nothing to validate");
    let dir = support::TempDir::new();
    let paths: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let p = dir.0.join(format!("m{i}.hl7"));
            std::fs::write(&p, m).unwrap();
            p
        })
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcd/tests/validate_hl7.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(&paths)
        .output()
        .expect("python3 must be installed to validate HL7 messages");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("IMPORT FAILED"),
        "the HL7 validator is missing: python3 -m pip install hl7apy==1.3.5"
    );
    assert!(
        out.status.success(),
        "hl7apy refused a message: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        messages.join("\n----\n").replace('\r', "\n")
    );
}

/// Every MLLP frame in a byte stream, as text.
fn frames_of(bytes: &[u8]) -> Vec<String> {
    let mut d = pcd::Deframer::new(usize::MAX);
    d.push(bytes)
        .expect("a recorded stream is MLLP")
        .into_iter()
        .map(|f| String::from_utf8(f).unwrap())
        .collect()
}

/// A TCP proxy in front of the server's MLLP port that records both directions, so a test sees exactly what the
/// pump sent and what the server answered.
struct Recorder {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
    answered: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    async fn start(upstream: SocketAddr) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent: Arc<Mutex<Vec<u8>>> = Arc::default();
        let answered: Arc<Mutex<Vec<u8>>> = Arc::default();
        let (s, a) = (sent.clone(), answered.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let (s, a) = (s.clone(), a.clone());
                tokio::spawn(async move {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        s.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                });
                tokio::spawn(async move {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        a.lock().unwrap().extend_from_slice(&buf[..n]);
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Recorder {
            addr,
            sent,
            answered,
        }
    }
}

/// An alarm manager on loopback: keeps every frame and acknowledges it AA (the first `refuse_first` with AE).
struct AlarmManager {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<String>>>,
    acks: Arc<Mutex<Vec<String>>>,
}

impl AlarmManager {
    async fn start() -> AlarmManager {
        AlarmManager::refusing(0).await
    }

    async fn refusing(refuse_first: usize) -> AlarmManager {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received: Arc<Mutex<Vec<String>>> = Arc::default();
        let acks: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, k) = (received.clone(), acks.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (r, k) = (r.clone(), k.clone());
                tokio::spawn(async move {
                    let mut d = pcd::Deframer::new(1024 * 1024);
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let Ok(frames) = d.push(&buf[..n]) else {
                            break;
                        };
                        for f in frames {
                            let text = String::from_utf8(f).unwrap();
                            let m = pcd::Message::parse(&text).unwrap();
                            let header = pcd::profile::parse_header(&m).unwrap();
                            let busy = pcd::Rejection::new(
                                AckCode::AE,
                                pcd::ErrorCode::APPLICATION_INTERNAL,
                                "busy, send again",
                            );
                            let refuse = r.lock().unwrap().len() < refuse_first;
                            let result = if refuse { Err(&busy) } else { Ok(()) };
                            let ack =
                                profile::ack(Some(&header), "am-1", jiff::Timestamp::now(), result);
                            r.lock().unwrap().push(text);
                            k.lock().unwrap().push(ack.clone());
                            if stream.write_all(&pcd::frame(ack.as_bytes())).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        AlarmManager {
            addr,
            received,
            acks,
        }
    }

    fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

/// A server with the PCD listener on loopback (and an alarm manager, when given), seeded, with pump 1's PCD id set
/// by the clinic admin through the API.
async fn pcd_server(
    backend: Backend,
    alarm_manager: Option<SocketAddr>,
    tweak: impl FnOnce(&mut server::ServerConfig),
) -> Option<(TestServer, World, SocketAddr)> {
    let app = TestServer::start_with(backend, |c| {
        c.pcd_bind = Some("127.0.0.1:0".parse().unwrap());
        c.pcd_out = alarm_manager.map(|a| a.to_string());
        tweak(c);
    })
    .await?;
    let world = support::seed(app.state()).await;
    let admin = app.login(User::Admin).await;
    let r = app
        .put(
            &format!("/api/admin/devices/{}", world.pump1_id),
            &admin,
            &json!({"pcd_device_id": EUI.to_lowercase()}),
        )
        .await
        .expect_status(200);
    assert_eq!(r.json()["pcd_device_id"], EUI, "stored upper-case");
    let pcd_addr = app.running.pcd_addr.expect("the PCD listener listens");
    Some((app, world, pcd_addr))
}

fn is_occlusion(e: &str, d: &Value) -> bool {
    e == "alarm" && d["data"]["alarm"]["alarm"] == "occlusion_downstream"
}

async fn pcd_pump_kink_reaches_the_screens_escalates_is_exported_and_goes_out(backend: Backend) {
    let manager = AlarmManager::start().await;
    let Some((app, w, pcd_addr)) = pcd_server(backend, Some(manager.addr), |_| {}).await else {
        return;
    };
    let nurse = app.login(User::Nurse).await;
    app.put_plan(&nurse, &w.p1, support::plan_json(2, 2))
        .await
        .expect_status(200);
    let patient = app.login(User::Patient1).await;
    let mut patient_stream = app.patient_stream(&patient, &w.p1).await;
    let mut nurse_stream = app.nurse_stream(&nurse).await;

    let recorder = Recorder::start(pcd_addr).await;
    let scenario = simpump::scenario(Some(KINKED), "test").unwrap();
    let (stop, stopped) = watch::channel(false);
    let (_actions, control) = mpsc::channel(1);
    let config = SimPumpConfig {
        speed: 20.0,
        step_every: Duration::from_millis(100),
        heartbeat_every: Duration::from_millis(300),
        ..SimPumpConfig::default()
    };
    let pump = tokio::spawn(simpump::run(
        sim::Simulation::new(&scenario),
        PcdUplink::new(&recorder.addr.to_string(), EUI),
        config,
        control,
        stopped,
    ));

    patient_stream
        .expect(
            Duration::from_secs(30),
            "the occlusion on the patient's stream",
            is_occlusion,
        )
        .await;
    nurse_stream
        .expect(
            Duration::from_secs(2),
            "the occlusion on the nurse's stream",
            is_occlusion,
        )
        .await;
    // The steps on the patient's screen: the alarm guide, as for the HTTP link.
    let page = app
        .http
        .get(&app.url_for(&format!("/p/{}/pump", w.p1)), &patient)
        .await
        .text();
    assert!(page.contains("Pump alarm: Blocked line"), "the alarm guide");
    assert!(page.matches("I did this").count() >= 3, "numbered steps");
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

    // In the record with the PCD alarm id, and in the FHIR export.
    let raised = app.timeline(&nurse, &w.p1, &["alarm_raised"]).await;
    let occlusion = raised
        .iter()
        .find(|e| e["payload"]["alarm"] == "occlusion_downstream")
        .expect("alarm_raised in the record");
    assert!(
        occlusion["payload"]["pcd_alarm_id"].is_string(),
        "{occlusion}"
    );
    let patient_id = record::PatientId::new(w.p1.clone()).unwrap();
    let bundle = app
        .state()
        .journal
        .store()
        .export_fhir(&record::export::ExportQuery {
            patient: patient_id,
            from: None,
            to: None,
        })
        .await
        .unwrap();
    let in_fhir = bundle["entry"].as_array().unwrap().iter().any(|e| {
        e["resource"]["resourceType"] == "Observation"
            && e["resource"]["code"]["coding"][0]["code"] == "occlusion_downstream"
    });
    assert!(
        in_fhir,
        "the occlusion is an Observation in the FHIR export"
    );

    // Out again as ORU^R40 to the alarm manager; the nurse's acknowledgement follows it.
    let start = wait_until(
        Duration::from_secs(5),
        "the ORU^R40 start at the alarm manager",
        async || {
            let got = manager.received();
            let n = got.len();
            got.into_iter()
                .find(|m| {
                    m.contains("ORU^R40^ORU_R40")
                        && m.contains("|start|")
                        && m.contains("MDC_EVT_FLUID_LINE_OCCL")
                })
                .ok_or(format!("{n} messages"))
        },
    )
    .await;
    let parsed = match pcd::parse_inbound(&start) {
        Ok(pcd::Inbound::Alarm(a)) => a,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (parsed.alarm.as_str(), parsed.priority),
        ("occlusion_downstream", Some(pump::Priority::High))
    );
    assert!(start.contains(&w.p1), "PID-3 names the patient");
    app.acknowledge(&nurse, &w.p1, "occlusion_downstream", Some("on my way"))
        .await
        .expect_status(200);
    let acked = wait_until(
        Duration::from_secs(5),
        "the acknowledgement at the alarm manager",
        async || {
            let got = manager.received();
            let n = got.len();
            got.into_iter()
                .find(|m| m.contains("alert-acknowledged"))
                .ok_or(format!("{n} messages"))
        },
    )
    .await;
    let attempts = server::store::pcd::attempts(&app.state().db, &w.p1)
        .await
        .unwrap();
    assert!(
        attempts
            .iter()
            .any(|a| a.delivered && a.phase == "start" && a.alarm == "occlusion_downstream"),
        "{attempts:?}"
    );
    assert!(
        attempts.iter().all(|a| a.ack_code.as_deref() == Some("AA")),
        "{attempts:?}"
    );
    wait_until(
        Duration::from_secs(5),
        "the pcd_report_sent events",
        async || {
            let sent = app.timeline(&nurse, &w.p1, &["pcd_report_sent"]).await;
            if sent.len() >= 2 && sent.iter().all(|e| e["payload"]["delivered"] == true) {
                Ok(())
            } else {
                Err(format!("{sent:?}"))
            }
        },
    )
    .await;

    stop.send(true).unwrap();
    pump.await
        .unwrap()
        .expect("the pump was never refused (every ACK AA)");
    // What the pump sent and what the server answered, all valid HL7 v2.6, every ACK AA.
    let sent = frames_of(&recorder.sent.lock().unwrap());
    let answered = frames_of(&recorder.answered.lock().unwrap());
    assert!(
        sent.iter()
            .any(|m| m.contains("ORU^R40") && m.contains("|start|")),
        "the pump sent the alarm"
    );
    assert!(
        sent.iter().any(|m| m.contains("ORU^R01")),
        "and its observations"
    );
    assert_eq!(sent.len(), answered.len(), "one ACK per message");
    for ack in &answered {
        assert_eq!(profile::parse_ack(ack).unwrap().code, AckCode::AA, "{ack}");
    }
    let mut all = sent;
    all.extend(answered);
    all.extend([start, acked]);
    all.extend(manager.acks.lock().unwrap().iter().cloned());
    hl7apy_validates(&all);
}

/// Send raw bytes on a new connection; the ACK that comes back, or `None` when the server closed the connection.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // A large write may fail half-way when the server closes first: that is a closed connection too.
    if stream.write_all(bytes).await.is_err() {
        return None;
    }
    read_ack(&mut stream).await
}

async fn read_ack(stream: &mut TcpStream) -> Option<String> {
    let mut d = pcd::Deframer::new(1024 * 1024);
    let mut buf = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the server answers or closes within 10 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        if let Some(f) = d
            .push(&buf[..n])
            .expect("the server speaks MLLP")
            .into_iter()
            .next()
        {
            return Some(String::from_utf8(f).unwrap());
        }
    }
}

fn alarm(control_id: &str, alarm: &str, phase: Phase) -> AlarmReport {
    AlarmReport {
        sender: Party::gateway(EUI),
        control_id: control_id.into(),
        sent_at: jiff::Timestamp::now(),
        patient: None,
        alarm_id: format!("a-{control_id}"),
        alarm: alarm.into(),
        phase,
        state: "active".into(),
        inactivation: Inactivation::Enabled,
        priority: Some(pump::Priority::High),
        text: Some("line blocked".into()),
    }
}

fn observation(control_id: &str, rate: f64) -> Observation {
    Observation {
        sender: Party::gateway(EUI),
        control_id: control_id.into(),
        sent_at: jiff::Timestamp::now(),
        patient: None,
        state: "infusing".into(),
        rate_ml_per_h: rate,
        vtbi_ml: Some(250.0),
        remaining_ml: 200.0,
        delivered_ml: 50.0,
        minutes_left: Some(120.0),
        battery_percent: 90.0,
        battery_minutes_left: Some(300.0),
        downstream_pressure_mmhg: Some(30.0),
        mains_present: Some(true),
    }
}

/// The ACK code, HL7 error code and MSA-2 of an answer.
fn code_of(ack: &str) -> (AckCode, Option<u16>, String) {
    let reply = profile::parse_ack(ack).unwrap();
    (reply.code, reply.error.map(|e| e.0), reply.control_id)
}

/// The kinds pump 1 itself wrote, newest first (the server's own events about it, like rungs, are not counted).
async fn stored(app: &TestServer, w: &World) -> Vec<String> {
    app.record(&w.p1)
        .await
        .into_iter()
        .filter(|e| e.device_id == w.pump1_id && e.source == "pump")
        .map(|e| e.kind)
        .collect()
}

async fn bad_input_gets_the_right_ack_or_a_closed_connection_and_loses_nothing(backend: Backend) {
    let Some((app, w, addr)) = pcd_server(backend, None, |c| c.pcd_frame_max = 256 * 1024).await
    else {
        return;
    };
    let mut acks = vec![];
    let mut accepted = vec![];
    // One good alarm, stored.
    let good = profile::build_alarm(&alarm("good-1", "air_in_line", Phase::Start));
    let ack = exchange(addr, &pcd::frame(good.as_bytes()))
        .await
        .expect("an ACK");
    assert_eq!(code_of(&ack), (AckCode::AA, None, "good-1".into()));
    acks.push(ack);
    accepted.push(good.clone());
    let before = stored(&app, &w).await;
    assert_eq!(before, ["alarm_raised"]);

    // The same message again (a re-send after a lost ACK): AA, not stored twice.
    let ack = exchange(addr, &pcd::frame(good.as_bytes()))
        .await
        .expect("an ACK");
    assert_eq!(code_of(&ack).0, AckCode::AA);
    acks.push(ack);
    // The gateway says again that the alarm is there (`present`, a new control id): acknowledged, and the
    // record still has one alarm_raised for it.
    let present = profile::build_alarm(&alarm("present-1", "air_in_line", Phase::Present));
    let ack = exchange(addr, &pcd::frame(present.as_bytes()))
        .await
        .expect("an ACK");
    assert_eq!(code_of(&ack).0, AckCode::AA);
    acks.push(ack);
    accepted.push(present);
    // And an observation twice: the second is recognised by its control id.
    let obs = profile::build_observation(&observation("obs-1", 100.0));
    for _ in 0..2 {
        let ack = exchange(addr, &pcd::frame(obs.as_bytes()))
            .await
            .expect("an ACK");
        assert_eq!(code_of(&ack).0, AckCode::AA);
        acks.push(ack);
    }
    accepted.push(obs);

    let unknown_device = profile::build_alarm(&AlarmReport {
        sender: Party::gateway("00AA00AA00AA00AA"),
        ..alarm("u-1", "air_in_line", Phase::Start)
    });
    let cases: Vec<(&str, String, AckCode, u16)> = vec![
        (
            "a wrong version",
            good.replace("|2.6|", "|2.3|").replace("good-1", "v-1"),
            AckCode::AR,
            203,
        ),
        ("an unknown device", unknown_device, AckCode::AE, 204),
        (
            "an unknown alarm code",
            good.replace(
                "air_in_line^air_in_line^99INFUSAFE",
                "196999^MDC_EVT_MADE_UP^MDC",
            )
            .replace("good-1", "c-1"),
            AckCode::AE,
            103,
        ),
        (
            "pump_silent from a device",
            profile::build_alarm(&alarm("s-1", "pump_silent", Phase::Start)),
            AckCode::AE,
            103,
        ),
        (
            "a rate no pump has",
            profile::build_observation(&observation("r-1", 5000.0)),
            AckCode::AE,
            102,
        ),
        ("not HL7 at all", "hello, server".into(), AckCode::AR, 100),
        (
            "not UTF-8",
            String::from_utf8_lossy(&[0xff, 0xfe]).into_owned(),
            AckCode::AR,
            100,
        ),
    ];
    for (what, text, want, code) in cases {
        let ack = exchange(addr, &pcd::frame(text.as_bytes()))
            .await
            .unwrap_or_else(|| panic!("{what}: an ACK"));
        let (got, err, _) = code_of(&ack);
        assert_eq!((got, err), (want, Some(code)), "{what}: {ack}");
        acks.push(ack);
    }
    let raw_bytes = exchange(addr, &pcd::frame(&[0xff, 0xfe, 0x00]))
        .await
        .expect("an ACK");
    assert_eq!(
        code_of(&raw_bytes).0,
        AckCode::AR,
        "bytes that are not UTF-8"
    );
    acks.push(raw_bytes);

    // A truncated frame (no end block), then the connection closes: nothing is stored.
    let truncated =
        &pcd::frame(profile::build_alarm(&alarm("t-1", "door_open", Phase::Start)).as_bytes());
    {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&truncated[..truncated.len() - 2])
            .await
            .unwrap();
    }
    // Several megabytes in one frame: the connection is closed, never a crash.
    let mut huge = pcd::frame(b"");
    huge.splice(1..1, std::iter::repeat_n(b'A', 3 * 1024 * 1024));
    assert_eq!(
        exchange(addr, &huge).await,
        None,
        "an oversized frame closes the connection"
    );
    // Bytes outside any frame (an HTTP client on the wrong port): closed.
    assert_eq!(
        exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await,
        None,
        "not MLLP closes the connection"
    );

    // The server still answers, and nothing but the good messages was stored.
    let next = profile::build_alarm(&alarm("good-2", "air_in_line", Phase::End));
    let ack = exchange(addr, &pcd::frame(next.as_bytes()))
        .await
        .expect("an ACK");
    assert_eq!(code_of(&ack).0, AckCode::AA);
    acks.push(ack);
    accepted.push(next);
    let after = stored(&app, &w).await;
    assert_eq!(
        after
            .iter()
            .filter(|k| k.starts_with("alarm_"))
            .collect::<Vec<_>>(),
        ["alarm_cleared", "alarm_raised"],
        "only the alarm's end was stored since (newest first)"
    );
    // Telemetry goes to the record's telemetry table through the grouped writer: write what it holds now.
    app.running.state.telemetry.flush().await;
    let samples = app
        .running
        .state
        .journal
        .telemetry_samples(&w.p1, 1)
        .await
        .unwrap();
    assert!(
        samples.len() <= 1,
        "the observation sent twice is not stored twice: {samples:?}"
    );
    let raised = app
        .timeline(&app.login(User::Nurse).await, &w.p1, &["alarm_raised"])
        .await;
    assert_eq!(
        raised.len(),
        1,
        "one air_in_line raised, no door_open, no made-up alarm: {raised:?}"
    );
    accepted.extend(acks);
    hl7apy_validates(&accepted);
}

async fn the_listener_holds_under_slow_partial_and_many_connections(backend: Backend) {
    let Some((app, _w, addr)) = pcd_server(backend, None, |c| {
        c.pcd_connections_max = 4;
        c.pcd_idle_timeout = Duration::from_millis(400);
    })
    .await
    else {
        return;
    };
    // Many idle connections: at most four are served at once, the rest wait; idle ones are closed, so a real
    // client is answered soon after.
    let mut idle = vec![];
    for _ in 0..40 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let good = profile::build_observation(&observation("slow-1", 100.0));
    let started = std::time::Instant::now();
    let ack = exchange(addr, &pcd::frame(good.as_bytes()))
        .await
        .expect("an ACK after the idle ones are closed");
    assert_eq!(code_of(&ack).0, AckCode::AA);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "answered in {:?}",
        started.elapsed()
    );
    drop(idle);

    // A slow but steady sender within the deadline is served.
    let frame = pcd::frame(profile::build_observation(&observation("slow-2", 100.0)).as_bytes());
    let mut s = TcpStream::connect(addr).await.unwrap();
    for chunk in frame.chunks(frame.len() / 5 + 1) {
        s.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(
        code_of(&read_ack(&mut s).await.expect("an ACK")).0,
        AckCode::AA
    );

    // A sender that trickles one frame past the deadline (slowloris) is closed.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut closed = false;
    for b in frame.iter().take(40) {
        if s.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !closed {
        closed = read_ack(&mut s).await.is_none();
    }
    assert!(
        closed,
        "a frame dribbled past the deadline closes the connection"
    );

    // Many clients at once, each with its own messages: every one answered AA.
    let mut tasks = vec![];
    for i in 0..16 {
        tasks.push(tokio::spawn(async move {
            let mut client = MllpClient::new(&addr.to_string(), Duration::from_secs(10));
            for j in 0..3 {
                let m = profile::build_observation(&observation(&format!("many-{i}-{j}"), 100.0));
                let reply = client.send(&m).await.expect("an ACK");
                assert_eq!(reply.code, AckCode::AA);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Random bytes, framed and not (a seeded generator, so a failure replays): every connection is answered or
    // closed, and the listener still serves.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..40 {
        let len = (next() % 2000) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 2 == 0 {
            bytes = pcd::frame(&bytes);
        }
        if let Some(ack) = exchange(addr, &bytes).await {
            assert_ne!(code_of(&ack).0, AckCode::AA, "random bytes accepted: {ack}");
        }
    }
    let ack = exchange(
        addr,
        &pcd::frame(profile::build_observation(&observation("after-noise", 100.0)).as_bytes()),
    )
    .await
    .expect("an ACK after the noise");
    assert_eq!(code_of(&ack).0, AckCode::AA);
    // The HTTP side never noticed.
    app.http
        .get(&app.url_for("/healthz"), &Default::default())
        .await
        .expect_status(200);
}

async fn admins_set_pcd_ids_once_per_pump_in_their_clinic(backend: Backend) {
    let Some((app, w, _)) = pcd_server(backend, None, |_| {}).await else {
        return;
    };
    let admin = app.login(User::Admin).await;
    // Another pump may not take the same id, whatever its case.
    let r = app
        .post(
            &format!("/api/admin/patients/{}/devices", w.p2),
            &admin,
            &json!({"label": "Gateway pump", "pcd_device_id": EUI}),
        )
        .await
        .expect_status(409);
    assert_eq!(r.json()["error"], "conflict");
    let r = app
        .post(
            &format!("/api/admin/patients/{}/devices", w.p2),
            &admin,
            &json!({"label": "Gateway pump", "pcd_device_id": "00-12-21-00-00-00-00-02"}),
        )
        .await
        .expect_status(201);
    let second = r.json()["device_id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["pcd_device_id"], "00-12-21-00-00-00-00-02");
    let r = app
        .put(
            &format!("/api/admin/devices/{second}"),
            &admin,
            &json!({"pcd_device_id": "bad id with spaces"}),
        )
        .await
        .expect_status(422);
    assert_eq!(r.json()["field"], "pcd_device_id");
    // An empty body is refused rather than taken as "clear": only an explicit null clears the id.
    let r = app
        .put(&format!("/api/admin/devices/{second}"), &admin, &json!({}))
        .await
        .expect_status(422);
    assert_eq!(r.json()["field"], "pcd_device_id");
    app.put(
        &format!("/api/admin/devices/{second}"),
        &admin,
        &json!({"pcd_device_id": null}),
    )
    .await
    .expect_status(200);
    let nurse = app.login(User::Nurse).await;
    app.put(
        &format!("/api/admin/devices/{second}"),
        &nurse,
        &json!({"pcd_device_id": "X1"}),
    )
    .await
    .expect_status(403);
    let other_clinic = app.login(User::NurseB).await;
    app.put(
        &format!("/api/admin/devices/{second}"),
        &other_clinic,
        &json!({"pcd_device_id": "X1"}),
    )
    .await
    .expect_status(403);
    let set = app.timeline(&admin, &w.p2, &["device_pcd_id_set"]).await;
    assert_eq!(
        set.len(),
        1,
        "the change is in the record with who made it: {set:?}"
    );
}

async fn alarm_reports_out_are_retried_and_every_attempt_recorded(backend: Backend) {
    let manager = AlarmManager::refusing(2).await;
    let Some((app, w, _)) = pcd_server(backend, Some(manager.addr), |_| {}).await else {
        return;
    };
    let at = jiff::Timestamp::now().to_string();
    app.pump(&w.pump1_token)
        .batch(
            json!([{"seq": 1, "occurred_at": at, "kind": "alarm_raised", "data": {"alarm": "air_in_line", "priority": "high"}},
                   {"seq": 2, "occurred_at": at, "kind": "alarm_cleared", "data": {"alarm": "air_in_line"}}]),
            None,
        )
        .await
        .expect_status(200);
    let attempts = wait_until(
        Duration::from_secs(10),
        "three attempts for the start, one for the end",
        async || {
            let a = server::store::pcd::attempts(&app.state().db, &w.p1)
                .await
                .unwrap();
            if a.len() == 4 {
                Ok(a)
            } else {
                Err(format!("{a:?}"))
            }
        },
    )
    .await;
    let summary: Vec<(&str, i64, Option<&str>, bool)> = attempts
        .iter()
        .map(|a| {
            (
                a.phase.as_str(),
                a.attempt,
                a.ack_code.as_deref(),
                a.delivered,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("start", 1, Some("AE"), false),
            ("start", 2, Some("AE"), false),
            ("start", 3, Some("AA"), true),
            ("end", 1, Some("AA"), true)
        ]
    );
    assert!(
        attempts[0].error.as_deref().unwrap().contains("207"),
        "{:?}",
        attempts[0]
    );
    assert_eq!(
        attempts[0].control_id, attempts[2].control_id,
        "a retry is the same message"
    );
    let received = manager.received();
    assert_eq!(received.len(), 4);
    assert!(received[3].contains("|end|") && received[3].contains("|inactive|"));
    hl7apy_validates(&received);
    let nurse = app.login(User::Nurse).await;
    let sent = app.timeline(&nurse, &w.p1, &["pcd_report_sent"]).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|e| e["payload"]["delivered"] == true));
    assert!(sent.iter().any(|e| e["payload"]["attempts"] == 3));
}

async fn a_dead_alarm_manager_is_recorded_and_given_up(backend: Backend) {
    // A port nobody listens on.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let Some((app, w, _)) = pcd_server(backend, Some(dead), |_| {}).await else {
        return;
    };
    let at = jiff::Timestamp::now().to_string();
    app.pump(&w.pump1_token)
        .batch(
            json!([{"seq": 1, "occurred_at": at, "kind": "alarm_raised", "data": {"alarm": "door_open", "priority": "medium"}}]),
            None,
        )
        .await
        .expect_status(200);
    let nurse = app.login(User::Nurse).await;
    let sent = wait_until(Duration::from_secs(10), "the report given up", async || {
        let sent = app.timeline(&nurse, &w.p1, &["pcd_report_sent"]).await;
        sent.first().cloned().ok_or("none yet".to_string())
    })
    .await;
    assert_eq!(sent["payload"]["delivered"], false);
    let attempts = server::store::pcd::attempts(&app.state().db, &w.p1)
        .await
        .unwrap();
    assert_eq!(attempts.len(), app.config.webhook_attempts_max as usize);
    assert!(
        attempts
            .iter()
            .all(|a| !a.delivered && a.ack_code.is_none() && a.error.is_some()),
        "{attempts:?}"
    );
    // The alarm itself is on the board regardless.
    let alarms = app.alarms(&nurse, &w.p1).await;
    assert!(alarms.to_string().contains("door_open"), "{alarms}");
}

both_backends!(
    alarm_reports_out_are_retried_and_every_attempt_recorded,
    a_dead_alarm_manager_is_recorded_and_given_up,
    pcd_pump_kink_reaches_the_screens_escalates_is_exported_and_goes_out,
    bad_input_gets_the_right_ack_or_a_closed_connection_and_loses_nothing,
    the_listener_holds_under_slow_partial_and_many_connections,
    admins_set_pcd_ids_once_per_pump_in_their_clinic,
);

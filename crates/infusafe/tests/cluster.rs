//! Issue 15: two `infusafe serve` processes on one PostgreSQL (a fresh schema of the throwaway cluster named by
//! INFUSAFE_TEST_POSTGRES_URL) behind Debian's haproxy, started by the test, round-robin. Pumps talk through the
//! balancer (so each pump's requests alternate between the processes), a nurse stream is open on each process,
//! and the test shows:
//! - every alarm reaches the nurse stream on both processes;
//! - an acknowledgement on one process shows on the other;
//! - each rung of the ladder is recorded once and each webhook is sent once;
//! - after SIGKILL of the process running the timed duties: no acknowledged event is lost, no `pump_silent` is
//!   raised for pumps that kept talking, and the other process takes over the duties (a new alarm climbs the
//!   ladder there) well within a minute.
//!
//! Everything listens on 127.0.0.1 and stops by itself.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "cluster-test-password-2026";
const PUMPS: usize = 6;
/// One plan minute lasts a second: the default ladder (nurse after 5 min, on call 10 min later) runs in 15 s.
const MINUTE_S: &str = "1";

fn postgres_url() -> Option<String> {
    match std::env::var("INFUSAFE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("INFUSAFE_SKIP_POSTGRES").as_deref() == Ok("1") => {
            eprintln!(
                "\n!!!!!!!! WARNING: INFUSAFE_SKIP_POSTGRES=1: the cluster test does NOT run !!!!!!!!\n"
            );
            None
        }
        _ => panic!(
            "INFUSAFE_TEST_POSTGRES_URL is not set: run `eval \"$(scripts/pg-start)\"` first \
             (or set INFUSAFE_SKIP_POSTGRES=1 to skip the PostgreSQL tests explicitly)"
        ),
    }
}

fn haproxy() -> PathBuf {
    for p in ["/usr/sbin/haproxy", "/usr/bin/haproxy"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("haproxy is not installed: apt-get install haproxy (scripts/test installs it)");
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A fresh schema, so this test's processes share one installation of their own.
fn fresh_database(base: &str) -> String {
    let schema = format!("cluster_{}", nanos() % 1_000_000_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(base)
            .await
            .expect("PostgreSQL answers at INFUSAFE_TEST_POSTGRES_URL (run scripts/pg-start)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&mut conn)
            .await
            .expect("create schema");
    });
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options[search_path]={schema}")
}

/// A child process killed (SIGKILL) when dropped; what it writes to stderr is kept.
struct Proc {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn log_has(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

/// Every line the child writes to stderr, kept as it comes.
fn keep_stderr(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    log
}

/// `infusafe serve` on a free port of 127.0.0.1; returns it and its URL.
fn serve(database_url: &str, bootstrap: bool) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infusafe"));
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--insecure-cookies"])
        .args(["--database-url", database_url])
        .args(["--escalation-minute-seconds", MINUTE_S])
        .args(["--pump-silent-after-s", "8"])
        .arg("--allow-loopback-webhooks")
        .env("INFUSAFE_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if bootstrap {
        cmd.args(["--bootstrap-admin", "admin"]);
    }
    let mut child = cmd.spawn().expect("infusafe serve starts");
    let log = keep_stderr(&mut child);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the server said where it listens")
            .unwrap();
        if let Some(url) = line.strip_prefix("infusafe serve: listening on ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Proc { child, log }, url)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// haproxy in front of both servers, round-robin, retrying a refused connection on the other server.
fn balancer(dir: &std::path::Path, a: &str, b: &str) -> (Proc, String) {
    let port = free_port();
    let strip = |u: &str| u.trim_start_matches("http://").to_string();
    let config = format!(
        "global\n  maxconn 512\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n  retries 3\n  option redispatch\n  option http-no-delay\n\
         frontend web\n  bind 127.0.0.1:{port}\n  default_backend servers\n\
         backend servers\n  balance roundrobin\n  option httpchk GET /healthz\n  default-server inter 300ms fall 2 rise 1\n\
           server a {} check\n  server b {} check\n",
        strip(a),
        strip(b)
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(haproxy())
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("haproxy starts");
    let log = keep_stderr(&mut child);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while request(&url, "GET", "/healthz", &[], None).map(|r| r.0) != Ok(200) {
        assert!(
            Instant::now() < deadline,
            "haproxy did not come up: {:?}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (Proc { child, log }, url)
}

/// `(status, headers with lower-case names, body)`.
type Answer = (u16, Vec<(String, String)>, String);

/// Deliveries a webhook receiver saw, by notification id.
type Deliveries = Arc<Mutex<HashMap<String, Vec<Value>>>>;

/// One HTTP/1.1 request over a fresh connection.
fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<Answer, String> {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(15))).ok();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| e.to_string())?;
    stream
        .write_all(body.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").ok_or("no HTTP head")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, headers, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

struct Session {
    cookie: String,
    csrf: String,
}

fn login(base: &str) -> Session {
    let (status, headers, body) = request(
        base,
        "POST",
        "/api/session",
        &[],
        Some(&json!({"username": "admin", "password": PASSWORD})),
    )
    .unwrap();
    assert_eq!(status, 200, "sign in: {body}");
    let cookie = headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("infusafe_session="))
        .map(|(_, v)| v.split(';').next().unwrap().to_string())
        .expect("a session cookie");
    let info: Value = serde_json::from_str(&body).unwrap();
    Session {
        cookie,
        csrf: info["csrf_token"].as_str().unwrap().to_string(),
    }
}

fn call(base: &str, s: &Session, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, _, text) = request(
        base,
        method,
        path,
        &[("Cookie", &s.cookie), ("X-CSRF-Token", &s.csrf)],
        body.as_ref(),
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert!(
        (200..300).contains(&status),
        "{method} {path}: HTTP {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A dashboard stream on one server: every `data:` line, kept.
fn stream(base: &str, s: &Session, stop: Arc<AtomicBool>) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let host = base.trim_start_matches("http://").to_string();
    let cookie = s.cookie.clone();
    let sink = seen.clone();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(&host).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .ok();
        write!(stream, "GET /api/dashboard/stream HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        let mut told = false;
        while !stop.load(Ordering::Relaxed) {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if !told && line.starts_with("HTTP/1.1 200") {
                        told = true;
                        let _ = ready_tx.send(());
                    }
                    if let Some(data) = line.strip_prefix("data:") {
                        sink.lock().unwrap().push(data.trim().to_string());
                    }
                }
                Err(_) => continue,
            }
        }
    });
    ready
        .recv_timeout(Duration::from_secs(10))
        .expect("the stream opened");
    seen
}

fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "waited {within:?} for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Pump {
    patient_id: String,
    token: String,
    seq: AtomicU64,
}

impl Pump {
    fn post(&self, base: &str, events: Vec<Value>, state: &str) -> Result<Value, String> {
        let telemetry = json!({"state": state, "rate_ml_per_h": 50.0, "delivered_ml": 10.0, "remaining_ml": 90.0,
            "battery_percent": 90, "mains_present": true, "downstream_pressure_mmhg": 40.0, "active_alarms": []});
        let auth = format!("Bearer {}", self.token);
        let (path, body) = if events.is_empty() {
            ("/api/link/v1/heartbeat", json!({"telemetry": telemetry}))
        } else {
            (
                "/api/link/v1/batch",
                json!({"events": events, "telemetry": telemetry}),
            )
        };
        let (status, _, text) =
            request(base, "POST", path, &[("Authorization", &auth)], Some(&body))?;
        if status != 200 {
            return Err(format!("HTTP {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    fn event(&self, kind: &str, data: Value) -> Value {
        json!({"seq": self.seq.fetch_add(1, Ordering::Relaxed), "occurred_at": jiff::Timestamp::now().to_string(),
               "kind": kind, "data": data})
    }

    /// Raise an alarm; returns once the server confirmed it (acknowledged means durable).
    fn raise(&self, base: &str, alarm: &str, tag: &str) {
        let e = self.event(
            "alarm_raised",
            json!({"alarm": alarm, "priority": "high", "detail": tag}),
        );
        let seq = e["seq"].clone();
        let answer = self
            .post(base, vec![e], "infusing")
            .expect("the alarm is accepted");
        assert!(
            answer["accepted"].as_array().unwrap().contains(&seq),
            "{answer}"
        );
    }
}

/// A webhook receiver on 127.0.0.1: counts deliveries per notification id.
fn webhook_receiver(stop: Arc<AtomicBool>) -> (String, Deliveries) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Deliveries = Arc::default();
    let sink = seen.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            conn.set_nonblocking(false).ok();
            conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut id = String::new();
            let mut length = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("x-infusafe-notification:") {
                    id = v.trim().to_string();
                }
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            sink.lock().unwrap().entry(id).or_default().push(body);
        }
    });
    (url, seen)
}

fn count_in(stream: &Arc<Mutex<Vec<String>>>, needle: &str) -> usize {
    stream
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

#[test]
fn two_servers_behind_haproxy_share_alarms_acknowledgements_duties_and_survive_sigkill() {
    let Some(base) = postgres_url() else {
        return;
    };
    let haproxy_bin = haproxy();
    assert!(haproxy_bin.exists());
    let dir = std::env::temp_dir().join(format!("infusafe-cluster-{}", nanos()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = fresh_database(&base);
    let (server_a, url_a) = serve(&database, true);
    let (server_b, url_b) = serve(&database, false);
    let mut servers = vec![(server_a, url_a.clone()), (server_b, url_b.clone())];
    let (_lb, lb) = balancer(&dir, &url_a, &url_b);
    let stop = Arc::new(AtomicBool::new(false));

    // The clinic: a webhook to this test, patients and pumps, all set up through the balancer.
    let admin = login(&lb);
    let (hook_url, hooks) = webhook_receiver(stop.clone());
    call(
        &lb,
        &admin,
        "PUT",
        "/api/admin/webhook",
        Some(json!({"url": hook_url})),
    );
    let pumps: Vec<Arc<Pump>> = (0..PUMPS)
        .map(|i| {
            let p = call(
                &lb,
                &admin,
                "POST",
                "/api/admin/patients",
                Some(json!({"display_name": format!("Cluster {i}")})),
            );
            let patient_id = p["patient_id"].as_str().unwrap().to_string();
            let d = call(
                &lb,
                &admin,
                "POST",
                &format!("/api/admin/patients/{patient_id}/devices"),
                Some(json!({"label": format!("pump {i}")})),
            );
            Arc::new(Pump {
                patient_id,
                token: d["token"].as_str().unwrap().to_string(),
                seq: AtomicU64::new(1),
            })
        })
        .collect();

    // A nurse stream on each process, directly.
    let on_a = stream(&url_a, &admin, stop.clone());
    let on_b = stream(&url_b, &admin, stop.clone());

    // Every pump infuses and sends a heartbeat every second through the balancer, all test long.
    let beating = Arc::new(AtomicBool::new(true));
    let beat_errors = Arc::new(AtomicU64::new(0));
    for p in &pumps {
        let (p, lb, beating, errors) =
            (p.clone(), lb.clone(), beating.clone(), beat_errors.clone());
        std::thread::spawn(move || {
            while beating.load(Ordering::Relaxed) {
                if p.post(&lb, vec![], "infusing").is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    }

    // 1. Every alarm reaches the nurse stream on both processes, whichever process the pump's POST went to.
    for (i, p) in pumps.iter().enumerate() {
        p.raise(&lb, "occlusion_downstream", &format!("cluster-alarm-{i}"));
    }
    for i in 0..PUMPS {
        let tag = format!("cluster-alarm-{i}");
        wait_until(
            &format!("{tag} on process A's stream"),
            Duration::from_secs(10),
            || count_in(&on_a, &tag) > 0,
        );
        wait_until(
            &format!("{tag} on process B's stream"),
            Duration::from_secs(10),
            || count_in(&on_b, &tag) > 0,
        );
    }

    // 2. An acknowledgement on A shows on B (the API on B and B's stream).
    let first = &pumps[0];
    let alarms = call(
        &url_a,
        &admin,
        "GET",
        &format!("/api/patients/{}/alarms", first.patient_id),
        None,
    );
    let alarm_id = alarms[0]["id"]
        .as_str()
        .expect("an active alarm")
        .to_string();
    call(
        &url_a,
        &admin,
        "POST",
        &format!(
            "/api/patients/{}/alarms/{alarm_id}/acknowledge",
            first.patient_id
        ),
        Some(json!({"note": "seen on A"})),
    );
    wait_until("the acknowledgement on B", Duration::from_secs(10), || {
        let on_b = call(
            &url_b,
            &admin,
            "GET",
            &format!("/api/patients/{}/alarms", first.patient_id),
            None,
        );
        on_b.as_array().unwrap().iter().any(|a| {
            a["id"] == alarm_id.as_str() && !a["acknowledgements"].as_array().unwrap().is_empty()
        })
    });
    wait_until(
        "the acknowledgement on B's stream",
        Duration::from_secs(10),
        || count_in(&on_b, "seen on A") > 0 || count_in(&on_b, "\"acknowledged\"") > 0,
    );

    // 3. Each rung once, each webhook once: wait for the on-call rung of an alarm nobody acknowledged.
    let second = &pumps[1];
    wait_until(
        "the on-call rung of an unacknowledged alarm",
        Duration::from_secs(40),
        || {
            rungs(&lb, &admin, &second.patient_id)
                .iter()
                .any(|r| r.ends_with("/on_call"))
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    for p in &pumps[1..] {
        let r = rungs(&lb, &admin, &p.patient_id);
        let mut sorted = r.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            r.len(),
            "a rung recorded twice for {}: {r:?}",
            p.patient_id
        );
    }
    {
        let hooks = hooks.lock().unwrap();
        assert!(!hooks.is_empty(), "webhooks were sent");
        for (id, deliveries) in hooks.iter() {
            assert_eq!(
                deliveries.len(),
                1,
                "webhook {id} delivered {} times",
                deliveries.len()
            );
        }
        let mut per_alarm: HashMap<(String, String), usize> = HashMap::new();
        for deliveries in hooks.values() {
            let b = &deliveries[0];
            let key = (
                b["patient_id"].as_str().unwrap_or("").to_string(),
                b["rung"].as_str().unwrap_or("").to_string(),
            );
            *per_alarm.entry(key).or_default() += 1;
        }
        for (key, n) in per_alarm {
            assert_eq!(n, 1, "{key:?} notified {n} times");
        }
    }

    // 4. SIGKILL the process running the timed duties.
    let holder = servers
        .iter()
        .position(|(p, _)| p.log_has("now runs the timed duties"))
        .expect("one process runs the timed duties");
    let (mut killed, killed_url) = servers.remove(holder);
    let (survivor, survivor_url) = servers.remove(0);
    assert!(
        !survivor.log_has("now runs the timed duties"),
        "both processes ran the duties at once"
    );
    let on_survivor = if survivor_url == url_a {
        on_a.clone()
    } else {
        on_b.clone()
    };
    killed.child.kill().expect("SIGKILL");
    killed.child.wait().unwrap();
    let killed_at = Instant::now();
    drop(killed);
    eprintln!("killed {killed_url}; {survivor_url} survives");

    // The survivor takes the duties over, well within a minute.
    wait_until(
        "the survivor runs the duties",
        Duration::from_secs(60),
        || survivor.log_has("now runs the timed duties"),
    );
    let took = killed_at.elapsed();
    assert!(took < Duration::from_secs(60), "hand-over took {took:?}");

    // A new alarm after the kill climbs the ladder on the survivor (nurse after 5 plan minutes = 5 s).
    let third = &pumps[2];
    third.raise(&lb, "air_in_line", "cluster-after-kill");
    wait_until(
        "the new alarm on the survivor's stream",
        Duration::from_secs(10),
        || count_in(&on_survivor, "cluster-after-kill") > 0,
    );
    wait_until(
        "the survivor pages the nurse",
        Duration::from_secs(30),
        || {
            escalated(&survivor_url, &admin, &third.patient_id, "air_in_line")
                .iter()
                .any(|r| r == "nurse")
        },
    );

    // Pumps kept talking through the balancer for longer than the silence allowance (8 s): no pump_silent.
    std::thread::sleep(Duration::from_secs(10));
    beating.store(false, Ordering::Relaxed);
    for p in &pumps {
        let t = timeline(&survivor_url, &admin, &p.patient_id);
        let silent = t
            .iter()
            .filter(|e| e["kind"] == "alarm_raised" && e["payload"]["alarm"] == "pump_silent")
            .count();
        assert_eq!(silent, 0, "a false pump_silent for {}", p.patient_id);
        // No acknowledged event lost: every alarm the pumps were told was stored is in the record.
        let raised = t
            .iter()
            .filter(|e| e["kind"] == "alarm_raised" && e["source"] == "pump")
            .count();
        assert!(
            raised >= 1,
            "the pump's alarm is in the record for {}",
            p.patient_id
        );
    }
    assert!(
        survivor
            .log
            .lock()
            .unwrap()
            .iter()
            .all(|l| !l.contains("panicked")),
        "the survivor panicked"
    );
    stop.store(true, Ordering::Relaxed);
    let _ = std::fs::remove_dir_all(&dir);
}

fn timeline(base: &str, s: &Session, patient: &str) -> Vec<Value> {
    let t = call(
        base,
        s,
        "GET",
        &format!("/api/patients/{patient}/timeline?limit=1000"),
        None,
    );
    t.as_array()
        .cloned()
        .or_else(|| t["events"].as_array().cloned())
        .unwrap_or_default()
}

/// The rungs recorded for a patient's alarms, `alarm_id/rung`, one entry per `alarm_escalated` event.
fn rungs(base: &str, s: &Session, patient: &str) -> Vec<String> {
    timeline(base, s, patient)
        .iter()
        .filter(|e| e["kind"] == "alarm_escalated" && e["source"] == "system")
        .map(|e| {
            format!(
                "{}/{}",
                e["payload"]["alarm_id"].as_str().unwrap_or(""),
                e["payload"]["rung"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn escalated(base: &str, s: &Session, patient: &str, alarm: &str) -> Vec<String> {
    timeline(base, s, patient)
        .iter()
        .filter(|e| e["kind"] == "alarm_escalated" && e["payload"]["alarm"] == alarm)
        .map(|e| e["payload"]["rung"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_second_process_on_the_same_sqlite_file_is_refused_with_the_way_out() {
    let dir = std::env::temp_dir().join(format!("infusafe-sqlite-one-{}", nanos()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/infusafe.db", dir.display());
    let (first, first_url) = serve(&url, true);
    let second = Command::new(env!("CARGO_BIN_EXE_infusafe"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--insecure-cookies",
            "--database-url",
            &url,
        ])
        .output()
        .expect("infusafe runs");
    assert_eq!(second.status.code(), Some(2), "the second process stops");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("another infusafe process is using the SQLite database"),
        "{said}"
    );
    assert!(
        said.contains("PostgreSQL"),
        "it names the way to run several: {said}"
    );
    // The first one is untouched.
    assert_eq!(
        request(&first_url, "GET", "/healthz", &[], None).unwrap().0,
        200
    );
    drop(first);
    // Once the first has stopped, the file is free again.
    let (again, again_url) = serve(&url, false);
    assert_eq!(
        request(&again_url, "GET", "/healthz", &[], None).unwrap().0,
        200
    );
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

//! `infusafe load`: the load generator of issue 15. N simulated pumps send heartbeats and batches over the real
//! pump link (the `link` crate's wire types) to a server on this machine, alarms are injected at a fixed rate as
//! `alarm_raised` events of random pumps (and cleared a little later), and a care-team dashboard stream
//! (`/api/dashboard/stream`, signed in as the clinic admin) measures how long each alarm takes from the pump's POST
//! to the nurse's screen. Bounded in pumps, connections and time; loopback addresses only.
//!
//! The pumps are tokio tasks that sleep between messages; at most `--connections` requests are in flight at once
//! (one HTTP connection each), so 20,000 pumps are 20,000 sleeping tasks and a few dozen sockets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// The most pumps one run simulates.
pub const PUMPS_MAX: u32 = 20_000;
/// The longest run.
pub const DURATION_MAX: Duration = Duration::from_secs(3600);
/// The most alarms injected per second.
pub const ALARMS_PER_SECOND_MAX: f64 = 100.0;
/// The alarm the pumps raise (a pump core alarm name).
const ALARM_NAME: &str = "occlusion_downstream";
/// How long an injected alarm stays raised before the pump clears it.
const CLEAR_AFTER: Duration = Duration::from_secs(2);
/// How long after the last alarm the stream is still watched for alarms not yet seen.
const GRACE: Duration = Duration::from_secs(5);
/// One request's time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight at once while creating patients and pumps.
const SETUP_CONCURRENCY: usize = 8;
/// Clock ticks per second of `/proc/PID/stat` (`USER_HZ`, 100 on every Linux the project runs on).
const USER_HZ: f64 = 100.0;

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The server's base URL, a loopback address only: http://127.0.0.1:8080 (127.0.0.0/8) or http://[::1]:8080.
    #[arg(long)]
    server: String,
    /// Simulated pumps (1 to 20000), each with its own patient and device token.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=i64::from(PUMPS_MAX)))]
    pumps: u32,
    /// Each pump sends a heartbeat this often (100ms to 1h; like 10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_interval)]
    heartbeat_every: Duration,
    /// Each pump sends a batch of events this often (100ms to 1h).
    #[arg(long, default_value = "60s", value_parser = parse_interval)]
    batch_every: Duration,
    /// Alarms raised per second across all pumps (0 to 100), each on a random pump, cleared 2 s later.
    #[arg(long, default_value_t = 3.0, value_parser = parse_rate)]
    alarms_per_second: f64,
    /// How long the pumps run (1s to 1h); the run then stops by itself.
    #[arg(long, default_value = "60s", value_parser = parse_run_duration)]
    duration: Duration,
    /// Create the patients and pumps through the admin API first (written to --setup-file if given).
    #[arg(long)]
    setup: bool,
    /// Patients and pump tokens of an earlier --setup, reused when --setup is not given. A run that ends with
    /// no failed request (every alarm it raised cleared) leaves FILE.clean beside it; the next run starts by
    /// clearing each pump's alarm only when that mark is missing (an interrupted run may have left one open).
    #[arg(long)]
    setup_file: Option<PathBuf>,
    /// The clinic admin: creates the pumps with --setup and watches the dashboard stream.
    #[arg(long)]
    admin: String,
    /// The environment variable that holds the admin's password.
    #[arg(long)]
    password_env: String,
    /// Requests in flight at once (1 to 256), one HTTP connection each.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
    connections: u16,
    /// Print the report as JSON (and no progress bar).
    #[arg(long)]
    json: bool,
    /// A server process id: its CPU use over the run is read from /proc/PID/stat. Repeat it for several
    /// server processes (behind a load balancer): the report gives each and their sum.
    #[arg(long)]
    server_pid: Vec<u32>,
    /// Another server's base URL (loopback) whose dashboard stream must also see every alarm: with several
    /// server processes behind a load balancer at --server, watch each process directly. Repeatable, at most 8.
    #[arg(long)]
    watch: Vec<String>,
    /// Every pump's first heartbeat falls within this long of the start (100ms to 1h; default: one heartbeat
    /// interval, spread out). Shorter than the heartbeat interval, the pumps stay in step all run: a synchronized
    /// start, as after an outage.
    #[arg(long, value_parser = parse_interval)]
    start_within: Option<Duration>,
}

/// Extra streams watched at most.
pub const WATCH_MAX: usize = 8;

pub fn main(args: LoadArgs) -> ExitCode {
    match run(args) {
        Ok(report) => {
            if report.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("infusafe load: {e:#}");
            ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Pure parts: arguments, the loopback rule, percentiles, /proc, server-sent events.

/// A duration like `500ms`, `10s`, `2m`, `1h` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || format!("{text:?} is not a duration like 500ms, 10s, 2m or 1h");
    let n: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn bounded(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < min || d > max {
        return Err(format!("must be from {min:?} to {max:?}"));
    }
    Ok(d)
}

/// A pump's heartbeat or batch interval: 100 ms to 1 h.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    bounded(text, Duration::from_millis(100), Duration::from_secs(3600))
}

/// The run's duration: 1 s to 1 h.
pub fn parse_run_duration(text: &str) -> Result<Duration, String> {
    bounded(text, Duration::from_secs(1), DURATION_MAX)
}

/// Alarms per second: 0 to 100.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let r: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !r.is_finite() || !(0.0..=ALARMS_PER_SECOND_MAX).contains(&r) {
        return Err(format!("must be from 0 to {ALARMS_PER_SECOND_MAX}"));
    }
    Ok(r)
}

/// The base URL (`http://host:port`) of a server on a loopback address; anything else is refused, because load
/// is only ever sent to this machine.
pub fn loopback_base_url(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("--server {url:?} is not a URL like http://127.0.0.1:8080"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "--server {url:?}: use http:// to a loopback address (the load generator only talks to this machine)"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("--server {url:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "--server {url:?}: no user name or password in the URL"
        ));
    }
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().map_err(|_| {
        format!(
            "--server {url:?}: give a loopback IP address (127.0.0.1 or [::1]), not a host name"
        )
    })?;
    if !ip.is_loopback() {
        return Err(format!(
            "--server {url:?}: {ip} is not a loopback address; load is only sent to 127.0.0.0/8 or ::1"
        ));
    }
    Ok(format!("http://{authority}"))
}

/// The nearest-rank percentile `p` (0–100] of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Count, p50, p95, p99 and max of latencies in microseconds, as milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(mut micros: Vec<u64>) -> Latency {
        micros.sort_unstable();
        let ms = |p: f64| percentile(&micros, p).map_or(0.0, |us| us as f64 / 1000.0);
        Latency {
            count: micros.len(),
            p50_ms: ms(50.0),
            p95_ms: ms(95.0),
            p99_ms: ms(99.0),
            max_ms: ms(100.0),
        }
    }

    fn json(&self) -> Value {
        json!({"count": self.count, "p50": self.p50_ms, "p95": self.p95_ms, "p99": self.p99_ms, "max": self.max_ms})
    }

    fn text(&self) -> String {
        if self.count == 0 {
            return "none measured".into();
        }
        format!(
            "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} measured)",
            self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

/// User plus system CPU time, in clock ticks, from the text of `/proc/PID/stat` (fields 14 and 15; the command
/// name in field 2 may hold spaces and parentheses, so fields are counted after its last `)`).
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU use in percent of one core between two `cpu_ticks` readings `wall` apart.
pub fn cpu_percent(ticks_before: u64, ticks_after: u64, wall: Duration) -> f64 {
    let busy = ticks_after.saturating_sub(ticks_before) as f64 / USER_HZ;
    let wall = wall.as_secs_f64();
    if wall <= 0.0 {
        0.0
    } else {
        100.0 * busy / wall
    }
}

/// Server-sent events, fed in arbitrary pieces: each complete event comes out as (event name, data).
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: String,
    data: String,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let mut line = String::from_utf8_lossy(&self.line).into_owned();
            self.line.clear();
            if line.ends_with('\r') {
                line.pop();
            }
            if line.is_empty() {
                if !self.data.is_empty() || !self.event.is_empty() {
                    let event = if self.event.is_empty() {
                        "message".to_string()
                    } else {
                        std::mem::take(&mut self.event)
                    };
                    out.push((event, std::mem::take(&mut self.data)));
                }
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => self.event = value.to_string(),
                "data" => {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                }
                _ => {}
            }
        }
        out
    }
}

/// The injected alarm's number from a dashboard `alarm` message, if it is one of this run's (`tag`).
pub fn injected_alarm_id(message: &Value, tag: &str) -> Option<u64> {
    let detail = message
        .get("data")?
        .get("detail")?
        .get("detail")?
        .as_str()?;
    detail.strip_prefix(tag)?.parse().ok()
}

/// SplitMix64: a small, seeded random number source for picking pumps and spreading their start.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A duration in `[0, d)`.
    pub fn within(&mut self, d: Duration) -> Duration {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        Duration::from_nanos(self.below(nanos))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP.

type Http = Client<HttpConnector, Full<Bytes>>;

fn http_client(connections: usize) -> Http {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections + 2)
        .build(connector)
}

struct Answer {
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

/// One request with a time limit; a failure is named by its kind (`connect`, `io`, `timeout`).
async fn send(
    http: &Http,
    method: http::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Answer, &'static str> {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| "bad_request")?;
    let exchange = async {
        let response = http
            .request(request)
            .await
            .map_err(|e| if e.is_connect() { "connect" } else { "io" })?;
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, 4 << 20)
            .collect()
            .await
            .map_err(|_| "io")?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| "timeout")?
}

/// A signed-in person: the session cookie and the CSRF token for POSTs.
struct Session {
    cookie: String,
    csrf: String,
}

async fn login(http: &Http, base: &str, username: &str, password: &str) -> anyhow::Result<Session> {
    let body = serde_json::to_vec(&json!({"username": username, "password": password}))?;
    let answer = send(
        http,
        http::Method::POST,
        &format!("{base}/api/session"),
        &[("content-type", "application/json")],
        body,
    )
    .await
    .map_err(|kind| anyhow::anyhow!("signing in at {base}: {kind}"))?;
    if !answer.status.is_success() {
        bail!(
            "signing in as {username:?} answered HTTP {}: {}",
            answer.status.as_u16(),
            String::from_utf8_lossy(&answer.body)
        );
    }
    let cookie = answer
        .headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("infusafe_session="))
        .and_then(|v| v.split(';').next())
        .context("the sign-in answer set no session cookie")?
        .to_string();
    let info: Value = serde_json::from_slice(&answer.body).context("the sign-in answer")?;
    let csrf = info
        .get("csrf_token")
        .and_then(Value::as_str)
        .context("the sign-in answer has no csrf_token")?
        .to_string();
    Ok(Session { cookie, csrf })
}

async fn admin_post(
    http: &Http,
    base: &str,
    session: &Session,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let answer = send(
        http,
        http::Method::POST,
        &format!("{base}{path}"),
        &[
            ("content-type", "application/json"),
            ("cookie", session.cookie.as_str()),
            ("x-csrf-token", session.csrf.as_str()),
        ],
        serde_json::to_vec(&body)?,
    )
    .await
    .map_err(|kind| anyhow::anyhow!("POST {path}: {kind}"))?;
    if !answer.status.is_success() {
        bail!(
            "POST {path} answered HTTP {}: {}",
            answer.status.as_u16(),
            String::from_utf8_lossy(&answer.body)
        );
    }
    serde_json::from_slice(&answer.body).with_context(|| format!("the answer to POST {path}"))
}

// ---------------------------------------------------------------------------------------------------------------
// Setup: one patient and one pump per simulated pump.

/// A pump of the setup: its patient, its device id and its link token.
#[derive(Debug, Clone, PartialEq)]
pub struct PumpId {
    pub patient_id: String,
    pub device_id: String,
    pub token: String,
}

fn field(v: &Value, name: &str) -> anyhow::Result<String> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("no {name:?} in {v}"))
}

async fn create_pumps(
    http: &Http,
    base: &str,
    session: Arc<Session>,
    n: u32,
    tag: &str,
) -> anyhow::Result<Vec<PumpId>> {
    let permits = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (http, base, session, permits) = (
            http.clone(),
            base.to_string(),
            session.clone(),
            permits.clone(),
        );
        let name = format!("Load {tag} {i}");
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let patient = admin_post(
                &http,
                &base,
                &session,
                "/api/admin/patients",
                json!({"display_name": name}),
            )
            .await?;
            let patient_id = field(&patient, "patient_id")?;
            let device = admin_post(
                &http,
                &base,
                &session,
                &format!("/api/admin/patients/{patient_id}/devices"),
                json!({"label": format!("load pump {i}")}),
            )
            .await?;
            anyhow::Ok(PumpId {
                patient_id,
                device_id: field(&device, "device_id")?,
                token: field(&device, "token")?,
            })
        });
    }
    let mut pumps = Vec::with_capacity(n as usize);
    while let Some(done) = tasks.join_next().await {
        pumps.push(done.context("a setup task failed")??);
    }
    Ok(pumps)
}

fn setup_to_json(base: &str, pumps: &[PumpId]) -> Value {
    json!({
        "server": base,
        "pumps": pumps.iter().map(|p| json!({"patient_id": p.patient_id, "device_id": p.device_id, "token": p.token})).collect::<Vec<_>>(),
    })
}

/// The pumps of a setup file.
pub fn setup_from_json(v: &Value) -> anyhow::Result<Vec<PumpId>> {
    let list = v
        .get("pumps")
        .and_then(Value::as_array)
        .context("a setup file has a \"pumps\" list")?;
    list.iter()
        .map(|p| {
            Ok(PumpId {
                patient_id: field(p, "patient_id")?,
                device_id: field(p, "device_id")?,
                token: field(p, "token")?,
            })
        })
        .collect()
}

/// Write the setup readable by its owner only: it holds pump tokens.
fn write_setup(path: &Path, base: &str, pumps: &[PumpId]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(serde_json::to_string_pretty(&setup_to_json(base, pumps))?.as_bytes())?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// The run.

#[derive(Debug, Default)]
struct Stats {
    heartbeats: u64,
    batches: u64,
    alarm_batches: u64,
    errors: BTreeMap<String, u64>,
    post_us: Vec<u64>,
    alarm_us: Vec<u64>,
    /// Alarms whose batch the server accepted, by number, with the instant their POST started.
    sent: HashMap<u64, Instant>,
    /// POSTs started for alarms, by number (an answer may come after the stream's message).
    started: HashMap<u64, Instant>,
    seen: HashSet<u64>,
    /// The alarms each `--watch` stream saw.
    watch_seen: Vec<HashSet<u64>>,
    seen_twice: u64,
    /// Alarms not injected because the random pumps picked all had one open.
    skipped: u64,
    lagged: u64,
}

impl Stats {
    fn error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
    }

    fn requests(&self) -> u64 {
        self.heartbeats + self.batches + self.alarm_batches
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

struct Pump {
    id: PumpId,
    seq: AtomicU64,
    alarm_open: AtomicBool,
}

struct Shared {
    http: Http,
    base: String,
    permits: Semaphore,
    stats: Mutex<Stats>,
    started: Instant,
    tag: String,
}

impl Shared {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sent {
    Heartbeat,
    Batch,
    Alarm(u64),
}

fn telemetry(shared: &Shared, state: &str, alarm_open: bool) -> link::Telemetry {
    let hours = shared.started.elapsed().as_secs_f64() / 3600.0;
    let delivered = (50.0 * hours).min(999.0);
    link::Telemetry {
        state: state.into(),
        rate_ml_per_h: if state == "infusing" { 50.0 } else { 0.0 },
        delivered_ml: delivered,
        remaining_ml: 1000.0 - delivered,
        minutes_left: Some((1000.0 - delivered) / 50.0 * 60.0),
        battery_percent: 80.0,
        battery_minutes_left: None,
        downstream_pressure_mmhg: Some(40.0),
        mains_present: Some(true),
        active_alarms: if alarm_open {
            vec![ALARM_NAME.into()]
        } else {
            vec![]
        },
    }
}

fn event(pump: &Pump, kind: &str, data: Value) -> link::LinkEvent {
    link::LinkEvent {
        seq: pump.seq.fetch_add(1, Ordering::Relaxed),
        occurred_at: jiff::Timestamp::now(),
        kind: kind.into(),
        data,
    }
}

/// POST one link message for `pump`, timed from the moment a connection slot is free. The batch counts only
/// when the server confirms every event of it.
async fn post_link(
    shared: &Shared,
    pump: &Pump,
    what: Sent,
    events: Vec<link::LinkEvent>,
    tel: link::Telemetry,
) {
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let (path, body) = if events.is_empty() {
        (
            "heartbeat",
            serde_json::to_vec(&link::Heartbeat {
                telemetry: Some(tel),
            }),
        )
    } else {
        (
            "batch",
            serde_json::to_vec(&link::LinkBatch {
                events,
                telemetry: Some(tel),
            }),
        )
    };
    let Ok(body) = body else {
        shared.stats().error("encode");
        return;
    };
    let url = format!("{}/api/link/v1/{path}", shared.base);
    let auth = format!("Bearer {}", pump.id.token);
    let Ok(_permit) = shared.permits.acquire().await else {
        return;
    };
    let start = Instant::now();
    if let Sent::Alarm(id) = what {
        shared.stats().started.insert(id, start);
    }
    let result = send(
        &shared.http,
        http::Method::POST,
        &url,
        &[
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ],
        body,
    )
    .await;
    let took = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    let mut stats = shared.stats();
    match what {
        Sent::Heartbeat => stats.heartbeats += 1,
        Sent::Batch => stats.batches += 1,
        Sent::Alarm(_) => stats.alarm_batches += 1,
    }
    let answer = match result {
        Ok(a) => a,
        Err(kind) => return stats.error(kind),
    };
    if !answer.status.is_success() {
        return stats.error(&format!("http_{}", answer.status.as_u16()));
    }
    let confirmed = match serde_json::from_slice::<link::BatchResponse>(&answer.body) {
        Ok(r) => seqs
            .iter()
            .all(|s| r.accepted.contains(s) || r.duplicates.contains(s)),
        Err(_) => return stats.error("bad_answer"),
    };
    if !confirmed {
        return stats.error("not_confirmed");
    }
    stats.post_us.push(took);
    if let Sent::Alarm(id) = what {
        stats.sent.insert(id, start);
    }
}

/// One pump: heartbeats and batches on their own clocks (started at random offsets so the pumps spread out),
/// then, at the end, a last heartbeat saying it paused (so the server raises no `pump_silent` after the run).
async fn pump_loop(
    shared: Arc<Shared>,
    pump: Arc<Pump>,
    args: Arc<RunArgs>,
    end: tokio::time::Instant,
    mut rng: Rng,
) {
    let start = tokio::time::Instant::now();
    let mut next_heartbeat = start + rng.within(args.start_within);
    let mut next_batch = start + rng.within(args.batch_every);
    let mut first = args.clear_first;
    loop {
        let batch = next_batch <= next_heartbeat;
        let at = next_heartbeat.min(next_batch);
        if at >= end {
            break;
        }
        tokio::time::sleep_until(at).await;
        let open = pump.alarm_open.load(Ordering::Relaxed);
        if first {
            // A reused setup: an alarm left open by an interrupted run would hide this run's first alarm.
            first = false;
            let clear = event(
                &pump,
                "alarm_cleared",
                json!({"alarm": ALARM_NAME, "resolution": "infusafe load started"}),
            );
            post_link(
                &shared,
                &pump,
                Sent::Batch,
                vec![clear],
                telemetry(&shared, "infusing", open),
            )
            .await;
        } else if batch {
            let ev = event(&pump, "state_changed", json!({"state": "infusing"}));
            post_link(
                &shared,
                &pump,
                Sent::Batch,
                vec![ev],
                telemetry(&shared, "infusing", open),
            )
            .await;
        } else {
            post_link(
                &shared,
                &pump,
                Sent::Heartbeat,
                vec![],
                telemetry(&shared, "infusing", open),
            )
            .await;
        }
        if batch {
            next_batch += args.batch_every;
        } else {
            next_heartbeat += args.heartbeat_every;
        }
    }
    // Wait for this pump's alarm to be cleared, then say it paused.
    while pump.alarm_open.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    post_link(
        &shared,
        &pump,
        Sent::Heartbeat,
        vec![],
        telemetry(&shared, "paused", false),
    )
    .await;
}

/// Raise an alarm on `pump`, clear it `CLEAR_AFTER` later.
async fn alarm_on(shared: Arc<Shared>, pump: Arc<Pump>, id: u64) {
    let detail = format!("{}{id}", shared.tag);
    let raised = event(
        &pump,
        "alarm_raised",
        json!({"alarm": ALARM_NAME, "priority": "high", "detail": detail}),
    );
    post_link(
        &shared,
        &pump,
        Sent::Alarm(id),
        vec![raised],
        telemetry(&shared, "infusing", true),
    )
    .await;
    tokio::time::sleep(CLEAR_AFTER).await;
    let cleared = event(
        &pump,
        "alarm_cleared",
        json!({"alarm": ALARM_NAME, "resolution": "infusafe load"}),
    );
    post_link(
        &shared,
        &pump,
        Sent::Batch,
        vec![cleared],
        telemetry(&shared, "infusing", false),
    )
    .await;
    pump.alarm_open.store(false, Ordering::Relaxed);
}

/// Alarms at `rate` per second on random pumps with no alarm open, until `end`.
async fn injector(
    shared: Arc<Shared>,
    pumps: Arc<Vec<Arc<Pump>>>,
    rate: f64,
    end: tokio::time::Instant,
    mut rng: Rng,
) -> tokio::task::JoinSet<()> {
    let mut alarms = tokio::task::JoinSet::new();
    if rate <= 0.0 {
        return alarms;
    }
    let every = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::now();
    for id in 1u64.. {
        let at = start + every.mul_f64(id as f64);
        if at >= end {
            break;
        }
        tokio::time::sleep_until(at).await;
        let picked = (0..32).find_map(|_| {
            let p = &pumps[rng.below(pumps.len() as u64) as usize];
            p.alarm_open
                .compare_exchange(false, true, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
                .then(|| p.clone())
        });
        match picked {
            Some(pump) => {
                alarms.spawn(alarm_on(shared.clone(), pump, id));
            }
            None => shared.stats().skipped += 1,
        }
    }
    alarms
}

/// Watch the clinic's dashboard stream; `ready` is told once the stream answered. Ends at `stop`.
async fn watch_stream(
    shared: Arc<Shared>,
    session: Arc<Session>,
    watched: Option<(usize, String)>,
    ready: tokio::sync::oneshot::Sender<Result<(), String>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let base = watched
        .as_ref()
        .map_or(shared.base.as_str(), |(_, b)| b.as_str());
    let request = http::Request::get(format!("{base}/api/dashboard/stream"))
        .header("accept", "text/event-stream")
        .header("cookie", &session.cookie)
        .body(Full::new(Bytes::new()));
    let Ok(request) = request else {
        let _ = ready.send(Err("cannot build the stream request".into()));
        return;
    };
    let response = match tokio::time::timeout(REQUEST_TIMEOUT, shared.http.request(request)).await {
        Ok(Ok(r)) if r.status().is_success() => r,
        Ok(Ok(r)) => {
            let _ = ready.send(Err(format!(
                "the dashboard stream answered HTTP {}",
                r.status()
            )));
            return;
        }
        Ok(Err(e)) => {
            let _ = ready.send(Err(format!("the dashboard stream: {e}")));
            return;
        }
        Err(_) => {
            let _ = ready.send(Err("the dashboard stream did not answer".into()));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut body = response.into_body();
    let mut parser = SseParser::default();
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = stop.changed() => return,
        };
        let bytes = match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(b) => b,
                Err(_) => continue,
            },
            Some(Err(_)) | None => {
                shared.stats().error("stream_closed");
                return;
            }
        };
        let now = Instant::now();
        for (name, data) in parser.feed(&bytes) {
            match name.as_str() {
                "alarm" => {
                    let Ok(message) = serde_json::from_str::<Value>(&data) else {
                        shared.stats().error("stream_bad_message");
                        continue;
                    };
                    let Some(id) = injected_alarm_id(&message, &shared.tag) else {
                        continue;
                    };
                    let mut stats = shared.stats();
                    if let Some((i, _)) = &watched {
                        if let Some(seen) = stats.watch_seen.get_mut(*i) {
                            seen.insert(id);
                        }
                        continue;
                    }
                    if !stats.seen.insert(id) {
                        stats.seen_twice += 1;
                        continue;
                    }
                    if let Some(start) = stats.started.get(&id).copied() {
                        let us = u64::try_from(now.duration_since(start).as_micros())
                            .unwrap_or(u64::MAX);
                        stats.alarm_us.push(us);
                    }
                }
                "lagged" => shared.stats().lagged += 1,
                _ => {}
            }
        }
    }
}

struct RunArgs {
    heartbeat_every: Duration,
    start_within: Duration,
    batch_every: Duration,
    clear_first: bool,
}

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    errors: u64,
    missing: u64,
}

impl Report {
    /// No failed request and every alarm seen.
    pub fn clean(&self) -> bool {
        self.errors == 0 && self.missing == 0
    }
}

fn read_stat(pid: u32) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("--server-pid {pid}: cannot read /proc/{pid}/stat"))?;
    cpu_ticks(&text).with_context(|| format!("/proc/{pid}/stat is not understood"))
}

fn load_average() -> Option<Vec<f64>> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace()
        .take(3)
        .map(|v| v.parse().ok())
        .collect()
}

fn run(args: LoadArgs) -> anyhow::Result<Report> {
    let base = loopback_base_url(&args.server).map_err(anyhow::Error::msg)?;
    if !args.setup && args.setup_file.is_none() {
        bail!(
            "give --setup (create the pumps now) or --setup-file FILE (pumps of an earlier --setup)"
        );
    }
    let password = std::env::var(&args.password_env).with_context(|| {
        format!(
            "--password-env {}: that environment variable is not set",
            args.password_env
        )
    })?;
    for pid in &args.server_pid {
        read_stat(*pid)?;
    }
    if args.watch.len() > WATCH_MAX {
        bail!(
            "--watch at most {WATCH_MAX} streams, not {}",
            args.watch.len()
        );
    }
    for w in &args.watch {
        loopback_base_url(w).map_err(|e| anyhow::anyhow!("--watch: {e}"))?;
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(run_async(args, base, password))
}

async fn run_async(args: LoadArgs, base: String, password: String) -> anyhow::Result<Report> {
    let connections = usize::from(args.connections);
    let http = http_client(connections);
    let session = Arc::new(login(&http, &base, &args.admin, &password).await?);
    let seed = u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap_or(1);
    let tag = format!("infusafe load {seed:x} #");
    // Taken away before the first request: only a run that ends cleanly puts it back.
    let clean_mark = args.setup_file.as_deref().map(clean_mark_of);
    let ended_clean = match &clean_mark {
        Some(mark) => match std::fs::remove_file(mark) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", mark.display())),
        },
        None => false,
    };
    let ids = if args.setup {
        let made = create_pumps(
            &http,
            &base,
            session.clone(),
            args.pumps,
            &format!("{seed:x}"),
        )
        .await?;
        if let Some(path) = &args.setup_file {
            write_setup(path, &base, &made)?;
        }
        made
    } else {
        let path = args.setup_file.as_deref().context("--setup-file")?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let all = setup_from_json(&serde_json::from_str(&text).context("the setup file")?)?;
        if all.len() < args.pumps as usize {
            bail!(
                "{} holds {} pumps; --pumps {} needs as many (make them with --setup)",
                path.display(),
                all.len(),
                args.pumps
            );
        }
        all.into_iter().take(args.pumps as usize).collect()
    };

    let shared = Arc::new(Shared {
        http: http.clone(),
        base: base.clone(),
        permits: Semaphore::new(connections),
        stats: Mutex::new(Stats {
            watch_seen: vec![HashSet::new(); args.watch.len()],
            ..Stats::default()
        }),
        started: Instant::now(),
        tag,
    });
    let first_seq = u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap_or(1);
    let pumps: Arc<Vec<Arc<Pump>>> = Arc::new(
        ids.into_iter()
            .map(|id| {
                Arc::new(Pump {
                    id,
                    seq: AtomicU64::new(first_seq),
                    alarm_open: AtomicBool::new(false),
                })
            })
            .collect(),
    );

    // The nurse's screen first: alarms are only injected once the stream is open.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut watchers = vec![tokio::spawn(watch_stream(
        shared.clone(),
        session.clone(),
        None,
        ready_tx,
        stop_rx.clone(),
    ))];
    ready_rx
        .await
        .context("the stream watcher stopped")?
        .map_err(anyhow::Error::msg)?;
    for (i, w) in args.watch.iter().enumerate() {
        let base = loopback_base_url(w).map_err(anyhow::Error::msg)?;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        watchers.push(tokio::spawn(watch_stream(
            shared.clone(),
            session.clone(),
            Some((i, base)),
            ready_tx,
            stop_rx.clone(),
        )));
        ready_rx
            .await
            .context("the stream watcher stopped")?
            .map_err(|e| anyhow::anyhow!("--watch {w}: {e}"))?;
    }

    let cpu_before: Vec<u64> = args
        .server_pid
        .iter()
        .map(|pid| read_stat(*pid))
        .collect::<anyhow::Result<_>>()?;
    let wall_start = Instant::now();
    let end = tokio::time::Instant::now() + args.duration;
    let run_args = Arc::new(RunArgs {
        heartbeat_every: args.heartbeat_every,
        start_within: args.start_within.unwrap_or(args.heartbeat_every),
        batch_every: args.batch_every,
        clear_first: !args.setup && !ended_clean,
    });
    let mut rng = Rng::new(seed);
    let mut pump_tasks = tokio::task::JoinSet::new();
    for pump in pumps.iter() {
        pump_tasks.spawn(pump_loop(
            shared.clone(),
            pump.clone(),
            run_args.clone(),
            end,
            Rng::new(rng.next_u64()),
        ));
    }
    let injector_task = tokio::spawn(injector(
        shared.clone(),
        pumps.clone(),
        args.alarms_per_second,
        end,
        Rng::new(rng.next_u64()),
    ));

    let bar = if args.json || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(args.duration.as_secs().max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} s  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    };
    let ticker = {
        let (shared, bar) = (shared.clone(), bar.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let (requests, errors, sent, seen) = {
                    let s = shared.stats();
                    (s.requests(), s.error_count(), s.sent.len(), s.seen.len())
                };
                bar.set_position(wall_start.elapsed().as_secs());
                bar.set_message(format!(
                    "{requests} requests, {errors} errors, alarms {seen}/{sent} seen"
                ));
            }
        })
    };

    let mut alarm_tasks = injector_task.await.context("the alarm injector failed")?;
    while pump_tasks.join_next().await.is_some() {}
    while alarm_tasks.join_next().await.is_some() {}
    let wall = wall_start.elapsed();
    let mut cpu = Vec::with_capacity(cpu_before.len());
    for (pid, before) in args.server_pid.iter().zip(&cpu_before) {
        cpu.push(cpu_percent(*before, read_stat(*pid)?, wall));
    }
    // Alarms accepted but not seen yet get a little more time.
    let grace_end = Instant::now() + GRACE;
    while Instant::now() < grace_end {
        let waiting = {
            let s = shared.stats();
            s.sent
                .keys()
                .any(|id| !s.seen.contains(id) || s.watch_seen.iter().any(|w| !w.contains(id)))
        };
        if !waiting {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    for w in watchers {
        let _ = w.await;
    }
    ticker.abort();
    bar.finish_and_clear();

    let stats = std::mem::take(&mut *shared.stats());
    if let Some(mark) = &clean_mark
        && stats.error_count() == 0
    {
        std::fs::write(mark, "every alarm of the last run was cleared\n")
            .with_context(|| format!("cannot write {}", mark.display()))?;
    }
    Ok(report(&args, &base, stats, wall, cpu))
}

/// The mark a cleanly ended run leaves beside its setup file: `FILE.clean`.
fn clean_mark_of(setup_file: &std::path::Path) -> PathBuf {
    let mut name = setup_file.as_os_str().to_owned();
    name.push(".clean");
    PathBuf::from(name)
}

fn report(args: &LoadArgs, base: &str, stats: Stats, wall: Duration, cpu: Vec<f64>) -> Report {
    let watch_missing: Vec<usize> = stats
        .watch_seen
        .iter()
        .map(|seen| stats.sent.keys().filter(|id| !seen.contains(id)).count())
        .collect();
    let cpu_total: Option<f64> = (!cpu.is_empty()).then(|| cpu.iter().sum());
    let missing: Vec<u64> = {
        let mut m: Vec<u64> = stats
            .sent
            .keys()
            .filter(|id| !stats.seen.contains(id))
            .copied()
            .collect();
        m.sort_unstable();
        m
    };
    let seen_of_sent = stats
        .sent
        .keys()
        .filter(|id| stats.seen.contains(id))
        .count();
    let unexpected = stats
        .seen
        .iter()
        .filter(|id| !stats.sent.contains_key(id))
        .count();
    let post = Latency::of(stats.post_us.clone());
    let alarm = Latency::of(stats.alarm_us.clone());
    let errors = stats.error_count();
    let loadavg = load_average();
    let json = json!({
        "server": base,
        "pumps": args.pumps,
        "duration_s": args.duration.as_secs_f64(),
        "wall_s": wall.as_secs_f64(),
        "heartbeat_every_s": args.heartbeat_every.as_secs_f64(),
        "batch_every_s": args.batch_every.as_secs_f64(),
        "alarms_per_second": args.alarms_per_second,
        "connections": args.connections,
        "requests": {
            "total": stats.requests(),
            "heartbeats": stats.heartbeats,
            "batches": stats.batches,
            "alarm_batches": stats.alarm_batches,
        },
        "errors": {"total": errors, "by_kind": &stats.errors},
        "link_post_ms": post.json(),
        "alarm_to_stream_ms": alarm.json(),
        "alarms": {
            "sent": stats.sent.len(),
            "seen": seen_of_sent,
            "missing": missing.len(),
            "missing_ids": missing.iter().take(20).collect::<Vec<_>>(),
            "seen_unconfirmed": unexpected,
            "seen_twice": stats.seen_twice,
            "not_injected": stats.skipped,
            "stream_lagged": stats.lagged,
        },
        "watched": args.watch.iter().zip(&watch_missing).map(|(w, m)| json!({"server": w, "missing": m})).collect::<Vec<_>>(),
        "start_within_s": args.start_within.unwrap_or(args.heartbeat_every).as_secs_f64(),
        "server_cpu_percent": cpu_total,
        "server_cpu_percent_each": cpu,
        "load_average": loadavg,
    });
    if args.json {
        println!("{json}");
    } else {
        println!(
            "infusafe load: {} pumps for {:.0} s against {base} (heartbeat every {:?}, batch every {:?}, {} alarms/s, {} connections)",
            args.pumps,
            args.duration.as_secs_f64(),
            args.heartbeat_every,
            args.batch_every,
            args.alarms_per_second,
            args.connections
        );
        println!(
            "requests:        {} ({} heartbeats, {} batches, {} alarm batches) in {:.1} s",
            stats.requests(),
            stats.heartbeats,
            stats.batches,
            stats.alarm_batches,
            wall.as_secs_f64()
        );
        let kinds: Vec<String> = stats
            .errors
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!(
            "errors:          {errors}{}",
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            }
        );
        println!("link POST:       {}", post.text());
        println!("alarm to stream: {}", alarm.text());
        println!(
            "alarms:          {} sent, {} seen, {} missing{}{}",
            stats.sent.len(),
            seen_of_sent,
            missing.len(),
            if stats.skipped > 0 {
                format!(
                    ", {} not injected (every pump picked had one open)",
                    stats.skipped
                )
            } else {
                String::new()
            },
            if stats.lagged > 0 {
                format!(", the stream lagged {} times", stats.lagged)
            } else {
                String::new()
            }
        );
        for (w, m) in args.watch.iter().zip(&watch_missing) {
            println!("watched {w}: {m} alarms missing");
        }
        if let Some(total) = cpu_total {
            let each: Vec<String> = cpu.iter().map(|c| format!("{c:.1} %")).collect();
            println!(
                "server CPU:      {total:.1} % of one core over the run{}",
                if cpu.len() > 1 {
                    format!(" ({})", each.join(" + "))
                } else {
                    String::new()
                }
            );
        }
        if let Some(l) = &loadavg {
            println!("load average:    {l:?} at the end");
        }
    }
    Report {
        errors,
        missing: missing.len() as u64 + watch_missing.iter().sum::<usize>() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_servers_are_accepted() {
        assert_eq!(
            loopback_base_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            loopback_base_url("http://127.3.4.5:9/").unwrap(),
            "http://127.3.4.5:9"
        );
        assert_eq!(
            loopback_base_url("http://[::1]:8080").unwrap(),
            "http://[::1]:8080"
        );
        for (url, says) in [
            ("http://10.0.0.1:8080", "not a loopback address"),
            ("http://192.168.1.2:8080", "not a loopback address"),
            ("http://8.8.8.8", "not a loopback address"),
            ("http://[::ffff:127.0.0.1]:80", "not a loopback address"),
            ("http://[2001:db8::1]:80", "not a loopback address"),
            ("http://localhost:8080", "not a host name"),
            ("http://example.org", "not a host name"),
            ("https://127.0.0.1:8443", "use http://"),
            ("127.0.0.1:8080", "use http://"),
            ("http://user:pw@127.0.0.1:8080", "no user name"),
            ("not a url", "not a URL"),
        ] {
            let e = loopback_base_url(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn durations_and_their_bounds() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        for bad in ["", "s", "10x", "-1s", "ten"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_run_duration("1h").is_ok());
        assert!(parse_run_duration("61m").is_err());
        assert!(parse_run_duration("500ms").is_err());
        assert!(parse_interval("100ms").is_ok());
        assert!(parse_interval("50ms").is_err());
        assert!(parse_interval("2h").is_err());
        assert_eq!(parse_rate("3").unwrap(), 3.0);
        assert_eq!(parse_rate("0").unwrap(), 0.0);
        for bad in ["-1", "101", "NaN", "inf", "x"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pump_count_is_bounded() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            load: LoadArgs,
        }
        let base = [
            "x",
            "--server",
            "http://127.0.0.1:1",
            "--admin",
            "a",
            "--password-env",
            "P",
        ];
        let with = |extra: &[&str]| {
            Cli::try_parse_from(base.iter().chain(extra.iter()).copied()).map(|c| c.load)
        };
        assert_eq!(with(&["--pumps", "20000"]).unwrap().pumps, 20_000);
        assert!(with(&["--pumps", "20001"]).is_err());
        assert!(with(&["--pumps", "0"]).is_err());
        assert!(with(&["--duration", "2h"]).is_err());
        assert!(with(&["--connections", "0"]).is_err());
        let defaults = with(&[]).unwrap();
        assert_eq!(defaults.heartbeat_every, Duration::from_secs(10));
        assert_eq!(defaults.batch_every, Duration::from_secs(60));
        assert_eq!(defaults.alarms_per_second, 3.0);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1, 2, 3], 0.0), Some(1));
        let l = Latency::of(vec![3000, 1000, 2000, 10_000]);
        assert_eq!(l.count, 4);
        assert_eq!(l.p50_ms, 2.0);
        assert_eq!(l.p99_ms, 10.0);
        assert_eq!(l.max_ms, 10.0);
        assert_eq!(Latency::of(vec![]).count, 0);
    }

    #[test]
    fn cpu_time_from_proc_stat() {
        // A command name with a space and a parenthesis; utime 250, stime 50.
        let stat =
            "1234 (infu safe)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000 0 0";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("garbage"), None);
        assert_eq!(cpu_ticks("1 (x) S 1 2"), None);
        assert_eq!(cpu_percent(100, 150, Duration::from_secs(1)), 50.0);
        assert_eq!(cpu_percent(0, 200, Duration::from_secs(1)), 200.0);
        assert_eq!(cpu_percent(5, 5, Duration::ZERO), 0.0);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_ticks(&own).is_some());
    }

    #[test]
    fn server_sent_events_in_pieces() {
        let mut p = SseParser::default();
        assert!(p.feed(b"event: alarm\nda").is_empty());
        let out =
            p.feed(b"ta: {\"a\":1}\n\n:keep-alive\n\nevent: lagged\r\ndata: x\r\ndata: y\r\n\r\n");
        assert_eq!(
            out,
            vec![
                ("alarm".to_string(), "{\"a\":1}".to_string()),
                ("lagged".to_string(), "x\ny".to_string())
            ]
        );
        assert_eq!(
            p.feed(b"data: plain\n\n"),
            vec![("message".to_string(), "plain".to_string())]
        );
    }

    #[test]
    fn injected_alarms_are_told_apart() {
        let tag = "infusafe load 1f #";
        let m = json!({"kind": "alarm", "data": {"alarm": {}, "detail": {"alarm": ALARM_NAME, "detail": "infusafe load 1f #42"}}});
        assert_eq!(injected_alarm_id(&m, tag), Some(42));
        assert_eq!(injected_alarm_id(&m, "infusafe load 2e #"), None);
        let silent = json!({"data": {"detail": {"silent_for_ms": 60000}}});
        assert_eq!(injected_alarm_id(&silent, tag), None);
    }

    #[test]
    fn setup_files_round_trip() {
        let pumps = vec![PumpId {
            patient_id: "pat_1".into(),
            device_id: "dev_1".into(),
            token: "t".into(),
        }];
        let v = setup_to_json("http://127.0.0.1:1", &pumps);
        assert_eq!(setup_from_json(&v).unwrap(), pumps);
        assert!(setup_from_json(&json!({"pumps": [{"patient_id": "p"}]})).is_err());
        assert!(setup_from_json(&json!({})).is_err());
    }

    #[test]
    fn random_picks_stay_in_range() {
        let mut r = Rng::new(7);
        for _ in 0..1000 {
            assert!(r.below(10) < 10);
            assert!(r.within(Duration::from_secs(1)) < Duration::from_secs(1));
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}

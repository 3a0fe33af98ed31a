//! Test support: start the real server on port 0 with a fresh database (SQLite in a temporary directory, or
//! a fresh schema in the PostgreSQL named by INFUSAFE_TEST_POSTGRES_URL), seed clinics and people, and talk
//! to it over HTTP like a browser or a pump would (including server-sent event streams).

#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use server::Role;
use server::services::auth::NewUser;
use server::{Running, ServerConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database URL for one test; `None` when PostgreSQL is explicitly skipped.
pub async fn database_url(backend: Backend, dir: &std::path::Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite://{}/infusafe.db", dir.display())),
        Backend::Postgres => {
            let base = match std::env::var("INFUSAFE_TEST_POSTGRES_URL") {
                Ok(url) if !url.is_empty() => url,
                _ if std::env::var("INFUSAFE_SKIP_POSTGRES").as_deref() == Ok("1") => {
                    eprintln!(
                        "\n!!!!!!!! WARNING: INFUSAFE_SKIP_POSTGRES=1: the server is NOT being tested on PostgreSQL !!!!!!!!\n"
                    );
                    return None;
                }
                _ => panic!(
                    "INFUSAFE_TEST_POSTGRES_URL is not set: run `eval \"$(scripts/pg-start)\"` first \
                     (or set INFUSAFE_SKIP_POSTGRES=1 to skip the PostgreSQL backend explicitly)"
                ),
            };
            let schema = format!("srv_test_{}", server::ids::random_hex(6));
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&base)
                .await
                .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at INFUSAFE_TEST_POSTGRES_URL ({e}); run scripts/pg-start"));
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
                .execute(&pool)
                .await
                .expect("create schema");
            pool.close().await;
            let separator = if base.contains('?') { '&' } else { '?' };
            Some(format!("{base}{separator}options[search_path]={schema}"))
        }
    }
}

/// A running server plus everything a test needs to talk to it.
pub struct TestServer {
    pub running: Running,
    pub config: ServerConfig,
    pub url: String,
    pub http: Http,
    _dir: TempDir,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "infusafe-server-test-{}",
            server::ids::random_hex(8)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Test timing: the ladder runs in "minutes" of 100 ms, the watchdog after 600 ms of silence.
pub fn test_config(dir: &std::path::Path, database_url: String) -> ServerConfig {
    let mut c = ServerConfig::with_data_dir(dir);
    c.bind = "127.0.0.1:0".parse().unwrap();
    c.database_url = database_url;
    c.secure_cookies = false;
    c.tick = Duration::from_millis(50);
    c.escalation_minute = Duration::from_millis(100);
    c.pump_silent_after = Duration::from_millis(600);
    c.webhook_backoff_first = Duration::from_millis(50);
    c.webhook_attempts_max = 4;
    c.webhook_timeout = Duration::from_secs(2);
    c
}

impl TestServer {
    /// Start on a fresh database; `None` when the backend is explicitly skipped.
    pub async fn start(backend: Backend) -> Option<TestServer> {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Option<TestServer> {
        let dir = TempDir::new();
        let url = database_url(backend, &dir.0).await?;
        let mut config = test_config(&dir.0, url);
        tweak(&mut config);
        let running = server::start(config.clone()).await.expect("server starts");
        let url = running.url();
        Some(TestServer {
            running,
            config,
            url,
            http: Http::new(),
            _dir: dir,
        })
    }

    /// Stop and start again on the same database (a new port).
    pub async fn restart(self) -> TestServer {
        let TestServer {
            running,
            config,
            http,
            _dir,
            ..
        } = self;
        running.stop().await.expect("server stops");
        let running = server::start(config.clone())
            .await
            .expect("server restarts");
        let url = running.url();
        TestServer {
            running,
            config,
            url,
            http,
            _dir,
        }
    }

    pub fn state(&self) -> &server::AppState {
        &self.running.state
    }
}

/// People and patients of a seeded world: clinic A (admin, nurse, patients P1 and P2 with their accounts,
/// a caregiver of P1, pumps for both) and clinic B (a nurse and a patient), all with password `password-123`.
pub struct World {
    pub clinic_a: String,
    pub clinic_b: String,
    pub p1: String,
    pub p2: String,
    pub pb: String,
    pub pump1_token: String,
    pub pump1_id: String,
    pub pump2_token: String,
}

pub const PASSWORD: &str = "password-123";

/// A complete, valid therapy plan (the companion's example) with the given escalation minutes.
pub fn plan_json(patient_to_nurse_min: u32, nurse_to_on_call_min: u32) -> Value {
    let plan = care::TherapyPlan::from_toml(include_str!(
        "../../../../../examples/plans/antibiotics-picc.toml"
    ))
    .expect("the example plan is valid");
    let mut v: Value = serde_json::from_str(&plan.to_json()).unwrap();
    v["escalation"] = json!({"patient_to_nurse_min": patient_to_nurse_min, "nurse_to_on_call_min": nurse_to_on_call_min});
    v
}

pub async fn seed(state: &server::AppState) -> World {
    use server::services::directory as store;
    let clinic_a = store::create_clinic(state, "Clinic A").await.unwrap();
    let clinic_b = store::create_clinic(state, "Clinic B").await.unwrap();
    let p1 = store::create_patient(state, &clinic_a, "Pat One", None)
        .await
        .unwrap();
    let p2 = store::create_patient(state, &clinic_a, "Pat Two", None)
        .await
        .unwrap();
    let pb = store::create_patient(state, &clinic_b, "Pat Bee", None)
        .await
        .unwrap();
    let users = [
        ("admin", Role::Admin, &clinic_a, vec![]),
        ("nurse", Role::Nurse, &clinic_a, vec![]),
        ("patient1", Role::Patient, &clinic_a, vec![p1.clone()]),
        ("caregiver1", Role::Caregiver, &clinic_a, vec![p1.clone()]),
        ("patient2", Role::Patient, &clinic_a, vec![p2.clone()]),
        ("nurse_b", Role::Nurse, &clinic_b, vec![]),
        ("patient_b", Role::Patient, &clinic_b, vec![pb.clone()]),
    ];
    for (name, role, clinic, patients) in users {
        server::services::auth::create_user(
            state,
            &NewUser {
                username: name.into(),
                display_name: format!("{name} (test)"),
                password: PASSWORD.into(),
                role,
                clinic_id: clinic.clone(),
                patient_ids: patients,
            },
        )
        .await
        .unwrap();
    }
    let d1 = store::create_device(state, &p1, "Test pump 1", false, None)
        .await
        .unwrap();
    let d2 = store::create_device(state, &p2, "Test pump 2", false, None)
        .await
        .unwrap();
    World {
        clinic_a,
        clinic_b,
        p1,
        p2,
        pb,
        pump1_token: d1.token,
        pump1_id: d1.device_id,
        pump2_token: d2.token,
    }
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A signed-in (or anonymous) client.
#[derive(Clone, Debug, Default)]
pub struct Session {
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn request(
        &self,
        method: &str,
        url: &str,
        session: &Session,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut b = http::Request::builder().method(method).uri(url);
        if let Some(c) = &session.cookie {
            b = b.header("cookie", c);
        }
        if let Some(t) = &session.csrf {
            b = b.header("x-csrf-token", t);
        }
        let has_ct = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if body.is_some() && !has_ct {
            b = b.header("content-type", "application/json");
        }
        let req = b
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let res = tokio::time::timeout(Duration::from_secs(20), self.client.request(req))
            .await
            .expect("request timed out")
            .expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, url: &str, session: &Session) -> Reply {
        self.request("GET", url, session, &[], None).await
    }

    pub async fn post_json(&self, url: &str, session: &Session, body: &Value) -> Reply {
        self.request(
            "POST",
            url,
            session,
            &[],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn login(&self, base: &str, username: &str) -> Session {
        let r = self
            .post_json(
                &format!("{base}/api/session"),
                &Session::default(),
                &json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "login {username}: {}", r.text());
        let cookie = r
            .headers
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        Session {
            cookie: Some(cookie),
            csrf: r.json()["csrf_token"].as_str().map(str::to_string),
        }
    }

    /// Open a server-sent event stream; events arrive on the returned channel as (event name, data JSON).
    pub async fn sse(
        &self,
        url: &str,
        session: &Session,
    ) -> tokio::sync::mpsc::UnboundedReceiver<(String, Value)> {
        let mut b = http::Request::builder()
            .method("GET")
            .uri(url)
            .header("accept", "text/event-stream");
        if let Some(c) = &session.cookie {
            b = b.header("cookie", c);
        }
        let req = b.body(Full::new(Bytes::new())).unwrap();
        let res = self.client.request(req).await.expect("stream request");
        assert_eq!(res.status().as_u16(), 200, "stream {url}");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut body = res.into_body();
        tokio::spawn(async move {
            let mut buf = String::new();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.push_str(&String::from_utf8_lossy(&data));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let mut event = String::from("message");
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(e) = line.strip_prefix("event:") {
                            event = e.trim().to_string();
                        } else if let Some(d) = line.strip_prefix("data:") {
                            data.push_str(d.trim_start());
                        }
                    }
                    if data.is_empty() {
                        continue;
                    }
                    let value = serde_json::from_str(&data).unwrap_or(Value::String(data));
                    if tx.send((event, value)).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }
}

/// Wait for the first stream event matching `pred`, failing after `within`.
pub async fn expect_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
    within: Duration,
    what: &str,
    pred: impl Fn(&str, &Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some((name, data))) if pred(&name, &data) => return data,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream closed while waiting for {what}"),
            Err(_) => panic!("{what} did not arrive within {within:?}"),
        }
    }
}

/// Generate one `#[tokio::test]` per backend for an `async fn(Backend)` test body.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Backend::Postgres).await;
                }
            )*
        }
    };
}

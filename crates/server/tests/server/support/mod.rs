//! Test support, in the manner of zero2prod's `tests/api/helpers.rs` and crates.io's `RequestHelper`: start the
//! real server on port 0 with a fresh database (SQLite in a temporary directory, or a fresh schema in the
//! PostgreSQL named by INFUSAFE_TEST_POSTGRES_URL), seed a world of clinics, people and pumps as values, and talk
//! to it through typed helpers, one per endpoint (`api`), over HTTP and event streams (`client`), waiting on
//! events and conditions with deadlines, never on the clock alone (`wait`).

#![allow(dead_code)]

mod api;
mod client;
mod wait;

use std::time::Duration;

use serde_json::{Value, json};
use server::Role;
use server::services::auth::NewUser;
use server::{Running, ServerConfig};

pub use client::{Http, Reply, Session};
pub use wait::{EventStream, wait_until};

/// Run an `async fn(Backend)` test body as one `#[tokio::test]` per backend, in modules `sqlite` and `postgres`.
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
    // The tests' webhook receivers listen on 127.0.0.1 over plain HTTP.
    c.allow_loopback_webhooks = true;
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

impl TestServer {
    /// Start on a fresh database and seed the world; `None` when the backend is explicitly skipped.
    pub async fn seeded(backend: Backend) -> Option<(TestServer, World)> {
        let server = TestServer::start(backend).await?;
        let world = seed(server.state()).await;
        Some((server, world))
    }
}

/// The seeded people, as values: clinic A has an admin, a nurse, patients P1 and P2 with their own accounts and
/// a caregiver of P1; clinic B has a nurse and a patient. All sign in with `PASSWORD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum User {
    Admin,
    Nurse,
    Patient1,
    Caregiver1,
    Patient2,
    NurseB,
    PatientB,
}

impl User {
    pub const ALL: [User; 7] = [
        User::Admin,
        User::Nurse,
        User::Patient1,
        User::Caregiver1,
        User::Patient2,
        User::NurseB,
        User::PatientB,
    ];

    pub fn username(self) -> &'static str {
        match self {
            User::Admin => "admin",
            User::Nurse => "nurse",
            User::Patient1 => "patient1",
            User::Caregiver1 => "caregiver1",
            User::Patient2 => "patient2",
            User::NurseB => "nurse_b",
            User::PatientB => "patient_b",
        }
    }

    pub fn role(self) -> Role {
        match self {
            User::Admin => Role::Admin,
            User::Nurse | User::NurseB => Role::Nurse,
            User::Patient1 | User::Patient2 | User::PatientB => Role::Patient,
            User::Caregiver1 => Role::Caregiver,
        }
    }
}

/// Clinics, patients and pumps of a seeded world (the people are `User`s).
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

impl World {
    /// The clinic and the patients a seeded person belongs to.
    fn place_of(&self, user: User) -> (&str, Vec<String>) {
        match user {
            User::Admin | User::Nurse => (&self.clinic_a, vec![]),
            User::Patient1 | User::Caregiver1 => (&self.clinic_a, vec![self.p1.clone()]),
            User::Patient2 => (&self.clinic_a, vec![self.p2.clone()]),
            User::NurseB => (&self.clinic_b, vec![]),
            User::PatientB => (&self.clinic_b, vec![self.pb.clone()]),
        }
    }
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
    // The people first, then the pumps (the order the record has always had).
    let mut world = World {
        clinic_a,
        clinic_b,
        p1,
        p2,
        pb,
        pump1_token: String::new(),
        pump1_id: String::new(),
        pump2_token: String::new(),
    };
    for user in User::ALL {
        let (clinic, patients) = world.place_of(user);
        server::services::auth::create_user(
            state,
            &NewUser {
                username: user.username().into(),
                display_name: format!("{} (test)", user.username()),
                password: PASSWORD.into(),
                role: user.role(),
                clinic_id: clinic.into(),
                patient_ids: patients,
            },
        )
        .await
        .unwrap();
    }
    let d1 = store::create_device(state, &world.p1, "Test pump 1", false, None)
        .await
        .unwrap();
    let d2 = store::create_device(state, &world.p2, "Test pump 2", false, None)
        .await
        .unwrap();
    world.pump1_token = d1.token;
    world.pump1_id = d1.device_id;
    world.pump2_token = d2.token;
    world
}

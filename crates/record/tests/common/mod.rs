//! Test harness shared by the record's integration tests: a fresh store per test on either backend, and
//! builders for events.
#![allow(dead_code)]

use jiff::Timestamp;
use record::{Body, Config, NewEvent, PatientId, Source, Store};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A test database: the store plus what a test needs to reach behind its back (to tamper).
pub struct TestDb {
    pub store: Store,
    pub url: String,
    pub dir: Option<DirGuard>,
}

/// Removes a test's temporary directory when the test is done with it.
pub struct DirGuard(pub PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let now = Timestamp::now().as_nanosecond();
    format!("{}_{}_{}", std::process::id(), now, n)
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("infusafe-record-{label}-{}", unique_name()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub fn sqlite_config(dir: &std::path::Path) -> Config {
    Config::new(record::default_database_url(dir))
}

pub async fn sqlite() -> TestDb {
    let dir = temp_dir("sqlite");
    let config = sqlite_config(&dir);
    let url = config.database_url.clone();
    let store = Store::open(config).await.expect("open sqlite store");
    TestDb {
        store,
        url,
        dir: Some(DirGuard(dir)),
    }
}

/// The PostgreSQL server for tests, or `None` (after a loud warning) when skipping was asked for.
pub fn postgres_url() -> Option<String> {
    match std::env::var("INFUSAFE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("INFUSAFE_SKIP_POSTGRES").as_deref() == Ok("1") => {
            // Written to the stderr handle, not with eprintln!, so the test harness does not swallow it.
            use std::io::Write;
            let _ = std::io::stderr().write_all(
                b"\n!!!!!!!! WARNING: INFUSAFE_SKIP_POSTGRES=1: the PostgreSQL backend is NOT being tested !!!!!!!!\n",
            );
            None
        }
        _ => panic!(
            "INFUSAFE_TEST_POSTGRES_URL is not set: run `eval \"$(scripts/pg-start)\"` first \
             (or set INFUSAFE_SKIP_POSTGRES=1 to skip the PostgreSQL backend explicitly)"
        ),
    }
}

/// A fresh schema of its own, so tests run in parallel without seeing each other.
pub async fn postgres_schema_url(base: &str) -> String {
    let schema = format!("t_{}", unique_name());
    let admin = sqlx::PgPool::connect(base).await.unwrap_or_else(|e| {
        panic!("cannot reach PostgreSQL at INFUSAFE_TEST_POSTGRES_URL ({e}); run scripts/pg-start")
    });
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .expect("create test schema");
    admin.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options[search_path]={schema}")
}

pub async fn postgres() -> Option<TestDb> {
    let base = postgres_url()?;
    let url = postgres_schema_url(&base).await;
    let store = Store::open(Config::new(url.clone()))
        .await
        .expect("open postgres store");
    Some(TestDb {
        store,
        url,
        dir: None,
    })
}

/// Runs raw SQL behind the store's back, as an attacker or a broken tool would.
pub async fn raw_sql(db: &TestDb, sql: &str) {
    if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url)
            .await
            .expect("raw sqlite");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .expect("raw sql");
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.expect("raw postgres");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .expect("raw sql");
        pool.close().await;
    }
}

/// Drops the append-only triggers (as someone with raw database access could).
pub async fn drop_guards(db: &TestDb) {
    if db.url.starts_with("sqlite:") {
        raw_sql(
            db,
            "DROP TRIGGER record_events_no_update; DROP TRIGGER record_events_no_delete;",
        )
        .await;
    } else {
        raw_sql(db, "DROP TRIGGER record_events_no_change ON record_events;").await;
    }
}

pub fn patient(id: &str) -> PatientId {
    PatientId::new(id).expect("valid patient id")
}

pub fn at(text: &str) -> Timestamp {
    text.parse().expect("valid timestamp")
}

/// An event from device `device` with sequence number `seq` at `time`.
pub fn event(patient_id: &str, device: &str, seq: u64, time: Timestamp, body: Body) -> NewEvent {
    NewEvent {
        patient: patient(patient_id),
        device_id: device.to_string(),
        device_seq: seq,
        occurred_at: time,
        local_offset_s: 3600,
        source: Source::Pump,
        actor: device.to_string(),
        teaching: false,
        body,
    }
}

pub fn note(text: &str) -> Body {
    Body::Note {
        text: text.to_string(),
    }
}

/// Instantiates each generic test body once per backend: `mod sqlite { fn name() }` and
/// `mod postgres { fn name() }`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::sqlite().await;
                    super::$name(db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::common::postgres().await else { return };
                    super::$name(db).await;
                }
            )*
        }
    };
}

/// Like [`raw_sql`], but returns the database's refusal instead of panicking.
pub async fn try_raw_sql(db: &TestDb, sql: &str) -> Result<(), String> {
    let result = if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url)
            .await
            .expect("raw sqlite");
        let r = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await;
        pool.close().await;
        r.map(|_| ())
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.expect("raw postgres");
        let r = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await;
        pool.close().await;
        r.map(|_| ())
    };
    result.map_err(|e| e.to_string())
}

/// One body of every kind the typed view knows.
pub fn one_of_each_kind() -> Vec<Body> {
    use record::{EscalationPriority, EventId};
    vec![
        Body::PatientRegistered {
            display_name: "Alex Example".into(),
            birth_date: Some("1970-04-01".parse().unwrap()),
        },
        Body::DeviceAssigned {
            device_id: "pump-1".into(),
            model: "Infusafe HP-1".into(),
            serial: "SN-0001".into(),
        },
        Body::PlanChanged {
            summary: "antibiotic every 12 h".into(),
            plan_id: Some("plan-7".into()),
        },
        Body::ProgramAccepted {
            drug_id: Some("ceftriaxone".into()),
            rate_ml_per_h: 100.0,
            vtbi_ml: 250.0,
            bolus_ml: None,
        },
        Body::LimitOverrideConfirmed {
            field: "rate_ml_per_h".into(),
            value: 180.0,
            zone: "soft_high".into(),
            limit: 150.0,
        },
        Body::InfusionStarted {
            drug_id: Some("ceftriaxone".into()),
            rate_ml_per_h: 100.0,
            vtbi_ml: 250.0,
        },
        Body::InfusionPaused {},
        Body::InfusionResumed {},
        Body::InfusionStopped {
            delivered_ml: 12.5,
            reason: Some("operator".into()),
        },
        Body::InfusionCompleted {
            delivered_ml: 250.0,
        },
        Body::AlarmRaised {
            alarm: "occlusion_downstream".into(),
            priority: "high".into(),
            detail: Some("pressure 620 mmHg".into()),
        },
        Body::AlarmAcknowledged {
            alarm: "occlusion_downstream".into(),
        },
        Body::AlarmSilenced {
            alarm: "occlusion_downstream".into(),
            silenced_for_s: Some(120),
        },
        Body::AlarmCleared {
            alarm: "occlusion_downstream".into(),
            resolution: Some("unclamped the line".into()),
        },
        Body::AlarmEscalated {
            alarm: "occlusion_downstream".into(),
            unacknowledged_for_s: 300,
        },
        Body::BolusGiven { volume_ml: 2.0 },
        Body::BolusDenied {
            reason: "lockout".into(),
        },
        Body::Telemetry {
            state: "infusing".into(),
            rate_ml_per_h: 100.0,
            delivered_ml: 40.0,
            remaining_ml: 210.0,
            battery_percent: 81.5,
            mains_present: false,
            downstream_pressure_mmhg: 95.0,
        },
        Body::ChecklistCompleted {
            checklist: "before_infusion".into(),
            items: vec!["hands washed".into(), "line flushed".into()],
        },
        Body::SiteCheck {
            findings: vec!["redness".into()],
            note: Some("small, 1 cm".into()),
        },
        Body::SymptomCheck {
            symptoms: vec!["chills".into(), "fever".into()],
            triage: "call_nurse".into(),
            reasons: vec!["fever over 38 °C".into()],
        },
        Body::Feeling {
            rating: Some(3),
            text: Some("tired, \"ok\"".into()),
        },
        Body::Note {
            text: "bag looked cloudy, replaced it".into(),
        },
        Body::ReminderDone {
            reminder: "charge battery".into(),
        },
        Body::EscalationSent {
            escalation_id: "esc-1".into(),
            to: "home infusion nurse".into(),
            priority: EscalationPriority::Urgent,
            reason: "repeated occlusion alarms".into(),
        },
        Body::EscalationAnswered {
            escalation_id: "esc-1".into(),
            by: "nurse Kim".into(),
            response: "check the clamp; call back in 30 min".into(),
        },
        Body::HowIFelt {
            compared: "worse".into(),
            symptoms: vec!["chills".into(), "feeling_very_unwell".into()],
            text: Some("shivery after the dose".into()),
            infusion: Some(EventId(6)),
        },
        Body::SiteSeen {
            signs: vec!["new_redness_at_site".into()],
            text: Some("pink ring, 2 cm".into()),
            photo: Some(record::Photo {
                sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                media_type: "image/jpeg".into(),
                bytes: 48_213,
            }),
        },
        Body::QuestionAsked {
            text: "May I shower with the dressing on?".into(),
        },
        Body::QuestionAnswered {
            question: EventId(29),
            text: "Yes, with the shower cover we gave you.".into(),
        },
        Body::RecordRead {
            reader: "nurse Kim".into(),
            scope: "timeline".into(),
        },
        Body::Login {
            account: "kim".into(),
            success: true,
        },
        Body::Correction {
            supersedes: EventId(1),
            reason: "wrong patient".into(),
            corrected: None,
        },
    ]
}

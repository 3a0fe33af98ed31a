//! All of the server's own SQL: its tables (accounts, clinics, links, devices, sessions, plans, webhooks, PCD
//! attempts), their
//! versioned migrations, and one module of queries per area, each a function taking the database handle. On
//! SQLite or PostgreSQL through one `sqlx::Any` pool. The record keeps its own tables and its own migration table
//! in the same database; ours are versioned in `server_schema_version`. Nothing outside this module writes SQL
//! (`tests/server/layers.rs` checks).

pub mod accounts;
pub mod calendar;
pub mod cluster;
pub mod directory;
pub mod pcd;
pub mod photos;
pub mod plans;
pub mod webhooks;

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use crate::error::AppError;

/// Which database is behind the pool; only migrations differ between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The pool plus the backend it talks to.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "cannot open the database {url}: {source}; check the URL, that the server is running and that the credentials are right"
    )]
    Open { url: String, source: sqlx::Error },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "another infusafe process is using the SQLite database {path}; SQLite serves one process: stop the other one, or run several processes on PostgreSQL (--database-url postgres://…)"
    )]
    InUse { path: String },
    #[error("database migration {version} failed: {source}")]
    Migrate { version: i64, source: sqlx::Error },
    #[error(
        "the database has server schema version {found}, newer than this program knows ({known}); upgrade infusafe"
    )]
    TooNew { found: i64, known: i64 },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

struct Migration {
    version: i64,
    /// Statements common to both backends (types chosen to mean the same on both).
    statements: &'static [&'static str],
}

/// Append-only list: never edit a released migration, add a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        statements: &[
            "CREATE TABLE srv_clinics (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            webhook_url TEXT,
            webhook_secret TEXT NOT NULL,
            created_at_ms BIGINT NOT NULL
        )",
            "CREATE TABLE srv_users (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            role TEXT NOT NULL,
            clinic_id TEXT NOT NULL REFERENCES srv_clinics(id),
            password_hash TEXT NOT NULL,
            created_at_ms BIGINT NOT NULL
        )",
            "CREATE TABLE srv_patients (
            id TEXT PRIMARY KEY,
            clinic_id TEXT NOT NULL REFERENCES srv_clinics(id),
            display_name TEXT NOT NULL,
            created_at_ms BIGINT NOT NULL
        )",
            "CREATE TABLE srv_patient_links (
            user_id TEXT NOT NULL REFERENCES srv_users(id),
            patient_id TEXT NOT NULL REFERENCES srv_patients(id),
            PRIMARY KEY (user_id, patient_id)
        )",
            "CREATE TABLE srv_devices (
            id TEXT PRIMARY KEY,
            patient_id TEXT NOT NULL REFERENCES srv_patients(id),
            token_hash TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL,
            teaching BIGINT NOT NULL,
            created_at_ms BIGINT NOT NULL
        )",
            "CREATE TABLE srv_sessions (
            token_hash TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES srv_users(id),
            csrf_token TEXT NOT NULL,
            created_at_ms BIGINT NOT NULL,
            expires_at_ms BIGINT NOT NULL
        )",
            "CREATE TABLE srv_plans (
            patient_id TEXT PRIMARY KEY REFERENCES srv_patients(id),
            plan_json TEXT NOT NULL,
            version BIGINT NOT NULL,
            updated_at_ms BIGINT NOT NULL,
            updated_by TEXT NOT NULL
        )",
            "CREATE TABLE srv_webhook_attempts (
            id TEXT PRIMARY KEY,
            clinic_id TEXT NOT NULL REFERENCES srv_clinics(id),
            notification_id TEXT NOT NULL,
            attempt BIGINT NOT NULL,
            at_ms BIGINT NOT NULL,
            status_code BIGINT,
            error TEXT,
            delivered BIGINT NOT NULL
        )",
            "CREATE INDEX srv_webhook_attempts_notification ON srv_webhook_attempts (notification_id)",
            "CREATE INDEX srv_sessions_user ON srv_sessions (user_id)",
            "CREATE INDEX srv_devices_patient ON srv_devices (patient_id)",
        ],
    },
    Migration {
        version: 2,
        statements: &[
            // A revoked pump token is refused by the link from then on; the row stays for the record's sake.
            "ALTER TABLE srv_devices ADD COLUMN revoked_at_ms BIGINT",
        ],
    },
    // Issue 13, items 6 and 7: the patient's secret calendar addresses and the photos of the patient's log.
    Migration {
        version: 3,
        statements: &[
            // Only the SHA-256 of a calendar token is kept (like sessions and pump tokens). A revoked row stays,
            // so who made and who revoked an address can be shown; at most one row per patient is unrevoked.
            "CREATE TABLE srv_calendar_links (
            token_hash TEXT PRIMARY KEY,
            patient_id TEXT NOT NULL REFERENCES srv_patients(id),
            created_by TEXT NOT NULL,
            created_at_ms BIGINT NOT NULL,
            revoked_at_ms BIGINT,
            revoked_by TEXT,
            last_fetched_at_ms BIGINT
        )",
            "CREATE INDEX srv_calendar_links_patient ON srv_calendar_links (patient_id)",
            // A photo of the access site, kept beside the record: the `site_seen` event names it by its SHA-256,
            // so the hash chain pins the exact bytes. Base64 text, the one type both backends store alike.
            "CREATE TABLE srv_log_photos (
            patient_id TEXT NOT NULL REFERENCES srv_patients(id),
            sha256 TEXT NOT NULL,
            media_type TEXT NOT NULL,
            data_base64 TEXT NOT NULL,
            created_at_ms BIGINT NOT NULL,
            PRIMARY KEY (patient_id, sha256)
        )",
        ],
    },
    // Issue 16: IHE PCD, in its own step.
    Migration {
        version: 4,
        statements: &[
            // IHE PCD (HL7 v2 over MLLP): the id a pump's gateway sends in MSH-3.2 (an EUI-64, say), set by the
            // clinic admin; one device per id. And every attempt to send an alarm report out (ORU^R40).
            "ALTER TABLE srv_devices ADD COLUMN pcd_device_id TEXT",
            "CREATE UNIQUE INDEX srv_devices_pcd_device_id ON srv_devices (pcd_device_id)",
            "CREATE TABLE srv_pcd_attempts (
            id TEXT PRIMARY KEY,
            control_id TEXT NOT NULL,
            patient_id TEXT NOT NULL REFERENCES srv_patients(id),
            alarm TEXT NOT NULL,
            phase TEXT NOT NULL,
            target TEXT NOT NULL,
            attempt BIGINT NOT NULL,
            at_ms BIGINT NOT NULL,
            ack_code TEXT,
            error TEXT,
            delivered BIGINT NOT NULL
        )",
            "CREATE INDEX srv_pcd_attempts_control ON srv_pcd_attempts (control_id)",
        ],
    },
    // Issue 15: several processes on one PostgreSQL.
    Migration {
        version: 5,
        statements: &[
            // Each start of each process: its number keeps the server's own event numbers apart.
            "CREATE TABLE srv_instances (
            id BIGINT PRIMARY KEY,
            started_at_ms BIGINT NOT NULL,
            pid BIGINT NOT NULL
        )",
            // Every pump's last contact and telemetry, written in groups (one transaction for many pumps) and
            // read by every process: the shared half of the live board.
            "CREATE TABLE srv_pump_contacts (
            device_id TEXT PRIMARY KEY,
            patient_id TEXT NOT NULL,
            teaching BIGINT NOT NULL,
            last_contact_ms BIGINT NOT NULL,
            telemetry TEXT,
            written_at_ms BIGINT NOT NULL
        )",
            "CREATE INDEX srv_pump_contacts_written ON srv_pump_contacts (written_at_ms)",
            // Webhook notifications waiting to be delivered: any process delivers a due one under a lease, so a
            // process that dies mid-retry hands its deliveries to the others when the lease runs out.
            "CREATE TABLE srv_webhook_outbox (
            id TEXT PRIMARY KEY,
            clinic_id TEXT NOT NULL,
            patient_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at_ms BIGINT NOT NULL,
            attempts BIGINT NOT NULL,
            next_at_ms BIGINT NOT NULL,
            lease_until_ms BIGINT NOT NULL,
            done_at_ms BIGINT
        )",
            "CREATE INDEX srv_webhook_outbox_due ON srv_webhook_outbox (done_at_ms, next_at_ms)",
        ],
    },
    Migration {
        version: 6,
        statements: &[
            // The record event id below which every recorded escalation has its notification in the outbox
            // (`services::webhook::sweep`): a process that recorded a rung and died before queuing it is
            // caught up by whichever process runs the duties.
            "CREATE TABLE srv_webhook_sweep (
            name TEXT PRIMARY KEY,
            after_event_id BIGINT NOT NULL
        )",
        ],
    },
    Migration {
        version: 7,
        statements: &[
            // Which process start (`srv_instances`) wrote a pump's contact last: each process's follower reads
            // only the contacts the others wrote (its own are on its board already), half the reading with two
            // processes. 0: written before this column.
            "ALTER TABLE srv_pump_contacts ADD COLUMN written_by BIGINT NOT NULL DEFAULT 0",
        ],
    },
];

/// PostgreSQL advisory lock (transaction-level) that serializes the server's migrations when several
/// processes start at once.
const MIGRATION_LOCK_KEY: i64 = 0x1f05_a1a2_0001;

impl Db {
    /// Open (creating the SQLite file and its directory if needed) and migrate.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut connect_url = url.to_string();
        if backend == Backend::Sqlite {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or("");
            if let Some(parent) = std::path::Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|source| DbError::DataDir {
                    path: parent.display().to_string(),
                    source,
                })?;
            }
            if !path.is_empty() && !path.starts_with(':') && !url.contains("mode=memory") {
                cluster::lock_sqlite_file(std::path::Path::new(path))?;
            }
            if !connect_url.contains('?') {
                connect_url.push_str("?mode=rwc");
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 10 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(|source| DbError::Open {
                url: crate::config::redact_url(url),
                source,
            })?;
        if backend == Backend::Sqlite {
            // WAL lets the record's writer and our readers work at once; set once per database file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .fetch_optional(&pool)
                .await?;
        }
        let db = Db { pool, backend };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // Two processes creating the table at once would collide in PostgreSQL's catalogue.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS server_schema_version (version BIGINT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let current: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM server_schema_version")
                .fetch_one(&self.pool)
                .await?
                .try_get("v")?;
        let known = MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
        if current > known {
            return Err(DbError::TooNew {
                found: current,
                known,
            });
        }
        for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
            let mut tx = self.pool.begin().await?;
            if self.backend == Backend::Postgres {
                // Another process starting at the same moment waits here, then finds the step done.
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK_KEY)
                    .execute(&mut *tx)
                    .await?;
                let done: i64 = sqlx::query(
                    "SELECT COUNT(*) AS n FROM server_schema_version WHERE version = $1",
                )
                .bind(migration.version)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
                if done > 0 {
                    continue;
                }
            }
            for statement in migration.statements {
                sqlx::query(*statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| DbError::Migrate {
                        version: migration.version,
                        source,
                    })?;
            }
            sqlx::query(
                "INSERT INTO server_schema_version (version, applied_at_ms) VALUES ($1, $2)",
            )
            .bind(migration.version)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(|source| DbError::Migrate {
                version: migration.version,
                source,
            })?;
            tx.commit().await?;
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> AppError {
        if record::database_unavailable(&e) {
            // A temporary condition the caller can retry, not a bug.
            eprintln!("infusafe server: database unavailable: {e}");
            return AppError::Unavailable(
                "the database is not answering right now; try again in a moment".into(),
            );
        }
        AppError::Internal(format!("database: {e}"))
    }
}

/// Whether the database answers a trivial query.
pub async fn ping(db: &Db) -> bool {
    sqlx::query("SELECT 1").execute(&db.pool).await.is_ok()
}

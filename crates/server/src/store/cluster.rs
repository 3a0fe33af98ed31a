//! What several server processes on one PostgreSQL share beyond the record: each start's instance number (so
//! no two processes number their events alike), every pump's last contact and telemetry (written in groups by
//! `services::telemetry`, read by every process's follower and by the silence watchdog), and the lock that
//! gives the timed duties to exactly one process at a time. On SQLite there is one process (the file is locked
//! against a second, `lock_sqlite_file`), and the same tables simply have one reader.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sqlx::{Connection, Row};

use super::{Backend, Db, DbError};

/// The PostgreSQL advisory lock (session-level) that the process running the timed duties holds: one per
/// database and schema (advisory locks are database-wide, and one database may hold several installations in
/// their own schemas). A process that dies loses its connection, and PostgreSQL releases the lock at once.
const DUTY_LOCK_SQL: &str = "SELECT pg_try_advisory_lock(hashtextextended('infusafe duties ' || current_database() || '.' || current_schema(), 0))";

/// Contacts written in one statement at most (`CONTACT_COLUMNS` binds each).
const CONTACT_ROWS_PER_INSERT: usize = 500;
/// The columns `write_contacts` binds for each contact.
const CONTACT_COLUMNS: usize = 7;

/// Register this start of this process; its number (1, 2, …) is unique in this database.
pub async fn register_instance(db: &Db) -> Result<u64, DbError> {
    let pid = i64::from(std::process::id());
    let mut last = None;
    for _ in 0..8 {
        // Two processes starting together may draw the same number: the primary key refuses the second,
        // which draws again.
        let result = sqlx::query(
            "INSERT INTO srv_instances (id, started_at_ms, pid) SELECT COALESCE(MAX(id), 0) + 1, $1, $2 FROM srv_instances RETURNING id",
        )
        .bind(super::now_ms())
        .bind(pid)
        .fetch_one(&db.pool)
        .await;
        match result {
            Ok(row) => {
                let id: i64 = row.try_get("id")?;
                return Ok(u64::try_from(id).unwrap_or(0));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(DbError::Query(last.unwrap_or(sqlx::Error::RowNotFound)))
}

/// A pump's last contact as every process sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub device_id: String,
    pub patient_id: String,
    pub teaching: bool,
    /// The server's time of the pump's last batch or heartbeat.
    pub at_ms: i64,
    /// Its last telemetry, as JSON (`link::Telemetry`).
    pub telemetry: Option<String>,
}

/// The database's own clock, in milliseconds since the epoch: the one clock every process agrees on, so the
/// contacts' `written_at_ms` (which decides what another process reads next) never depends on how far one
/// host's clock is from another's. On SQLite (one process) the process's own clock.
pub async fn database_now_ms(db: &Db) -> Result<i64, DbError> {
    match db.backend {
        Backend::Sqlite => Ok(jiff::Timestamp::now().as_millisecond()),
        Backend::Postgres => Ok(sqlx::query_scalar::<_, i64>(
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        )
        .fetch_one(&db.pool)
        .await?),
    }
}

/// Write many pumps' last contacts in one transaction; an older contact never overwrites a newer one.
/// `written_at_ms` is the database's clock ([`database_now_ms`]), which readers compare with their own reading
/// of it.
pub async fn write_contacts(
    db: &Db,
    contacts: &[Contact],
    written_at_ms: i64,
    written_by: u64,
) -> Result<(), DbError> {
    if contacts.is_empty() {
        return Ok(());
    }
    let mut tx = db.pool.begin().await?;
    for chunk in contacts.chunks(CONTACT_ROWS_PER_INSERT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let binds: Vec<String> = (1..=CONTACT_COLUMNS)
                    .map(|k| format!("${}", i * CONTACT_COLUMNS + k))
                    .collect();
                format!("({})", binds.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO srv_pump_contacts (device_id, patient_id, teaching, last_contact_ms, telemetry, written_at_ms, written_by) VALUES {} \
             ON CONFLICT (device_id) DO UPDATE SET patient_id = excluded.patient_id, teaching = excluded.teaching, \
             last_contact_ms = excluded.last_contact_ms, telemetry = COALESCE(excluded.telemetry, srv_pump_contacts.telemetry), \
             written_at_ms = excluded.written_at_ms, written_by = excluded.written_by WHERE excluded.last_contact_ms >= srv_pump_contacts.last_contact_ms",
            rows.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in chunk {
            q = q
                .bind(c.device_id.clone())
                .bind(c.patient_id.clone())
                .bind(i64::from(c.teaching))
                .bind(c.at_ms)
                .bind(c.telemetry.clone())
                .bind(written_at_ms)
                .bind(written_by as i64);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The contacts written at or after `since_ms`, oldest contact first: by any process, or, with `not_by`, last
/// written by another process than that one (what a follower does not know yet).
pub async fn contacts_written_since(
    db: &Db,
    since_ms: i64,
    not_by: Option<u64>,
) -> Result<Vec<Contact>, DbError> {
    // No process start is numbered -1.
    let not_by = not_by.map_or(-1, |i| i as i64);
    let rows = sqlx::query(
        "SELECT device_id, patient_id, teaching, last_contact_ms, telemetry FROM srv_pump_contacts WHERE written_at_ms >= $1 AND written_by <> $2 ORDER BY last_contact_ms",
    )
    .bind(since_ms)
    .bind(not_by)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Contact {
                device_id: r.try_get("device_id")?,
                patient_id: r.try_get("patient_id")?,
                teaching: r.try_get::<i64, _>("teaching")? != 0,
                at_ms: r.try_get("last_contact_ms")?,
                telemetry: r.try_get("telemetry")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(DbError::from)
}

/// The lock that makes one process at a time run the timed duties. On PostgreSQL a session advisory lock on a
/// connection of its own (not the pool's), checked before every round of duties; on SQLite always held (the
/// database file admits one process).
///
/// A holder whose connection goes quiet (a network cut, a frozen host) must not keep the duties: its check
/// answers within `DUTY_CHECK_TIMEOUT` or the holder gives them up, and the connection asks PostgreSQL to probe
/// it (TCP keepalive every `DUTY_KEEPALIVE_S`, and `tcp_user_timeout`), so the server ends a session whose peer
/// is gone and frees the lock for another process within about `DUTY_KEEPALIVE_S` × 4, not after the operating
/// system's two hours (on TCP; a Unix socket has no network to lose).
pub struct DutyLock {
    url: String,
    backend: Backend,
    conn: Option<sqlx::PgConnection>,
    /// Why the last attempt to connect failed (said once in the log until it changes).
    unreachable: Option<String>,
}

/// How long a duty-lock check (connect, take, keep) may take before the duties are given up.
pub const DUTY_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// PostgreSQL's keepalive probes on the duty connection: idle this many seconds, then a probe every this many
/// seconds, 3 unanswered probes end the session (and release the lock).
pub const DUTY_KEEPALIVE_S: u32 = 5;

impl DutyLock {
    pub fn new(db: &Db, url: &str) -> DutyLock {
        DutyLock {
            url: url.to_string(),
            backend: db.backend,
            conn: None,
            unreachable: None,
        }
    }

    /// Whether this process holds the duties now: keeps the lock if it still has it (its connection answers in
    /// time), takes it if it is free. A lost or silent connection loses the lock, and PostgreSQL gives it to
    /// another process.
    pub async fn hold(&mut self) -> bool {
        if self.backend == Backend::Sqlite {
            return true;
        }
        if let Some(conn) = self.conn.as_mut() {
            let check = sqlx::query("SELECT 1").execute(&mut *conn);
            if matches!(
                tokio::time::timeout(DUTY_CHECK_TIMEOUT, check).await,
                Ok(Ok(_))
            ) {
                return true;
            }
            // Dropped without a goodbye: the connection may be the one that is stuck.
            self.conn = None;
        }
        match tokio::time::timeout(DUTY_CHECK_TIMEOUT, self.take()).await {
            Ok(Some(conn)) => {
                self.conn = Some(conn);
                true
            }
            _ => false,
        }
    }

    /// A new duty connection holding the lock, or `None` if another process has it (or PostgreSQL could not be
    /// reached: said once in the log, until it can be again).
    async fn take(&mut self) -> Option<sqlx::PgConnection> {
        let mut conn = match sqlx::PgConnection::connect(&self.url).await {
            Ok(c) => {
                if self.unreachable.take().is_some() {
                    eprintln!("infusafe server: the duty connection to PostgreSQL works again");
                }
                c
            }
            Err(e) => {
                let said = e.to_string();
                if self.unreachable.as_deref() != Some(said.as_str()) {
                    eprintln!(
                        "infusafe server: cannot open the duty connection to PostgreSQL ({said}); this process \
                         does not run the timed duties until it can"
                    );
                    self.unreachable = Some(said);
                }
                return None;
            }
        };
        // Set after connecting rather than as startup options, which a connection pooler may refuse. On a Unix
        // socket PostgreSQL ignores them (no network to lose). `tcp_user_timeout` also covers data sent and
        // never acknowledged, when keepalive probes do not run.
        let keepalive = DUTY_KEEPALIVE_S;
        for setting in [
            format!("SET tcp_keepalives_idle = {keepalive}"),
            format!("SET tcp_keepalives_interval = {keepalive}"),
            "SET tcp_keepalives_count = 3".to_string(),
            format!("SET tcp_user_timeout = {}", keepalive * 4 * 1000),
        ] {
            let _ = sqlx::query(sqlx::AssertSqlSafe(setting))
                .execute(&mut conn)
                .await;
        }
        let taken: Result<bool, _> = sqlx::query_scalar(DUTY_LOCK_SQL).fetch_one(&mut conn).await;
        if taken.unwrap_or(false) {
            Some(conn)
        } else {
            let _ = conn.close().await;
            None
        }
    }

    /// Whether this process's duty connection has the keepalive settings (for tests: what the server applied).
    pub async fn keepalive_idle_s(&mut self) -> Option<String> {
        let conn = self.conn.as_mut()?;
        sqlx::query_scalar::<_, String>("SHOW tcp_keepalives_idle")
            .fetch_one(&mut *conn)
            .await
            .ok()
    }
}

/// SQLite files this process has locked (kept for the life of the process: a second open of the same file by
/// this process is fine, another process is refused).
static SQLITE_LOCKS: Mutex<Option<HashMap<PathBuf, std::fs::File>>> = Mutex::new(None);

/// Lock `<database>.lock` beside an SQLite database for this process, or say that another process has it.
pub fn lock_sqlite_file(database: &Path) -> Result<(), DbError> {
    let lock_path = PathBuf::from(format!("{}.lock", database.display()));
    let key = std::fs::canonicalize(database.parent().unwrap_or(Path::new(".")))
        .unwrap_or_default()
        .join(lock_path.file_name().unwrap_or_default());
    let mut locks = SQLITE_LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    let locks = locks.get_or_insert_with(HashMap::new);
    if locks.contains_key(&key) {
        return Ok(());
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| DbError::DataDir {
            path: lock_path.display().to_string(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => {
            locks.insert(key, file);
            Ok(())
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(DbError::InUse {
            path: database.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(DbError::DataDir {
            path: lock_path.display().to_string(),
            source,
        }),
    }
}

/// The record's notifications (`record::APPEND_CHANNEL`: a patient's chain grew), on a connection of its own.
pub struct RecordListener {
    inner: sqlx::postgres::PgListener,
}

impl RecordListener {
    pub async fn connect(url: &str) -> Result<RecordListener, DbError> {
        let mut inner = sqlx::postgres::PgListener::connect(url).await?;
        inner.listen(record::APPEND_CHANNEL).await?;
        Ok(RecordListener { inner })
    }

    /// The next patient whose chain grew.
    pub async fn recv(&mut self) -> Result<String, DbError> {
        Ok(self.inner.recv().await?.payload().to_string())
    }

    /// Take every notification already received, without waiting (how many there were).
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.inner.next_buffered().is_some() {
            n += 1;
        }
        n
    }
}

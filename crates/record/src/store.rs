//! The storage interface: one `Store` over two backends (SQLite embedded, PostgreSQL at scale).
//!
//! Both backends run the same SQL text (placeholders `$1…` work on both) through the `on_pool!` macro,
//! which expands one body once per concrete pool type, so the two cannot drift apart. Where the backends
//! truly differ (taking the write lock, drawing ids) the body branches on [`Backend`].

use crate::append::{
    AppendSql, Heads, chain_patients, fresh_patients, key_lookups, link_fresh, prepare_batch,
    receipts, split_batch,
};
use crate::chain::{GENESIS_HASH, Link};
use crate::checkpoint::{ChainNow, Checkpoint, CheckpointKey, CheckpointReport, judge};
use crate::error::{ACQUIRE_EXTRA_MS, RecordError, classify};
use crate::event::{EventId, Kind, NewEvent, PatientId, PreparedEvent, Source, StoredEvent};
use crate::restate;
use crate::schema::{
    GUARD_NAMES_POSTGRES, GUARD_NAMES_SQLITE, GUARDS_POSTGRES, GUARDS_SQLITE, MIGRATIONS,
    VERSION_TABLE_POSTGRES, VERSION_TABLE_SQLITE, latest_version,
};
use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row};
use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Rows per multi-row INSERT: 15 binds each stays far below both backends' parameter limits.
pub(crate) const INSERT_ROWS_MAX: usize = 500;
/// Events per page when `verify` walks a chain, to bound memory on long chains.
const VERIFY_PAGE_ROWS: i64 = 5_000;
/// Ids one read may list besides its lower bound (well under both backends' limits on bound parameters).
pub const IDS_LISTED_MAX: usize = 4_096;
/// Events in one append call: a batch is one transaction and must stay bounded.
pub const BATCH_EVENTS_MAX: usize = 100_000;
/// The PostgreSQL notification channel an append notifies on commit, once per patient whose chain grew; the
/// payload is the patient id. Server processes sharing one database listen on it (and catch up from the record
/// after a missed notification).
pub const APPEND_CHANNEL: &str = "record_events";

/// Device sequence numbers from here up (to `i64::MAX`) name a decision rather than a device's own count: a
/// rung of an escalation, an alarm the server raised. Several server processes may reach the same decision at
/// once; the first one recorded wins, and a later event with the same `(device_id, device_seq)` is reported as a
/// duplicate whatever its content (its time and wording differ, the decision is the same).
pub const CLAIM_SEQ_BASE: u64 = 3 << 61;

/// PostgreSQL advisory lock key that serializes migrations across app servers.
const MIGRATION_LOCK_KEY: i64 = 0x1f05_afe0_0000_0001;

macro_rules! columns {
    () => {
        "id, patient_id, chain_seq, device_id, device_seq, occurred_at_us, local_offset_s, \
         recorded_at_us, source, actor, teaching, kind, payload, prev_hash, hash"
    };
}
pub(crate) use columns;

/// The columns of `columns!()` joined by `char(31)`, for the packed SQLite timeline.
macro_rules! packed_columns {
    () => {
        "id || char(31) || patient_id || char(31) || chain_seq || char(31) || device_id || char(31) || \
         device_seq || char(31) || occurred_at_us || char(31) || local_offset_s || char(31) || \
         recorded_at_us || char(31) || source || char(31) || actor || char(31) || teaching || char(31) || \
         kind || char(31) || payload || char(31) || prev_hash || char(31) || hash"
    };
}

/// Runs one body against whichever pool the store holds; the body is compiled once per backend.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// A write transaction on `pool` (inside [`on_pool!`]): on SQLite `BEGIN IMMEDIATE`, which takes the write lock
/// up front so a transaction that reads first never fails half-way to upgrade its lock; on PostgreSQL a plain
/// one (its writers lock what they need).
macro_rules! begin_write {
    ($store:expr, $pool:ident) => {
        match $store.backend() {
            $crate::store::Backend::Sqlite => $pool.begin_with("BEGIN IMMEDIATE").await,
            $crate::store::Backend::Postgres => $pool.begin().await,
        }
        .map_err(|e| $store.err(e))
    };
}
pub(crate) use begin_write;

/// The default database URL for a data directory: `sqlite://<data-dir>/infusafe.db`.
pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("infusafe.db").display())
}

/// Which database a store writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`; see [`default_database_url`].
    pub database_url: String,
    /// How long a writer waits for another writer's lock before failing with `Locked`.
    pub busy_timeout_ms: u64,
    /// Connections in the pool.
    pub max_connections: u32,
    /// SQLite only: caps the database at this many pages (4 KiB each), so a full disk can be rehearsed
    /// and a device's storage bounded. `None` is SQLite's own (huge) limit.
    pub sqlite_max_page_count: Option<u64>,
    /// Refuse to open a database whose append-only triggers are missing or disabled
    /// ([`RecordError::GuardMissing`]). On by default; `infusafe record verify` turns it off to inspect
    /// such a database and reports the missing triggers ([`Store::missing_guards`]) instead.
    pub require_append_only_guards: bool,
}

impl Config {
    pub fn new(database_url: impl Into<String>) -> Config {
        Config {
            database_url: database_url.into(),
            busy_timeout_ms: 5_000,
            max_connections: 4,
            sqlite_max_page_count: None,
            require_append_only_guards: true,
        }
    }
}

pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The infusion record. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Store {
    pub(crate) pool: Pool,
    config: Config,
}

/// What an append did with one event of the batch, in batch order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: EventId,
    /// True when the event was already recorded (same device and sequence number, same content): the
    /// original id is returned and nothing new was written.
    pub duplicate: bool,
    /// True when the event restates the pump's last recorded state report (`restate.rs`): `id` is that
    /// report's, and the event is counted in `record_restatements` instead of being written to the chain.
    pub restated: bool,
}

/// The end of one patient's chain, worth writing down elsewhere: with it, even deleting the newest
/// events is detectable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChainHead {
    pub patient: PatientId,
    pub events: i64,
    pub last_id: EventId,
    pub hash: String,
}

/// The first broken link of one patient's chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrokenLink {
    pub patient: PatientId,
    pub event_id: EventId,
    pub chain_seq: i64,
    /// What is wrong: `hash` (the row was altered), `prev_hash` (a row before it was removed or
    /// replaced) or `chain_seq` (a gap: rows removed).
    pub problem: &'static str,
    pub expected: String,
    pub found: String,
}

/// The result of walking every chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub events_checked: u64,
    pub heads: Vec<ChainHead>,
    /// At most one entry per patient: the first broken link of that chain. Empty means intact.
    pub broken: Vec<BrokenLink>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.broken.is_empty()
    }
}

/// What a timeline query asks for. `from` is inclusive, `to` exclusive; `kinds` empty means all kinds.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineQuery {
    pub patient: PatientId,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub kinds: Vec<String>,
    pub limit: Option<u32>,
}

impl TimelineQuery {
    /// Every event of a patient, oldest first.
    pub fn all(patient: PatientId) -> TimelineQuery {
        TimelineQuery {
            patient,
            from: None,
            to: None,
            kinds: Vec::new(),
            limit: None,
        }
    }
}

/// The state of a walk along one chain: what the next event must be. Pure: [`ChainWalk::step`] judges
/// one event; the store only feeds it pages.
#[derive(Debug)]
struct ChainWalk {
    patient: PatientId,
    checked: u64,
    expected_seq: i64,
    prev_hash: String,
    last_id: EventId,
    broken: Option<BrokenLink>,
}

impl ChainWalk {
    fn new(patient: PatientId) -> ChainWalk {
        ChainWalk {
            patient,
            checked: 0,
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_string(),
            last_id: EventId(0),
            broken: None,
        }
    }

    /// Checks the next event of the chain; false (and the broken link kept) when it does not follow.
    fn step(&mut self, event: &StoredEvent) -> bool {
        self.checked += 1;
        let link = |problem, expected: String, found: String| BrokenLink {
            patient: self.patient.clone(),
            event_id: event.id,
            chain_seq: event.chain_seq,
            problem,
            expected,
            found,
        };
        let broken = if event.chain_seq != self.expected_seq {
            Some(link(
                "chain_seq",
                self.expected_seq.to_string(),
                event.chain_seq.to_string(),
            ))
        } else if event.prev_hash != self.prev_hash {
            Some(link(
                "prev_hash",
                self.prev_hash.clone(),
                event.prev_hash.clone(),
            ))
        } else {
            let recomputed = link_of(event).hash();
            (recomputed != event.hash).then(|| link("hash", recomputed, event.hash.clone()))
        };
        if broken.is_some() {
            self.broken = broken;
            return false;
        }
        self.expected_seq += 1;
        self.prev_hash = event.hash.clone();
        self.last_id = event.id;
        true
    }

    /// The chain's head when every event followed, or its first broken link.
    fn finish(self) -> Result<ChainHead, BrokenLink> {
        match self.broken {
            Some(link) => Err(link),
            None => Ok(ChainHead {
                patient: self.patient,
                events: self.expected_seq - 1,
                last_id: self.last_id,
                hash: self.prev_hash,
            }),
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub async fn open(config: Config) -> Result<Store, RecordError> {
        let url = config.database_url.trim();
        let pool = if url.starts_with("sqlite:") {
            Pool::Sqlite(sqlite_pool(&config, url).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Pool::Postgres(postgres_pool(&config, url).await?)
        } else {
            return Err(RecordError::UnsupportedUrl { url: redact(url) });
        };
        let store = Store { pool, config };
        store.migrate().await?;
        if store.config.require_append_only_guards
            && let Some(guard) = store.missing_guards().await?.into_iter().next()
        {
            store.close().await;
            return Err(guard);
        }
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) fn err(&self, error: sqlx::Error) -> RecordError {
        classify(error, self.config.busy_timeout_ms)
    }

    /// Closes every connection; SQLite checkpoints its WAL.
    pub async fn close(self) {
        on_pool!(self, |pool| pool.close().await)
    }

    async fn migrate(&self) -> Result<(), RecordError> {
        let backend = self.backend();
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool)?;
            if backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK_KEY)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            }
            let version_table = match backend {
                Backend::Sqlite => VERSION_TABLE_SQLITE,
                Backend::Postgres => VERSION_TABLE_POSTGRES,
            };
            sqlx::raw_sql(version_table)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            let current: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM record_schema_version")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            if current > latest_version() {
                return Err(RecordError::SchemaTooNew {
                    found: current,
                    supported: latest_version(),
                });
            }
            for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
                let sql = match backend {
                    Backend::Sqlite => migration.sqlite,
                    Backend::Postgres => migration.postgres,
                };
                sqlx::raw_sql(sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
                sqlx::query(
                    "INSERT INTO record_schema_version (version, description, applied_at_us) VALUES ($1, $2, $3)",
                )
                .bind(migration.version)
                .bind(migration.description)
                .bind(Timestamp::now().as_microsecond())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
            tx.commit().await.map_err(|e| self.err(e))
        })
    }

    /// The append-only triggers missing (or disabled) on `record_events`, each as the
    /// [`RecordError::GuardMissing`] that names it and the statement that restores it. Empty when intact.
    pub async fn missing_guards(&self) -> Result<Vec<RecordError>, RecordError> {
        let (guards, query) = match self.backend() {
            Backend::Sqlite => (GUARDS_SQLITE, GUARD_NAMES_SQLITE),
            Backend::Postgres => (GUARDS_POSTGRES, GUARD_NAMES_POSTGRES),
        };
        let present: Vec<String> = on_pool!(self, |pool| {
            sqlx::query_scalar(query)
                .fetch_all(pool)
                .await
                .map_err(|e| self.err(e))
        })?;
        Ok(guards
            .iter()
            .filter(|guard| !present.iter().any(|name| name == guard.name))
            .map(|guard| RecordError::GuardMissing {
                trigger: guard.name.to_owned(),
                restore: guard.restore.to_owned(),
            })
            .collect())
    }

    /// Signs the head of every chain (after verifying them all) with `key`: write the result somewhere
    /// the database's administrators cannot change. Refuses when a chain is broken.
    pub async fn checkpoint(&self, key: &CheckpointKey) -> Result<Checkpoint, RecordError> {
        Checkpoint::sign(&self.verify().await?, Timestamp::now(), key)
    }

    /// Verifies every chain and checks each head of a signed checkpoint against the record: a chain
    /// that is gone, shorter than at the checkpoint, or no longer holds the checkpointed event at its
    /// position is reported in [`CheckpointReport::missing`]. The signature is checked first.
    pub async fn verify_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        key: &CheckpointKey,
    ) -> Result<CheckpointReport, RecordError> {
        checkpoint.check(key)?;
        let verify = self.verify().await?;
        let mut missing = Vec::new();
        for then in &checkpoint.heads {
            let head = verify.heads.iter().find(|h| h.patient == then.patient);
            let broken = verify.broken.iter().any(|b| b.patient == then.patient);
            let at_position = match head {
                Some(head) if head.events > then.events => self
                    .chain_page(&then.patient, then.events)
                    .await?
                    .into_iter()
                    .next(),
                _ => None,
            };
            let now = match (head, broken) {
                (_, true) => ChainNow::Broken,
                (None, false) => ChainNow::Gone,
                (Some(head), false) => ChainNow::Intact {
                    head,
                    at_position: at_position.as_ref(),
                },
            };
            missing.extend(judge(then, now));
        }
        Ok(CheckpointReport {
            checkpoint_created_at: checkpoint.created_at,
            verify,
            missing,
        })
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i64, RecordError> {
        on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM record_schema_version")
                .fetch_one(pool)
                .await
                .map_err(|e| self.err(e))
        })
    }

    /// Appends a batch in one durable transaction: all of it or none of it.
    ///
    /// Events already recorded under the same `(device_id, device_seq)` with the same content are not
    /// written again; their receipts carry the original id and `duplicate: true`. The same key with
    /// different content rejects the whole batch ([`RecordError::DedupConflict`]).
    pub async fn append(&self, events: &[NewEvent]) -> Result<Vec<Receipt>, RecordError> {
        let prepared = prepare_batch(events)?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.backend();
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool)?;
            if backend == Backend::Postgres {
                tx.lock_chains(self, &chain_patients(&prepared)).await?;
            }
            let existing = tx.existing_events(self, &key_lookups(&prepared)).await?;
            let split = split_batch(&prepared, &existing)?;
            let recorded_at_us = Timestamp::now().as_microsecond();
            // A pump's report of a state the record already holds is counted, not chained (`restate.rs`).
            let devices = restate::devices(&prepared, &split.fresh);
            let known = if devices.is_empty() {
                Default::default()
            } else {
                tx.restatements(self, &devices).await?
            };
            let stored: BTreeSet<String> = known.keys().cloned().collect();
            let folding = restate::fold(&prepared, &split.fresh, known, recorded_at_us);
            let mut rows = Vec::new();
            if !folding.write.is_empty() {
                let mut heads = Heads::new();
                for patient in fresh_patients(&prepared, &folding.write) {
                    heads.insert(patient.to_owned(), tx.chain_head(self, patient).await?);
                }
                let ids = tx.draw_ids(self, backend, folding.write.len()).await?;
                rows = link_fresh(&prepared, &folding.write, heads, &ids, recorded_at_us);
                tx.insert_rows(self, &prepared, &rows, recorded_at_us)
                    .await?;
                if backend == Backend::Postgres {
                    // Delivered only if the transaction commits: every server process listening learns that this
                    // patient's chain grew (the payload is the patient id) and reads the new events back.
                    for patient in fresh_patients(&prepared, &folding.write) {
                        sqlx::query("SELECT pg_notify($1, $2)")
                            .bind(APPEND_CHANNEL)
                            .bind(patient)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| self.err(e))?;
                    }
                }
            }
            if !folding.rows.is_empty() {
                tx.write_restatements(self, &folding.rows, &stored, &rows)
                    .await?;
            }
            tx.commit().await.map_err(|e| self.err(e))?;
            Ok(receipts(&prepared, split, &rows, &folding.restated))
        })
    }

    /// Every patient with at least one event, in id order.
    pub async fn patients(&self) -> Result<Vec<PatientId>, RecordError> {
        let ids: Vec<String> = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT DISTINCT patient_id FROM record_events ORDER BY patient_id")
                .fetch_all(pool)
                .await
                .map_err(|e| self.err(e))
        })?;
        ids.into_iter().map(PatientId::new).collect()
    }

    /// Whether the record holds at least one event of this patient.
    pub async fn has_patient(&self, patient: &PatientId) -> Result<bool, RecordError> {
        let found: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT id FROM record_events WHERE patient_id = $1 LIMIT 1")
                .bind(patient.as_str())
                .fetch_optional(pool)
                .await
                .map_err(|e| self.err(e))
        })?;
        Ok(found.is_some())
    }

    /// Walks every patient's chain and reports the first broken link of each.
    pub async fn verify(&self) -> Result<VerifyReport, RecordError> {
        let mut report = VerifyReport {
            events_checked: 0,
            heads: Vec::new(),
            broken: Vec::new(),
        };
        for patient in self.patients().await? {
            let walk = self.walk_chain(&patient).await?;
            report.events_checked += walk.checked;
            match walk.finish() {
                Ok(head) => report.heads.push(head),
                Err(link) => report.broken.push(link),
            }
        }
        Ok(report)
    }

    /// Walks one patient's chain page by page, up to its end or its first broken link.
    async fn walk_chain(&self, patient: &PatientId) -> Result<ChainWalk, RecordError> {
        let mut walk = ChainWalk::new(patient.clone());
        while walk.broken.is_none() {
            let page = self.chain_page(patient, walk.expected_seq).await?;
            if page.is_empty() {
                break;
            }
            for event in &page {
                if !walk.step(event) {
                    break;
                }
            }
        }
        Ok(walk)
    }

    /// At most [`VERIFY_PAGE_ROWS`] events of a chain from position `from_seq` on, in chain order.
    async fn chain_page(
        &self,
        patient: &PatientId,
        from_seq: i64,
    ) -> Result<Vec<StoredEvent>, RecordError> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM record_events WHERE patient_id = $1 AND chain_seq >= $2 ORDER BY chain_seq LIMIT $3"
            ))
            .bind(patient.as_str())
            .bind(from_seq)
            .bind(VERIFY_PAGE_ROWS)
            .fetch_all(pool)
            .await
            .map_err(|e| self.err(e))?;
            rows.iter().map(event_from_row).collect()
        })
    }

    /// A patient's events in a time range, oldest first (by occurrence, then id).
    pub async fn timeline(&self, query: &TimelineQuery) -> Result<Vec<StoredEvent>, RecordError> {
        let from_us = query.from.map_or(i64::MIN, |t| t.as_microsecond());
        let to_us = query.to.map_or(i64::MAX, |t| t.as_microsecond());
        if from_us > to_us {
            return Err(RecordError::InvalidEvent {
                what: "time range".into(),
                reason: "`from` is after `to`".into(),
            });
        }
        // A year is ~15,000 rows. SQLite's driver hands rows over one by one through a channel, which
        // costs more than the query itself, so on SQLite the database packs the rows into one string,
        // split here in one go (4x faster). PostgreSQL's binary rows are faster as they are.
        let backend = self.backend();
        let mut events = on_pool!(self, |pool| {
            let mut select = QueryBuilder::new(match backend {
                Backend::Sqlite => concat!(
                    "SELECT COALESCE(group_concat(",
                    packed_columns!(),
                    ", char(30)), '') FROM (SELECT * FROM record_events WHERE patient_id = "
                ),
                Backend::Postgres => concat!(
                    "SELECT ",
                    columns!(),
                    " FROM (SELECT * FROM record_events WHERE patient_id = "
                ),
            });
            select.push_bind(query.patient.as_str());
            select.push(" AND occurred_at_us >= ").push_bind(from_us);
            select.push(" AND occurred_at_us < ").push_bind(to_us);
            if !query.kinds.is_empty() {
                select.push(" AND kind IN (");
                let mut list = select.separated(", ");
                for kind in &query.kinds {
                    list.push_bind(kind.as_str());
                }
                select.push(")");
            }
            select.push(" ORDER BY occurred_at_us, id");
            if let Some(limit) = query.limit {
                select.push(" LIMIT ").push_bind(i64::from(limit));
            }
            select.push(") AS selected");
            match backend {
                Backend::Sqlite => {
                    let packed: String = select
                        .build_query_scalar()
                        .fetch_one(pool)
                        .await
                        .map_err(|e| self.err(e))?;
                    unpack_rows(&packed)
                }
                Backend::Postgres => {
                    let rows = select
                        .build()
                        .fetch_all(pool)
                        .await
                        .map_err(|e| self.err(e))?;
                    rows.iter().map(event_from_row).collect()
                }
            }
        })?;
        // Aggregates need not keep the subquery's order: sort here, where it is guaranteed.
        events.sort_by_key(|e| (e.occurred_at, e.id));
        Ok(events)
    }

    /// A patient's events after position `after` of their chain, in chain order, at most `limit` of them: what
    /// another server process appended since this one last looked.
    pub async fn chain_after(
        &self,
        patient: &PatientId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, RecordError> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM record_events WHERE patient_id = $1 AND chain_seq > $2 ORDER BY chain_seq LIMIT $3"
            ))
            .bind(patient.as_str())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(|e| self.err(e))?;
            rows.iter().map(event_from_row).collect()
        })
    }

    /// Events with an id above `after_id`, or among `skipped` (ids at or below it that were not there when
    /// last read), in id order, at most `limit`: the newest appends of every patient, for a follower tailing
    /// the record. Ids are drawn before commit, so an event may become visible after one with a higher id; the
    /// follower asks again for the ids it saw skipped until they come or it gives up on them.
    pub async fn events_after_id(
        &self,
        after_id: i64,
        skipped: &[i64],
        limit: u32,
    ) -> Result<Vec<StoredEvent>, RecordError> {
        self.after_id(after_id, skipped, None, limit).await
    }

    /// Events with an id above `after_id` or among `also` (of one kind, if given), in id order, at most `limit`.
    async fn after_id(
        &self,
        after_id: i64,
        also: &[i64],
        kind: Option<Kind>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, RecordError> {
        if also.len() > IDS_LISTED_MAX {
            return Err(RecordError::InvalidEvent {
                what: "list of event ids".into(),
                reason: format!(
                    "{} ids asked for at once; ask for at most {IDS_LISTED_MAX}",
                    also.len()
                ),
            });
        }
        on_pool!(self, |pool| {
            let mut select = QueryBuilder::new(concat!(
                "SELECT ",
                columns!(),
                " FROM record_events WHERE (id > "
            ));
            select.push_bind(after_id);
            if !also.is_empty() {
                select.push(" OR id IN (");
                let mut list = select.separated(", ");
                for id in also {
                    list.push_bind(*id);
                }
                select.push(")");
            }
            select.push(")");
            if let Some(kind) = kind {
                select.push(" AND kind = ").push_bind(kind.name());
            }
            select
                .push(" ORDER BY id LIMIT ")
                .push_bind(i64::from(limit));
            let rows = select
                .build()
                .fetch_all(pool)
                .await
                .map_err(|e| self.err(e))?;
            rows.iter().map(event_from_row).collect()
        })
    }

    /// The chains that grew among the events with an id above `after_id` and at most `up_to_id`: each patient
    /// with the highest position written, and the highest id seen (`after_id` if none). Ids are drawn before
    /// commit, so a caller that wants every event looks again from an id somewhat below the highest it saw.
    pub async fn chains_grown_since(
        &self,
        after_id: i64,
        up_to_id: i64,
    ) -> Result<(Vec<(String, i64)>, i64), RecordError> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT patient_id, MAX(chain_seq) AS head, MAX(id) AS top FROM record_events WHERE id > $1 AND id <= $2 GROUP BY patient_id",
            )
            .bind(after_id)
            .bind(up_to_id)
            .fetch_all(pool)
            .await
            .map_err(|e| self.err(e))?;
            let mut top = after_id;
            let mut grown = Vec::with_capacity(rows.len());
            for row in &rows {
                let patient: String = row.try_get("patient_id").map_err(|e| self.err(e))?;
                let head: i64 = row.try_get("head").map_err(|e| self.err(e))?;
                let id: i64 = row.try_get("top").map_err(|e| self.err(e))?;
                top = top.max(id);
                grown.push((patient, head));
            }
            Ok((grown, top))
        })
    }

    /// Events of one kind with an id above `after_id`, in id order, at most `limit`: for a sweep that must see
    /// every event of that kind once (ids are drawn before commit; see [`Store::settled_id`]).
    pub async fn kind_after_id(
        &self,
        kind: Kind,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, RecordError> {
        self.after_id(after_id, &[], Some(kind), limit).await
    }

    /// The highest id among the events above `after_id` that were recorded before `recorded_before_us`
    /// (microseconds since the epoch), or `None`: a sweep's mark may move up to it once no transaction that drew
    /// a lower id can still be committing.
    pub async fn settled_id(
        &self,
        after_id: i64,
        recorded_before_us: i64,
    ) -> Result<Option<i64>, RecordError> {
        on_pool!(self, |pool| {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(id) FROM record_events WHERE id > $1 AND recorded_at_us < $2",
            )
            .bind(after_id)
            .bind(recorded_before_us)
            .fetch_one(pool)
            .await
            .map_err(|e| self.err(e))
        })
    }

    /// The highest event id (0 for an empty record).
    pub async fn newest_event_id(&self) -> Result<i64, RecordError> {
        on_pool!(self, |pool| {
            sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM record_events")
                .fetch_one(pool)
                .await
                .map(|top| top.unwrap_or(0))
                .map_err(|e| self.err(e))
        })
    }

    /// The end of every patient's chain (position) and the highest event id: where a follower starts.
    pub async fn chain_positions(&self) -> Result<(Vec<(String, i64)>, i64), RecordError> {
        let top = self.newest_event_id().await?;
        on_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT patient_id, MAX(chain_seq) AS head FROM record_events GROUP BY patient_id",
            )
            .fetch_all(pool)
            .await
            .map_err(|e| self.err(e))?;
            let mut heads = Vec::with_capacity(rows.len());
            for row in &rows {
                heads.push((
                    row.try_get::<String, _>("patient_id")
                        .map_err(|e| self.err(e))?,
                    row.try_get::<i64, _>("head").map_err(|e| self.err(e))?,
                ));
            }
            Ok((heads, top))
        })
    }
}

/// The SQLite pool: WAL, synchronous=FULL, busy timeout; the file's directory is created if needed.
async fn sqlite_pool(config: &Config, url: &str) -> Result<SqlitePool, RecordError> {
    let busy = Duration::from_millis(config.busy_timeout_ms);
    let mut options =
        SqliteConnectOptions::from_str(url).map_err(|_| RecordError::UnsupportedUrl {
            url: url.to_string(),
        })?;
    let file = options.get_filename().to_path_buf();
    create_data_dir(&file)?;
    // Durable commits: WAL with synchronous=FULL syncs the WAL on every commit, so an
    // acknowledged append survives power loss, not only a crash of this process.
    options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(busy)
        .foreign_keys(true);
    if let Some(pages) = config.sqlite_max_page_count {
        options = options.pragma("max_page_count", pages.to_string());
    }
    // Every connection to `:memory:` is its own empty database: keep exactly one, forever.
    let in_memory = options.get_filename().as_os_str() == ":memory:";
    SqlitePoolOptions::new()
        .max_connections(if in_memory {
            1
        } else {
            config.max_connections.max(1)
        })
        .min_connections(u32::from(in_memory))
        .idle_timeout(if in_memory {
            None
        } else {
            Some(Duration::from_secs(600))
        })
        .max_lifetime(if in_memory {
            None
        } else {
            Some(Duration::from_secs(1800))
        })
        .acquire_timeout(busy + Duration::from_millis(ACQUIRE_EXTRA_MS))
        .connect_with(options)
        .await
        .map_err(|e| classify(e, config.busy_timeout_ms))
}

/// Creates the directory of a SQLite file (readable by its owner only when new); nothing for `:memory:`.
fn create_data_dir(file: &Path) -> Result<(), RecordError> {
    if let Some(dir) = file.parent()
        && !dir.as_os_str().is_empty()
        && file.as_os_str() != ":memory:"
    {
        let created = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|source| RecordError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        // A new data directory holds medical records: readable by its owner only.
        #[cfg(unix)]
        if created {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |source| RecordError::DataDir {
                    path: dir.display().to_string(),
                    source,
                },
            )?;
        }
    }
    Ok(())
}

/// The PostgreSQL pool.
async fn postgres_pool(config: &Config, url: &str) -> Result<PgPool, RecordError> {
    let busy = Duration::from_millis(config.busy_timeout_ms);
    let options = PgConnectOptions::from_str(url)
        .map_err(|_| RecordError::UnsupportedUrl { url: redact(url) })?;
    PgPoolOptions::new()
        .max_connections(config.max_connections.max(1))
        .acquire_timeout(busy + Duration::from_millis(ACQUIRE_EXTRA_MS))
        .connect_with(options)
        .await
        .map_err(|e| classify(e, config.busy_timeout_ms))
}

/// Unpacks rows joined by `char(30)` with fields joined by `char(31)` (see `packed_columns!`).
///
/// The separators cannot occur inside a field the store wrote: identifiers and kinds are checked to hold
/// no control characters, the payload is canonical JSON (control characters escaped), hashes are hex and
/// numbers are digits. A row altered behind the store's back that breaks this is reported as corrupt.
fn unpack_rows(packed: &str) -> Result<Vec<StoredEvent>, RecordError> {
    if packed.is_empty() {
        return Ok(Vec::new());
    }
    packed
        .split('\u{1e}')
        .map(|row| {
            let fields: Vec<&str> = row.split('\u{1f}').collect();
            let id: i64 = fields.first().and_then(|f| f.parse().ok()).unwrap_or(0);
            let corrupt = |reason: String| RecordError::Corrupt { id, reason };
            let [
                _,
                patient,
                chain_seq,
                device_id,
                device_seq,
                occurred_at_us,
                local_offset_s,
                recorded_at_us,
                source,
                actor,
                teaching,
                kind,
                payload,
                prev_hash,
                hash,
            ] = fields[..]
            else {
                return Err(corrupt(format!(
                    "a field holds a control character ({} fields instead of 15)",
                    fields.len()
                )));
            };
            let number = |name: &str, text: &str| -> Result<i64, RecordError> {
                text.parse()
                    .map_err(|_| corrupt(format!("{name} {text:?} is not a number")))
            };
            let timestamp = |name: &str, text: &str| -> Result<Timestamp, RecordError> {
                let us = number(name, text)?;
                Timestamp::from_microsecond(us).map_err(|e| corrupt(format!("{name} {us}: {e}")))
            };
            Ok(StoredEvent {
                id: EventId(id),
                patient: PatientId::new(patient).map_err(|e| corrupt(e.to_string()))?,
                chain_seq: number("chain_seq", chain_seq)?,
                device_id: device_id.to_owned(),
                device_seq: number("device_seq", device_seq)?,
                occurred_at: timestamp("occurred_at_us", occurred_at_us)?,
                local_offset_s: i32::try_from(number("local_offset_s", local_offset_s)?)
                    .map_err(|_| corrupt(format!("local offset {local_offset_s} out of range")))?,
                recorded_at: timestamp("recorded_at_us", recorded_at_us)?,
                source: Source::from_name(source)
                    .ok_or_else(|| corrupt(format!("unknown source {source:?}")))?,
                actor: actor.to_owned(),
                teaching: number("teaching", teaching)? != 0,
                kind: kind.to_owned(),
                payload: payload.to_owned(),
                prev_hash: prev_hash.to_owned(),
                hash: hash.to_owned(),
            })
        })
        .collect()
}

/// Same device key, same meaning: everything the device chose is equal.
pub(crate) fn same_content(new: &PreparedEvent, old: &StoredEvent) -> bool {
    new.patient == old.patient
        && new.occurred_at_us == old.occurred_at.as_microsecond()
        && new.local_offset_s == old.local_offset_s
        && new.source == old.source
        && new.actor == old.actor
        && new.teaching == old.teaching
        && new.kind == old.kind
        && new.payload == old.payload
}

pub(crate) fn link_of(event: &StoredEvent) -> Link<'_> {
    Link {
        id: event.id.0,
        patient: event.patient.as_str(),
        chain_seq: event.chain_seq,
        device_id: &event.device_id,
        device_seq: event.device_seq,
        occurred_at_us: event.occurred_at.as_microsecond(),
        local_offset_s: event.local_offset_s,
        recorded_at_us: event.recorded_at.as_microsecond(),
        source: event.source.name(),
        actor: &event.actor,
        teaching: event.teaching,
        kind: &event.kind,
        payload: &event.payload,
        prev_hash: &event.prev_hash,
    }
}

pub(crate) fn event_from_row<R>(row: &R) -> Result<StoredEvent, RecordError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Type<R::Database> + for<'r> sqlx::Decode<'r, R::Database>,
    i32: sqlx::Type<R::Database> + for<'r> sqlx::Decode<'r, R::Database>,
    bool: sqlx::Type<R::Database> + for<'r> sqlx::Decode<'r, R::Database>,
    String: sqlx::Type<R::Database> + for<'r> sqlx::Decode<'r, R::Database>,
{
    let id: i64 = row.try_get(0).map_err(RecordError::Database)?;
    let corrupt = |reason: String| RecordError::Corrupt { id, reason };
    let get_i64 = |i: usize| -> Result<i64, RecordError> {
        row.try_get::<i64, _>(i).map_err(|e| corrupt(e.to_string()))
    };
    let get_text = |i: usize| -> Result<String, RecordError> {
        row.try_get::<String, _>(i)
            .map_err(|e| corrupt(e.to_string()))
    };
    let timestamp = |us: i64| {
        Timestamp::from_microsecond(us).map_err(|e| corrupt(format!("time {us} µs: {e}")))
    };
    let source = get_text(8)?;
    Ok(StoredEvent {
        id: EventId(id),
        patient: PatientId::new(get_text(1)?).map_err(|e| corrupt(e.to_string()))?,
        chain_seq: get_i64(2)?,
        device_id: get_text(3)?,
        device_seq: get_i64(4)?,
        occurred_at: timestamp(get_i64(5)?)?,
        local_offset_s: row
            .try_get::<i32, _>(6)
            .map_err(|e| corrupt(e.to_string()))?,
        recorded_at: timestamp(get_i64(7)?)?,
        source: Source::from_name(&source)
            .ok_or_else(|| corrupt(format!("unknown source {source:?}")))?,
        actor: get_text(9)?,
        teaching: row
            .try_get::<bool, _>(10)
            .map_err(|e| corrupt(e.to_string()))?,
        kind: get_text(11)?,
        payload: get_text(12)?,
        prev_hash: get_text(13)?,
        hash: get_text(14)?,
    })
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(packed: &str, expect: &str) {
        let got = match unpack_rows(packed) {
            Ok(events) => format!("{} events", events.len()),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expect, "packed {packed:?}");
    }

    #[test]
    fn unpacking_refuses_rows_that_do_not_split_cleanly() {
        let row = |payload: &str| {
            [
                "7",
                "p-1",
                "1",
                "pump",
                "3",
                "0",
                "3600",
                "0",
                "pump",
                "pump",
                "0",
                "note",
                payload,
                GENESIS_HASH,
                GENESIS_HASH,
            ]
            .join("\u{1f}")
        };
        check("", "0 events");
        check(&row("{}"), "1 events");
        check(&[row("{}"), row("{}")].join("\u{1e}"), "2 events");
        check(
            &row("{\u{1f}}"),
            "stored event 7 is unreadable: a field holds a control character (16 fields instead of 15); run `infusafe record verify`",
        );
        check(
            &row("{}").replace("\u{1f}3600\u{1f}", "\u{1f}x\u{1f}"),
            "stored event 7 is unreadable: local_offset_s \"x\" is not a number; run `infusafe record verify`",
        );
    }
}

//! Where the server writes every event of clinical meaning (alarms, acknowledgements, silences, escalations,
//! plan changes, logins, record reads) with who and when: a thin adapter over the infusion record's
//! append-only, hash-chained store (`record::Store`), so the rest of the server speaks in its own terms.
//!
//! De-duplication keys: pump events keep the pump's `(device_id, seq)`. Events the server writes about a
//! pump's alarm (acknowledged on a screen, escalated, `pump_silent`) carry the pump's device id, so the
//! record's per-device alarm views see them, with sequence numbers from `SERVER_SEQ_BASE` upwards, a range
//! pumps never use (the link refuses pump sequence numbers at or above it). Other server events use the
//! device id `server`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;

use crate::domain::EventDraft;

/// First sequence number of the range reserved for events the server writes about a pump: the first number a
/// pump may not use (2^62), so the two ranges can never collide.
pub const SERVER_SEQ_BASE: u64 = link::PUMP_SEQ_MAX;

/// Server processes number their own events `INSTANCE_SEQ_FROM + (instance << INSTANCE_SHIFT) + n` (above
/// `SERVER_SEQ_BASE` for events about a pump), where `instance` is drawn from the database at start
/// (`srv_instances`), unique to each start of each process: two processes on one database, or one process
/// restarted, never reuse a number. Earlier versions counted from the clock in microseconds, below 2^52, so the
/// new numbers never meet the old ones.
pub const INSTANCE_SEQ_FROM: u64 = 1 << 52;
/// Events one process start may number (2^36, about 69 billion).
pub const INSTANCE_SHIFT: u32 = 36;
/// Instances the layout holds (2^24): `INSTANCE_SEQ_FROM + (INSTANCE_MAX << INSTANCE_SHIFT)` stays below
/// `SERVER_SEQ_BASE` and, above it, below `record::CLAIM_SEQ_BASE`.
pub const INSTANCE_MAX: u64 = 1 << 24;

/// The sequence number of a decision (`record::CLAIM_SEQ_BASE` and up): the same key gives the same number in
/// every process, so the record keeps the first process's event and reports the others as duplicates.
pub fn claim_seq(key: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 2^61 numbers from the base: the last one is i64::MAX, the largest the record stores.
    record::CLAIM_SEQ_BASE + (u64::from_be_bytes(first) >> 3)
}

type PatientLocks =
    Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// How long an id this process appended is remembered so the follower does not apply it twice.
const LOCAL_IDS_KEEP_MS: i64 = 5 * 60_000;
/// Ids remembered at most (a follower that stopped reading would otherwise let the set grow).
const LOCAL_IDS_MAX: usize = 200_000;

/// An event as read back, payload parsed.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub patient_id: String,
    pub kind: String,
    pub source: String,
    pub actor: String,
    pub device_id: String,
    pub occurred_at: jiff::Timestamp,
    /// Offset from UTC where it happened (the patient's plan time zone), seconds.
    pub local_offset_s: i32,
    pub recorded_at: jiff::Timestamp,
    pub payload: Value,
    pub teaching: bool,
}

/// The result of appending one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub id: i64,
    /// Already recorded (same device and sequence number): nothing was written, `id` is the original.
    pub duplicate: bool,
    /// A pump's report of the state it last reported, counted by the record instead of chained
    /// (`record::restate`): `id` is the recorded report, and nothing new reaches the board.
    pub restated: bool,
}

/// Why an append or read failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The event itself is wrong (bad payload for its kind, too large): the caller's input.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Record(record::RecordError),
}

impl From<JournalError> for crate::error::AppError {
    fn from(e: JournalError) -> crate::error::AppError {
        match e {
            JournalError::Invalid(m) => {
                // Messages start with "event N: …" when one event of a batch is at fault: name it.
                let field = m
                    .strip_prefix("event ")
                    .and_then(|rest| rest.split(':').next())
                    .and_then(|n| n.trim().parse::<usize>().ok())
                    .map(|n| format!("events[{n}].data"))
                    .unwrap_or_else(|| "events".to_string());
                crate::error::AppError::invalid(field, m)
            }
            JournalError::Record(record::RecordError::DedupConflict { .. }) => {
                crate::error::AppError::Conflict("an event with this sequence number was already recorded with different content; never reuse sequence numbers".into())
            }
            JournalError::Record(e @ (record::RecordError::Locked { .. } | record::RecordError::Conflict | record::RecordError::Full | record::RecordError::Unreachable { .. })) => {
                crate::error::AppError::Unavailable(format!("the record could not store this right now ({e}); try again"))
            }
            JournalError::Record(record::RecordError::Database(e)) if record::database_unavailable(&e) => {
                crate::error::AppError::Unavailable("the database is not answering right now; try again in a moment".into())
            }
            JournalError::Record(e) => crate::error::AppError::internal(e),
        }
    }
}

/// The journal handle, cheap to clone.
#[derive(Clone)]
pub struct Journal {
    store: Arc<record::Store>,
    next_seq: Arc<AtomicU64>,
    /// This process start's number (`srv_instances`).
    instance: u64,
    /// Ids of events this process appended (and applied to its own board), with when: the follower skips
    /// them when they come back from the database. Kept only when `remember_local` (several processes).
    local_ids: Arc<std::sync::Mutex<std::collections::HashMap<i64, i64>>>,
    remember_local: bool,
    /// Per patient, held from before an append until its ids are remembered, and by the follower while it reads
    /// the patient's chain: the follower never sees this process's event before knowing it is this process's.
    patient_locks: PatientLocks,
    /// Per patient, held by the pump link from before it appends a pump's events until its board has applied
    /// them (`applying`), and by the follower before it reads the patient's chain: the follower never takes in
    /// (silently, as this process's own) a pump event the board has not applied and announced yet.
    applying_locks: PatientLocks,
    /// Each patient's time zone (from the plan), so events keep the local offset where they happened.
    time_zones: Arc<std::sync::RwLock<std::collections::HashMap<String, jiff::tz::TimeZone>>>,
}

/// The lock of one patient in a map of them (made on first use).
fn lock_of(locks: &PatientLocks, patient_id: &str) -> Arc<tokio::sync::Mutex<()>> {
    locks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(patient_id.to_string())
        .or_default()
        .clone()
}

/// Whether someone holds the lock of one patient in a map of them.
fn is_held(locks: &PatientLocks, patient_id: &str) -> bool {
    locks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(patient_id)
        .is_some_and(|l| l.try_lock().is_err())
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}

impl Journal {
    /// `instance`: this process start's number from `srv_instances` (below [`INSTANCE_MAX`]);
    /// `remember_local`: keep the ids this process appends for the follower (PostgreSQL).
    pub fn new(store: Arc<record::Store>, instance: u64, remember_local: bool) -> Journal {
        let start = INSTANCE_SEQ_FROM + ((instance % INSTANCE_MAX) << INSTANCE_SHIFT);
        Journal {
            store,
            next_seq: Arc::new(AtomicU64::new(start)),
            instance,
            local_ids: Arc::default(),
            remember_local,
            patient_locks: Arc::default(),
            applying_locks: Arc::default(),
            time_zones: Arc::default(),
        }
    }

    /// Hold a patient's chain against this process's own appends (the follower, while it reads it).
    pub async fn lock_patient(&self, patient_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.patient_lock(patient_id).lock_owned().await
    }

    /// This process start's number (`srv_instances`), unique among the processes on one database.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// Whether this process is appending for the patient right now (its ids are not remembered yet).
    pub fn appending_for(&self, patient_id: &str) -> bool {
        self.remember_local && is_held(&self.patient_locks, patient_id)
    }

    fn patient_lock(&self, patient_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock_of(&self.patient_locks, patient_id)
    }

    /// Hold a patient while a pump's events are appended and applied to this process's board (several processes
    /// only; `None` on SQLite, where nothing follows). The follower waits for it before it reads the patient's
    /// chain, so this process's own pump events reach its board, and its screens, through the pump link's path.
    pub async fn applying(&self, patient_id: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        if !self.remember_local {
            return None;
        }
        Some(lock_of(&self.applying_locks, patient_id).lock_owned().await)
    }

    /// Whether the pump link is appending or applying a pump's events for the patient right now.
    pub fn applying_for(&self, patient_id: &str) -> bool {
        self.remember_local && is_held(&self.applying_locks, patient_id)
    }

    /// Whether `id` was appended by this process (forgotten once asked).
    pub fn take_local(&self, id: i64) -> bool {
        self.local_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
            .is_some()
    }

    fn remember(&self, ids: impl Iterator<Item = i64>) {
        if !self.remember_local {
            return;
        }
        let now = jiff::Timestamp::now().as_millisecond();
        let mut local = self.local_ids.lock().unwrap_or_else(|p| p.into_inner());
        if local.len() >= LOCAL_IDS_MAX {
            local.retain(|_, at| now - *at < LOCAL_IDS_KEEP_MS);
        }
        for id in ids {
            if local.len() < LOCAL_IDS_MAX {
                local.insert(id, now);
            }
        }
    }

    /// Remember a patient's time zone (called when a plan is loaded or saved).
    pub fn set_time_zone(&self, patient_id: &str, tz: jiff::tz::TimeZone) {
        self.time_zones
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(patient_id.to_string(), tz);
    }

    fn local_offset_s(&self, patient_id: &str, at: jiff::Timestamp) -> i32 {
        self.time_zones
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(patient_id)
            .map(|tz| tz.to_offset(at).seconds())
            .unwrap_or(0)
    }

    /// The record store itself, for queries the journal does not wrap (views, exports).
    pub fn store(&self) -> &Arc<record::Store> {
        &self.store
    }

    fn to_record(&self, e: EventDraft, index: usize) -> Result<record::NewEvent, JournalError> {
        let invalid = |m: String| JournalError::Invalid(format!("event {index}: {m}"));
        let patient =
            record::PatientId::new(e.patient_id).map_err(|err| invalid(err.to_string()))?;
        let (device_id, device_seq) = match (e.device_id, e.device_seq) {
            (Some(d), Some(seq)) => (d, seq),
            (Some(d), None) => (
                d,
                SERVER_SEQ_BASE + self.next_seq.fetch_add(1, Ordering::Relaxed),
            ),
            // A claim about no pump.
            (None, Some(seq)) => ("server".to_string(), seq),
            (None, None) => (
                "server".to_string(),
                self.next_seq.fetch_add(1, Ordering::Relaxed),
            ),
        };
        let mut payload = e.payload;
        if payload.is_null() {
            payload = Value::Object(Default::default());
        }
        let kind = e.kind.name().to_string();
        if record::event::is_known_kind(&kind)
            && matches!(
                record::Body::from_parts(&kind, payload.clone()),
                record::Body::Unknown { .. }
            )
        {
            return Err(invalid(format!(
                "the data does not have the fields of a `{kind}` event"
            )));
        }
        let occurred_at = jiff::Timestamp::from_millisecond(e.occurred_at_ms)
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let local_offset_s = self.local_offset_s(patient.as_str(), occurred_at);
        Ok(record::NewEvent {
            patient,
            device_id,
            device_seq,
            occurred_at,
            local_offset_s,
            source: e.origin.record_source(),
            actor: e.actor.unwrap_or_else(|| "system".to_string()),
            teaching: e.teaching,
            // Stored verbatim: the server's events carry fields beyond the record's typed shapes (who acknowledged,
            // their note, the rung), which the screens and the restore read back. The check above keeps every
            // event of a typed kind readable as that kind.
            body: record::Body::Unknown { kind, payload },
        })
    }

    /// Append a batch in one transaction: either every new event is stored or none is.
    pub async fn append(&self, events: Vec<EventDraft>) -> Result<Vec<Appended>, JournalError> {
        if !self.remember_local {
            return self.append_unfollowed(events).await;
        }
        let patients: std::collections::BTreeSet<String> =
            events.iter().map(|e| e.patient_id.clone()).collect();
        // In sorted order, so two appends never wait for each other around a circle.
        let mut held = Vec::with_capacity(patients.len());
        for p in &patients {
            held.push(self.patient_lock(p).lock_owned().await);
        }
        let appended = self.append_unfollowed(events).await?;
        self.remember(
            appended
                .iter()
                .filter(|a| !a.duplicate && !a.restated)
                .map(|a| a.id),
        );
        drop(held);
        Ok(appended)
    }

    /// Append without telling this process's follower (events the board does not follow: telemetry samples).
    pub async fn append_unfollowed(
        &self,
        events: Vec<EventDraft>,
    ) -> Result<Vec<Appended>, JournalError> {
        let events = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| self.to_record(e, i))
            .collect::<Result<Vec<_>, _>>()?;
        let receipts = self.store.append(&events).await.map_err(|e| match e {
            record::RecordError::InvalidEvent { what, reason } => {
                JournalError::Invalid(format!("{what}: {reason}"))
            }
            other => JournalError::Record(other),
        })?;
        Ok(receipts
            .into_iter()
            .map(|r| Appended {
                id: r.id.0,
                duplicate: r.duplicate,
                restated: r.restated,
            })
            .collect())
    }

    /// Append one event.
    pub async fn append_one(&self, event: EventDraft) -> Result<i64, JournalError> {
        let mut done = self.append(vec![event]).await?;
        Ok(done.pop().map(|a| a.id).unwrap_or_default())
    }

    /// A patient's telemetry over the last `days`, newest first, as entries of kind `telemetry`: the
    /// samples of the record's telemetry table merged with the legacy `telemetry` events
    /// (`record::Store::telemetry_series`). A sample from the table has id 0 (it is not a record event)
    /// and its payload is what a `telemetry` event carries (plus `bucket_s` for a downsampled bucket).
    pub async fn telemetry(&self, patient_id: &str, days: i64) -> Result<Vec<Entry>, JournalError> {
        Ok(self
            .telemetry_samples(patient_id, days)
            .await?
            .into_iter()
            .rev()
            .map(|s| self.telemetry_entry(s))
            .collect())
    }

    /// A patient's telemetry samples over the last `days`, oldest first (`record::Store::telemetry_series`).
    pub async fn telemetry_samples(
        &self,
        patient_id: &str,
        days: i64,
    ) -> Result<Vec<record::TelemetrySample>, JournalError> {
        let patient =
            record::PatientId::new(patient_id).map_err(|e| JournalError::Invalid(e.to_string()))?;
        let from = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_hours(24 * days))
            .ok();
        self.store
            .telemetry_series(&patient, from, None)
            .await
            .map_err(JournalError::Record)
    }

    /// A telemetry sample as a timeline entry.
    pub fn telemetry_entry(&self, s: record::TelemetrySample) -> Entry {
        Entry {
            id: 0,
            patient_id: s.patient.to_string(),
            kind: record::Kind::Telemetry.name().to_string(),
            source: record::Source::Pump.name().to_string(),
            actor: s.device_id.clone(),
            local_offset_s: self.local_offset_s(s.patient.as_str(), s.at),
            occurred_at: s.at,
            recorded_at: s.at,
            payload: s.payload(),
            teaching: s.teaching,
            device_id: s.device_id,
        }
    }

    /// The newest `limit` events of a patient over the last `days`, newest first, optionally only some kinds.
    pub async fn timeline(
        &self,
        patient_id: &str,
        kinds: &[String],
        limit: usize,
        days: i64,
    ) -> Result<Vec<Entry>, JournalError> {
        let patient =
            record::PatientId::new(patient_id).map_err(|e| JournalError::Invalid(e.to_string()))?;
        let from = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_hours(24 * days))
            .ok();
        let query = record::TimelineQuery {
            patient,
            from,
            to: None,
            kinds: kinds.to_vec(),
            limit: None,
        };
        let events = self
            .store
            .timeline(&query)
            .await
            .map_err(JournalError::Record)?;
        Ok(events
            .into_iter()
            .rev()
            .take(limit)
            .map(|e| Entry {
                id: e.id.0,
                patient_id: e.patient.to_string(),
                kind: e.kind,
                source: e.source.name().to_string(),
                actor: e.actor,
                device_id: e.device_id,
                occurred_at: e.occurred_at,
                local_offset_s: e.local_offset_s,
                recorded_at: e.recorded_at,
                payload: serde_json::from_str(&e.payload).unwrap_or(Value::Null),
                teaching: e.teaching,
            })
            .collect())
    }
}

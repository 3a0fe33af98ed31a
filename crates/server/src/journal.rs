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
    /// Each patient's time zone (from the plan), so events keep the local offset where they happened.
    time_zones: Arc<std::sync::RwLock<std::collections::HashMap<String, jiff::tz::TimeZone>>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}

impl Journal {
    pub fn new(store: Arc<record::Store>) -> Journal {
        // Start from the clock in microseconds so a restarted server never reuses a number.
        let start = u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap_or(1);
        Journal {
            store,
            next_seq: Arc::new(AtomicU64::new(start)),
            time_zones: Arc::default(),
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
            (None, _) => (
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

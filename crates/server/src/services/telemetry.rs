//! The grouped telemetry writer: a pump's heartbeat no longer waits for a durable transaction of its own. Every
//! contact (the pump spoke, with or without telemetry) and every telemetry sample the board chose to keep is
//! handed here and written with everyone else's, one transaction for many pumps, every `FLUSH_EVERY`: the
//! contacts to `srv_pump_contacts` (the shared half of the live board: every process's follower and the silence
//! watchdog read it), the samples to the record's compact telemetry table (`record::Store::append_telemetry`,
//! not the hash-chained events). A pump's events are not telemetry: they are still durable before the pump is
//! answered (`services::ingest`).
//!
//! Nothing is dropped silently: a flush that fails keeps its rows for the next one (up to a bound), and what
//! goes beyond the bound is counted and logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::{Device, EventDraft};
use crate::journal::Journal;
use crate::store::Db;
use crate::store::cluster::Contact;

/// How often the writer flushes.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Samples waiting at most; beyond it the oldest are dropped and counted (the database has been away for long).
pub const SAMPLES_PENDING_MAX: usize = 200_000;
/// Samples written per record transaction at most.
const SAMPLES_PER_APPEND: usize = 5_000;

#[derive(Debug, Default)]
struct Pending {
    contacts: HashMap<String, Contact>,
    /// Oldest first; when full, the oldest give way (a queue, so that costs nothing per sample).
    samples: std::collections::VecDeque<record::TelemetrySample>,
    dropped: u64,
}

/// Handle to the writer, cheap to clone.
#[derive(Debug, Clone)]
pub struct TelemetryWriter {
    pending: Arc<Mutex<Pending>>,
    /// Held while a flush runs, so a flush on shutdown waits for the one in progress.
    flushing: Arc<tokio::sync::Mutex<()>>,
    db: Db,
    journal: Journal,
}

impl TelemetryWriter {
    /// The writer and its flushing task (which stops with the runtime).
    pub fn start(db: Db, journal: Journal) -> TelemetryWriter {
        let writer = TelemetryWriter {
            pending: Arc::default(),
            flushing: Arc::default(),
            db,
            journal,
        };
        let task = writer.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(FLUSH_EVERY);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                task.flush().await;
            }
        });
        writer
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A telemetry sample the board chose to keep (its draft carries the record's telemetry fields).
    pub fn sample(&self, draft: EventDraft) {
        let Some(sample) = sample_of(&draft) else {
            eprintln!(
                "infusafe server: a telemetry sample for {} lacked the record's fields and was not kept",
                draft.patient_id
            );
            return;
        };
        let mut p = self.pending();
        if p.samples.len() >= SAMPLES_PENDING_MAX {
            p.samples.pop_front();
            p.dropped += 1;
        }
        p.samples.push_back(sample);
    }

    /// A pump spoke at `at_ms` (server time), with this telemetry if any.
    pub fn contact(&self, device: &Device, at_ms: i64, telemetry: Option<&link::Telemetry>) {
        let telemetry = telemetry.and_then(|t| serde_json::to_string(t).ok());
        let mut p = self.pending();
        let entry = p.contacts.entry(device.id.clone()).or_insert(Contact {
            device_id: device.id.clone(),
            patient_id: device.patient_id.clone(),
            teaching: device.teaching,
            at_ms,
            telemetry: None,
        });
        entry.at_ms = entry.at_ms.max(at_ms);
        entry.patient_id.clone_from(&device.patient_id);
        entry.teaching = device.teaching;
        if telemetry.is_some() {
            entry.telemetry = telemetry;
        }
    }

    /// Write what is waiting: the contacts in one transaction, the samples in one record append. What could not
    /// be written waits for the next flush.
    pub async fn flush(&self) {
        let _one_at_a_time = self.flushing.lock().await;
        let (contacts, samples, dropped) = {
            let mut p = self.pending();
            (
                std::mem::take(&mut p.contacts),
                std::mem::take(&mut p.samples),
                std::mem::take(&mut p.dropped),
            )
        };
        if dropped > 0 {
            eprintln!(
                "infusafe server: {dropped} telemetry samples were dropped: the database did not take them for too long"
            );
        }
        if !contacts.is_empty() {
            let rows: Vec<Contact> = contacts.values().cloned().collect();
            // Stamped with the database's clock, which every reader compares with.
            let result = match crate::store::cluster::database_now_ms(&self.db).await {
                Ok(at) => {
                    crate::store::cluster::write_contacts(
                        &self.db,
                        &rows,
                        at,
                        self.journal.instance(),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                eprintln!(
                    "infusafe server: could not write pump contacts (kept for the next try): {e}"
                );
                let mut p = self.pending();
                for (device, c) in contacts {
                    p.contacts.entry(device).or_insert(c);
                }
            }
        }
        let mut samples = samples.into_iter().peekable();
        while samples.peek().is_some() {
            let chunk: Vec<record::TelemetrySample> =
                samples.by_ref().take(SAMPLES_PER_APPEND).collect();
            if let Err(e) = self.journal.store().append_telemetry(&chunk).await {
                eprintln!(
                    "infusafe server: could not write telemetry (kept for the next try): {e}"
                );
                let mut p = self.pending();
                let mut back: std::collections::VecDeque<_> = chunk.into();
                back.extend(samples);
                back.append(&mut p.samples);
                let over = back.len().saturating_sub(SAMPLES_PENDING_MAX);
                p.dropped += u64::try_from(over).unwrap_or(u64::MAX);
                back.drain(..over);
                p.samples = back;
                return;
            }
        }
    }
}

/// The record's telemetry sample for a board's telemetry draft (`domain::board`'s `record_telemetry` writes
/// exactly these fields).
fn sample_of(d: &EventDraft) -> Option<record::TelemetrySample> {
    let p = &d.payload;
    Some(record::TelemetrySample {
        patient: record::PatientId::new(d.patient_id.clone()).ok()?,
        device_id: d.device_id.clone()?,
        at: jiff::Timestamp::from_millisecond(d.occurred_at_ms).ok()?,
        bucket_s: 0,
        state: p["state"].as_str()?.to_string(),
        rate_ml_per_h: p["rate_ml_per_h"].as_f64()?,
        delivered_ml: p["delivered_ml"].as_f64()?,
        remaining_ml: p["remaining_ml"].as_f64()?,
        battery_percent: p["battery_percent"].as_f64()?,
        mains_present: p["mains_present"].as_bool()?,
        downstream_pressure_mmhg: p["downstream_pressure_mmhg"].as_f64()?,
        teaching: d.teaching,
    })
}

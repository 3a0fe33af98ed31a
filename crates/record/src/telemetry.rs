//! Pump telemetry in its own compact table, `record_telemetry` (migration 2): one row of numbers per
//! sample, written many pumps at a time, kept at full resolution for a while and then downsampled.
//!
//! Telemetry is sampled, not clinical: a sample says what the pump reported at one moment and the next
//! sample supersedes it. So unlike `record_events` this table is **not** hash-chained and **not**
//! append-only: [`Store::compact_telemetry`] replaces old samples by one row per pump and bucket and may
//! remove the oldest rows. Clinical events (starts, stops, alarms, acknowledgements, …) stay in the
//! hash-chained record forever. Older databases hold telemetry as `telemetry` events in `record_events`;
//! those stay where they are, and every reader here ([`Store::telemetry_series`],
//! [`Store::latest_telemetry`]) reads both and merges them in time order.
//!
//! This module and `telemetry_block.rs` are the only ones that delete rows, and only from `record_telemetry`
//! and `record_telemetry_blocks` (`tests/append_only.rs` allows exactly those tables).

use crate::error::RecordError;
use crate::event::{Body, Kind, PatientId, StoredEvent};
use crate::store::{Store, TimelineQuery, begin_write, on_pool};
use crate::telemetry_block::{self as block, BLOCK_MS, BLOCK_SAMPLES_MAX, Block, BlockSql};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Row};
use std::collections::BTreeMap;

/// Samples in one [`Store::append_telemetry`] call: one transaction, so it must stay bounded.
pub const TELEMETRY_BATCH_MAX: usize = 100_000;
/// Rows per multi-row INSERT: 12 binds each, 12,000 per statement, under SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters.
const TELEMETRY_INSERT_ROWS_MAX: usize = 1_000;
/// Buckets of one patient compacted in one transaction: bounds how long compaction holds the write lock
/// (16 buckets of 15 minutes: 240 samples per pump at one a minute).
const COMPACT_BUCKETS_PER_TRANSACTION: i64 = 16;
/// Rows removed per statement when samples pass `keep_for`.
const REMOVE_ROWS_PER_TRANSACTION: i64 = 5_000;
/// Full-resolution samples stay rows until their hour has been over for this long, then they are packed.
const PACK_AFTER_MS: i64 = BLOCK_MS;
/// Hours of one patient packed in one transaction.
const PACK_BLOCKS_PER_TRANSACTION: i64 = 16;
/// An hour of one pump with more samples than this (one a second) stays as rows.
const PACK_SAMPLES_MAX: usize = BLOCK_SAMPLES_MAX / 2;
/// The longest state name kept.
const STATE_LEN_MAX: usize = 64;

const SAMPLE_COLUMNS: &str = "patient_id, at_ms, device_id, bucket_s, state, rate_ml_per_h, \
     delivered_ml, remaining_ml, battery_percent, mains_present, downstream_pressure_mmhg, teaching";

/// One telemetry sample of one pump, or (when `bucket_s > 0`) one downsampled bucket of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetrySample {
    pub patient: PatientId,
    pub device_id: String,
    /// When the pump reported it, kept to the millisecond. For a bucket: its last sample's time.
    pub at: Timestamp,
    /// 0: a sample at full resolution. Otherwise the bucket's length in seconds: the row stands for the
    /// samples of `[floor(at / bucket), + bucket)`.
    #[serde(default)]
    pub bucket_s: u32,
    /// `pump::State::name()` (a bucket: the last one).
    pub state: String,
    /// A bucket: the mean.
    pub rate_ml_per_h: f64,
    /// A bucket: the last.
    pub delivered_ml: f64,
    /// A bucket: the last.
    pub remaining_ml: f64,
    /// A bucket: the last.
    pub battery_percent: f64,
    /// A bucket: true only when mains was present in every sample.
    pub mains_present: bool,
    /// A bucket: the highest.
    pub downstream_pressure_mmhg: f64,
    /// From the practice (teaching) pump: left out of charts and the FHIR export.
    #[serde(default)]
    pub teaching: bool,
}

impl TelemetrySample {
    /// The sample a legacy `telemetry` event of the hash-chained record carries, if it is one.
    pub fn from_event(event: &StoredEvent) -> Option<TelemetrySample> {
        let Body::Telemetry {
            state,
            rate_ml_per_h,
            delivered_ml,
            remaining_ml,
            battery_percent,
            mains_present,
            downstream_pressure_mmhg,
        } = event.body()
        else {
            return None;
        };
        Some(TelemetrySample {
            patient: event.patient.clone(),
            device_id: event.device_id.clone(),
            at: to_ms(event.occurred_at),
            bucket_s: 0,
            state,
            rate_ml_per_h,
            delivered_ml,
            remaining_ml,
            battery_percent,
            mains_present,
            downstream_pressure_mmhg,
            teaching: event.teaching,
        })
    }

    /// The payload of a `telemetry` event with the same values (what the CSV export prints).
    pub fn payload(&self) -> serde_json::Value {
        let mut payload = serde_json::json!({
            "state": self.state,
            "rate_ml_per_h": self.rate_ml_per_h,
            "delivered_ml": self.delivered_ml,
            "remaining_ml": self.remaining_ml,
            "battery_percent": self.battery_percent,
            "mains_present": self.mains_present,
            "downstream_pressure_mmhg": self.downstream_pressure_mmhg,
        });
        if self.bucket_s > 0 {
            payload["bucket_s"] = self.bucket_s.into();
        }
        payload
    }

    fn check(&self, index: usize) -> Result<(), RecordError> {
        let invalid = |reason: String| RecordError::InvalidEvent {
            what: format!("telemetry sample {index}"),
            reason,
        };
        let id_ok = !self.device_id.is_empty()
            && self.device_id.len() <= crate::event::ID_LEN_MAX
            && !self.device_id.chars().any(char::is_control);
        if !id_ok {
            return Err(invalid(format!(
                "device_id {:?} must be 1 to {} bytes without control characters",
                self.device_id,
                crate::event::ID_LEN_MAX
            )));
        }
        if self.state.is_empty()
            || self.state.len() > STATE_LEN_MAX
            || self.state.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "state {:?} must be 1 to {STATE_LEN_MAX} bytes without control characters",
                self.state
            )));
        }
        for (name, value) in [
            ("rate_ml_per_h", self.rate_ml_per_h),
            ("delivered_ml", self.delivered_ml),
            ("remaining_ml", self.remaining_ml),
            ("battery_percent", self.battery_percent),
            ("downstream_pressure_mmhg", self.downstream_pressure_mmhg),
        ] {
            if !value.is_finite() {
                return Err(invalid(format!("{name} is {value}, not a finite number")));
            }
        }
        if i32::try_from(self.bucket_s).is_err() {
            return Err(invalid(format!("bucket_s {} is too large", self.bucket_s)));
        }
        Ok(())
    }
}

/// How long telemetry is kept at which resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelemetryRetention {
    /// Samples younger than this stay at full resolution (default 7 days).
    pub full_resolution_for: SignedDuration,
    /// Older samples become one row per pump per bucket of this length (default 15 minutes; whole
    /// seconds, at least one).
    pub bucket: SignedDuration,
    /// Rows older than this are removed; `None` (the default) keeps them forever.
    pub keep_for: Option<SignedDuration>,
}

impl Default for TelemetryRetention {
    fn default() -> TelemetryRetention {
        TelemetryRetention {
            full_resolution_for: SignedDuration::from_hours(7 * 24),
            bucket: SignedDuration::from_mins(15),
            keep_for: None,
        }
    }
}

impl TelemetryRetention {
    fn check(&self) -> Result<(), RecordError> {
        let invalid = |reason: &str| RecordError::InvalidEvent {
            what: "telemetry retention".into(),
            reason: reason.into(),
        };
        if self.bucket < SignedDuration::from_secs(1)
            || self.bucket.subsec_nanos() != 0
            || self.bucket > SignedDuration::from_hours(24 * 366)
        {
            return Err(invalid(
                "the bucket must be whole seconds, from 1 second to a year",
            ));
        }
        if self.full_resolution_for.is_negative() || self.keep_for.is_some_and(|k| k.is_negative())
        {
            return Err(invalid("periods cannot be negative"));
        }
        Ok(())
    }
}

/// The cutoffs of one [`Store::compact_telemetry`] run, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Plan {
    bucket_ms: i64,
    cutoff_ms: i64,
    remove_before_ms: Option<i64>,
    pack_before_ms: i64,
}

/// What one [`Store::compact_telemetry`] run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// Full-resolution samples replaced by buckets.
    pub samples_downsampled: u64,
    /// Bucket rows written in their place.
    pub buckets_written: u64,
    /// Rows (samples or buckets) removed because they were older than `keep_for`, packed samples included.
    pub rows_removed: u64,
    /// Full-resolution samples packed into blocks (one per pump and hour, lossless).
    pub samples_packed: u64,
    /// Blocks written: new ones, and ones rewritten with samples added or taken out.
    pub blocks_written: u64,
    /// Patients whose telemetry could not be compacted, each with why and what to do (a damaged block); the
    /// run went on with the others.
    pub failures: Vec<String>,
    /// Transactions used (each one short).
    pub transactions: u64,
}

impl CompactReport {
    /// True when the run changed nothing.
    pub fn is_empty(&self) -> bool {
        self.samples_downsampled == 0
            && self.rows_removed == 0
            && self.samples_packed == 0
            && self.failures.is_empty()
    }
}

fn to_ms(at: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(at.as_millisecond()).unwrap_or(at)
}

fn sample_from_row<R>(row: &R) -> Result<TelemetrySample, RecordError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: sqlx::Type<R::Database> + for<'r> sqlx::Decode<'r, R::Database>,
    i32: sqlx::Type<R::Database> + for<'r> sqlx::Decode<'r, R::Database>,
    f64: sqlx::Type<R::Database> + for<'r> sqlx::Decode<'r, R::Database>,
    bool: sqlx::Type<R::Database> + for<'r> sqlx::Decode<'r, R::Database>,
    String: sqlx::Type<R::Database> + for<'r> sqlx::Decode<'r, R::Database>,
{
    let at_ms: i64 = row.try_get("at_ms").map_err(RecordError::Database)?;
    let corrupt = |reason: String| RecordError::Corrupt { id: 0, reason };
    let bucket_s: i32 = row.try_get("bucket_s").map_err(RecordError::Database)?;
    Ok(TelemetrySample {
        patient: PatientId::new(
            row.try_get::<String, _>("patient_id")
                .map_err(RecordError::Database)?,
        )?,
        device_id: row.try_get("device_id").map_err(RecordError::Database)?,
        at: Timestamp::from_millisecond(at_ms)
            .map_err(|e| corrupt(format!("telemetry at {at_ms} ms: {e}")))?,
        bucket_s: u32::try_from(bucket_s).unwrap_or(0),
        state: row.try_get("state").map_err(RecordError::Database)?,
        rate_ml_per_h: row
            .try_get("rate_ml_per_h")
            .map_err(RecordError::Database)?,
        delivered_ml: row.try_get("delivered_ml").map_err(RecordError::Database)?,
        remaining_ml: row.try_get("remaining_ml").map_err(RecordError::Database)?,
        battery_percent: row
            .try_get("battery_percent")
            .map_err(RecordError::Database)?,
        mains_present: row
            .try_get("mains_present")
            .map_err(RecordError::Database)?,
        downstream_pressure_mmhg: row
            .try_get("downstream_pressure_mmhg")
            .map_err(RecordError::Database)?,
        teaching: row.try_get("teaching").map_err(RecordError::Database)?,
    })
}

/// Merges samples from the table with samples from legacy events: one per (device, millisecond), the
/// table's when both hold one, in time order (then device).
pub(crate) fn merge_samples(
    rows: Vec<TelemetrySample>,
    legacy: Vec<TelemetrySample>,
) -> Vec<TelemetrySample> {
    let mut merged: BTreeMap<(i64, String), TelemetrySample> = BTreeMap::new();
    for sample in legacy.into_iter().chain(rows) {
        merged.insert(
            (sample.at.as_millisecond(), sample.device_id.clone()),
            sample,
        );
    }
    merged.into_values().collect()
}

/// One bucket of one pump's full-resolution samples (sorted by time) summed up as one row.
pub(crate) fn downsample(samples: &[TelemetrySample], bucket_s: u32) -> Option<TelemetrySample> {
    let last = samples.last()?;
    let n = samples.len() as f64;
    Some(TelemetrySample {
        bucket_s,
        rate_ml_per_h: samples.iter().map(|s| s.rate_ml_per_h).sum::<f64>() / n,
        mains_present: samples.iter().all(|s| s.mains_present),
        downstream_pressure_mmhg: samples
            .iter()
            .map(|s| s.downstream_pressure_mmhg)
            .fold(f64::NEG_INFINITY, f64::max),
        teaching: samples.iter().any(|s| s.teaching),
        ..last.clone()
    })
}

/// Replaces `samples` (one patient's full-resolution samples of whole buckets) by bucket rows: one per
/// pump and bucket.
pub(crate) fn downsample_all(samples: &[TelemetrySample], bucket_ms: i64) -> Vec<TelemetrySample> {
    let mut groups: BTreeMap<(String, i64), Vec<TelemetrySample>> = BTreeMap::new();
    for s in samples {
        groups
            .entry((
                s.device_id.clone(),
                s.at.as_millisecond().div_euclid(bucket_ms),
            ))
            .or_default()
            .push(s.clone());
    }
    let bucket_s = u32::try_from(bucket_ms / 1000).unwrap_or(u32::MAX);
    groups
        .into_values()
        .filter_map(|mut group| {
            group.sort_by_key(|s| s.at);
            downsample(&group, bucket_s)
        })
        .collect()
}

impl Store {
    /// Appends telemetry samples of any number of pumps and patients in ONE transaction (SQLite
    /// `BEGIN IMMEDIATE`), as multi-row INSERTs of at most 1,000 rows. A sample already stored (same
    /// patient, pump and millisecond) is not stored again. Returns the number of rows written.
    pub async fn append_telemetry(
        &self,
        samples: &[TelemetrySample],
    ) -> Result<usize, RecordError> {
        if samples.len() > TELEMETRY_BATCH_MAX {
            return Err(RecordError::InvalidEvent {
                what: "telemetry batch".into(),
                reason: format!(
                    "has {} samples; split it into batches of at most {TELEMETRY_BATCH_MAX}",
                    samples.len()
                ),
            });
        }
        for (i, s) in samples.iter().enumerate() {
            s.check(i)?;
        }
        if samples.is_empty() {
            return Ok(0);
        }
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool)?;
            let mut written = 0;
            for chunk in samples.chunks(TELEMETRY_INSERT_ROWS_MAX) {
                let mut insert =
                    QueryBuilder::new(format!("INSERT INTO record_telemetry ({SAMPLE_COLUMNS}) "));
                insert.push_values(chunk, |mut values, s| {
                    values
                        .push_bind(s.patient.as_str())
                        .push_bind(s.at.as_millisecond())
                        .push_bind(s.device_id.as_str())
                        .push_bind(i32::try_from(s.bucket_s).unwrap_or(i32::MAX))
                        .push_bind(s.state.as_str())
                        .push_bind(s.rate_ml_per_h)
                        .push_bind(s.delivered_ml)
                        .push_bind(s.remaining_ml)
                        .push_bind(s.battery_percent)
                        .push_bind(s.mains_present)
                        .push_bind(s.downstream_pressure_mmhg)
                        .push_bind(s.teaching);
                });
                insert.push(" ON CONFLICT (patient_id, at_ms, device_id) DO NOTHING");
                let done = insert
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
                written += done.rows_affected() as usize;
            }
            tx.commit().await.map_err(|e| self.err(e))?;
            Ok(written)
        })
    }

    /// The samples of one patient in `[from_ms, to_ms)` that the telemetry tables hold (rows and packed
    /// blocks, one per pump and millisecond), oldest first.
    async fn telemetry_rows(
        &self,
        patient: &PatientId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<TelemetrySample>, RecordError> {
        let (rows, blocks) = on_pool!(self, |pool| {
            // One snapshot for both reads: a retention run that moves samples between the tables meanwhile
            // (rows into a block, a block into buckets) is seen wholly before or wholly after.
            let mut tx = pool.begin().await.map_err(|e| self.err(e))?;
            (*tx).snapshot(self).await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {SAMPLE_COLUMNS} FROM record_telemetry \
                 WHERE patient_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms, device_id"
            )))
            .bind(patient.as_str())
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            let rows = rows
                .iter()
                .map(sample_from_row)
                .collect::<Result<Vec<_>, RecordError>>()?;
            let blocks = (*tx).read_blocks(self, patient, from_ms, to_ms).await?;
            tx.commit().await.map_err(|e| self.err(e))?;
            Ok::<_, RecordError>((rows, blocks))
        })?;
        let packed = blocks
            .into_iter()
            .flat_map(|b| b.samples)
            .filter(|s| (from_ms..to_ms).contains(&s.at.as_millisecond()))
            .collect();
        Ok(merge_samples(rows, packed))
    }

    /// Samples of legacy `telemetry` events in the hash-chained record, without superseded ones.
    async fn legacy_telemetry(
        &self,
        patient: &PatientId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Vec<TelemetrySample>, RecordError> {
        let events = self
            .timeline(&TimelineQuery {
                patient: patient.clone(),
                from,
                to,
                kinds: Kind::names(&[Kind::Telemetry]),
                limit: None,
            })
            .await?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let superseded = self.superseded(patient).await?;
        Ok(events
            .iter()
            .filter(|e| !superseded.contains(&e.id))
            .filter_map(TelemetrySample::from_event)
            .collect())
    }

    /// A patient's telemetry in `[from, to)` (either end open when `None`), oldest first: the rows of
    /// `record_telemetry` merged with the legacy `telemetry` events of the hash-chained record (one
    /// sample per pump and millisecond; the table's when both hold one). Includes practice-pump
    /// (`teaching`) samples; clinical readers leave them out.
    pub async fn telemetry_series(
        &self,
        patient: &PatientId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Vec<TelemetrySample>, RecordError> {
        let from_ms = from.map_or(i64::MIN, |t| t.as_millisecond());
        let to_ms = to.map_or(i64::MAX, |t| t.as_millisecond());
        if from_ms > to_ms {
            return Err(RecordError::InvalidEvent {
                what: "time range".into(),
                reason: "`from` is after `to`".into(),
            });
        }
        let rows = self.telemetry_rows(patient, from_ms, to_ms).await?;
        let legacy = self.legacy_telemetry(patient, from, to).await?;
        Ok(merge_samples(rows, legacy))
    }

    /// The newest telemetry sample of each pump of a patient (table and legacy events), by pump.
    pub async fn latest_telemetry(
        &self,
        patient: &PatientId,
    ) -> Result<Vec<TelemetrySample>, RecordError> {
        let legacy: Vec<StoredEvent> = on_pool!(self, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                crate::store::columns!(),
                " FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY device_id ORDER BY occurred_at_us DESC, id DESC) AS newest",
                " FROM record_events WHERE patient_id = $1 AND kind = 'telemetry') AS latest",
                " WHERE newest = 1 ORDER BY device_id"
            ))
            .bind(patient.as_str())
            .fetch_all(pool)
            .await
            .map_err(|e| self.err(e))?;
            rows.iter()
                .map(crate::store::event_from_row)
                .collect::<Result<Vec<_>, RecordError>>()
        })?;
        // The newest row and the newest block of each pump (a pump silent for over an hour has its newest
        // sample packed), read in one snapshot so a retention run in between cannot hide either.
        let (rows, packed) = on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(|e| self.err(e))?;
            (*tx).snapshot(self).await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {SAMPLE_COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER \
                 (PARTITION BY device_id ORDER BY at_ms DESC) AS newest \
                 FROM record_telemetry WHERE patient_id = $1) AS latest WHERE newest = 1"
            )))
            .bind(patient.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .iter()
            .map(sample_from_row)
            .collect::<Result<Vec<_>, RecordError>>()?;
            let blocks = sqlx::query(
                "SELECT block_ms, device_id, data FROM (SELECT block_ms, device_id, data, ROW_NUMBER() OVER \
                 (PARTITION BY device_id ORDER BY block_ms DESC) AS newest \
                 FROM record_telemetry_blocks WHERE patient_id = $1) AS latest WHERE newest = 1",
            )
            .bind(patient.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            tx.commit().await.map_err(|e| self.err(e))?;
            let mut packed = Vec::with_capacity(blocks.len());
            for row in &blocks {
                let block_ms: i64 = row.try_get(0).map_err(|e| self.err(e))?;
                let device_id: String = row.try_get(1).map_err(|e| self.err(e))?;
                let data: Vec<u8> = row.try_get(2).map_err(|e| self.err(e))?;
                packed.extend(block::decode(patient, &device_id, block_ms, &data)?.pop());
            }
            Ok::<_, RecordError>((rows, packed))
        })?;
        let mut newest: BTreeMap<String, TelemetrySample> = BTreeMap::new();
        for sample in legacy
            .iter()
            .filter_map(TelemetrySample::from_event)
            .chain(packed)
            .chain(rows)
        {
            match newest.get(&sample.device_id) {
                Some(kept) if kept.at > sample.at => {}
                _ => {
                    newest.insert(sample.device_id.clone(), sample);
                }
            }
        }
        Ok(newest.into_values().collect())
    }

    /// Applies the retention policy to the telemetry tables (the legacy events in the hash-chained record
    /// are never touched). Full-resolution samples whose hour ended at least an hour before `now` are packed,
    /// losslessly, into one block per pump and hour (`record_telemetry_blocks`), which is what keeps a
    /// pump-day small; readers see no difference. Full-resolution samples (rows or packed) older than
    /// `now - full_resolution_for` become one row per pump per bucket (whole buckets only; the last state, mean rate, last delivered, remaining
    /// and battery, highest pressure, mains present only if present throughout), and rows older than
    /// `now - keep_for` are removed. Works patient by patient in short transactions of at most
    /// 16 buckets or 5,000 removed rows, so writers never wait long. Idempotent: bucket rows are never
    /// downsampled again, and a second run with the same `now` changes nothing. A sample that arrives
    /// older than its patient's newest bucket row stays at full resolution (until `keep_for`).
    pub async fn compact_telemetry(
        &self,
        now: Timestamp,
        policy: &TelemetryRetention,
    ) -> Result<CompactReport, RecordError> {
        policy.check()?;
        // Periods beyond what milliseconds since 1970 can hold mean "never".
        let ms = |d: SignedDuration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let bucket_ms = ms(policy.bucket);
        let now_ms = now.as_millisecond();
        // Only whole buckets that lie entirely before the cutoff are downsampled.
        let cutoff_ms = now_ms.saturating_sub(ms(policy.full_resolution_for));
        let cutoff_ms = cutoff_ms.div_euclid(bucket_ms) * bucket_ms;
        let remove_before_ms = policy.keep_for.map(|k| now_ms.saturating_sub(ms(k)));
        let pack_before_ms = block::block_of(now_ms.saturating_sub(PACK_AFTER_MS));
        let plan = Plan {
            bucket_ms,
            cutoff_ms,
            remove_before_ms,
            pack_before_ms,
        };
        let mut report = CompactReport::default();
        let mut after = String::new();
        while let Some(patient) = self.next_telemetry_patient(&after).await? {
            // A damaged block stops only its own patient: the others' retention goes on.
            match self.compact_patient(&patient, &plan, &mut report).await {
                Err(e @ RecordError::Corrupt { .. }) => {
                    report.failures.push(format!("patient {patient}: {e}"));
                }
                other => other?,
            }
            after = patient;
        }
        Ok(report)
    }

    /// One patient's share of [`Store::compact_telemetry`].
    async fn compact_patient(
        &self,
        patient: &str,
        plan: &Plan,
        report: &mut CompactReport,
    ) -> Result<(), RecordError> {
        let Plan {
            bucket_ms,
            cutoff_ms,
            remove_before_ms,
            pack_before_ms,
        } = *plan;
        let patient_id = PatientId::new(patient)?;
        if let Some(before) = remove_before_ms {
            loop {
                let removed = self.remove_telemetry_chunk(patient, before).await?;
                report.transactions += 1;
                report.rows_removed += removed;
                if removed == 0 {
                    break;
                }
            }
            let (removed, rewritten) = self.remove_packed_before(&patient_id, before).await?;
            report.transactions += 1;
            report.rows_removed += removed;
            report.blocks_written += rewritten;
        }
        // Buckets are written oldest first and only below the cutoff, so a patient's newest bucket
        // row before the cutoff marks where the full-resolution samples to downsample begin (found by
        // walking the key backwards from the cutoff over at most the samples since the last run).
        let mut from_ms = self
            .newest_bucket_before(patient, cutoff_ms)
            .await?
            .map_or(i64::MIN, |at| at.saturating_add(1));
        while let Some(first_ms) = self.oldest_full_sample(patient, from_ms).await? {
            let start = first_ms.div_euclid(bucket_ms) * bucket_ms;
            let end = start
                .saturating_add(bucket_ms.saturating_mul(COMPACT_BUCKETS_PER_TRANSACTION))
                .min(cutoff_ms);
            if end <= start {
                break;
            }
            let (replaced, written, rewritten) = self
                .downsample_window(&patient_id, start, end, bucket_ms)
                .await?;
            report.transactions += 1;
            report.samples_downsampled += replaced;
            report.buckets_written += written;
            report.blocks_written += rewritten;
            from_ms = end;
        }
        // What is left at full resolution before the hour that ended an hour ago is packed, hour by hour.
        let mut from_ms = cutoff_ms;
        while let Some(first_ms) = self.oldest_full_row(patient, from_ms).await? {
            if first_ms >= pack_before_ms {
                break;
            }
            let start = block::block_of(first_ms);
            let end = start
                .saturating_add(BLOCK_MS.saturating_mul(PACK_BLOCKS_PER_TRANSACTION))
                .min(pack_before_ms);
            let (packed, written) = self.pack_window(&patient_id, start, end).await?;
            report.transactions += 1;
            report.samples_packed += packed;
            report.blocks_written += written;
            from_ms = end;
        }
        Ok(())
    }

    /// One transaction: a patient's full-resolution rows in `[start, end)` (whole hours) packed into their
    /// pumps' blocks, merged with what those blocks already hold (a sample sent again after its hour was
    /// packed). An hour with more than `PACK_SAMPLES_MAX` samples stays as rows. Returns (samples packed,
    /// blocks written).
    async fn pack_window(
        &self,
        patient: &PatientId,
        start: i64,
        end: i64,
    ) -> Result<(u64, u64), RecordError> {
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool)?;
            (*tx).lock_telemetry(self, patient).await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {SAMPLE_COLUMNS} FROM record_telemetry WHERE patient_id = $1 \
                 AND bucket_s = 0 AND at_ms >= $2 AND at_ms < $3 ORDER BY device_id, at_ms"
            )))
            .bind(patient.as_str())
            .bind(start)
            .bind(end)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            let mut hours: BTreeMap<(String, i64), Vec<TelemetrySample>> = BTreeMap::new();
            for row in &rows {
                let sample = sample_from_row(row)?;
                hours
                    .entry((
                        sample.device_id.clone(),
                        block::block_of(sample.at.as_millisecond()),
                    ))
                    .or_default()
                    .push(sample);
            }
            let mut existing: BTreeMap<(String, i64), Vec<TelemetrySample>> = (*tx)
                .read_blocks(self, patient, start, end)
                .await?
                .into_iter()
                .map(|b| ((b.device_id, b.block_ms), b.samples))
                .collect();
            let (mut packed, mut remove, mut write) = (0, Vec::new(), Vec::new());
            for ((device_id, block_ms), seen) in hours {
                let old = existing.remove(&(device_id.clone(), block_ms));
                if old.as_ref().map_or(0, Vec::len) + seen.len() > PACK_SAMPLES_MAX {
                    continue;
                }
                // What is packed is what this DELETE takes, so a row written since the SELECT is not lost.
                let taken = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM record_telemetry WHERE patient_id = $1 AND device_id = $2 \
                     AND bucket_s = 0 AND at_ms >= $3 AND at_ms < $4 RETURNING {SAMPLE_COLUMNS}"
                )))
                .bind(patient.as_str())
                .bind(device_id.as_str())
                .bind(block_ms)
                .bind(block_ms.saturating_add(BLOCK_MS))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| self.err(e))?
                .iter()
                .map(sample_from_row)
                .collect::<Result<Vec<_>, RecordError>>()?;
                let count = taken.len() as u64;
                let merged = block::merge(old.iter().flatten().cloned().chain(taken));
                if merged.len() > BLOCK_SAMPLES_MAX {
                    return Err(RecordError::InvalidEvent {
                        what: format!(
                            "telemetry of pump {device_id:?} in the hour from {block_ms} ms"
                        ),
                        reason: format!(
                            "{} samples arrived while it was being packed, more than a block holds \
                             ({BLOCK_SAMPLES_MAX}); nothing was changed, and the next retention run tries again",
                            merged.len()
                        ),
                    });
                }
                if old.is_some() {
                    remove.push((block_ms, device_id.clone()));
                }
                packed += count;
                write.push(Block {
                    block_ms,
                    device_id,
                    samples: merged,
                });
            }
            (*tx).replace_blocks(self, patient, &remove, &write).await?;
            tx.commit().await.map_err(|e| self.err(e))?;
            Ok((packed, write.len() as u64))
        })
    }

    /// One transaction: a patient's packed samples older than `before_ms` removed (whole blocks, and the
    /// older part of the block `before_ms` falls in). Returns (samples removed, blocks rewritten).
    async fn remove_packed_before(
        &self,
        patient: &PatientId,
        before_ms: i64,
    ) -> Result<(u64, u64), RecordError> {
        let whole_before = block::block_of(before_ms);
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool)?;
            (*tx).lock_telemetry(self, patient).await?;
            let whole: i64 = sqlx::query_scalar(
                "SELECT COALESCE(SUM(samples), 0) FROM record_telemetry_blocks \
                 WHERE patient_id = $1 AND block_ms < $2",
            )
            .bind(patient.as_str())
            .bind(whole_before)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            sqlx::query(
                "DELETE FROM record_telemetry_blocks WHERE patient_id = $1 AND block_ms < $2",
            )
            .bind(patient.as_str())
            .bind(whole_before)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            let mut removed = u64::try_from(whole).unwrap_or(0);
            let (mut remove, mut write) = (Vec::new(), Vec::new());
            for mut b in (*tx)
                .read_blocks(self, patient, before_ms, before_ms)
                .await?
            {
                let before = b.samples.len();
                b.samples.retain(|s| s.at.as_millisecond() >= before_ms);
                if b.samples.len() < before {
                    removed += (before - b.samples.len()) as u64;
                    remove.push((b.block_ms, b.device_id.clone()));
                    write.push(b);
                }
            }
            (*tx).replace_blocks(self, patient, &remove, &write).await?;
            tx.commit().await.map_err(|e| self.err(e))?;
            Ok((
                removed,
                write.iter().filter(|b| !b.samples.is_empty()).count() as u64,
            ))
        })
    }

    /// The first patient id after `after` with rows or blocks in the telemetry tables (a seek on each key).
    async fn next_telemetry_patient(&self, after: &str) -> Result<Option<String>, RecordError> {
        on_pool!(self, |pool| {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT MIN(patient_id) FROM (\
                 SELECT MIN(patient_id) AS patient_id FROM record_telemetry WHERE patient_id > $1 UNION ALL \
                 SELECT MIN(patient_id) FROM record_telemetry_blocks WHERE patient_id > $1) AS next",
            )
            .bind(after)
            .fetch_one(pool)
            .await
            .map_err(|e| self.err(e))
        })
    }

    /// The time of a patient's newest bucket row before `before_ms`: a walk back along the key.
    async fn newest_bucket_before(
        &self,
        patient: &str,
        before_ms: i64,
    ) -> Result<Option<i64>, RecordError> {
        on_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT at_ms FROM record_telemetry WHERE patient_id = $1 AND at_ms < $2 \
                 AND bucket_s > 0 ORDER BY at_ms DESC LIMIT 1",
            )
            .bind(patient)
            .bind(before_ms)
            .fetch_optional(pool)
            .await
            .map_err(|e| self.err(e))
        })
    }

    /// Where a patient's full-resolution samples at or after `from_ms` begin, rows or packed (for a block
    /// that began earlier: `from_ms`).
    async fn oldest_full_sample(
        &self,
        patient: &str,
        from_ms: i64,
    ) -> Result<Option<i64>, RecordError> {
        let row = self.oldest_full_row(patient, from_ms).await?;
        let packed: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT MIN(block_ms) FROM record_telemetry_blocks WHERE patient_id = $1 AND block_ms > $2",
            )
            .bind(patient)
            .bind(from_ms.saturating_sub(BLOCK_MS))
            .fetch_one(pool)
            .await
            .map_err(|e| self.err(e))
        })?;
        Ok(row.into_iter().chain(packed.map(|b| b.max(from_ms))).min())
    }

    /// The time of a patient's oldest full-resolution row at or after `from_ms`: a walk along the key.
    async fn oldest_full_row(
        &self,
        patient: &str,
        from_ms: i64,
    ) -> Result<Option<i64>, RecordError> {
        on_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT at_ms FROM record_telemetry WHERE patient_id = $1 AND at_ms >= $2 \
                 AND bucket_s = 0 ORDER BY at_ms LIMIT 1",
            )
            .bind(patient)
            .bind(from_ms)
            .fetch_optional(pool)
            .await
            .map_err(|e| self.err(e))
        })
    }

    /// One transaction: a patient's full-resolution samples in `[start, end)` (whole buckets), rows and
    /// packed, replaced by their bucket rows; a block reaching outside the window keeps the rest. Returns
    /// (samples replaced, buckets written, blocks rewritten).
    async fn downsample_window(
        &self,
        patient: &PatientId,
        start: i64,
        end: i64,
        bucket_ms: i64,
    ) -> Result<(u64, u64, u64), RecordError> {
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool)?;
            (*tx).lock_telemetry(self, patient).await?;
            // What is downsampled is what this DELETE takes, so a row written meanwhile is not lost.
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM record_telemetry WHERE patient_id = $1 \
                 AND bucket_s = 0 AND at_ms >= $2 AND at_ms < $3 RETURNING {SAMPLE_COLUMNS}"
            )))
            .bind(patient.as_str())
            .bind(start)
            .bind(end)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            let rows = rows
                .iter()
                .map(sample_from_row)
                .collect::<Result<Vec<_>, RecordError>>()?;
            let (mut inside, mut remove, mut rest) = (Vec::new(), Vec::new(), Vec::new());
            for mut b in (*tx).read_blocks(self, patient, start, end).await? {
                let (within, outside): (Vec<_>, Vec<_>) = b
                    .samples
                    .drain(..)
                    .partition(|s| (start..end).contains(&s.at.as_millisecond()));
                if within.is_empty() {
                    // Reaches into the window but holds nothing in it: left as it is.
                    continue;
                }
                remove.push((b.block_ms, b.device_id.clone()));
                inside.extend(within);
                b.samples = outside;
                rest.push(b);
            }
            let samples = merge_samples(rows, inside);
            let buckets = downsample_all(&samples, bucket_ms);
            (*tx).replace_blocks(self, patient, &remove, &rest).await?;
            let rewritten = rest.iter().filter(|b| !b.samples.is_empty()).count() as u64;
            let mut written = 0;
            for chunk in buckets.chunks(TELEMETRY_INSERT_ROWS_MAX) {
                let mut insert =
                    QueryBuilder::new(format!("INSERT INTO record_telemetry ({SAMPLE_COLUMNS}) "));
                insert.push_values(chunk, |mut values, s| {
                    values
                        .push_bind(s.patient.as_str())
                        .push_bind(s.at.as_millisecond())
                        .push_bind(s.device_id.as_str())
                        .push_bind(i32::try_from(s.bucket_s).unwrap_or(i32::MAX))
                        .push_bind(s.state.as_str())
                        .push_bind(s.rate_ml_per_h)
                        .push_bind(s.delivered_ml)
                        .push_bind(s.remaining_ml)
                        .push_bind(s.battery_percent)
                        .push_bind(s.mains_present)
                        .push_bind(s.downstream_pressure_mmhg)
                        .push_bind(s.teaching);
                });
                insert.push(" ON CONFLICT (patient_id, at_ms, device_id) DO NOTHING");
                written += insert
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?
                    .rows_affected();
            }
            tx.commit().await.map_err(|e| self.err(e))?;
            Ok((samples.len() as u64, written, rewritten))
        })
    }

    /// One transaction: removes up to about 5,000 of a patient's rows older than `before_ms`.
    async fn remove_telemetry_chunk(
        &self,
        patient: &str,
        before_ms: i64,
    ) -> Result<u64, RecordError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM record_telemetry WHERE patient_id = $1 AND at_ms < $2 AND at_ms <= \
                 (SELECT MAX(at_ms) FROM (SELECT at_ms FROM record_telemetry \
                 WHERE patient_id = $1 AND at_ms < $2 ORDER BY at_ms LIMIT $3) AS chunk)",
            )
            .bind(patient)
            .bind(before_ms)
            .bind(REMOVE_ROWS_PER_TRANSACTION)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(|e| self.err(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(device: &str, at_s: i64, state: &str, pressure: f64, mains: bool) -> TelemetrySample {
        TelemetrySample {
            patient: PatientId::new("p-1").unwrap(),
            device_id: device.into(),
            at: Timestamp::from_second(at_s).unwrap(),
            bucket_s: 0,
            state: state.into(),
            rate_ml_per_h: at_s as f64,
            delivered_ml: at_s as f64 / 10.0,
            remaining_ml: 100.0 - at_s as f64 / 10.0,
            battery_percent: 90.0,
            mains_present: mains,
            downstream_pressure_mmhg: pressure,
            teaching: false,
        }
    }

    #[test]
    fn a_bucket_keeps_the_last_state_the_mean_rate_and_the_highest_pressure() {
        let samples = vec![
            sample("a", 0, "infusing", 80.0, true),
            sample("a", 60, "stopped_by_alarm", 400.0, false),
            sample("a", 120, "paused", 90.0, true),
        ];
        let b = downsample(&samples, 900).unwrap();
        assert_eq!(b.state, "paused");
        assert_eq!(b.at, samples[2].at);
        assert_eq!(b.bucket_s, 900);
        assert_eq!(b.rate_ml_per_h, 60.0);
        assert_eq!(b.delivered_ml, 12.0);
        assert_eq!(b.downstream_pressure_mmhg, 400.0);
        assert!(!b.mains_present);
    }

    #[test]
    fn buckets_are_per_pump_and_aligned() {
        let samples = vec![
            sample("a", 0, "infusing", 1.0, true),
            sample("b", 10, "infusing", 2.0, true),
            sample("a", 899, "infusing", 3.0, true),
            sample("a", 900, "paused", 4.0, true),
        ];
        let buckets = downsample_all(&samples, 900_000);
        let got: Vec<(&str, i64, f64)> = buckets
            .iter()
            .map(|b| {
                (
                    b.device_id.as_str(),
                    b.at.as_second(),
                    b.downstream_pressure_mmhg,
                )
            })
            .collect();
        assert_eq!(got, vec![("a", 899, 3.0), ("a", 900, 4.0), ("b", 10, 2.0)]);
    }

    #[test]
    fn the_table_wins_over_a_legacy_event_of_the_same_millisecond() {
        let legacy = vec![
            sample("a", 0, "infusing", 1.0, true),
            sample("a", 60, "x", 1.0, true),
        ];
        let rows = vec![
            sample("a", 60, "paused", 2.0, true),
            sample("a", 30, "y", 1.0, true),
        ];
        let merged = merge_samples(rows, legacy);
        let got: Vec<(i64, &str)> = merged
            .iter()
            .map(|s| (s.at.as_second(), s.state.as_str()))
            .collect();
        assert_eq!(got, vec![(0, "infusing"), (30, "y"), (60, "paused")]);
    }
}

//! The record as the screens and the API use it: append an event a person made (a checklist tick, a symptom
//! check, a step of an alarm's guide), read a patient's timeline, check that the database answers.

use crate::domain::EventDraft;
use crate::error::AppError;
pub use crate::journal::Entry;
use crate::services::AppState;

/// Append one event; returns its id in the record.
pub async fn append(state: &AppState, event: EventDraft) -> Result<i64, AppError> {
    Ok(state.journal.append_one(event).await?)
}

/// The newest `limit` events of a patient over the last `days`, newest first, optionally only some kinds.
pub async fn timeline(
    state: &AppState,
    patient_id: &str,
    kinds: &[String],
    limit: usize,
    days: i64,
) -> Result<Vec<Entry>, AppError> {
    Ok(state
        .journal
        .timeline(patient_id, kinds, limit, days)
        .await?)
}

/// A patient's telemetry over the last `days`, newest first (the record's telemetry table and the legacy
/// `telemetry` events), as entries of kind `telemetry`.
pub async fn telemetry(
    state: &AppState,
    patient_id: &str,
    days: i64,
) -> Result<Vec<Entry>, AppError> {
    Ok(state.journal.telemetry(patient_id, days).await?)
}

/// A patient's telemetry samples over the last `days`, oldest first (the record's telemetry table and the
/// legacy `telemetry` events, merged), as the record holds them.
pub async fn telemetry_samples(
    state: &AppState,
    patient_id: &str,
    days: i64,
) -> Result<Vec<record::TelemetrySample>, AppError> {
    Ok(state.journal.telemetry_samples(patient_id, days).await?)
}

/// A patient's events over the last `days` for the charts: the timeline (newest `limit` events), with its
/// legacy `telemetry` events replaced by the whole telemetry series (table and legacy events), newest first.
pub async fn timeline_with_telemetry(
    state: &AppState,
    patient_id: &str,
    limit: usize,
    days: i64,
) -> Result<Vec<Entry>, AppError> {
    let events = timeline(state, patient_id, &[], limit, days).await?;
    let telemetry = telemetry(state, patient_id, days).await?;
    Ok(merge_telemetry(events, telemetry))
}

/// `events` (newest first) without their `telemetry` events, and `telemetry` (newest first, which already
/// holds the legacy events' samples) merged in, newest first; at equal times events come first, as the
/// record orders them by id.
pub fn merge_telemetry(events: Vec<Entry>, telemetry: Vec<Entry>) -> Vec<Entry> {
    let mut merged: Vec<Entry> = events
        .into_iter()
        .filter(|e| e.kind != record::Kind::Telemetry.name())
        .chain(telemetry)
        .collect();
    merged.sort_by_key(|e| std::cmp::Reverse(e.occurred_at));
    merged
}

/// Whether the database answers (for `/healthz`).
pub async fn database_answers(state: &AppState) -> bool {
    crate::store::ping(&state.db).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::http::web::log::charts_svg;
    use crate::journal::Journal;

    use super::*;

    /// A store in a temporary directory, removed at the end.
    struct TempStore(std::path::PathBuf, Arc<record::Store>);

    impl Drop for TempStore {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    async fn temp_store(label: &str) -> TempStore {
        let dir = std::env::temp_dir().join(format!(
            "infusafe-charts-{label}-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond()
        ));
        let store = record::Store::open(record::Config::new(record::default_database_url(&dir)))
            .await
            .unwrap();
        TempStore(dir, Arc::new(store))
    }

    fn sample(at: jiff::Timestamp, i: usize) -> record::TelemetrySample {
        record::TelemetrySample {
            patient: record::PatientId::new("pat_1").unwrap(),
            device_id: "dev_1".into(),
            at,
            bucket_s: 0,
            state: "infusing".into(),
            rate_ml_per_h: 100.0,
            delivered_ml: i as f64 * 1.5,
            remaining_ml: 200.0 - i as f64 * 1.5,
            battery_percent: 90.0,
            mains_present: true,
            downstream_pressure_mmhg: 80.0,
            teaching: false,
        }
    }

    fn event(seq: u64, at: jiff::Timestamp, body: record::Body) -> record::NewEvent {
        record::NewEvent {
            patient: record::PatientId::new("pat_1").unwrap(),
            device_id: "dev_1".into(),
            device_seq: seq,
            occurred_at: at,
            local_offset_s: 0,
            source: record::Source::Pump,
            actor: "dev_1".into(),
            teaching: false,
            body,
        }
    }

    fn as_event(s: &record::TelemetrySample, seq: u64) -> record::NewEvent {
        event(
            seq,
            s.at,
            record::Body::Telemetry {
                state: s.state.clone(),
                rate_ml_per_h: s.rate_ml_per_h,
                delivered_ml: s.delivered_ml,
                remaining_ml: s.remaining_ml,
                battery_percent: s.battery_percent,
                mains_present: s.mains_present,
                downstream_pressure_mmhg: s.downstream_pressure_mmhg,
            },
        )
    }

    /// What the log page and the nurse's patient page draw, from the journal as they read it.
    async fn charts(journal: &Journal, now: jiff::Timestamp) -> (String, String, usize) {
        let events = journal.timeline("pat_1", &[], 5000, 7).await.unwrap();
        let telemetry = journal.telemetry("pat_1", 7).await.unwrap();
        let merged = merge_telemetry(events, telemetry);
        let points = merged.iter().filter(|e| e.kind == "telemetry").count();
        let plan = serde_json::json!({"program": {"rate_ml_per_h": 100.0, "vtbi_ml": 200.0}});
        let (volume, alarms) = charts_svg(&merged, None, Some(&plan), 7, now.as_millisecond());
        (volume, alarms, points)
    }

    #[tokio::test]
    async fn charts_are_the_same_from_legacy_events_table_rows_or_both() {
        let now = jiff::Timestamp::now();
        let start = now - jiff::SignedDuration::from_hours(1);
        let samples: Vec<record::TelemetrySample> = (0..40)
            .map(|i| {
                sample(
                    start + jiff::SignedDuration::from_secs(60 * (i as i64 + 1)),
                    i,
                )
            })
            .collect();
        let started = || {
            event(
                1,
                start,
                record::Body::InfusionStarted {
                    drug_id: None,
                    rate_ml_per_h: 100.0,
                    vtbi_ml: 200.0,
                },
            )
        };
        let mut drawn = Vec::new();
        for how in ["events", "rows", "both"] {
            let db = temp_store(how).await;
            let store = &db.1;
            store.append(&[started()]).await.unwrap();
            match how {
                "events" => {
                    let events: Vec<_> = (2..)
                        .zip(&samples)
                        .map(|(seq, s)| as_event(s, seq))
                        .collect();
                    store.append(&events).await.unwrap();
                }
                "rows" => {
                    store.append_telemetry(&samples).await.unwrap();
                }
                _ => {
                    let (old, new) = samples.split_at(20);
                    let events: Vec<_> = (2..).zip(old).map(|(seq, s)| as_event(s, seq)).collect();
                    store.append(&events).await.unwrap();
                    store.append_telemetry(new).await.unwrap();
                }
            }
            drawn.push(charts(&Journal::new(store.clone(), 1, false), now).await);
        }
        assert_eq!(drawn[0].2, 40, "every sample is a point");
        assert!(drawn[0].0.contains("<svg"), "{}", drawn[0].0);
        assert_eq!(
            drawn[0], drawn[1],
            "legacy events and table rows draw the same charts"
        );
        assert_eq!(
            drawn[0], drawn[2],
            "legacy events and table rows draw the same charts"
        );
    }
}

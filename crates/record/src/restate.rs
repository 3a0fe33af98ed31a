//! Restatements (migration 3): a pump that says again what the record already holds about its state.
//!
//! A pump may report its state on a clock rather than on a change (the load of issue 15 sends
//! `state_changed {"state": "infusing"}` once a minute; a PCD gateway restates its status the same way). Each
//! such report as a hash-chained event would cost the record about 620 bytes (SQLite) for nothing new: 1,440
//! a pump-day. So [`Store::append`] records the first report of a state, and counts each identical report that
//! follows as a **restatement** of it in `record_restatements`, one row per pump: which event it restates, how
//! many times, the last sequence number and when. That row is written in the append's transaction, so an
//! acknowledged restatement is durable like any event; it is status, not history, and is updated on the
//! pump's next state report.
//!
//! What counts, deliberately narrow (anything else is recorded as before):
//! - a `state_changed` event from the pump itself (`Source::Pump`), of one of [`RESTATABLE_KINDS`];
//! - whose payload, without the stamps a server adds to every pump event (`device_id`, `seq`), is identical to
//!   that pump's last **recorded** `state_changed` for the same patient;
//! - and that names no transition: no `from`, or `from` equal to `to`. `{from: infusing, to: paused}` twice is
//!   a contradiction worth keeping, not a restatement.
//!
//! A report that differs in any field is a change and is recorded; the pump's next identical reports restate
//! that one. Every other kind, alarms included, is always recorded.

use crate::append::stated_from_row;
use crate::chain::canonical_json;
use crate::error::RecordError;
use crate::event::{EventId, PatientId, PreparedEvent, Source};
use crate::store::{Store, on_pool};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Kinds a pump may restate: reports of its state, whose repetition unchanged says nothing new.
pub const RESTATABLE_KINDS: &[&str] = &["state_changed"];

/// Payload fields a server stamps on every pump event (which pump, which number): not what the pump states.
const STAMPS: &[&str] = &["device_id", "seq"];

/// Columns of `record_restatements`, in the order [`Stated`] is written and read.
pub(crate) const COLUMNS: &str = "device_id, patient_id, kind, statement, event_id, restated, \
     last_seq, last_occurred_at_us, last_recorded_at_us";

/// What a restatable event states: its payload without the stamps, canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    pub text: String,
    /// Names no transition, so an identical later report restates it.
    pub restatable: bool,
}

/// The statement of `e`, if `e` is a pump's report of its state.
pub(crate) fn statement(e: &PreparedEvent) -> Option<Statement> {
    if e.source != Source::Pump || !RESTATABLE_KINDS.contains(&e.kind.as_str()) {
        return None;
    }
    let mut value: serde_json::Value = serde_json::from_str(&e.payload).ok()?;
    let fields = value.as_object_mut()?;
    for stamp in STAMPS {
        fields.remove(*stamp);
    }
    let restatable = match fields.get("from") {
        None => true,
        Some(from) => fields.get("to") == Some(from),
    };
    Some(Statement {
        text: canonical_json(&value),
        restatable,
    })
}

/// The recorded event a pump's state report stands for: its id, or (new in this batch) its index in the batch
/// until ids are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Id(i64),
    Index(usize),
}

/// One pump's row of `record_restatements`: its last recorded state report and what restated it since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stated {
    pub patient: String,
    pub kind: String,
    pub statement: String,
    pub event: Target,
    pub restated: i64,
    pub last_seq: i64,
    pub last_occurred_at_us: i64,
    pub last_recorded_at_us: i64,
}

/// A batch's fresh events after restatements are taken out.
#[derive(Debug, Default)]
pub(crate) struct Folding {
    /// Indices of the events to write to the chain, in batch order.
    pub write: Vec<usize>,
    /// Events that restate a recorded one: (index, the recorded event, already counted before).
    pub restated: Vec<(usize, Target, bool)>,
    /// The rows to write, by pump: every pump that reported its state in this batch.
    pub rows: BTreeMap<String, Stated>,
}

/// The pumps whose state rows a batch needs: those with a state report among the fresh events.
pub(crate) fn devices<'a>(prepared: &'a [PreparedEvent], fresh: &[usize]) -> Vec<&'a str> {
    let devices: BTreeSet<&str> = fresh
        .iter()
        .map(|&i| &prepared[i])
        .filter(|e| statement(e).is_some())
        .map(|e| e.device_id.as_str())
        .collect();
    devices.into_iter().collect()
}

/// Splits the fresh events into those to record and restatements, in batch order (a report recorded earlier in
/// the batch is restated by an identical later one). `known` holds the pumps' rows as stored.
pub(crate) fn fold(
    prepared: &[PreparedEvent],
    fresh: &[usize],
    mut known: HashMap<String, Stated>,
    recorded_at_us: i64,
) -> Folding {
    let mut folding = Folding::default();
    let mut touched = BTreeSet::new();
    for &i in fresh {
        let e = &prepared[i];
        let Some(said) = statement(e) else {
            folding.write.push(i);
            continue;
        };
        touched.insert(e.device_id.clone());
        let current = known.get_mut(&e.device_id).filter(|c| {
            said.restatable
                && c.patient == e.patient.as_str()
                && c.kind == e.kind
                && c.statement == said.text
        });
        match current {
            Some(c) if e.device_seq <= c.last_seq => {
                // Sent again (or overtaken by a later report): counted already.
                folding.restated.push((i, c.event, true));
            }
            Some(c) => {
                c.restated += 1;
                c.last_seq = e.device_seq;
                c.last_occurred_at_us = e.occurred_at_us;
                c.last_recorded_at_us = recorded_at_us;
                folding.restated.push((i, c.event, false));
            }
            None => {
                folding.write.push(i);
                known.insert(
                    e.device_id.clone(),
                    Stated {
                        patient: e.patient.as_str().to_owned(),
                        kind: e.kind.clone(),
                        statement: said.text,
                        event: Target::Index(i),
                        restated: 0,
                        last_seq: e.device_seq,
                        last_occurred_at_us: e.occurred_at_us,
                        last_recorded_at_us: recorded_at_us,
                    },
                );
            }
        }
    }
    folding.rows = touched
        .into_iter()
        .filter_map(|d| known.remove_entry(&d))
        .collect();
    folding
}

/// A pump's last recorded state report and the restatements of it since, as [`Store::restatement`] reads it.
///
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Restatement {
    pub device_id: String,
    pub patient: PatientId,
    pub kind: String,
    /// The report, without the server's stamps.
    pub statement: serde_json::Value,
    /// The recorded event every restatement repeats.
    pub event: EventId,
    /// Identical reports since, not recorded as events.
    pub restated: u64,
    /// The pump's sequence number of its latest report (recorded or restated).
    pub last_seq: i64,
    /// When the pump made its latest report, by its clock.
    pub last_occurred_at: Timestamp,
    /// When the record took the latest report.
    pub last_recorded_at: Timestamp,
}

impl Restatement {
    fn from_row(device_id: String, stated: Stated) -> Result<Restatement, RecordError> {
        // A row read back always names a stored event.
        let event_id = match stated.event {
            Target::Id(id) => id,
            Target::Index(_) => 0,
        };
        let corrupt = |reason: String| RecordError::Corrupt {
            id: event_id,
            reason: format!("restatement of pump {device_id:?}: {reason}"),
        };
        let at = |us: i64| {
            Timestamp::from_microsecond(us).map_err(|e| corrupt(format!("time {us} µs: {e}")))
        };
        Ok(Restatement {
            patient: PatientId::new(stated.patient)?,
            kind: stated.kind,
            statement: serde_json::from_str(&stated.statement)
                .map_err(|e| corrupt(format!("statement is not JSON: {e}")))?,
            event: EventId(event_id),
            restated: u64::try_from(stated.restated).unwrap_or(0),
            last_seq: stated.last_seq,
            last_occurred_at: at(stated.last_occurred_at_us)?,
            last_recorded_at: at(stated.last_recorded_at_us)?,
            device_id,
        })
    }
}

impl Store {
    /// A pump's last recorded state report and the restatements of it since; `None` if it never reported its
    /// state (or only before migration 3).
    pub async fn restatement(&self, device_id: &str) -> Result<Option<Restatement>, RecordError> {
        let row = on_pool!(self, |pool| {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM record_restatements WHERE device_id = $1"
            )))
            .bind(device_id)
            .fetch_optional(pool)
            .await
            .map_err(|e| self.err(e))?;
            row.as_ref()
                .map(stated_from_row)
                .transpose()
                .map_err(|e| self.err(e))
        })?;
        row.map(|(device_id, stated)| Restatement::from_row(device_id, stated))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, NewEvent};

    fn report(patient: &str, device: &str, seq: u64, source: Source, data: &str) -> PreparedEvent {
        let mut data: serde_json::Value = serde_json::from_str(data).unwrap();
        data["device_id"] = device.into();
        data["seq"] = seq.into();
        NewEvent {
            patient: PatientId::new(patient).unwrap(),
            device_id: device.into(),
            device_seq: seq,
            occurred_at: Timestamp::from_second(1_800_000_000 + seq as i64).unwrap(),
            local_offset_s: 0,
            source,
            actor: device.into(),
            teaching: false,
            body: Body::Unknown {
                kind: "state_changed".into(),
                payload: data,
            },
        }
        .prepare(0)
        .unwrap()
    }

    fn pump(seq: u64, data: &str) -> PreparedEvent {
        report("p-1", "pump-1", seq, Source::Pump, data)
    }

    fn outcome(folding: &Folding) -> (Vec<usize>, Vec<(usize, Target, bool)>) {
        (folding.write.clone(), folding.restated.clone())
    }

    #[test]
    fn the_stamps_are_not_part_of_what_a_pump_states_and_a_transition_is_never_restated() {
        let a = statement(&pump(1, r#"{"state":"infusing"}"#)).unwrap();
        let b = statement(&pump(2, r#"{"state":"infusing"}"#)).unwrap();
        assert_eq!(a, b);
        assert!(a.restatable);
        assert_eq!(a.text, r#"{"state":"infusing"}"#);
        assert!(
            !statement(&pump(3, r#"{"from":"infusing","to":"paused"}"#))
                .unwrap()
                .restatable
        );
        assert!(
            statement(&pump(3, r#"{"from":"paused","to":"paused"}"#))
                .unwrap()
                .restatable
        );
        assert!(
            !statement(&pump(3, r#"{"from":"paused"}"#))
                .unwrap()
                .restatable
        );
        let from_a_person = report("p-1", "pump-1", 4, Source::Nurse, r#"{"state":"x"}"#);
        assert_eq!(statement(&from_a_person), None);
    }

    #[test]
    fn identical_reports_after_the_first_restate_it_in_order_and_a_change_is_recorded() {
        let batch = vec![
            pump(1, r#"{"state":"infusing"}"#),
            pump(2, r#"{"state":"infusing"}"#),
            pump(3, r#"{"state":"paused"}"#),
            pump(4, r#"{"state":"paused"}"#),
            pump(5, r#"{"state":"infusing"}"#),
            pump(6, r#"{"from":"infusing","to":"paused"}"#),
            pump(7, r#"{"from":"infusing","to":"paused"}"#),
        ];
        let fresh: Vec<usize> = (0..batch.len()).collect();
        let folding = fold(&batch, &fresh, HashMap::new(), 9);
        assert_eq!(
            outcome(&folding),
            (
                vec![0, 2, 4, 5, 6],
                vec![(1, Target::Index(0), false), (3, Target::Index(2), false)]
            )
        );
        let row = &folding.rows["pump-1"];
        assert_eq!(
            (row.event, row.restated, row.last_seq),
            (Target::Index(6), 0, 7)
        );
    }

    #[test]
    fn a_stored_row_is_restated_counted_once_and_never_across_patients() {
        let stored = |patient: &str| {
            HashMap::from([(
                "pump-1".to_string(),
                Stated {
                    patient: patient.into(),
                    kind: "state_changed".into(),
                    statement: r#"{"state":"infusing"}"#.into(),
                    event: Target::Id(40),
                    restated: 3,
                    last_seq: 10,
                    last_occurred_at_us: 0,
                    last_recorded_at_us: 0,
                },
            )])
        };
        let batch = vec![
            pump(10, r#"{"state":"infusing"}"#),
            pump(11, r#"{"state":"infusing"}"#),
        ];
        let folding = fold(&batch, &[0, 1], stored("p-1"), 99);
        assert_eq!(
            outcome(&folding),
            (
                vec![],
                vec![(0, Target::Id(40), true), (1, Target::Id(40), false)]
            )
        );
        let row = &folding.rows["pump-1"];
        assert_eq!(
            (row.restated, row.last_seq, row.last_recorded_at_us),
            (4, 11, 99)
        );

        // The pump now infuses for another patient: its first report there is recorded.
        let folding = fold(&batch, &[1], stored("p-2"), 99);
        assert_eq!(outcome(&folding), (vec![1], vec![]));
        // An extra field is a different report.
        let other = vec![pump(11, r#"{"state":"infusing","rate_ml_per_h":5}"#)];
        assert_eq!(
            outcome(&fold(&other, &[0], stored("p-1"), 99)),
            (vec![0], vec![])
        );
    }
}

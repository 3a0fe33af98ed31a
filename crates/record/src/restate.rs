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
//! that one. Every other kind, alarms included, is always recorded, and ends the restating: after anything else
//! is chained about the pump, its next state report is recorded again. A late report (its number not above the
//! last report's) is recorded if it differs and never moves the row back, and a report whose number does not
//! directly follow the last one is recorded (see [`fold`]).

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
     last_seq, last_occurred_at_us, last_recorded_at_us, open";

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
    /// Canonical JSON.
    pub statement: String,
    pub event: Target,
    pub restated: i64,
    pub last_seq: i64,
    pub last_occurred_at_us: i64,
    pub last_recorded_at_us: i64,
    /// False once another event of the pump was chained after the report: its next report is recorded.
    pub open: bool,
}

/// A batch's fresh events after restatements are taken out.
#[derive(Debug, Default)]
pub(crate) struct Folding {
    /// Indices of the events to write to the chain, in batch order.
    pub write: Vec<usize>,
    /// Events that restate a recorded one: (index, the recorded event, already counted before).
    pub restated: Vec<(usize, Target, bool)>,
    /// The rows to write, by pump: every row this batch changed or started.
    pub rows: BTreeMap<String, Stated>,
}

/// The devices whose state rows a batch needs: every device of a fresh event (a state report is counted or
/// recorded; anything else chained about the pump ends its restating).
pub(crate) fn devices<'a>(prepared: &'a [PreparedEvent], fresh: &[usize]) -> Vec<&'a str> {
    let devices: BTreeSet<&str> = fresh
        .iter()
        .map(|&i| prepared[i].device_id.as_str())
        .collect();
    devices.into_iter().collect()
}

/// Splits the fresh events into those to record and restatements, in batch order (a report recorded earlier in
/// the batch is restated by an identical later one). `known` holds the pumps' rows as stored.
///
/// - A report identical to the row's, with the row open: a restatement when its number directly follows the
///   row's last (a gap may hold an event not arrived yet), a duplicate when it is not above it.
/// - Any other report is recorded. It becomes the row's report unless its number is not above the row's last:
///   a late report never pulls the row back (or the next real change would be taken for a restatement of
///   it); it closes the row instead.
/// - Any other event chained with the pump's id (an alarm, a stop, a correction, `pump_silent`) empties the
///   row's report, so the pump's next state report is recorded: a restatement only ever stands for "nothing
///   happened to this pump since".
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
            if let Some(row) = known.get_mut(&e.device_id)
                && row.open
            {
                row.open = false;
                touched.insert(e.device_id.clone());
            }
            continue;
        };
        let row = known.get_mut(&e.device_id);
        let stale = row.as_ref().is_some_and(|c| e.device_seq <= c.last_seq);
        let same = row.as_ref().is_some_and(|c| {
            said.restatable
                && c.patient == e.patient.as_str()
                && c.kind == e.kind
                && c.statement == said.text
        });
        match row {
            // Sent again, or overtaken by a later report, with nothing chained about the pump since: it says
            // nothing the record does not hold.
            Some(c) if same && c.open && stale => folding.restated.push((i, c.event, true)),
            // The very next number: nothing of this pump can lie between the two reports.
            Some(c) if same && c.open && e.device_seq == c.last_seq.saturating_add(1) => {
                c.restated += 1;
                c.last_seq = e.device_seq;
                c.last_occurred_at_us = e.occurred_at_us;
                c.last_recorded_at_us = recorded_at_us;
                folding.restated.push((i, c.event, false));
                touched.insert(e.device_id.clone());
            }
            // Late (a slow request, or a pump whose numbers restarted lower): recorded, and the row is closed
            // without moving back, so the pump's next report is recorded too.
            Some(c) if stale => {
                folding.write.push(i);
                if c.open {
                    c.open = false;
                    touched.insert(e.device_id.clone());
                }
            }
            _ => {
                folding.write.push(i);
                touched.insert(e.device_id.clone());
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
                        open: true,
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
    /// False once another event of the pump was chained after the report: its next state report is recorded,
    /// not counted.
    pub open: bool,
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
            open: stated.open,
            event: EventId(event_id),
            restated: u64::try_from(stated.restated)
                .map_err(|_| corrupt(format!("a count of {}", stated.restated)))?,
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
                    open: true,
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

    fn note(seq: u64) -> PreparedEvent {
        NewEvent {
            patient: PatientId::new("p-1").unwrap(),
            device_id: "pump-1".into(),
            device_seq: seq,
            occurred_at: Timestamp::from_second(1_800_000_000 + seq as i64).unwrap(),
            local_offset_s: 0,
            source: Source::Pump,
            actor: "pump-1".into(),
            teaching: false,
            body: Body::Note {
                text: "infusion stopped".into(),
            },
        }
        .prepare(0)
        .unwrap()
    }

    fn row(statement: &str, event: i64, last_seq: i64) -> HashMap<String, Stated> {
        HashMap::from([(
            "pump-1".to_string(),
            Stated {
                patient: "p-1".into(),
                kind: "state_changed".into(),
                statement: statement.into(),
                event: Target::Id(event),
                restated: 0,
                last_seq,
                last_occurred_at_us: 0,
                last_recorded_at_us: 0,
                open: true,
            },
        )])
    }

    #[test]
    fn a_late_report_is_recorded_and_never_pulls_the_row_back() {
        // The row says "paused" (seq 8); a slow request's "infusing" (seq 7) commits after it.
        let late = vec![pump(7, r#"{"state":"infusing"}"#)];
        let folding = fold(&late, &[0], row(r#"{"state":"paused"}"#, 50, 8), 1);
        assert_eq!(outcome(&folding), (vec![0], vec![]));
        let kept = &folding.rows["pump-1"];
        assert_eq!(
            (kept.last_seq, kept.event, kept.open),
            (8, Target::Id(50), false)
        );
        // A pump whose numbers restarted lower: its resume, equal to the row's report, is still recorded
        // once the row is closed.
        let mut closed = row(r#"{"state":"infusing"}"#, 40, 1_000);
        closed.get_mut("pump-1").unwrap().open = false;
        let restarted = vec![pump(12, r#"{"state":"infusing"}"#)];
        assert_eq!(
            outcome(&fold(&restarted, &[0], closed, 1)),
            (vec![0], vec![])
        );
        // A gap in the numbers may hold an event not arrived yet: recorded, not counted.
        let gap = vec![pump(10, r#"{"state":"paused"}"#)];
        assert_eq!(
            outcome(&fold(&gap, &[0], row(r#"{"state":"paused"}"#, 50, 8), 1)),
            (vec![0], vec![])
        );
        // So the pump's next "infusing" is a change, recorded.
        let next = vec![pump(9, r#"{"state":"infusing"}"#)];
        let folding = fold(&next, &[0], row(r#"{"state":"paused"}"#, 50, 8), 1);
        assert_eq!(outcome(&folding), (vec![0], vec![]));
    }

    #[test]
    fn anything_else_chained_about_the_pump_ends_the_restating() {
        let batch = vec![
            pump(1, r#"{"state":"infusing"}"#),
            note(2),
            pump(3, r#"{"state":"infusing"}"#),
            pump(4, r#"{"state":"infusing"}"#),
        ];
        let folding = fold(&batch, &[0, 1, 2, 3], HashMap::new(), 1);
        assert_eq!(
            outcome(&folding),
            (vec![0, 1, 2], vec![(3, Target::Index(2), false)])
        );
        // Across batches: an event alone empties the stored row's report.
        let alone = vec![note(11)];
        let folding = fold(&alone, &[0], row(r#"{"state":"infusing"}"#, 40, 10), 1);
        assert_eq!(outcome(&folding), (vec![0], vec![]));
        assert!(!folding.rows["pump-1"].open);
        let mut closed = row(r#"{"state":"infusing"}"#, 40, 10);
        closed.get_mut("pump-1").unwrap().open = false;
        // Once closed, even a resend is recorded (an extra copy, never a lost one); a new report opens the row
        // again and the next one restates it.
        let after = vec![
            pump(10, r#"{"state":"infusing"}"#),
            pump(12, r#"{"state":"infusing"}"#),
            pump(13, r#"{"state":"infusing"}"#),
        ];
        let folding = fold(&after, &[0, 1, 2], closed, 1);
        assert_eq!(
            outcome(&folding),
            (vec![0, 1], vec![(2, Target::Index(1), false)])
        );
        assert!(folding.rows["pump-1"].open);
    }
}

//! The escalation ladder as a pure function of time and what has happened to one alarm, so the rule can be
//! tested exhaustively without clocks or I/O. The server's ticker calls `due_rungs` and records each rung.
//!
//! The rule: an alarm that escalates (every alarm that stops or endangers the infusion; see `board::escalates`)
//! shows on the patient's screen at once (rung `patient`). If nobody
//! acknowledges it within the plan's patient time, the nurse is alerted (rung `nurse`). If no nurse (or clinic
//! admin) acknowledges it within the plan's nurse time after that, the on-call contact is alerted (rung
//! `on_call`). Before the nurse is alerted, any acknowledgement (patient, caregiver, nurse) stops the ladder;
//! once the nurse has been alerted only a clinician's acknowledgement stops it, because the nurse now owns the
//! follow-up. An alarm that clears stops the ladder.

use std::time::Duration;

use serde::Serialize;

/// The steps of the ladder, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rung {
    Patient,
    Nurse,
    OnCall,
}

impl Rung {
    pub fn name(self) -> &'static str {
        match self {
            Rung::Patient => "patient",
            Rung::Nurse => "nurse",
            Rung::OnCall => "on_call",
        }
    }

    /// The rung below this one (`None` below the patient's screen).
    pub fn previous(self) -> Option<Rung> {
        match self {
            Rung::Patient => None,
            Rung::Nurse => Some(Rung::Patient),
            Rung::OnCall => Some(Rung::Nurse),
        }
    }

    pub fn from_name(name: &str) -> Option<Rung> {
        [Rung::Patient, Rung::Nurse, Rung::OnCall]
            .into_iter()
            .find(|r| r.name() == name)
    }
}

/// Escalation times from the therapy plan (already scaled to real durations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Unacknowledged on the patient's screen this long → nurse.
    pub patient_ack: Duration,
    /// Unacknowledged by a clinician this long after the nurse was alerted → on-call.
    pub nurse_ack: Duration,
}

/// Who acknowledged, as far as the ladder cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckBy {
    PatientSide,
    Clinician,
}

/// What has happened to one alarm so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmHistory {
    pub raised_at_ms: i64,
    pub escalates: bool,
    /// Acknowledgements with their time, in any order.
    pub acks: Vec<(i64, AckBy)>,
    pub cleared_at_ms: Option<i64>,
    /// The highest rung already recorded.
    pub reached: Option<Rung>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// When each rung is due (absolute ms), ignoring acknowledgements.
pub fn rung_due_at_ms(raised_at_ms: i64, timing: Timing, rung: Rung) -> i64 {
    match rung {
        Rung::Patient => raised_at_ms,
        Rung::Nurse => raised_at_ms.saturating_add(ms(timing.patient_ack)),
        Rung::OnCall => raised_at_ms
            .saturating_add(ms(timing.patient_ack))
            .saturating_add(ms(timing.nurse_ack)),
    }
}

/// The rungs that are due at `now_ms` and not yet reached, in order. Empty when the ladder has stopped.
pub fn due_rungs(history: &AlarmHistory, timing: Timing, now_ms: i64) -> Vec<Rung> {
    let mut due = Vec::new();
    for rung in [Rung::Patient, Rung::Nurse, Rung::OnCall] {
        if rung != Rung::Patient && !history.escalates {
            break;
        }
        let at = rung_due_at_ms(history.raised_at_ms, timing, rung);
        if at > now_ms {
            break;
        }
        if history.cleared_at_ms.is_some_and(|c| c <= at) {
            break;
        }
        if rung != Rung::Patient && stopped_before(history, timing, at) {
            break;
        }
        if history.reached.is_none_or(|r| rung > r) {
            due.push(rung);
        }
    }
    due
}

/// Whether an acknowledgement made before `at_ms` stops the ladder from going past that point.
fn stopped_before(history: &AlarmHistory, timing: Timing, at_ms: i64) -> bool {
    let nurse_at = rung_due_at_ms(history.raised_at_ms, timing, Rung::Nurse);
    history
        .acks
        .iter()
        .any(|&(ack_ms, by)| ack_ms <= at_ms && (by == AckBy::Clinician || ack_ms < nurse_at))
}

/// Whether the ladder can still produce a rung (for dashboards: "escalating" vs "handled").
pub fn is_open(history: &AlarmHistory, timing: Timing) -> bool {
    history.escalates
        && history.cleared_at_ms.is_none()
        && history.reached != Some(Rung::OnCall)
        && !stopped_before(history, timing, i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        patient_ack: Duration::from_secs(300),
        nurse_ack: Duration::from_secs(600),
    };

    fn check(
        acks: &[(i64, AckBy)],
        cleared: Option<i64>,
        reached: Option<Rung>,
        now_s: i64,
        expect: &[Rung],
    ) {
        let history = AlarmHistory {
            raised_at_ms: 0,
            escalates: true,
            acks: acks.iter().map(|&(s, by)| (s * 1000, by)).collect(),
            cleared_at_ms: cleared.map(|s| s * 1000),
            reached,
        };
        assert_eq!(
            due_rungs(&history, T, now_s * 1000),
            expect,
            "acks {acks:?} cleared {cleared:?} reached {reached:?} now {now_s}"
        );
    }

    #[test]
    fn ladder_table() {
        use AckBy::*;
        use Rung::*;
        check(&[], None, None, 0, &[Patient]);
        check(&[], None, Some(Patient), 299, &[]);
        check(&[], None, Some(Patient), 300, &[Nurse]);
        check(&[], None, None, 300, &[Patient, Nurse]);
        check(&[], None, Some(Nurse), 899, &[]);
        check(&[], None, Some(Nurse), 900, &[OnCall]);
        check(&[], None, Some(OnCall), 5000, &[]);
        // The patient acknowledged in time: the nurse is never alerted.
        check(&[(100, PatientSide)], None, Some(Patient), 5000, &[]);
        // The patient acknowledged after the nurse was alerted: the nurse still has to act.
        check(&[(400, PatientSide)], None, Some(Nurse), 900, &[OnCall]);
        // The nurse acknowledged: no on-call.
        check(&[(400, Clinician)], None, Some(Nurse), 900, &[]);
        // A clinician acknowledged before the nurse rung: nothing more.
        check(&[(10, Clinician)], None, Some(Patient), 900, &[]);
        // Cleared before the nurse rung.
        check(&[], Some(200), Some(Patient), 900, &[]);
        // Cleared after the nurse rung, before on-call.
        check(&[], Some(600), Some(Nurse), 900, &[]);
    }

    #[test]
    fn low_priority_alarms_only_show_on_the_patient_screen() {
        let history = AlarmHistory {
            raised_at_ms: 0,
            escalates: false,
            acks: vec![],
            cleared_at_ms: None,
            reached: None,
        };
        assert_eq!(due_rungs(&history, T, 10_000_000), vec![Rung::Patient]);
        assert!(!is_open(&history, T));
    }

    #[test]
    fn rungs_are_never_repeated_or_skipped_backwards() {
        // Walk time forward one second at a time, recording rungs as the server would.
        let mut history = AlarmHistory {
            raised_at_ms: 0,
            escalates: true,
            acks: vec![],
            cleared_at_ms: None,
            reached: None,
        };
        let mut seen = Vec::new();
        for now_s in 0..2000 {
            for rung in due_rungs(&history, T, now_s * 1000) {
                seen.push((now_s, rung));
                history.reached = Some(rung);
            }
        }
        assert_eq!(
            seen,
            vec![(0, Rung::Patient), (300, Rung::Nurse), (900, Rung::OnCall)]
        );
    }

    use proptest::prelude::*;

    proptest! {
        /// Walking time forward and recording every due rung, for any timing, acknowledgements and clearance:
        /// rungs come in ladder order, never twice; `nurse` never before the patient time, `on_call` never
        /// before both times; nothing after a clearance; nothing beyond a clinician's acknowledgement.
        #[test]
        fn ladder_invariants(
            patient_s in 1u64..600,
            nurse_s in 1u64..600,
            acks in proptest::collection::vec((0i64..2000, any::<bool>()), 0..4),
            cleared in proptest::option::of(0i64..2000),
        ) {
            let timing = Timing { patient_ack: Duration::from_secs(patient_s), nurse_ack: Duration::from_secs(nurse_s) };
            let mut history = AlarmHistory { raised_at_ms: 0, escalates: true, acks: vec![], cleared_at_ms: None, reached: None };
            let mut seen: Vec<(i64, Rung)> = Vec::new();
            for now_s in 0..2000i64 {
                let now = now_s * 1000;
                for &(at, clinician) in &acks {
                    if at == now_s {
                        history.acks.push((now, if clinician { AckBy::Clinician } else { AckBy::PatientSide }));
                    }
                }
                if cleared == Some(now_s) {
                    history.cleared_at_ms = Some(now);
                }
                for rung in due_rungs(&history, timing, now) {
                    seen.push((now, rung));
                    history.reached = Some(rung);
                }
            }
            let rungs: Vec<Rung> = seen.iter().map(|s| s.1).collect();
            let mut sorted = rungs.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(&rungs, &sorted, "rungs out of order or repeated");
            for &(at, rung) in &seen {
                prop_assert!(at >= rung_due_at_ms(0, timing, rung));
                if let Some(c) = cleared {
                    prop_assert!(at < c * 1000 || rung == Rung::Patient && at == 0 && c == 0, "{rung:?} at {at} after clearance at {c}");
                }
                let clinician_before = acks.iter().any(|&(a, clin)| clin && a * 1000 < at);
                prop_assert!(!(clinician_before && rung != Rung::Patient), "{rung:?} at {at} after a clinician acknowledged");
            }
        }
    }
}

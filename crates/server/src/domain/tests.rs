//! The board's rules, driven with the time as an argument: raise, clear, acknowledge, silence, escalate, pump
//! silent, restore, practice pumps, plus a property test over random input sequences. No clock, no database.

use std::time::Duration;

use link::{PumpCommand, Telemetry};
use pump::Priority;
use record::Kind;
use serde_json::{Value, json};

use super::Settings;
use super::board::{
    Board, Device, Effect, EscalationNotice, PumpEvent, RestoredAlarm, RestoredEvent,
};
use super::escalation::{Rung, Timing};
use super::event::{EventDraft, Person, Role};
use super::message::MessageKind;

const MINUTE_MS: i64 = 60_000;
const PATIENT: &str = "pat_1";
const CLINIC: &str = "cln_1";

/// Nurse after 5 minutes, on-call 10 minutes after that; a pump is silent after 60 s.
fn settings() -> Settings {
    Settings {
        pump_silent_after_ms: 60_000,
        default_timing: Timing {
            patient_ack: Duration::from_secs(300),
            nurse_ack: Duration::from_secs(600),
        },
    }
}

fn board() -> Board {
    let mut b = Board::new(settings());
    b.register(PATIENT, CLINIC);
    b
}

fn pump(teaching: bool) -> Device {
    Device {
        id: if teaching { "dev_practice" } else { "dev_real" }.into(),
        patient_id: PATIENT.into(),
        clinic_id: CLINIC.into(),
        teaching,
    }
}

fn nurse() -> Person {
    Person {
        id: "usr_nurse".into(),
        display_name: "Sam Jones".into(),
        role: Role::Nurse,
    }
}

fn patient() -> Person {
    Person {
        id: "usr_alex".into(),
        display_name: "Alex".into(),
        role: Role::Patient,
    }
}

/// A stored pump event with this record id, its pump clock agreeing with the server's (the board decides on
/// receipt time; a test that needs a wrong clock sets `clock_skew_ms` itself).
fn event(kind: Kind, record_id: i64, data: Value) -> PumpEvent {
    PumpEvent {
        record_id,
        kind: kind.name().into(),
        data,
        clock_skew_ms: 0,
    }
}

fn raised(alarm: &str, priority: &str, at_ms: i64) -> PumpEvent {
    event(
        Kind::AlarmRaised,
        at_ms,
        json!({"alarm": alarm, "priority": priority}),
    )
}

fn telemetry(state: &str) -> Telemetry {
    Telemetry {
        state: state.into(),
        rate_ml_per_h: 100.0,
        delivered_ml: 10.0,
        remaining_ml: 90.0,
        minutes_left: Some(54.0),
        battery_percent: 80.0,
        battery_minutes_left: Some(600.0),
        downstream_pressure_mmhg: Some(20.0),
        mains_present: Some(true),
        active_alarms: vec![],
    }
}

/// The effects with every claim opened up (its event, then what follows it) and telemetry as a record: what a
/// single process carries out.
fn flat(effects: &[Effect]) -> Vec<Effect> {
    let mut out = Vec::new();
    for e in effects {
        match e {
            Effect::Claim { draft, then, .. } => {
                out.push(Effect::Record(draft.clone()));
                out.extend(flat(then));
            }
            Effect::Telemetry(d) => out.push(Effect::Record(d.clone())),
            other => out.push(other.clone()),
        }
    }
    out
}

/// The rungs recorded by these effects, in order.
fn rungs(effects: &[Effect]) -> Vec<(String, String)> {
    flat(effects)
        .iter()
        .filter_map(|e| match e {
            Effect::Record(d) if d.kind.name() == "alarm_escalated" => Some((
                d.payload["alarm"].as_str().unwrap_or("").to_string(),
                d.payload["rung"].as_str().unwrap_or("").to_string(),
            )),
            _ => None,
        })
        .collect()
}

fn notices(effects: &[Effect]) -> Vec<EscalationNotice> {
    flat(effects)
        .into_iter()
        .filter_map(|e| match e {
            Effect::Notify(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn published(effects: &[Effect]) -> Vec<MessageKind> {
    flat(effects)
        .iter()
        .filter_map(|e| match e {
            Effect::Publish(m) => Some(m.kind),
            _ => None,
        })
        .collect()
}

/// Every draft the effects record (claims and telemetry included), in order.
fn recorded_drafts(effects: &[Effect]) -> Vec<EventDraft> {
    flat(effects)
        .into_iter()
        .filter_map(|e| match e {
            Effect::Record(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn recorded(effects: &[Effect]) -> Vec<String> {
    recorded_drafts(effects)
        .iter()
        .map(|d| d.kind.name().to_string())
        .collect()
}

#[test]
fn a_raised_alarm_shows_at_once_and_is_never_doubled() {
    let mut b = board();
    let out = b.batch(
        1_000,
        &pump(false),
        &[raised("occlusion_downstream", "high", 900)],
        None,
    );
    assert_eq!(
        published(&out.effects),
        [MessageKind::Alarm, MessageKind::Escalation]
    );
    assert_eq!(
        rungs(&out.effects),
        [("occlusion_downstream".into(), "patient".into())]
    );
    assert!(
        notices(&out.effects).is_empty(),
        "the patient rung pages nobody"
    );
    let snap = b.snapshot(1_000, PATIENT);
    assert_eq!(snap.active_alarms.len(), 1);
    assert_eq!(
        snap.active_alarms[0].raised_at_ms, 1_000,
        "the server's receipt time"
    );
    assert_eq!(snap.active_alarms[0].priority, Priority::High);

    // The pump says it again (a re-sent or repeated event): still one alarm, nothing announced.
    let out = b.batch(
        2_000,
        &pump(false),
        &[raised("occlusion_downstream", "high", 1_900)],
        None,
    );
    assert!(published(&out.effects).is_empty());
    assert_eq!(b.snapshot(2_000, PATIENT).active_alarms.len(), 1);
}

#[test]
fn an_alarm_from_a_pump_clock_ahead_of_ours_is_shown_as_raised_now() {
    let mut b = board();
    b.batch(
        1_000,
        &pump(false),
        &[raised("air_in_line", "high", 9_999_999)],
        None,
    );
    assert_eq!(
        b.snapshot(1_000, PATIENT).active_alarms[0].raised_at_ms,
        1_000
    );
}

#[test]
fn a_cleared_alarm_leaves_the_board_and_stops_its_ladder() {
    let mut b = board();
    b.batch(0, &pump(false), &[raised("air_in_line", "high", 0)], None);
    let out = b.batch(
        MINUTE_MS,
        &pump(false),
        &[event(
            Kind::AlarmCleared,
            MINUTE_MS,
            json!({"alarm": "air_in_line"}),
        )],
        None,
    );
    assert_eq!(published(&out.effects), [MessageKind::AlarmCleared]);
    assert!(b.snapshot(MINUTE_MS, PATIENT).active_alarms.is_empty());
    assert!(
        b.tick(60 * MINUTE_MS).is_empty(),
        "nothing left to escalate"
    );
}

#[test]
fn an_unacknowledged_high_alarm_climbs_the_ladder_on_time() {
    let mut b = board();
    b.batch(
        0,
        &pump(false),
        &[raised("occlusion_downstream", "high", 0)],
        None,
    );
    assert!(rungs(&b.tick(5 * MINUTE_MS - 1)).is_empty());
    let out = b.tick(5 * MINUTE_MS);
    assert_eq!(
        rungs(&out),
        [("occlusion_downstream".into(), "nurse".into())]
    );
    let n = notices(&out);
    assert_eq!(n.len(), 1);
    assert_eq!(
        (n[0].rung, n[0].unacknowledged_for_ms),
        (Rung::Nurse, 5 * MINUTE_MS)
    );
    assert!(rungs(&b.tick(15 * MINUTE_MS - 1)).is_empty());
    let out = b.tick(15 * MINUTE_MS);
    assert_eq!(
        rungs(&out),
        [("occlusion_downstream".into(), "on_call".into())]
    );
    assert_eq!(notices(&out)[0].rung, Rung::OnCall);
    assert!(
        b.tick(600 * MINUTE_MS).is_empty(),
        "the ladder ends at on-call"
    );
    assert!(!b.snapshot(0, PATIENT).active_alarms[0].escalating);
}

#[test]
fn the_plan_timing_replaces_the_default() {
    let mut b = board();
    b.set_timing(
        PATIENT,
        Timing {
            patient_ack: Duration::from_secs(60),
            nurse_ack: Duration::from_secs(60),
        },
    );
    b.batch(
        0,
        &pump(false),
        &[raised("occlusion_downstream", "high", 0)],
        None,
    );
    assert_eq!(
        rungs(&b.tick(MINUTE_MS)),
        [("occlusion_downstream".into(), "nurse".into())]
    );
}

#[test]
fn a_rung_that_could_not_be_recorded_is_decided_again() {
    let mut b = board();
    b.batch(
        0,
        &pump(false),
        &[raised("occlusion_downstream", "high", 41)],
        None,
    );
    let out = b.tick(5 * MINUTE_MS);
    let drafts = recorded_drafts(&out);
    assert_eq!(
        rungs(&out),
        [("occlusion_downstream".into(), "nurse".into())]
    );
    // The record refused the write: the board forgets the rung, and the next tick pages again.
    b.escalations_not_recorded(&drafts);
    let again = b.tick(5 * MINUTE_MS + 200);
    assert_eq!(
        rungs(&again),
        [("occlusion_downstream".into(), "nurse".into())]
    );
    assert_eq!(notices(&again).len(), 1);
    assert!(
        rungs(&b.tick(5 * MINUTE_MS + 400)).is_empty(),
        "once recorded, once only"
    );
}

#[test]
fn an_acknowledgement_or_a_pump_silent_that_could_not_be_recorded_is_undone() {
    let mut b = board();
    b.batch(
        0,
        &pump(false),
        &[raised("occlusion_downstream", "high", 41)],
        None,
    );
    // The nurse acknowledges, but the record refuses the write: the alarm is not acknowledged on the board
    // (it keeps escalating) and she is told; nothing says someone saw it when the record does not.
    let (_, effects) = b
        .acknowledge(MINUTE_MS, PATIENT, "occlusion_downstream", &nurse(), None)
        .unwrap();
    assert!(
        b.snapshot(MINUTE_MS, PATIENT).active_alarms[0]
            .acknowledgements
            .len()
            == 1
    );
    let drafts = recorded_drafts(&effects);
    b.not_recorded(&drafts);
    let alarm = &b.snapshot(MINUTE_MS, PATIENT).active_alarms[0];
    assert!(alarm.acknowledgements.is_empty());
    assert!(alarm.escalating);
    assert_eq!(
        rungs(&b.tick(5 * MINUTE_MS)),
        [("occlusion_downstream".into(), "nurse".into())],
        "unacknowledged, it climbs"
    );

    // In the same millisecond the patient's acknowledgement is recorded and the nurse's is refused: only the
    // nurse's comes off (the ladder must not believe a clinician saw it).
    let mut b = board();
    b.batch(
        0,
        &pump(false),
        &[raised("occlusion_downstream", "high", 41)],
        None,
    );
    b.acknowledge(MINUTE_MS, PATIENT, "occlusion_downstream", &patient(), None)
        .unwrap();
    let (_, effects) = b
        .acknowledge(MINUTE_MS, PATIENT, "occlusion_downstream", &nurse(), None)
        .unwrap();
    let drafts = recorded_drafts(&effects);
    b.not_recorded(&drafts);
    let acks = &b.snapshot(MINUTE_MS, PATIENT).active_alarms[0].acknowledgements;
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].by_user_id.as_deref(), Some(patient().id.as_str()));
    let out = b.tick(5 * MINUTE_MS);
    let with_patient_ack_only = {
        let mut twin = board();
        twin.batch(
            0,
            &pump(false),
            &[raised("occlusion_downstream", "high", 41)],
            None,
        );
        twin.acknowledge(MINUTE_MS, PATIENT, "occlusion_downstream", &patient(), None)
            .unwrap();
        rungs(&twin.tick(5 * MINUTE_MS))
    };
    assert_eq!(
        rungs(&out),
        with_patient_ack_only,
        "the ladder is where the patient's acknowledgement alone puts it"
    );

    // A pump goes quiet while infusing; the raise of `pump_silent` cannot be written: the board takes it down,
    // and the next tick raises (and records) it again.
    let mut b = board();
    b.batch(0, &pump(false), &[], Some(telemetry("infusing")));
    let out = b.tick(60_001);
    let drafts = recorded_drafts(&out);
    assert_eq!(recorded(&out), ["alarm_raised", "alarm_escalated"]);
    b.not_recorded(&drafts);
    assert!(b.snapshot(60_500, PATIENT).active_alarms.is_empty());
    let again = b.tick(61_000);
    assert_eq!(recorded(&again), ["alarm_raised", "alarm_escalated"]);
    assert_eq!(
        b.snapshot(61_000, PATIENT).active_alarms[0].id,
        "srv-60000",
        "the same alarm"
    );
}

#[test]
fn every_alarm_that_stops_or_endangers_the_infusion_escalates() {
    let mut b = board();
    let out = b.batch(
        0,
        &pump(false),
        &[
            raised("reservoir_empty", "medium", 1),
            raised("infusion_complete", "medium", 2),
            raised("battery_low", "low", 3),
        ],
        None,
    );
    assert_eq!(
        rungs(&out.effects).len(),
        3,
        "all reach the patient's screen"
    );
    let later = b.tick(5 * MINUTE_MS);
    assert_eq!(
        rungs(&later),
        [("reservoir_empty".into(), "nurse".into())],
        "a medium alarm that stopped the pump pages the nurse; the end of a dose and a low reminder do not"
    );
    assert_eq!(notices(&later)[0].priority, Priority::Medium);
    assert!(
        rungs(&b.tick(600 * MINUTE_MS))
            .iter()
            .all(|(alarm, _)| alarm == "reservoir_empty")
    );
}

#[test]
fn practice_alarms_rank_below_every_real_alarm() {
    let mut b = board();
    b.register("pat_2", CLINIC);
    b.batch(0, &pump(true), &[raised("air_in_line", "high", 1)], None);
    b.batch(10, &pump(false), &[raised("battery_low", "low", 2)], None);
    let views = b.snapshot(10, PATIENT).active_alarms;
    assert!(
        !views[0].teaching,
        "the real low alarm comes before the practice high one"
    );
    let other = Device {
        id: "dev_other".into(),
        patient_id: "pat_2".into(),
        ..pump(false)
    };
    b.batch(20, &other, &[raised("reservoir_empty", "medium", 3)], None);
    let mut b2 = board();
    b2.register("pat_2", CLINIC);
    b2.batch(0, &pump(true), &[raised("air_in_line", "high", 4)], None);
    b2.batch(20, &other, &[raised("battery_low", "low", 5)], None);
    let rows = b2.dashboard(
        30,
        vec![
            (PATIENT.into(), "Practising".into()),
            ("pat_2".into(), "Real".into()),
        ],
    );
    assert_eq!(
        rows[0].display_name, "Real",
        "a real low alarm ranks above a practice high one"
    );
}

#[test]
fn an_acknowledgement_is_recorded_with_who_and_stops_the_ladder_before_the_nurse() {
    let mut b = board();
    b.batch(
        0,
        &pump(false),
        &[raised("occlusion_downstream", "high", 0)],
        None,
    );
    let (view, effects) = b
        .acknowledge(
            MINUTE_MS,
            PATIENT,
            "occlusion_downstream",
            &patient(),
            Some("straightened it".into()),
        )
        .expect("the alarm is active");
    assert_eq!(view.acknowledgements.len(), 1);
    assert_eq!(view.acknowledgements[0].by_name, "Alex");
    assert!(!view.escalating);
    assert_eq!(recorded(&effects), ["alarm_acknowledged"]);
    let Effect::Record(draft) = &effects[0] else {
        panic!("a record first")
    };
    assert_eq!(draft.actor.as_deref(), Some("usr_alex"));
    assert_eq!(draft.device_id.as_deref(), Some("dev_real"));
    assert_eq!(draft.payload["note"], "straightened it");
    assert_eq!(published(&effects), [MessageKind::Acknowledged]);
    assert!(rungs(&b.tick(60 * MINUTE_MS)).is_empty());
    // The pump is not told: a screen's acknowledgement never presses the pump's own button (which can mean "the
    // air was removed" and resets the pump's detector).
    let out = b.batch(
        2 * MINUTE_MS,
        &pump(false),
        &[],
        Some(telemetry("stopped_by_alarm")),
    );
    assert!(out.commands.is_empty(), "{:?}", out.commands);
}

#[test]
fn after_the_nurse_is_alerted_only_a_clinician_stops_the_ladder() {
    let mut b = board();
    b.batch(
        0,
        &pump(false),
        &[raised("occlusion_downstream", "high", 0)],
        None,
    );
    b.tick(5 * MINUTE_MS);
    b.acknowledge(
        6 * MINUTE_MS,
        PATIENT,
        "occlusion_downstream",
        &patient(),
        None,
    )
    .unwrap();
    assert_eq!(
        rungs(&b.tick(15 * MINUTE_MS)),
        [("occlusion_downstream".into(), "on_call".into())]
    );

    let mut b = board();
    b.batch(
        0,
        &pump(false),
        &[raised("occlusion_downstream", "high", 0)],
        None,
    );
    b.tick(5 * MINUTE_MS);
    b.acknowledge(
        6 * MINUTE_MS,
        PATIENT,
        "occlusion_downstream",
        &nurse(),
        None,
    )
    .unwrap();
    assert!(rungs(&b.tick(15 * MINUTE_MS)).is_empty());
}

#[test]
fn an_acknowledgement_belongs_to_the_pump_that_raised_the_alarm() {
    let mut b = board();
    let second = Device {
        id: "dev_second".into(),
        ..pump(false)
    };
    b.batch(0, &pump(false), &[raised("air_in_line", "high", 11)], None);
    // A second pump on the same patient speaks last.
    b.batch(1_000, &second, &[], Some(telemetry("infusing")));
    let id = b.snapshot(1_000, PATIENT).active_alarms[0].id.clone();
    assert_eq!(id, "ev-11");
    let (_, effects) = b.acknowledge(2_000, PATIENT, &id, &nurse(), None).unwrap();
    let Effect::Record(d) = &effects[0] else {
        panic!()
    };
    assert_eq!(d.device_id.as_deref(), Some("dev_real"));
    assert_eq!(d.payload["alarm_id"], "ev-11");
    // A screen's acknowledgement is told to neither pump; a silence goes to the pump that raised the alarm only.
    assert!(b.batch(3_000, &second, &[], None).commands.is_empty());
    assert!(b.batch(3_000, &pump(false), &[], None).commands.is_empty());
    b.silence(4_000, PATIENT, &id, &nurse(), 2).unwrap();
    assert!(b.batch(5_000, &second, &[], None).commands.is_empty());
    assert_eq!(
        b.batch(5_000, &pump(false), &[], None).commands,
        [PumpCommand::Silence {
            alarm: "air_in_line".into()
        }]
    );
}

#[test]
fn a_pump_touches_only_its_own_alarms() {
    let mut b = board();
    let second = Device {
        id: "dev_second".into(),
        ..pump(false)
    };
    b.batch(0, &pump(false), &[raised("air_in_line", "high", 31)], None);
    // The second pump clears and acknowledges "air_in_line": not its alarm, nothing changes.
    b.batch(
        1_000,
        &second,
        &[
            event(Kind::AlarmCleared, 1_000, json!({"alarm": "air_in_line"})),
            event(
                Kind::AlarmAcknowledged,
                1_000,
                json!({"alarm": "air_in_line"}),
            ),
        ],
        None,
    );
    let snap = b.snapshot(1_000, PATIENT);
    assert_eq!(snap.active_alarms.len(), 1);
    assert!(snap.active_alarms[0].acknowledgements.is_empty());
    // Its own alarm of the same name stands beside the first, and clears on its own.
    b.batch(2_000, &second, &[raised("air_in_line", "high", 32)], None);
    assert_eq!(b.snapshot(2_000, PATIENT).active_alarms.len(), 2);
    b.batch(
        3_000,
        &pump(false),
        &[event(
            Kind::AlarmCleared,
            3_000,
            json!({"alarm": "air_in_line"}),
        )],
        None,
    );
    let left = b.snapshot(3_000, PATIENT).active_alarms;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, "ev-32");
    assert_eq!(
        rungs(&b.tick(2_000 + 5 * MINUTE_MS)),
        [("air_in_line".into(), "nurse".into())]
    );
}

#[test]
fn an_action_by_id_reaches_exactly_that_alarm() {
    let mut b = board();
    b.batch(
        0,
        &pump(false),
        &[raised("occlusion_downstream", "high", 21)],
        None,
    );
    b.batch(
        0,
        &pump(true),
        &[raised("occlusion_downstream", "high", 22)],
        None,
    );
    // By id, the real alarm is acknowledged although a practice one shares its name.
    let (view, _) = b
        .acknowledge(1_000, PATIENT, "ev-21", &nurse(), None)
        .unwrap();
    assert!(!view.teaching);
    assert!(
        b.acknowledge(1_000, PATIENT, "ev-99", &nurse(), None)
            .is_err()
    );
}

#[test]
fn acknowledging_an_alarm_that_is_not_active_is_refused() {
    let mut b = board();
    let err = b
        .acknowledge(0, PATIENT, "air_in_line", &nurse(), None)
        .unwrap_err();
    assert!(err.to_string().contains("air_in_line"), "{err}");
    assert!(
        b.acknowledge(0, "pat_unknown", "air_in_line", &nurse(), None)
            .is_err()
    );
}

#[test]
fn a_press_at_the_pump_counts_as_the_patient_acknowledging() {
    let mut b = board();
    b.batch(0, &pump(false), &[raised("door_open", "high", 0)], None);
    let out = b.batch(
        MINUTE_MS,
        &pump(false),
        &[event(
            Kind::AlarmAcknowledged,
            MINUTE_MS,
            json!({"alarm": "door_open"}),
        )],
        None,
    );
    assert_eq!(published(&out.effects), [MessageKind::Acknowledged]);
    let view = &b.snapshot(MINUTE_MS, PATIENT).active_alarms[0];
    assert_eq!(view.acknowledgements[0].role, "pump");
    assert!(rungs(&b.tick(60 * MINUTE_MS)).is_empty());
}

#[test]
fn silence_mutes_but_never_stops_escalation() {
    let mut b = board();
    b.batch(
        0,
        &pump(false),
        &[raised("occlusion_downstream", "high", 0)],
        None,
    );
    assert!(
        b.silence(0, PATIENT, "occlusion_downstream", &patient(), 0)
            .is_err()
    );
    assert!(
        b.silence(0, PATIENT, "occlusion_downstream", &patient(), 16)
            .is_err()
    );
    let (view, effects) = b
        .silence(MINUTE_MS, PATIENT, "occlusion_downstream", &patient(), 2)
        .unwrap();
    assert_eq!(view.silenced_until_ms, Some(3 * MINUTE_MS));
    assert_eq!(recorded(&effects), ["alarm_silenced"]);
    assert_eq!(
        rungs(&b.tick(5 * MINUTE_MS)),
        [("occlusion_downstream".into(), "nurse".into())]
    );
    let out = b.batch(6 * MINUTE_MS, &pump(false), &[], None);
    assert_eq!(
        out.commands,
        [PumpCommand::Silence {
            alarm: "occlusion_downstream".into()
        }]
    );
}

#[test]
fn a_pump_that_goes_quiet_while_infusing_raises_pump_silent_until_it_speaks() {
    let mut b = board();
    b.batch(0, &pump(false), &[], Some(telemetry("infusing")));
    assert!(
        b.tick(60_000).is_empty(),
        "exactly the limit is not yet silent"
    );
    let out = b.tick(60_001);
    assert_eq!(recorded(&out), ["alarm_raised", "alarm_escalated"]);
    assert_eq!(
        published(&out),
        [MessageKind::Alarm, MessageKind::Escalation]
    );
    let snap = b.snapshot(60_001, PATIENT);
    assert_eq!(snap.link, "silent");
    assert!(snap.active_alarms[0].raised_by_server);
    // Named by the moment the silence passed the allowance, which every process computes alike.
    assert_eq!(snap.active_alarms[0].id, "srv-60000");
    assert!(b.tick(120_000).is_empty(), "raised once");
    // Unanswered, it climbs like any high alarm.
    assert_eq!(
        rungs(&b.tick(60_001 + 5 * MINUTE_MS)),
        [("pump_silent".into(), "nurse".into())]
    );
    let out = b.batch(
        7 * MINUTE_MS,
        &pump(false),
        &[],
        Some(telemetry("infusing")),
    );
    assert_eq!(recorded(&out.effects)[0], "alarm_cleared");
    let Effect::Record(d) = &flat(&out.effects)[0] else {
        panic!()
    };
    assert_eq!(d.payload["resolution"], "telemetry resumed");
    assert!(b.snapshot(7 * MINUTE_MS, PATIENT).active_alarms.is_empty());
}

#[test]
fn a_stopped_pump_going_quiet_is_not_an_alarm() {
    let mut b = board();
    b.batch(0, &pump(false), &[], Some(telemetry("paused")));
    assert!(b.tick(10 * MINUTE_MS).is_empty());
    assert_eq!(b.snapshot(10 * MINUTE_MS, PATIENT).link, "silent");
}

#[test]
fn telemetry_is_recorded_on_a_change_of_state_and_at_most_once_a_minute() {
    let mut b = board();
    let count = |b: &mut Board, at: i64, state: &str| {
        recorded(
            &b.batch(at, &pump(false), &[], Some(telemetry(state)))
                .effects,
        )
        .iter()
        .filter(|k| *k == "telemetry")
        .count()
    };
    assert_eq!(count(&mut b, 0, "infusing"), 1);
    assert_eq!(count(&mut b, 10_000, "infusing"), 0);
    assert_eq!(count(&mut b, 20_000, "paused"), 1);
    assert_eq!(count(&mut b, 79_999, "paused"), 0);
    assert_eq!(count(&mut b, 80_000, "paused"), 1);
}

#[test]
fn a_practice_pump_never_touches_the_real_pump() {
    let mut b = board();
    b.batch(
        0,
        &pump(false),
        &[raised("occlusion_downstream", "high", 0)],
        Some(telemetry("infusing")),
    );
    let out = b.batch(
        1_000,
        &pump(true),
        &[raised("occlusion_downstream", "high", 1_000)],
        Some(telemetry("stopped_by_alarm")),
    );
    assert_eq!(
        b.snapshot(1_000, PATIENT).active_alarms.len(),
        2,
        "a practice alarm beside the real one"
    );
    assert!(
        !b.snapshot(1_000, PATIENT).teaching,
        "the real pump keeps the live slot"
    );
    assert!(recorded(&out.effects).iter().all(|k| k != "telemetry"));
    // Acknowledging by name picks the practice alarm and never queues a command for the real pump.
    let (view, effects) = b
        .acknowledge(2_000, PATIENT, "occlusion_downstream", &patient(), None)
        .unwrap();
    assert!(view.teaching);
    let Effect::Record(d) = &effects[0] else {
        panic!()
    };
    assert!(d.teaching);
    assert_eq!(
        d.device_id.as_deref(),
        Some("dev_practice"),
        "recorded under the practice pump"
    );
    assert!(b.batch(3_000, &pump(false), &[], None).commands.is_empty());
    assert!(
        b.batch(3_000, &pump(true), &[], None).commands.is_empty(),
        "neither pump is told: the practice pump follows the same rule as a real one"
    );
    // Practice alarms never page anyone; the real one still does.
    b.batch(
        5 * MINUTE_MS - 1_000,
        &pump(false),
        &[],
        Some(telemetry("infusing")),
    );
    let out = b.tick(5 * MINUTE_MS);
    assert_eq!(
        rungs(&out),
        [("occlusion_downstream".into(), "nurse".into())]
    );
    assert!(
        notices(&out)
            .iter()
            .all(|n| n.alarm == "occlusion_downstream")
    );
    // Ending practice clears only the practice alarm.
    b.clear_teaching(PATIENT);
    let left = b.snapshot(5 * MINUTE_MS, PATIENT).active_alarms;
    assert_eq!(left.len(), 1);
    assert!(!left[0].teaching);
}

#[test]
fn the_dashboard_puts_the_most_urgent_first() {
    let mut b = board();
    b.register("pat_2", CLINIC);
    b.register("pat_3", CLINIC);
    let other = Device {
        patient_id: "pat_2".into(),
        ..pump(false)
    };
    b.batch(0, &other, &[raised("battery_low", "low", 0)], None);
    b.batch(0, &pump(false), &[raised("air_in_line", "high", 0)], None);
    let rows = b.dashboard(
        0,
        vec![
            ("pat_3".into(), "Ann".into()),
            ("pat_2".into(), "Bob".into()),
            (PATIENT.into(), "Cy".into()),
        ],
    );
    let order: Vec<&str> = rows.iter().map(|r| r.display_name.as_str()).collect();
    assert_eq!(order, ["Cy", "Bob", "Ann"]);
    assert_eq!(rows[0].top_priority, Some(Priority::High));
}

/// The dashboard asks the board only about the patients with something to show: any alarm or a silent link
/// ranks; a real alarm or the patient's own pump gone silent needs a nurse (a practice alarm or a quiet
/// practice pump does not); another clinic's patients are never among them.
#[test]
fn only_alarms_and_silent_links_rank_and_only_real_ones_need_attention() {
    let mut b = board();
    for id in ["pat_2", "pat_3", "pat_4"] {
        b.register(id, CLINIC);
    }
    let on = |patient: &str, id: &str, clinic: &str, teaching: bool| Device {
        id: id.into(),
        patient_id: patient.into(),
        clinic_id: clinic.into(),
        teaching,
    };
    b.batch(0, &pump(false), &[raised("air_in_line", "high", 0)], None);
    b.batch(
        0,
        &on("pat_2", "dev_2", CLINIC, true),
        &[raised("door_open", "medium", 0)],
        None,
    );
    b.batch(
        0,
        &on("pat_3", "dev_3", CLINIC, false),
        &[],
        Some(telemetry("infusing")),
    );
    b.register("pat_9", "cln_2");
    b.batch(
        0,
        &on("pat_9", "dev_9", "cln_2", false),
        &[raised("air_in_line", "high", 0)],
        None,
    );
    let quiet = settings().pump_silent_after_ms + 1;
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    assert_eq!(
        sorted(b.ranked_patients(quiet, CLINIC)),
        ["pat_1", "pat_2", "pat_3"]
    );
    let attention = sorted(b.patients_needing_attention(quiet, CLINIC));
    assert_eq!(attention, ["pat_1", "pat_3"]);
    assert_eq!(
        sorted(b.patients_needing_attention(0, CLINIC)),
        ["pat_1"],
        "pat_3 is live at first"
    );
    for id in ["pat_1", "pat_2", "pat_3", "pat_4"] {
        let row = b.summary(quiet, id.into(), id.into());
        assert_eq!(
            super::board::needs_attention(&row),
            attention.iter().any(|a| a == id),
            "{id}: the row and the board agree"
        );
    }
}

fn restored(history: Vec<RestoredEvent>) -> RestoredAlarm {
    RestoredAlarm {
        raised_event: 7,
        alarm: "occlusion_downstream".into(),
        priority: Priority::High,
        raised_at_ms: 0,
        device_id: "dev_real".into(),
        history,
    }
}

fn history(kind: Kind, at_ms: i64, source: record::Source, payload: Value) -> RestoredEvent {
    RestoredEvent {
        kind: kind.name().into(),
        at_ms,
        source,
        actor: "usr_nurse".into(),
        payload,
    }
}

#[test]
fn a_restored_alarm_keeps_its_acknowledgements_and_rung() {
    let mut b = Board::new(settings());
    b.restore(
        PATIENT,
        CLINIC,
        vec![restored(vec![
            history(Kind::AlarmEscalated, 0, record::Source::System, json!({"alarm": "occlusion_downstream", "rung": "patient"})),
            history(Kind::AlarmEscalated, 5 * MINUTE_MS, record::Source::System, json!({"alarm": "occlusion_downstream", "rung": "nurse"})),
            history(Kind::AlarmAcknowledged, 6 * MINUTE_MS, record::Source::Nurse, json!({"alarm": "occlusion_downstream", "display_name": "Sam Jones", "role": "nurse", "note": "called Alex"})),
            // About another alarm: ignored.
            history(Kind::AlarmAcknowledged, 6 * MINUTE_MS, record::Source::Nurse, json!({"alarm": "air_in_line"})),
        ])],
    );
    let view = &b.snapshot(0, PATIENT).active_alarms[0];
    assert_eq!(view.escalation, Some(Rung::Nurse));
    assert_eq!(view.acknowledgements.len(), 1);
    assert_eq!(
        view.acknowledgements[0].note.as_deref(),
        Some("called Alex")
    );
    assert!(
        b.tick(60 * MINUTE_MS).is_empty(),
        "the nurse acknowledged: no on-call after a restart"
    );
}

#[test]
fn a_pump_claiming_a_rung_does_not_stop_the_ladder_after_a_restart() {
    let mut b = Board::new(settings());
    b.restore(
        PATIENT,
        CLINIC,
        vec![restored(vec![history(
            Kind::AlarmEscalated,
            0,
            record::Source::Pump,
            json!({"alarm": "occlusion_downstream", "rung": "on_call"}),
        )])],
    );
    assert_eq!(b.snapshot(0, PATIENT).active_alarms[0].escalation, None);
    let out = b.tick(5 * MINUTE_MS);
    assert_eq!(
        rungs(&out),
        [
            ("occlusion_downstream".into(), "patient".into()),
            ("occlusion_downstream".into(), "nurse".into())
        ]
    );
}

#[test]
fn a_restored_unanswered_alarm_goes_on_climbing() {
    let mut b = Board::new(settings());
    b.restore(
        PATIENT,
        CLINIC,
        vec![restored(vec![history(
            Kind::AlarmEscalated,
            0,
            record::Source::System,
            json!({"alarm": "occlusion_downstream", "rung": "patient"}),
        )])],
    );
    assert_eq!(
        rungs(&b.tick(5 * MINUTE_MS)),
        [("occlusion_downstream".into(), "nurse".into())]
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Input {
        Raise {
            alarm: usize,
            priority: usize,
            teaching: bool,
        },
        Clear {
            alarm: usize,
            teaching: bool,
        },
        PumpAck {
            alarm: usize,
            teaching: bool,
        },
        Telemetry {
            infusing: bool,
            teaching: bool,
        },
        PersonAck {
            alarm: usize,
            nurse: bool,
        },
        Silence {
            alarm: usize,
            minutes: u32,
        },
        Tick,
        ClearTeaching,
    }

    const ALARMS: [&str; 3] = ["occlusion_downstream", "air_in_line", "pump_silent"];
    const PRIORITIES: [&str; 3] = ["low", "medium", "high"];

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            (0..3usize, 0..3usize, any::<bool>()).prop_map(|(alarm, priority, teaching)| {
                Input::Raise {
                    alarm,
                    priority,
                    teaching,
                }
            }),
            (0..3usize, any::<bool>())
                .prop_map(|(alarm, teaching)| Input::Clear { alarm, teaching }),
            (0..3usize, any::<bool>())
                .prop_map(|(alarm, teaching)| Input::PumpAck { alarm, teaching }),
            (any::<bool>(), any::<bool>())
                .prop_map(|(infusing, teaching)| Input::Telemetry { infusing, teaching }),
            (0..3usize, any::<bool>()).prop_map(|(alarm, nurse)| Input::PersonAck { alarm, nurse }),
            (0..3usize, 0..20u32).prop_map(|(alarm, minutes)| Input::Silence { alarm, minutes }),
            Just(Input::Tick),
            Just(Input::ClearTeaching),
        ]
    }

    fn step(b: &mut Board, now: i64, input: &Input) -> Vec<Effect> {
        match *input {
            Input::Raise {
                alarm,
                priority,
                teaching,
            } => {
                b.batch(
                    now,
                    &pump(teaching),
                    &[raised(ALARMS[alarm], PRIORITIES[priority], now)],
                    None,
                )
                .effects
            }
            Input::Clear { alarm, teaching } => {
                let e = event(Kind::AlarmCleared, now, json!({"alarm": ALARMS[alarm]}));
                b.batch(now, &pump(teaching), &[e], None).effects
            }
            Input::PumpAck { alarm, teaching } => {
                let e = event(
                    Kind::AlarmAcknowledged,
                    now,
                    json!({"alarm": ALARMS[alarm]}),
                );
                b.batch(now, &pump(teaching), &[e], None).effects
            }
            Input::Telemetry { infusing, teaching } => {
                let t = telemetry(if infusing { "infusing" } else { "paused" });
                b.batch(now, &pump(teaching), &[], Some(t)).effects
            }
            Input::PersonAck {
                alarm,
                nurse: by_nurse,
            } => {
                let who = if by_nurse { nurse() } else { patient() };
                b.acknowledge(now, PATIENT, ALARMS[alarm], &who, None)
                    .map(|r| r.1)
                    .unwrap_or_default()
            }
            Input::Silence { alarm, minutes } => b
                .silence(now, PATIENT, ALARMS[alarm], &patient(), minutes)
                .map(|r| r.1)
                .unwrap_or_default(),
            Input::Tick => b.tick(now),
            Input::ClearTeaching => {
                b.clear_teaching(PATIENT);
                vec![]
            }
        }
    }

    proptest! {
        /// Whatever happens, in any order: one alarm per name and kind (real or practice) at a time; every rung
        /// of an alarm is recorded once and in ladder order while it stays raised; nobody is paged for a
        /// practice alarm or a low-priority one; every effect is about the board's patient.
        #[test]
        fn board_invariants(inputs in proptest::collection::vec((input(), 0..4 * MINUTE_MS), 1..60)) {
            let mut b = board();
            let mut now = 0i64;
            let mut ladder: std::collections::HashMap<(String, bool, i64), Vec<Rung>> = Default::default();
            for (input, advance) in &inputs {
                now += advance;
                let effects = flat(&step(&mut b, now, input));
                for e in &effects {
                    match e {
                        Effect::Record(d) => {
                            prop_assert_eq!(&d.patient_id, PATIENT);
                            if d.kind.name() == "alarm_escalated" {
                                let rung = Rung::from_name(d.payload["rung"].as_str().unwrap()).unwrap();
                                let key = (d.payload["alarm"].as_str().unwrap().to_string(), d.teaching, d.payload["raised_at_ms"].as_i64().unwrap());
                                let seen = ladder.entry(key).or_default();
                                prop_assert!(seen.last().is_none_or(|last| *last < rung), "rung {:?} after {:?}", rung, seen);
                                seen.push(rung);
                            }
                        }
                        Effect::Publish(m) => prop_assert_eq!(&m.patient_id, PATIENT),
                        Effect::Notify(n) => {
                            prop_assert!(n.priority != Priority::Low, "a low-priority reminder paged someone");
                            prop_assert!(n.rung != Rung::Patient);
                        }
                        Effect::Claim { .. } | Effect::Telemetry(_) => prop_assert!(false, "flat() opens these"),
                    }
                }
                for e in &effects {
                    if let Effect::Record(d) = e && d.teaching && d.kind.name() == "alarm_escalated" {
                        prop_assert_eq!(d.payload["rung"].as_str(), Some("patient"), "a practice alarm climbed");
                    }
                }
                let snap = b.snapshot(now, PATIENT);
                let mut keys: Vec<(String, bool)> = snap.active_alarms.iter().map(|a| (a.alarm.clone(), a.teaching)).collect();
                let before = keys.len();
                keys.sort();
                keys.dedup();
                prop_assert_eq!(keys.len(), before, "an alarm is on the board twice");
                for pair in snap.active_alarms.windows(2) {
                    prop_assert!(
                        (pair[0].teaching, std::cmp::Reverse(pair[0].priority)) <= (pair[1].teaching, std::cmp::Reverse(pair[1].priority)),
                        "not real before practice, then highest priority first"
                    );
                }
            }
        }
    }
}

// Several server processes (issue 15): a board follows what others recorded, and their decisions are claims.

/// An event as the record holds it, written by a pump or by a person or the server of another process.
fn from_record(
    record_id: i64,
    kind: Kind,
    source: record::Source,
    actor: &str,
    at_ms: i64,
    payload: Value,
) -> crate::domain::board::Recorded {
    crate::domain::board::Recorded {
        record_id,
        patient_id: PATIENT.into(),
        kind: kind.name().into(),
        source,
        actor: actor.into(),
        device_id: "dev_real".into(),
        teaching: false,
        occurred_at_ms: at_ms,
        recorded_at_ms: at_ms,
        payload,
    }
}

#[test]
fn a_followed_alarm_acknowledgement_and_rung_show_here_and_decide_nothing() {
    let mut b = board();
    let raise = from_record(
        7,
        Kind::AlarmRaised,
        record::Source::Pump,
        "dev_real",
        1_000,
        json!({"alarm": "occlusion_downstream", "priority": "high"}),
    );
    let out = b.follow(&raise, false);
    assert_eq!(published(&out), [MessageKind::Alarm]);
    assert!(recorded_kinds(&out).is_empty(), "following records nothing");
    let view = &b.snapshot(1_000, PATIENT).active_alarms[0];
    assert_eq!(view.id, "ev-7");
    // The same event again (a second notification, a catch-up) changes nothing.
    assert!(b.follow(&raise, false).is_empty());
    let ack = from_record(
        8,
        Kind::AlarmAcknowledged,
        record::Source::Nurse,
        "usr_nurse",
        2_000,
        json!({"alarm": "occlusion_downstream", "alarm_id": "ev-7", "display_name": "Sam Jones", "role": "nurse", "note": "on my way"}),
    );
    assert_eq!(
        published(&b.follow(&ack, false)),
        [MessageKind::Acknowledged]
    );
    assert!(
        b.follow(&ack, false).is_empty(),
        "an acknowledgement is taken in once"
    );
    let view = &b.snapshot(2_000, PATIENT).active_alarms[0];
    assert_eq!(view.acknowledgements.len(), 1);
    assert_eq!(view.acknowledgements[0].note.as_deref(), Some("on my way"));
    let rung = from_record(
        9,
        Kind::AlarmEscalated,
        record::Source::System,
        "system",
        3_000,
        json!({"alarm": "occlusion_downstream", "alarm_id": "ev-7", "rung": "nurse"}),
    );
    assert_eq!(
        published(&b.follow(&rung, false)),
        [MessageKind::Escalation]
    );
    assert_eq!(
        b.snapshot(3_000, PATIENT).active_alarms[0].escalation,
        Some(Rung::Nurse)
    );
    // A pump's own "escalated" is not the server's rung.
    let forged = from_record(
        10,
        Kind::AlarmEscalated,
        record::Source::Pump,
        "dev_real",
        3_000,
        json!({"alarm": "occlusion_downstream", "alarm_id": "ev-7", "rung": "on_call"}),
    );
    assert!(b.follow(&forged, false).is_empty());
    assert_eq!(
        b.snapshot(3_000, PATIENT).active_alarms[0].escalation,
        Some(Rung::Nurse)
    );
}

fn recorded_kinds(effects: &[Effect]) -> Vec<String> {
    recorded(effects)
}

#[test]
fn a_clear_this_process_wrote_before_it_saw_the_raise_ends_in_the_records_order() {
    // The pump raised on process A (record id 7); its next batch, with the clear, reached this process before
    // this process had followed the raise: this board cleared nothing and wrote the clear (id 8).
    let mut b = board();
    b.batch(
        1_000,
        &pump(false),
        &[event(
            Kind::AlarmCleared,
            8,
            json!({"alarm": "occlusion_downstream"}),
        )],
        None,
    );
    let raise = from_record(
        7,
        Kind::AlarmRaised,
        record::Source::Pump,
        "dev_real",
        900,
        json!({"alarm": "occlusion_downstream", "priority": "high"}),
    );
    let clear = from_record(
        8,
        Kind::AlarmCleared,
        record::Source::Pump,
        "dev_real",
        1_000,
        json!({"alarm": "occlusion_downstream"}),
    );
    b.follow(&raise, false);
    let out = b.follow(&clear, true);
    assert!(out.is_empty(), "its own events are taken in silently");
    assert!(
        b.snapshot(2_000, PATIENT).active_alarms.is_empty(),
        "no alarm left open that the record cleared"
    );
}

#[test]
fn a_clear_closes_only_the_occurrence_raised_before_it() {
    let mut b = board();
    // Raised (5), cleared (6) and raised again (8) here; following the old clear must not close the new one.
    b.batch(
        1_000,
        &pump(false),
        &[raised("air_in_line", "high", 5)],
        None,
    );
    b.batch(
        2_000,
        &pump(false),
        &[event(
            Kind::AlarmCleared,
            6,
            json!({"alarm": "air_in_line"}),
        )],
        None,
    );
    b.batch(
        3_000,
        &pump(false),
        &[raised("air_in_line", "high", 8)],
        None,
    );
    let old_clear = from_record(
        6,
        Kind::AlarmCleared,
        record::Source::Pump,
        "dev_real",
        2_000,
        json!({"alarm": "air_in_line"}),
    );
    b.follow(&old_clear, true);
    let active = b.snapshot(3_000, PATIENT).active_alarms;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].id, "ev-8");
}

#[test]
fn rungs_and_pump_silent_are_claims_with_keys_every_process_computes_alike() {
    let mut a = board();
    let mut b = board();
    for board in [&mut a, &mut b] {
        board.batch(
            0,
            &pump(false),
            &[raised("occlusion_downstream", "high", 41)],
            Some(telemetry("infusing")),
        );
    }
    let keys = |effects: &[Effect]| -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Claim { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect()
    };
    let (ta, tb) = (a.tick(5 * MINUTE_MS), b.tick(5 * MINUTE_MS + 150));
    assert!(!keys(&ta).is_empty());
    assert_eq!(
        keys(&ta),
        keys(&tb),
        "the same rung has the same claim in both processes"
    );
    assert!(keys(&ta).iter().any(|k| k.ends_with("/ev-41/nurse")));
    // The page and the webhook go with the claim: only the process whose event is recorded announces them.
    let Some(Effect::Claim { then, .. }) = ta
        .iter()
        .find(|e| matches!(e, Effect::Claim { key, .. } if key.ends_with("/nurse")))
    else {
        panic!("a nurse rung")
    };
    assert!(then.iter().any(|e| matches!(e, Effect::Notify(_))));
}

#[test]
fn a_contact_another_process_received_keeps_the_pump_alive_here() {
    let mut b = board();
    b.batch(0, &pump(false), &[], Some(telemetry("infusing")));
    let contact = crate::domain::board::RemoteContact {
        device: pump(false),
        at_ms: 50_000,
        telemetry: Some(telemetry("infusing")),
    };
    b.contact(&contact);
    // 70 s after this process last heard the pump, but 20 s after the other process did: not silent.
    assert!(
        recorded(&flat(&b.tick(70_000)))
            .iter()
            .all(|k| k != "alarm_raised")
    );
    assert!(
        recorded(&flat(&b.tick(111_000)))
            .iter()
            .any(|k| k == "alarm_raised"),
        "silent 61 s after the last contact anywhere"
    );
    // An older contact never moves the clock back.
    let old = crate::domain::board::RemoteContact {
        at_ms: 10_000,
        ..contact
    };
    assert!(b.contact(&old).is_empty());
}

#[test]
fn a_pump_switched_off_after_its_dose_does_not_need_a_nurse_but_one_silent_while_infusing_does() {
    for (state, needs) in [
        ("paused", false),
        ("stopped", false),
        ("infusing", true),
        ("kvo", true),
    ] {
        let mut b = board();
        b.batch(0, &pump(false), &[], Some(telemetry(state)));
        // Past the allowance, before the watchdog's tick raised anything.
        let later = 61_000;
        assert_eq!(b.snapshot(later, PATIENT).link, "silent");
        assert_eq!(
            b.patients_needing_attention(later, CLINIC)
                .contains(&PATIENT.to_string()),
            needs,
            "silent while {state}"
        );
        let row = b.summary(later, PATIENT.into(), "Alex".into());
        assert_eq!(
            crate::domain::board::needs_attention(&row),
            needs,
            "silent while {state}"
        );
    }
}

#[test]
fn telemetry_with_an_unchanged_state_is_routine_and_a_changed_state_is_not() {
    let mut b = board();
    let routine = |effects: &[Effect]| -> Vec<bool> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Publish(m) if m.kind == MessageKind::Telemetry => Some(m.routine),
                _ => None,
            })
            .collect()
    };
    let first = b.batch(0, &pump(false), &[], Some(telemetry("infusing")));
    assert_eq!(
        routine(&first.effects),
        [false],
        "the first telemetry is news"
    );
    let same = b.batch(10_000, &pump(false), &[], Some(telemetry("infusing")));
    assert_eq!(
        routine(&same.effects),
        [true],
        "the same state again is routine"
    );
    let changed = b.batch(20_000, &pump(false), &[], Some(telemetry("paused")));
    assert_eq!(routine(&changed.effects), [false], "a new state is news");
    // The clinic's streams leave routine telemetry out; the patient's own streams keep it.
    let Some(Effect::Publish(m)) = same
        .effects
        .iter()
        .find(|e| matches!(e, Effect::Publish(m) if m.kind == MessageKind::Telemetry))
    else {
        panic!("a telemetry message")
    };
    assert!(!crate::services::hub::Filter::Clinic(CLINIC.into()).accepts(m));
    assert!(crate::services::hub::Filter::Patient(PATIENT.into()).accepts(m));
}

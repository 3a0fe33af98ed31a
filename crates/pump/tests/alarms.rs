//! Every alarm as one row of a table: what raises it, what the motor does, what clears it.
//!
//! Each case runs through the shared harness (ideal mechanism, frames every 100 ms, deadlines
//! honoured, every safety invariant checked after every call). `check` then asserts, in order: the
//! alarm is raised with its catalogue priority; the motor does what the catalogue says; removing the
//! cause alone does NOT clear it (alarms latch); acknowledging then clears it (or, for
//! `system_error`, never does).

use pump::harness::{Harness, SensorChange, Step};
use pump::{
    AlarmDetail, AlarmKind, BolusProgram, Command, Config, EndAction, Event, MotorCommand,
    Priority, ProgramRequest, SelfTest, SensorField, State,
};

/// What the motor must do while the alarm is active.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Motor {
    Stopped,
    /// Pressure relief: runs backwards at `Config::relief_rate_ml_per_h`.
    Relieves,
    /// Keeps running at the programmed rate.
    Runs,
    /// Runs at this (KVO) rate.
    RunsAt(f64),
}

/// How the alarm ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Clears {
    /// Cause removed, still listed (latched); acknowledged, gone.
    AfterCauseAndAck,
    /// Never: a system fault stays until service, whatever is done.
    Never,
}

struct Case {
    alarm: AlarmKind,
    priority: Priority,
    program: ProgramRequest,
    raise: Vec<Step>,
    motor: Motor,
    remove_cause: Vec<Step>,
    clears: Clears,
}

fn run(ms: u64) -> Step {
    Step::Run { ms }
}
/// Time passing in ten-minute steps (the harness's longest step).
fn minutes(n: u64) -> Vec<Step> {
    (0..n.div_ceil(10)).map(|_| run(10 * 60_000)).collect()
}
fn sense(change: SensorChange) -> Step {
    Step::Sensors(change)
}
fn command(c: Command) -> Step {
    Step::Command(c)
}

fn basal(rate_ml_per_h: f64, vtbi_ml: f64) -> ProgramRequest {
    ProgramRequest::continuous(rate_ml_per_h, vtbi_ml, EndAction::Stop)
}

fn step_all(h: &mut Harness, steps: &[Step]) {
    for step in steps {
        h.step(step)
            .unwrap_or_else(|violation| panic!("invariant broken at {step:?}: {violation}"));
    }
}

fn check(case: Case) {
    let name = case.alarm.name();
    let mut h = Harness::new(Config::default());
    step_all(
        &mut h,
        &[
            run(200),
            command(Command::Program(case.program.clone())),
            command(Command::Start),
            run(1000),
        ],
    );
    assert_eq!(
        h.pump().state(),
        State::Infusing,
        "{name}: setup did not start infusing"
    );
    assert!(
        h.pump().alarm(case.alarm).is_none(),
        "{name}: active before its cause"
    );

    step_all(&mut h, &case.raise);
    let alarm = h.pump().alarm(case.alarm).unwrap_or_else(|| {
        panic!(
            "{name}: not raised; active: {:?}",
            h.pump().active_alarms().collect::<Vec<_>>()
        )
    });
    assert_eq!(alarm.priority, case.priority, "{name}: priority");
    assert!(
        h.events()
            .iter()
            .any(|e| matches!(e, Event::AlarmRaised { alarm, .. } if *alarm == case.alarm)),
        "{name}: no AlarmRaised event"
    );
    let motor = h.pump().motor_command();
    match case.motor {
        Motor::Stopped => assert_eq!(motor, MotorCommand::Stopped, "{name}: motor"),
        Motor::Relieves => assert_eq!(
            motor,
            MotorCommand::Reverse {
                rate_ml_per_h: Config::default().relief_rate_ml_per_h
            },
            "{name}: motor"
        ),
        Motor::Runs => {
            let rate = case.program.rate_ml_per_h;
            assert_eq!(
                motor,
                MotorCommand::Run {
                    rate_ml_per_h: rate
                },
                "{name}: motor"
            )
        }
        Motor::RunsAt(rate) => {
            assert_eq!(
                motor,
                MotorCommand::Run {
                    rate_ml_per_h: rate
                },
                "{name}: motor"
            )
        }
    }
    assert!(
        h.pump()
            .annunciation()
            .active
            .iter()
            .any(|a| a.kind == case.alarm),
        "{name}: not shown in the annunciation"
    );

    step_all(&mut h, &case.remove_cause);
    let alarm = h.pump().alarm(case.alarm);
    assert!(
        alarm.is_some(),
        "{name}: cleared without acknowledgement (alarms latch)"
    );

    step_all(
        &mut h,
        &[command(Command::Acknowledge(case.alarm)), run(200)],
    );
    match case.clears {
        Clears::AfterCauseAndAck => {
            assert!(
                h.pump().alarm(case.alarm).is_none(),
                "{name}: still active after cause gone + ack: {:?}",
                h.pump().alarm(case.alarm)
            );
            assert!(
                h.events()
                    .iter()
                    .any(|e| matches!(e, Event::AlarmCleared { alarm } if *alarm == case.alarm)),
                "{name}: no AlarmCleared event"
            );
        }
        Clears::Never => {
            let alarm = h.pump().alarm(case.alarm).expect("fault alarm stays");
            assert!(alarm.acknowledged, "{name}: acknowledgement not recorded");
            assert_eq!(h.pump().state(), State::Fault);
            step_all(
                &mut h,
                &[command(Command::Start), command(Command::Resume), run(1000)],
            );
            assert_eq!(
                h.pump().state(),
                State::Fault,
                "{name}: a fault must refuse restart"
            );
            assert_eq!(h.pump().motor_command(), MotorCommand::Stopped);
        }
    }
}

fn bolus_program() -> ProgramRequest {
    ProgramRequest {
        drug_id: None,
        rate_ml_per_h: 1.0,
        vtbi_ml: 100.0,
        end_action: EndAction::Stop,
        bolus: Some(BolusProgram {
            volume_ml: 1.0,
            lockout_min: 5.0,
            max_ml_per_h: 3.0,
        }),
        reservoir_ml: None,
    }
}

fn open_door_and_resume() -> Vec<Step> {
    vec![
        sense(SensorChange::Door { closed: false }),
        run(200),
        sense(SensorChange::Door { closed: true }),
        run(200),
        command(Command::Acknowledge(AlarmKind::DoorOpen)),
        command(Command::Resume),
        run(200),
    ]
}

#[test]
fn occlusion_downstream() {
    check(Case {
        alarm: AlarmKind::OcclusionDownstream,
        priority: Priority::High,
        program: basal(25.0, 100.0),
        // The fixed limit is the backstop: a line held above it (the motor waits while it is)
        // for `occlusion_limit_persist_ms`.
        raise: vec![
            sense(SensorChange::DownstreamPressure { mmhg: 600.0 }),
            run(Config::default().occlusion_limit_persist_ms + 200),
        ],
        // Pressure relief backs the mechanism off (here the harness line keeps its 600 mmHg, so
        // relief ends at the volume this program pushed).
        motor: Motor::Relieves,
        remove_cause: vec![
            sense(SensorChange::DownstreamPressure { mmhg: 40.0 }),
            run(200),
        ],
        clears: Clears::AfterCauseAndAck,
    });
}

/// Frames of a line answering each stroke: the pressure jumps by `jump` at each stroke of a pump
/// running at `rate` since `started_ms`, then drains towards `base` keeping `keep` of its excess per
/// 100 ms frame (1.0: a blocked line). From `from_ms` to `to_ms`, with `excess` carried in and out.
fn line_frames(
    steps: &mut Vec<Step>,
    (from_ms, to_ms): (u64, u64),
    (started_ms, rate): (u64, f64),
    (base, jump, keep): (f64, f64, f64),
    excess: &mut f64,
) {
    let strokes = |t: u64| ((rate / 3600.0 * (t - started_ms) as f64) / 50.0).floor();
    let mut t = from_ms;
    while t < to_ms {
        let next = t + 100;
        *excess = *excess * keep + jump * (strokes(next) - strokes(t));
        steps.push(sense(SensorChange::DownstreamPressure {
            mmhg: base + *excess,
        }));
        steps.push(run(100));
        t = next;
    }
}

#[test]
fn line_disconnected() {
    // The check's set-up starts the pump at 200 ms and hands over at 1200 ms; 37 mL/h puts the
    // strokes (every 4.86 s) between frames. Two minutes in a vein (8 mmHg, pulses halve in about
    // 2.6 frames), then the line open to the room (0 mmHg, the catheter's resistance gone).
    let mut raise = Vec::new();
    let mut excess = 0.0;
    let started = (200, 37.0);
    line_frames(
        &mut raise,
        (1200, 121_200),
        started,
        (8.0, 30.0, 0.77),
        &mut excess,
    );
    line_frames(
        &mut raise,
        (121_200, 181_200),
        started,
        (0.0, 30.0, 0.5),
        &mut excess,
    );
    check(Case {
        alarm: AlarmKind::LineDisconnected,
        priority: Priority::High,
        program: basal(37.0, 100.0),
        raise,
        motor: Motor::Stopped,
        // Reconnected (by the nurse, with a new line): the vein's pressure is back.
        remove_cause: vec![
            sense(SensorChange::DownstreamPressure { mmhg: 8.0 }),
            run(2000),
        ],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn occlusion_upstream() {
    check(Case {
        alarm: AlarmKind::OcclusionUpstream,
        priority: Priority::Medium,
        program: basal(25.0, 100.0),
        raise: vec![
            sense(SensorChange::UpstreamPressure { mmhg: -60.0 }),
            run(200),
        ],
        motor: Motor::Stopped,
        remove_cause: vec![
            sense(SensorChange::UpstreamPressure { mmhg: -5.0 }),
            run(200),
        ],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn air_in_line_single_bubble() {
    check(Case {
        alarm: AlarmKind::AirInLine,
        priority: Priority::High,
        program: basal(25.0, 100.0),
        raise: vec![sense(SensorChange::Bubble { ul: 150.0 }), run(100)],
        motor: Motor::Stopped,
        // The bubble has passed the detector; the next frames show clear fluid.
        remove_cause: vec![run(300)],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn air_in_line_single_bubble_spread_over_frames() {
    // 150 µL passing the detector in three frames of 50 µL, each under the 100 µL limit: one
    // bubble, alarmed as soon as the running total passes the limit.
    let mut raise = Vec::new();
    for _ in 0..3 {
        raise.push(sense(SensorChange::Bubble { ul: 50.0 }));
        raise.push(run(100));
    }
    check(Case {
        alarm: AlarmKind::AirInLine,
        priority: Priority::High,
        program: basal(25.0, 100.0),
        raise,
        motor: Motor::Stopped,
        remove_cause: vec![run(300)],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn air_in_line_single_bubble_over_strokes_at_1_ml_per_h() {
    // At 1 mL/h one 50 µL stroke comes every 3 minutes; the frames between show no air because
    // nothing moved past the detector. Three all-air strokes are one 150 µL bubble.
    let mut raise = Vec::new();
    for _ in 0..3 {
        raise.push(sense(SensorChange::Bubble { ul: 50.0 }));
        raise.push(run(3 * 60_000 - 100));
    }
    check(Case {
        alarm: AlarmKind::AirInLine,
        priority: Priority::High,
        program: basal(1.0, 100.0),
        raise,
        motor: Motor::Stopped,
        remove_cause: vec![run(300)],
        clears: Clears::AfterCauseAndAck,
    });
}

/// Air frames (µL each, `0.0` = a frame of liquid only) passed at 250 mL/h (6.9 µL of liquid per
/// frame); `expect` is the single bubble alarmed, if any.
fn check_bubble(frames: &[f64], expect: Option<f64>) {
    let mut h = Harness::new(Config::default());
    step_all(
        &mut h,
        &[
            run(200),
            command(Command::Program(basal(250.0, 100.0))),
            command(Command::Start),
            run(1000),
        ],
    );
    for air_ul in frames {
        if *air_ul > 0.0 {
            step_all(&mut h, &[sense(SensorChange::Bubble { ul: *air_ul })]);
        }
        step_all(&mut h, &[run(100)]);
    }
    let detail = h.pump().alarm(AlarmKind::AirInLine).map(|a| a.detail);
    match expect {
        Some(volume) => assert!(
            matches!(detail, Some(AlarmDetail::AirSingleBubble { volume_ul }) if (volume_ul - volume).abs() < 1e-9),
            "{frames:?}: expected a {volume} µL bubble, got {detail:?}"
        ),
        None => assert!(detail.is_none(), "{frames:?}: unexpected {detail:?}"),
    }
}

#[test]
fn where_one_bubble_ends() {
    // Consecutive air frames are one bubble.
    check_bubble(&[60.0, 60.0], Some(120.0));
    check_bubble(&[40.0, 40.0, 40.0], Some(120.0));
    // Less liquid than one stroke (50 µL) between two parts: still the same bubble.
    check_bubble(&[60.0, 0.0, 0.0, 0.0, 60.0], Some(120.0));
    // Trace air (≤ 5 µL) between two parts is liquid, but not enough of it yet.
    check_bubble(&[60.0, 3.0, 3.0, 60.0], Some(126.0));
    // A stroke of liquid (8 frames × 6.9 µL) between two parts: two bubbles, each under the limit.
    check_bubble(&[60.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 60.0], None);
    check_bubble(&[99.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 99.0], None);
    // Trace air on every frame (a loose connection) is no bubble; the 15-minute sum watches it.
    check_bubble(&[5.0; 60], None);
    // One frame above the limit is a bubble on its own.
    check_bubble(&[101.0], Some(101.0));
    check_bubble(&[100.0], None);
}

#[test]
fn air_in_line_accumulated_over_15_minutes() {
    // Twelve 90 µL bubbles (each under the 100 µL single-bubble limit), one a minute: 1080 µL.
    let mut raise = Vec::new();
    for _ in 0..12 {
        raise.push(sense(SensorChange::Bubble { ul: 90.0 }));
        raise.push(run(60_000));
    }
    check(Case {
        alarm: AlarmKind::AirInLine,
        priority: Priority::High,
        program: basal(25.0, 100.0),
        raise,
        motor: Motor::Stopped,
        // The accumulated air is still in the window: only the operator priming it out (the
        // acknowledgement) ends it, so nothing removes the cause before that.
        remove_cause: vec![run(200)],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn air_accumulated_detail_names_the_window() {
    let mut h = Harness::new(Config::default());
    let mut steps = vec![
        run(200),
        command(Command::Program(basal(25.0, 100.0))),
        command(Command::Start),
    ];
    for _ in 0..12 {
        steps.push(sense(SensorChange::Bubble { ul: 90.0 }));
        steps.push(run(60_000));
    }
    step_all(&mut h, &steps);
    let detail = h.pump().alarm(AlarmKind::AirInLine).map(|a| a.detail);
    assert!(
        matches!(detail, Some(AlarmDetail::AirAccumulated { volume_ul_rolling_15min }) if volume_ul_rolling_15min > 1000.0)
    );
}

#[test]
fn reservoir_empty() {
    // 1.5 mL in the bag at 600 mL/h: 1 mL (down to the 0.5 mL empty mark) takes 6 s.
    let program = ProgramRequest {
        reservoir_ml: Some(1.5),
        ..basal(600.0, 100.0)
    };
    check(Case {
        alarm: AlarmKind::ReservoirEmpty,
        priority: Priority::Medium,
        program,
        raise: vec![run(6_000)],
        motor: Motor::Stopped,
        // A new bag: a new program with its volume.
        remove_cause: vec![command(Command::Program(ProgramRequest {
            reservoir_ml: Some(100.0),
            ..basal(600.0, 50.0)
        }))],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn infusion_near_end() {
    // A 10 mL container for a 20 mL dose at 60 mL/h: 5 minutes before the container's end
    // (10 − 0.5 mL reserve) is at 4.5 mL. The end of the dose itself has no reminder (see
    // `a_normal_dose_ends_with_infusion_complete_alone`).
    let mut program = basal(60.0, 20.0);
    program.reservoir_ml = Some(10.0);
    check(Case {
        alarm: AlarmKind::InfusionNearEnd,
        priority: Priority::Low,
        program,
        raise: vec![run(5 * 60_000)],
        motor: Motor::Runs,
        remove_cause: vec![run(6 * 60_000)],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn a_normal_dose_ends_with_infusion_complete_alone() {
    // A container of exactly the dose (the label volume, which a bag delivers at least): no
    // near-end reminder, no reservoir_empty half a millilitre early, just infusion_complete.
    let mut h = Harness::new(Config::default());
    let mut program = basal(60.0, 10.0);
    program.reservoir_ml = Some(10.0);
    step_all(
        &mut h,
        &[
            run(200),
            command(Command::Program(program)),
            command(Command::Start),
        ],
    );
    step_all(&mut h, &minutes(11));
    assert_eq!(h.pump().state(), State::Complete);
    let raised: Vec<AlarmKind> = h
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::AlarmRaised { alarm, .. } => Some(*alarm),
            _ => None,
        })
        .collect();
    assert_eq!(raised, [AlarmKind::InfusionComplete]);
}

#[test]
fn infusion_complete_stops() {
    check(Case {
        alarm: AlarmKind::InfusionComplete,
        priority: Priority::Medium,
        program: basal(36.0, 0.1),
        raise: vec![run(10_000)],
        motor: Motor::Stopped,
        remove_cause: vec![command(Command::Stop)],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn infusion_complete_keeps_vein_open() {
    check(Case {
        alarm: AlarmKind::InfusionComplete,
        priority: Priority::Medium,
        program: ProgramRequest::continuous(36.0, 0.1, EndAction::Kvo { rate_ml_per_h: 1.0 }),
        raise: vec![run(10_000)],
        motor: Motor::RunsAt(1.0),
        remove_cause: vec![command(Command::Stop)],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn door_open() {
    check(Case {
        alarm: AlarmKind::DoorOpen,
        priority: Priority::High,
        program: basal(25.0, 100.0),
        raise: vec![sense(SensorChange::Door { closed: false }), run(100)],
        motor: Motor::Stopped,
        remove_cause: vec![sense(SensorChange::Door { closed: true }), run(200)],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn battery_low() {
    check(Case {
        alarm: AlarmKind::BatteryLow,
        priority: Priority::Low,
        program: basal(25.0, 100.0),
        raise: vec![
            sense(SensorChange::Mains { present: false }),
            sense(SensorChange::Battery {
                percent: 20.0,
                minutes_left: 25.0,
            }),
            run(200),
        ],
        motor: Motor::Runs,
        remove_cause: vec![sense(SensorChange::Mains { present: true }), run(200)],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn battery_low_turns_medium_as_it_drains() {
    check(Case {
        alarm: AlarmKind::BatteryLow,
        priority: Priority::Medium,
        program: basal(25.0, 100.0),
        raise: vec![
            sense(SensorChange::Mains { present: false }),
            sense(SensorChange::Battery {
                percent: 20.0,
                minutes_left: 25.0,
            }),
            run(200),
            sense(SensorChange::Battery {
                percent: 8.0,
                minutes_left: 8.0,
            }),
            run(200),
        ],
        motor: Motor::Runs,
        remove_cause: vec![sense(SensorChange::Mains { present: true }), run(200)],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn battery_depleted() {
    check(Case {
        alarm: AlarmKind::BatteryDepleted,
        priority: Priority::High,
        program: basal(25.0, 100.0),
        raise: vec![
            sense(SensorChange::Mains { present: false }),
            sense(SensorChange::Battery {
                percent: 2.0,
                minutes_left: 2.0,
            }),
            run(200),
        ],
        motor: Motor::Stopped,
        remove_cause: vec![sense(SensorChange::Mains { present: true }), run(200)],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn mains_lost() {
    check(Case {
        alarm: AlarmKind::MainsLost,
        priority: Priority::Low,
        program: basal(25.0, 100.0),
        raise: vec![sense(SensorChange::Mains { present: false }), run(200)],
        motor: Motor::Runs,
        remove_cause: vec![sense(SensorChange::Mains { present: true }), run(200)],
        clears: Clears::AfterCauseAndAck,
    });
}

fn system_error(raise: Vec<Step>, remove_cause: Vec<Step>) {
    check(Case {
        alarm: AlarmKind::SystemError,
        priority: Priority::High,
        program: basal(36.0, 100.0),
        raise,
        motor: Motor::Stopped,
        remove_cause,
        clears: Clears::Never,
    });
}

#[test]
fn system_error_self_test() {
    system_error(
        vec![
            sense(SensorChange::SelfTest(SelfTest::Failed { code: 42 })),
            run(100),
        ],
        vec![sense(SensorChange::SelfTest(SelfTest::Passed)), run(200)],
    );
}

#[test]
fn system_error_motor_encoder_mismatch() {
    // The encoder stops while the controller keeps counting: the mismatch passes the 150 µL
    // floor plus 5 % of the compared volume after about 172 µL, 17 s at 10 µL/s.
    system_error(
        vec![
            sense(SensorChange::EncoderFactor { factor: 0.0 }),
            run(20_000),
        ],
        vec![sense(SensorChange::EncoderFactor { factor: 1.0 }), run(200)],
    );
}

#[test]
fn system_error_overheating() {
    system_error(
        vec![sense(SensorChange::Temperature { celsius: 60.0 }), run(100)],
        vec![sense(SensorChange::Temperature { celsius: 30.0 }), run(200)],
    );
}

#[test]
fn system_error_watchdog_no_sensor_frames() {
    system_error(vec![Step::NoFrames { ms: 1_000 }], vec![run(200)]);
}

#[test]
fn system_error_implausible_reading() {
    system_error(
        vec![Step::OddReading {
            sensor: SensorField::DownstreamPressure,
            value: f64::NAN,
        }],
        vec![run(200)],
    );
}

/// Motor/encoder agreement at `rate_ml_per_h` when the encoder measures `encoder_factor` of what
/// the motor controller counted (0 = stalled motor or blind encoder, 2 = runaway), for
/// `minutes_run`; `expect`: `system_error` (MotorEncoderMismatch) within this much commanded
/// volume (µL), or `None` for no system error at all.
fn check_mismatch(rate_ml_per_h: f64, encoder_factor: f64, minutes_run: u64, expect: Option<f64>) {
    let mut h = Harness::new(Config::default());
    step_all(
        &mut h,
        &[
            run(200),
            command(Command::Program(basal(rate_ml_per_h, 999.0))),
            command(Command::Start),
        ],
    );
    // A healthy hour first, so the leaky sums are full (the worst case for detection).
    step_all(&mut h, &minutes(60));
    assert!(h.pump().alarm(AlarmKind::SystemError).is_none());
    step_all(
        &mut h,
        &[sense(SensorChange::EncoderFactor {
            factor: encoder_factor,
        })],
    );
    let start_ms = h.now_ms();
    // Time the motor ran since the fault: a runaway's excess is also `over_infusion`, which stops
    // the motor; the patient acknowledges and resumes, and the mismatch evidence must survive that.
    let mut running_ms = 0;
    let mut raised_ms = None;
    while h.now_ms() - start_ms < minutes_run * 60_000 && raised_ms.is_none() {
        if matches!(h.pump().motor_command(), MotorCommand::Run { .. }) {
            running_ms += 1_000;
        }
        step_all(&mut h, &[run(1_000)]);
        if h.pump().alarm(AlarmKind::SystemError).is_some() {
            raised_ms = Some(running_ms);
        } else if h.pump().alarm(AlarmKind::OverInfusion).is_some() {
            assert_eq!(h.pump().motor_command(), MotorCommand::Stopped);
            step_all(
                &mut h,
                &[
                    command(Command::Acknowledge(AlarmKind::OverInfusion)),
                    run(200),
                    command(Command::Resume),
                ],
            );
        }
    }
    let what = format!("{rate_ml_per_h} mL/h, encoder × {encoder_factor}");
    match (expect, raised_ms) {
        (Some(within_ul), Some(ms)) => {
            // Motor running time rounded to whole steps: allow one step of volume.
            let commanded_ul = rate_ml_per_h / 3.6 * (ms as f64 - 1000.0) / 1000.0;
            assert!(
                commanded_ul <= within_ul,
                "{what}: detected after {commanded_ul:.0} µL commanded, bound {within_ul} µL"
            );
            // A runaway's excess may first come back as `over_infusion` after the resume, which
            // is itself the latching fault (`OverInfusionRecurred`).
            let detail = h.pump().alarm(AlarmKind::SystemError).map(|a| a.detail);
            assert!(
                matches!(
                    detail,
                    Some(AlarmDetail::MotorEncoderMismatch { .. })
                        | Some(AlarmDetail::OverInfusionRecurred { .. })
                ),
                "{what}: {detail:?}"
            );
            assert_eq!(h.pump().motor_command(), MotorCommand::Stopped);
            assert_eq!(h.pump().state(), State::Fault);
        }
        (Some(_), None) => panic!("{what}: not detected in {minutes_run} min"),
        (None, Some(ms)) => panic!(
            "{what}: false system_error after {ms} ms: {:?}",
            h.pump().alarm(AlarmKind::SystemError)
        ),
        (None, None) => {}
    }
}

#[test]
fn motor_encoder_mismatch_is_cumulative_at_low_rates() {
    // Stalled motor / blind encoder (controller counts, encoder does not) and runaway (encoder
    // measures twice what the controller counted), within 250 µL commanded at every rate. The old
    // per-60-s-window check never saw these below about 9 mL/h.
    for rate in [0.5, 1.0, 5.0, 8.0, 36.0, 500.0] {
        let minutes_run = (250.0 / (rate / 60.0) / 1000.0) as u64 + 2;
        check_mismatch(rate, 0.0, minutes_run, Some(250.0));
        check_mismatch(rate, 2.0, minutes_run, Some(250.0));
        // A half-speed encoder: the mismatch grows half as fast; caught after about 511 µL.
        check_mismatch(rate, 0.5, 3 * minutes_run, Some(600.0));
    }
}

#[test]
fn motor_encoder_stroke_volume_error_is_no_mismatch() {
    // Controller and encoder 3 % apart (stroke volume error, worn set) for two hours: no fault.
    for rate in [0.5, 1.0, 5.0, 100.0, 999.0] {
        check_mismatch(rate, 0.97, 120, None);
        check_mismatch(rate, 1.03, 120, None);
    }
}

#[test]
fn over_infusion_far_above_in_one_window() {
    // At 1 mL/h the encoder measures five times what the controller counted: 67 µL extra in the
    // 60 s window, above the one-stroke floor, while the cumulative motor/encoder comparison is
    // still within its tolerance. Once is an acknowledgeable alarm (the controller itself kept to
    // the command); a second time is a fault (`system_error_over_infusion_recurs_after_resume`).
    check(Case {
        alarm: AlarmKind::OverInfusion,
        priority: Priority::High,
        program: basal(1.0, 100.0),
        raise: vec![
            sense(SensorChange::EncoderFactor { factor: 5.0 }),
            run(61_000),
        ],
        motor: Motor::Stopped,
        remove_cause: vec![sense(SensorChange::EncoderFactor { factor: 1.0 }), run(200)],
        clears: Clears::AfterCauseAndAck,
    });
}

/// A `system_error` row whose detail must match `detail`.
fn system_error_with(program: ProgramRequest, raise: Vec<Step>, detail: fn(&AlarmDetail) -> bool) {
    let mut h = Harness::new(Config::default());
    let mut steps = vec![
        run(200),
        command(Command::Program(program.clone())),
        command(Command::Start),
        run(1000),
    ];
    steps.extend(raise.iter().cloned());
    step_all(&mut h, &steps);
    let found = h.pump().alarm(AlarmKind::SystemError).map(|a| a.detail);
    assert!(
        found.as_ref().is_some_and(detail),
        "system_error detail: {found:?}"
    );
    check(Case {
        alarm: AlarmKind::SystemError,
        priority: Priority::High,
        program,
        raise,
        motor: Motor::Stopped,
        remove_cause: vec![
            sense(SensorChange::AllNormal),
            run(200),
            command(Command::Acknowledge(AlarmKind::OverInfusion)),
            run(200),
        ],
        clears: Clears::Never,
    });
}

#[test]
fn system_error_motor_runaway_counted_by_its_controller() {
    // The controller runs the mechanism at twice the core's command AND counts it, so controller
    // and encoder agree and only the flow check sees it: 500 µL extra after 50 s at 36 mL/h. That
    // is hardware, not a reading: over_infusion and a latching system_error (restart refused).
    system_error_with(
        basal(36.0, 100.0),
        vec![
            sense(SensorChange::MechanismFactor { factor: 2.0 }),
            run(51_000),
        ],
        |d| matches!(d, AlarmDetail::MotorRunaway { controller_ul, commanded_ul, .. } if controller_ul > commanded_ul),
    );
}

#[test]
fn system_error_motor_runaway_far_above_in_one_window() {
    // 60 % fast and counted by the controller (the simulator's speed error): far above at the end
    // of the 60 s window.
    system_error_with(
        basal(60.0, 100.0),
        vec![
            sense(SensorChange::MechanismFactor { factor: 1.6 }),
            run(61_000),
        ],
        |d| matches!(d, AlarmDetail::MotorRunaway { .. }),
    );
}

#[test]
fn system_error_motor_runaway_slightly_above_for_five_minutes() {
    // 30 % fast and counted by the controller: the sustained rule, then the controller's count in
    // the last window is over too.
    system_error_with(
        basal(36.0, 100.0),
        vec![
            sense(SensorChange::MechanismFactor { factor: 1.3 }),
            run(6 * 60_000 + 1_000),
        ],
        |d| matches!(d, AlarmDetail::MotorRunaway { .. }),
    );
}

#[test]
fn system_error_over_infusion_recurs_after_resume() {
    // Finding 5: over-infusion from the mechanism, acknowledged, resumed, and again within the
    // repeated-alarm window (10 min): the second time is a system fault, so the patient cannot
    // keep restarting a pump that over-infuses.
    system_error_with(
        basal(1.0, 100.0),
        vec![
            sense(SensorChange::EncoderFactor { factor: 5.0 }),
            run(61_000),
            command(Command::Acknowledge(AlarmKind::OverInfusion)),
            run(200),
            command(Command::Resume),
            run(61_000),
        ],
        |d| matches!(d, AlarmDetail::OverInfusionRecurred { after_ms } if *after_ms <= 10 * 60_000),
    );
}

#[test]
fn over_infusion_long_after_the_last_one_is_acknowledgeable_again() {
    // Outside the repeated-alarm window a new over-infusion is a new alarm, not a fault.
    let mut h = Harness::new(Config::default());
    let once = [
        sense(SensorChange::EncoderFactor { factor: 5.0 }),
        run(61_000),
        command(Command::Acknowledge(AlarmKind::OverInfusion)),
        sense(SensorChange::EncoderFactor { factor: 1.0 }),
        run(200),
    ];
    step_all(
        &mut h,
        &[
            run(200),
            command(Command::Program(basal(1.0, 100.0))),
            command(Command::Start),
            run(1000),
        ],
    );
    step_all(&mut h, &once);
    assert!(h.pump().alarm(AlarmKind::OverInfusion).is_none());
    // Stopped long enough for the window to pass, then resumed.
    step_all(&mut h, &minutes(11));
    step_all(&mut h, &[command(Command::Resume), run(200)]);
    assert_eq!(h.pump().state(), State::Infusing);
    step_all(&mut h, &once[..2]);
    assert!(h.pump().alarm(AlarmKind::OverInfusion).is_some());
    assert!(
        h.pump().alarm(AlarmKind::SystemError).is_none(),
        "{:?}",
        h.pump().alarm(AlarmKind::SystemError)
    );
}

#[test]
fn over_infusion_slightly_above_for_five_minutes() {
    // 30 % too fast: above the 10 % threshold, below the 50 % one; alarms once it lasted 5 min.
    // The controller counts the excess too, so it is also a latching system_error (MotorRunaway):
    // `check` only looks at over_infusion here.
    let mut h = Harness::new(Config::default());
    let setup = [
        run(200),
        command(Command::Program(basal(36.0, 100.0))),
        command(Command::Start),
        sense(SensorChange::MechanismFactor { factor: 1.3 }),
        run(4 * 60_000),
    ];
    step_all(&mut h, &setup);
    assert!(
        h.pump().alarm(AlarmKind::OverInfusion).is_none(),
        "slight over-infusion alarmed too early"
    );
    check(Case {
        alarm: AlarmKind::OverInfusion,
        priority: Priority::High,
        program: basal(36.0, 100.0),
        raise: vec![
            sense(SensorChange::MechanismFactor { factor: 1.3 }),
            run(6 * 60_000 + 1_000),
        ],
        motor: Motor::Stopped,
        remove_cause: vec![
            sense(SensorChange::MechanismFactor { factor: 1.0 }),
            run(200),
        ],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn under_infusion() {
    // The mechanism drags at 30 % of the commanded rate: far below, alarmed at the window's end.
    check(Case {
        alarm: AlarmKind::UnderInfusion,
        priority: Priority::Low,
        program: basal(36.0, 100.0),
        raise: vec![
            sense(SensorChange::MechanismFactor { factor: 0.3 }),
            run(61_000),
        ],
        motor: Motor::Runs,
        remove_cause: vec![
            sense(SensorChange::MechanismFactor { factor: 1.0 }),
            run(61_000),
        ],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn paused_too_long() {
    check(Case {
        alarm: AlarmKind::PausedTooLong,
        priority: Priority::Medium,
        program: basal(25.0, 100.0),
        raise: vec![command(Command::Pause), run(2 * 60_000)],
        motor: Motor::Stopped,
        remove_cause: vec![command(Command::Resume), run(200)],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn repeated_alarm() {
    // The same alarm stops the motor a third time within 10 minutes.
    let mut raise = open_door_and_resume();
    raise.extend(open_door_and_resume());
    raise.push(sense(SensorChange::Door { closed: false }));
    raise.push(run(200));
    check(Case {
        alarm: AlarmKind::RepeatedAlarm,
        priority: Priority::Medium,
        program: basal(25.0, 100.0),
        raise,
        motor: Motor::Stopped,
        // Acknowledging it is the response to the pattern; there is no other cause to remove.
        remove_cause: vec![],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn bolus_locked_out() {
    check(Case {
        alarm: AlarmKind::BolusLockedOut,
        priority: Priority::Low,
        program: bolus_program(),
        raise: vec![
            command(Command::PatientBolus),
            run(90_000),
            command(Command::PatientBolus),
            run(200),
        ],
        motor: Motor::Runs,
        remove_cause: vec![run(5 * 60_000)],
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn hourly_limit_reached_holds_the_basal_at_kvo() {
    // Basal 1 mL/h plus three 1 mL boluses 5 minutes apart against a 3.5 mL/h ceiling: the third
    // bolus fits (3.17 mL), then the basal reaches 3.5 mL within the hour.
    let mut raise = Vec::new();
    for _ in 0..3 {
        raise.push(command(Command::PatientBolus));
        raise.push(run(5 * 60_000 + 1_000));
    }
    raise.extend(minutes(20));
    check(Case {
        alarm: AlarmKind::HourlyLimitReached,
        priority: Priority::Low,
        program: ProgramRequest {
            bolus: Some(BolusProgram {
                volume_ml: 1.0,
                lockout_min: 5.0,
                max_ml_per_h: 3.5,
            }),
            ..bolus_program()
        },
        raise,
        // Rate arbitration: KVO beats patient bolus and basal.
        motor: Motor::RunsAt(Config::default().limit_kvo_ml_per_h),
        // The boluses leave the rolling hour.
        remove_cause: minutes(70),
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn hourly_limit_reached_when_a_bolus_would_exceed_it() {
    // The third bolus would bring the hour to 3.17 mL against 3 mL: refused, alarm, basal goes on.
    let mut raise = Vec::new();
    for _ in 0..3 {
        raise.push(command(Command::PatientBolus));
        raise.push(run(5 * 60_000 + 1_000));
    }
    check(Case {
        alarm: AlarmKind::HourlyLimitReached,
        priority: Priority::Low,
        program: bolus_program(),
        raise,
        motor: Motor::Runs,
        // The first boluses leave the rolling hour.
        remove_cause: minutes(60),
        clears: Clears::AfterCauseAndAck,
    });
}

#[test]
fn every_alarm_kind_has_a_case_above() {
    // Keep this list in step with the cases: a new alarm kind must get a row.
    let covered = [
        AlarmKind::OcclusionDownstream,
        AlarmKind::OcclusionUpstream,
        AlarmKind::AirInLine,
        AlarmKind::ReservoirEmpty,
        AlarmKind::InfusionNearEnd,
        AlarmKind::InfusionComplete,
        AlarmKind::DoorOpen,
        AlarmKind::BatteryLow,
        AlarmKind::BatteryDepleted,
        AlarmKind::MainsLost,
        AlarmKind::SystemError,
        AlarmKind::OverInfusion,
        AlarmKind::UnderInfusion,
        AlarmKind::PausedTooLong,
        AlarmKind::RepeatedAlarm,
        AlarmKind::BolusLockedOut,
        AlarmKind::HourlyLimitReached,
        AlarmKind::LineDisconnected,
    ];
    for kind in AlarmKind::ALL {
        assert!(covered.contains(&kind), "{} has no case", kind.name());
        assert_eq!(AlarmKind::from_name(kind.name()), Some(kind));
    }
}

// ---- the alarm engine: sounding order, audio pause, escalation ----

fn infusing_with_door_open_at(h: &mut Harness) {
    step_all(
        h,
        &[
            run(200),
            command(Command::Program(basal(25.0, 100.0))),
            command(Command::Start),
            run(1000),
            sense(SensorChange::Door { closed: false }),
            run(200),
        ],
    );
}

#[test]
fn one_alarm_sounds_highest_priority_first_then_oldest() {
    let mut h = Harness::new(Config::default());
    infusing_with_door_open_at(&mut h);
    // A LOW alarm raised later must not take the speaker from the HIGH one.
    step_all(
        &mut h,
        &[sense(SensorChange::Mains { present: false }), run(200)],
    );
    let ann = h.pump().annunciation();
    assert_eq!(ann.sounding.map(|a| a.kind), Some(AlarmKind::DoorOpen));
    assert_eq!(ann.active.len(), 2);
    // Acknowledged, the door alarm stops sounding (stays listed while the door is open); the
    // next one sounds.
    step_all(
        &mut h,
        &[command(Command::Acknowledge(AlarmKind::DoorOpen)), run(100)],
    );
    let ann = h.pump().annunciation();
    assert_eq!(ann.sounding.map(|a| a.kind), Some(AlarmKind::MainsLost));
    assert!(
        ann.active
            .iter()
            .any(|a| a.kind == AlarmKind::DoorOpen && a.acknowledged)
    );
}

#[test]
fn audio_pause_lasts_two_minutes_and_hides_nothing() {
    let mut h = Harness::new(Config::default());
    infusing_with_door_open_at(&mut h);
    step_all(&mut h, &[command(Command::SilenceAudio), run(119_000)]);
    let ann = h.pump().annunciation();
    assert_eq!(ann.sounding, None);
    assert!(matches!(ann.audio, pump::AudioState::Paused { .. }));
    assert!(
        ann.active.iter().any(|a| a.kind == AlarmKind::DoorOpen),
        "silenced alarm hidden"
    );
    assert!(h.events().iter().any(|e| matches!(
        e,
        Event::AlarmSilenced {
            alarm: AlarmKind::DoorOpen,
            ..
        }
    )));
    step_all(&mut h, &[run(1_100)]);
    let ann = h.pump().annunciation();
    assert_eq!(
        ann.sounding.map(|a| a.kind),
        Some(AlarmKind::DoorOpen),
        "audio did not come back"
    );
    assert_eq!(ann.audio, pump::AudioState::Sounding);
}

#[test]
fn a_new_alarm_sounds_through_an_audio_pause() {
    let mut h = Harness::new(Config::default());
    infusing_with_door_open_at(&mut h);
    step_all(&mut h, &[command(Command::SilenceAudio), run(10_000)]);
    step_all(
        &mut h,
        &[sense(SensorChange::Mains { present: false }), run(200)],
    );
    assert_eq!(
        h.pump().annunciation().sounding.map(|a| a.kind),
        Some(AlarmKind::MainsLost)
    );
}

#[test]
fn unacknowledged_high_alarm_escalates_even_when_silenced() {
    let mut h = Harness::new(Config::default());
    infusing_with_door_open_at(&mut h);
    step_all(&mut h, &[command(Command::SilenceAudio), run(170_000)]);
    let escalated = |h: &Harness| {
        h.events()
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::AlarmEscalated {
                        alarm: AlarmKind::DoorOpen,
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(escalated(&h), 0, "escalated too early");
    step_all(&mut h, &[run(10_100)]);
    assert_eq!(escalated(&h), 1);
    step_all(&mut h, &[run(600_000)]);
    assert_eq!(escalated(&h), 1, "escalates once per alarm");
}

#[test]
fn acknowledged_alarm_does_not_escalate() {
    let mut h = Harness::new(Config::default());
    infusing_with_door_open_at(&mut h);
    step_all(
        &mut h,
        &[
            command(Command::Acknowledge(AlarmKind::DoorOpen)),
            run(600_000),
        ],
    );
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e, Event::AlarmEscalated { .. }))
    );
}

#[test]
fn resume_is_refused_until_the_alarm_is_cleared() {
    let mut h = Harness::new(Config::default());
    infusing_with_door_open_at(&mut h);
    assert_eq!(h.pump().state(), State::StoppedByAlarm);
    step_all(
        &mut h,
        &[
            sense(SensorChange::Door { closed: true }),
            run(200),
            command(Command::Resume),
        ],
    );
    assert_eq!(
        h.pump().state(),
        State::StoppedByAlarm,
        "resumed before acknowledgement"
    );
    step_all(
        &mut h,
        &[
            command(Command::Acknowledge(AlarmKind::DoorOpen)),
            command(Command::Resume),
            run(200),
        ],
    );
    assert_eq!(h.pump().state(), State::Infusing);
    assert_eq!(
        h.pump().motor_command(),
        MotorCommand::Run {
            rate_ml_per_h: 25.0
        }
    );
}

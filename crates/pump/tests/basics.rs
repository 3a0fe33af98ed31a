//! End-to-end walk through the main path of the core: program, start, deliver the VTBI, complete;
//! plus the refusals a newcomer meets first. Readable as a story; the exhaustive checks live in the
//! other test files.

use pump::{
    AlarmKind, Command, CommandError, Config, DrugLibrary, EndAction, Event, Input, MotorCommand,
    ProgramError, ProgramRequest, Pump, SelfTest, SensorFrame, State,
};

fn frame(motor_ul: f64) -> SensorFrame {
    SensorFrame {
        downstream_pressure_mmhg: 50.0,
        upstream_pressure_mmhg: 0.0,
        air_ul_since_last_frame: 0.0,
        door_closed: true,
        battery_percent: 100.0,
        battery_minutes_left: 600.0,
        mains_present: true,
        motor_volume_ul_total: motor_ul,
        commanded_volume_ul_total: motor_ul,
        mechanism_temperature_c: 30.0,
        self_test: SelfTest::Passed,
    }
}

fn cmd(pump: &mut Pump, now_ms: u64, command: Command) -> Result<(), CommandError> {
    pump.handle(now_ms, Input::Command(command))
}

#[test]
fn delivers_the_vtbi_and_completes() {
    let mut pump = Pump::new(Config::default(), DrugLibrary::default(), 0);
    assert_eq!(pump.state(), State::Idle);
    pump.handle(0, Input::Sensors(frame(0.0))).unwrap();
    let request = ProgramRequest::continuous(36.0, 1.0, EndAction::Stop); // 10 µL/s, 100 s
    cmd(&mut pump, 0, Command::Program(request)).unwrap();
    assert_eq!(pump.state(), State::Programmed);
    cmd(&mut pump, 0, Command::Start).unwrap();
    assert_eq!(
        pump.motor_command(),
        MotorCommand::Run {
            rate_ml_per_h: 36.0
        }
    );

    // Drive like a driver: frames every 100 ms, timeouts at deadlines, an ideal motor.
    let mut now = 0u64;
    let mut moved = 0.0f64;
    while now < 200_000 && pump.state() == State::Infusing {
        let next_frame = now + 100;
        let deadline = pump.next_deadline_ms().unwrap_or(u64::MAX);
        let t = next_frame.min(deadline);
        if let MotorCommand::Run { rate_ml_per_h } = pump.motor_command() {
            moved += rate_ml_per_h / 3600.0 * (t - now) as f64;
        }
        now = t;
        if t == next_frame {
            pump.handle(now, Input::Sensors(frame(moved))).unwrap();
        } else {
            pump.handle_timeout(now);
        }
    }
    assert_eq!(pump.state(), State::Complete);
    assert_eq!(pump.motor_command(), MotorCommand::Stopped);
    assert!(
        moved <= 1000.0 + Config::default().stroke_volume_ul,
        "moved {moved} µL"
    );
    assert!(moved >= 999.0, "moved {moved} µL");
    assert!(pump.alarm(AlarmKind::InfusionComplete).is_some());
    let events: Vec<Event> = std::iter::from_fn(|| pump.poll_event())
        .map(|e| e.event)
        .collect();
    assert!(
        events.iter().any(|e| matches!(e, Event::Completed { .. })),
        "{events:?}"
    );
}

#[test]
fn impossible_program_names_field_value_and_range() {
    let mut pump = Pump::new(Config::default(), DrugLibrary::default(), 0);
    let request = ProgramRequest::continuous(1200.0, 100.0, EndAction::Stop);
    let err = cmd(&mut pump, 0, Command::Program(request)).unwrap_err();
    let CommandError::Program(ProgramError::OutOfRange { .. }) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        err.to_string(),
        "program refused: rate_ml_per_h = 1200 mL/h is outside the allowed range 0.1–999 mL/h: \
         enter a value in that range"
    );
}

#[test]
fn start_needs_a_sensor_frame_and_a_closed_door() {
    let mut pump = Pump::new(Config::default(), DrugLibrary::default(), 0);
    let request = ProgramRequest::continuous(10.0, 100.0, EndAction::Stop);
    cmd(&mut pump, 0, Command::Program(request)).unwrap();
    assert_eq!(
        cmd(&mut pump, 0, Command::Start),
        Err(CommandError::NoSensorData)
    );
    let mut open = frame(0.0);
    open.door_closed = false;
    pump.handle(100, Input::Sensors(open)).unwrap();
    assert_eq!(
        cmd(&mut pump, 100, Command::Start),
        Err(CommandError::BlockedByCondition {
            alarm: AlarmKind::DoorOpen
        })
    );
}

fn library_cmd(pump: &mut Pump, request: ProgramRequest) -> Result<(), CommandError> {
    cmd(pump, 0, Command::Program(request))
}

fn morphine(rate_ml_per_h: f64) -> ProgramRequest {
    ProgramRequest {
        drug_id: Some("morphine-1".into()),
        ..ProgramRequest::continuous(rate_ml_per_h, 50.0, EndAction::Stop)
    }
}

fn events(pump: &mut Pump) -> Vec<Event> {
    std::iter::from_fn(|| pump.poll_event())
        .map(|e| e.event)
        .collect()
}

#[test]
fn soft_limit_needs_confirmation_which_is_recorded() {
    let mut pump = Pump::new(Config::default(), pump::harness::test_library(), 0);
    // Morphine rate limits: 0.1 / 0.5 / 1 / 5 / 10 mL/h. 7 mL/h is above the upper soft limit.
    library_cmd(&mut pump, morphine(7.0)).unwrap();
    assert_eq!(pump.state(), State::AwaitingConfirmation);
    assert!(
        pump.program().is_none(),
        "a program waiting for confirmation is not yet the program"
    );
    let seen = events(&mut pump);
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::ConfirmationRequired { field: pump::Field::Rate, value, zone: pump::LimitZone::AboveUpperSoft, limit }
            if *value == 7.0 && *limit == 5.0
    )), "{seen:?}");
    cmd(&mut pump, 0, Command::ConfirmOverride).unwrap();
    assert_eq!(pump.state(), State::Programmed);
    assert!(pump.program().is_some_and(|p| p.overrides_confirmed()));
    let seen = events(&mut pump);
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::LimitOverrideConfirmed {
            field: pump::Field::Rate,
            ..
        }
    )));
    assert_eq!(
        cmd(&mut pump, 0, Command::ConfirmOverride),
        Err(CommandError::NothingToConfirm)
    );
}

#[test]
fn cancelled_override_returns_to_the_previous_state() {
    let mut pump = Pump::new(Config::default(), pump::harness::test_library(), 0);
    library_cmd(&mut pump, morphine(2.0)).unwrap();
    assert_eq!(pump.state(), State::Programmed);
    library_cmd(&mut pump, morphine(0.2)).unwrap(); // below the lower soft limit
    assert_eq!(pump.state(), State::AwaitingConfirmation);
    cmd(&mut pump, 0, Command::CancelOverride).unwrap();
    assert_eq!(pump.state(), State::Programmed);
    assert_eq!(
        pump.program().map(|p| p.rate_ml_per_h()),
        Some(2.0),
        "old program kept"
    );
}

#[test]
fn hard_limit_is_refused_naming_the_limit() {
    let mut pump = Pump::new(Config::default(), pump::harness::test_library(), 0);
    let err = library_cmd(&mut pump, morphine(25.0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "program refused: rate_ml_per_h = 25 mL/h is above the upper hard limit of 10 mL/h for \
         Morphine 1 mg/mL: the pump refuses it, check the prescription"
    );
    assert_eq!(pump.state(), State::Idle);
    assert!(
        events(&mut pump)
            .iter()
            .any(|e| matches!(e, Event::ProgramRejected { .. }))
    );
}

#[test]
fn program_errors_name_what_is_wrong() {
    let cases: [(ProgramRequest, &str); 5] = [
        (
            ProgramRequest::continuous(f64::NAN, 10.0, EndAction::Stop),
            "program refused: rate_ml_per_h is not a number: enter a value in mL/h",
        ),
        (
            ProgramRequest::continuous(10.0, 0.0, EndAction::Stop),
            "program refused: vtbi_ml = 0 mL is outside the allowed range 0.1–9999 mL: enter a value in that range",
        ),
        (
            ProgramRequest::continuous(
                10.0,
                10.0,
                EndAction::Kvo {
                    rate_ml_per_h: 15.0,
                },
            ),
            "program refused: kvo_rate_ml_per_h = 15 mL/h is above rate_ml_per_h = 10 mL/h: the KVO rate must not exceed the programmed rate",
        ),
        (
            ProgramRequest {
                drug_id: Some("heparin".into()),
                ..ProgramRequest::continuous(10.0, 10.0, EndAction::Stop)
            },
            "program refused: drug \"heparin\" is not in the drug library: choose a drug from the library",
        ),
        (
            ProgramRequest {
                bolus: Some(pump::BolusProgram {
                    volume_ml: 1.0,
                    lockout_min: 10.0,
                    max_ml_per_h: 2.0,
                }),
                ..ProgramRequest::continuous(5.0, 10.0, EndAction::Stop)
            },
            "program refused: bolus.max_ml_per_h = 2 mL per hour is outside the allowed range 6–1049 mL per hour: enter a value in that range",
        ),
    ];
    for (request, message) in cases {
        let mut pump = Pump::new(Config::default(), pump::harness::test_library(), 0);
        let err = library_cmd(&mut pump, request).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn patient_bolus_runs_at_the_bolus_rate_then_returns_to_basal() {
    let mut pump = Pump::new(Config::default(), DrugLibrary::default(), 0);
    pump.handle(0, Input::Sensors(frame(0.0))).unwrap();
    let request = ProgramRequest {
        bolus: Some(pump::BolusProgram {
            volume_ml: 0.5,
            lockout_min: 10.0,
            max_ml_per_h: 10.0,
        }),
        ..ProgramRequest::continuous(2.0, 100.0, EndAction::Stop)
    };
    cmd(&mut pump, 0, Command::Program(request)).unwrap();
    cmd(&mut pump, 0, Command::Start).unwrap();
    cmd(&mut pump, 0, Command::PatientBolus).unwrap();
    let bolus_rate = Config::default().bolus_rate_ml_per_h;
    assert_eq!(
        pump.motor_command(),
        MotorCommand::Run {
            rate_ml_per_h: bolus_rate
        }
    );
    // A second press during the bolus is refused and recorded.
    assert!(matches!(
        cmd(&mut pump, 0, Command::PatientBolus),
        Err(CommandError::BolusDenied(_))
    ));
    // 0.5 mL at 60 mL/h takes 30 s; drive frames with an ideal motor.
    let (mut now, mut moved) = (0u64, 0.0f64);
    while now < 40_000 {
        let t = (now + 100).min(pump.next_deadline_ms().unwrap_or(u64::MAX));
        if let MotorCommand::Run { rate_ml_per_h } = pump.motor_command() {
            moved += rate_ml_per_h / 3600.0 * (t - now) as f64;
        }
        now = t;
        pump.handle(now, Input::Sensors(frame(moved))).unwrap();
    }
    assert_eq!(
        pump.motor_command(),
        MotorCommand::Run { rate_ml_per_h: 2.0 }
    );
    assert!(
        (moved - 500.0).abs() < 50.0,
        "bolus plus basal moved {moved} µL"
    );
    let seen = events(&mut pump);
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::BolusGiven { volume_ml } if *volume_ml == 0.5))
    );
    assert!(seen.iter().any(|e| matches!(e, Event::BolusDenied { .. })));
}

#[test]
fn fault_refuses_restart() {
    let mut pump = Pump::new(Config::default(), DrugLibrary::default(), 0);
    let mut broken = frame(0.0);
    broken.self_test = SelfTest::Failed { code: 9 };
    pump.handle(0, Input::Sensors(broken)).unwrap();
    assert_eq!(pump.state(), State::Fault);
    let request = ProgramRequest::continuous(10.0, 100.0, EndAction::Stop);
    assert_eq!(
        cmd(&mut pump, 0, Command::Program(request)),
        Err(CommandError::SystemFault)
    );
    assert_eq!(
        cmd(&mut pump, 0, Command::Start),
        Err(CommandError::SystemFault)
    );
    cmd(&mut pump, 0, Command::Acknowledge(AlarmKind::SystemError)).unwrap();
    pump.handle(100, Input::Sensors(frame(0.0))).unwrap();
    assert_eq!(
        pump.state(),
        State::Fault,
        "a passing self-test later does not clear a fault"
    );
}

#[test]
fn invalid_config_starts_in_fault_instead_of_panicking() {
    let config = Config {
        sensor_timeout_ms: 0,
        audio_pause_ms: 0,
        ..Config::default()
    };
    assert!(config.validate().is_err());
    let pump = Pump::new(config, DrugLibrary::default(), 0);
    assert_eq!(pump.state(), State::Fault);
}

#[test]
fn undrained_events_fault_the_pump_and_losses_are_reported() {
    let mut pump = Pump::new(Config::default(), DrugLibrary::default(), 0);
    pump.handle(0, Input::Sensors(frame(0.0))).unwrap();
    // Refused commands that record an event, never drained.
    let bad = ProgramRequest::continuous(5000.0, 10.0, EndAction::Stop);
    for _ in 0..pump::EVENTS_MAX + 10 {
        let _ = cmd(&mut pump, 0, Command::Program(bad.clone()));
    }
    assert_eq!(pump.state(), State::Fault);
    // Still not drained: each silence records one event until the queue is full.
    for _ in 0..pump::EVENTS_RESERVE + 10 {
        let _ = cmd(&mut pump, 0, Command::SilenceAudio);
    }
    let all = events(&mut pump);
    assert_eq!(
        all.len(),
        pump::EVENTS_MAX + 1,
        "a full queue plus the EventsLost report"
    );
    assert!(all.iter().any(|e| matches!(
        e,
        Event::AlarmRaised {
            alarm: AlarmKind::SystemError,
            ..
        }
    )));
    assert!(
        all.iter()
            .any(|e| matches!(e, Event::EventsLost { count } if *count > 0)),
        "lost events must be reported"
    );
}

#[test]
fn extreme_times_do_not_overflow() {
    let start = u64::MAX - 1_000;
    let mut pump = Pump::new(Config::default(), DrugLibrary::default(), start);
    pump.handle(start, Input::Sensors(frame(0.0))).unwrap();
    let request = ProgramRequest::continuous(999.0, 9999.0, EndAction::Stop);
    cmd(&mut pump, start, Command::Program(request)).unwrap();
    cmd(&mut pump, start, Command::Start).unwrap();
    let mut open = frame(0.0);
    open.door_closed = false;
    pump.handle(start + 100, Input::Sensors(open)).unwrap();
    cmd(&mut pump, start + 100, Command::SilenceAudio).unwrap();
    pump.handle_timeout(u64::MAX);
    pump.handle(u64::MAX, Input::Sensors(frame(0.0))).unwrap();
    // Time going backwards is a fault, not a panic.
    pump.handle_timeout(0);
    assert_eq!(pump.state(), State::Fault);
}

#[test]
fn alarm_details_read_as_sentences() {
    use pump::AlarmDetail;
    let cases = [
        (
            AlarmDetail::Pressure {
                pressure_mmhg: 600.0,
                limit_mmhg: 517.0,
            },
            "pressure 600 mmHg beyond the limit of 517 mmHg",
        ),
        (
            AlarmDetail::AirSingleBubble { volume_ul: 150.0 },
            "air bubble of 150 µL",
        ),
        (
            AlarmDetail::Repeated {
                alarm: AlarmKind::DoorOpen,
                times: 3,
            },
            "door_open stopped the pump 3 times in 10 minutes",
        ),
        (
            AlarmDetail::ImplausibleReading {
                sensor: pump::SensorField::DownstreamPressure,
                value: f64::NAN,
            },
            "sensor downstream_pressure_mmhg reported an impossible value (NaN)",
        ),
        (AlarmDetail::None, ""),
    ];
    for (detail, text) in cases {
        assert_eq!(detail.to_string(), text);
    }
}

#[test]
fn after_power_loss_the_program_is_kept_but_not_resumed() {
    let request = ProgramRequest::continuous(36.0, 1.0, EndAction::Stop);
    let mut pump = Pump::after_power_loss(
        Config::default(),
        DrugLibrary::default(),
        5_000,
        &request,
        0.6,
    );
    assert_eq!(pump.state(), State::Stopped, "never resumes by itself");
    assert_eq!(pump.motor_command(), MotorCommand::Stopped);
    assert!((pump.status().remaining_ml - 0.4).abs() < 1e-9);
    pump.handle(5_000, Input::Sensors(frame(0.0))).unwrap();
    cmd(&mut pump, 5_000, Command::Start).unwrap();
    assert_eq!(
        pump.motor_command(),
        MotorCommand::Run {
            rate_ml_per_h: 36.0
        }
    );

    // Already delivered: nothing left to start.
    let mut done =
        Pump::after_power_loss(Config::default(), DrugLibrary::default(), 0, &request, 1.0);
    done.handle(0, Input::Sensors(frame(0.0))).unwrap();
    assert_eq!(
        cmd(&mut done, 0, Command::Start),
        Err(CommandError::ProgramComplete)
    );

    // A program that no longer passes is not restored, and the refusal is recorded.
    let bad = ProgramRequest::continuous(5_000.0, 1.0, EndAction::Stop);
    let mut refused =
        Pump::after_power_loss(Config::default(), DrugLibrary::default(), 0, &bad, 0.0);
    assert_eq!(refused.state(), State::Idle);
    assert!(
        std::iter::from_fn(|| refused.poll_event())
            .any(|e| matches!(e.event, Event::ProgramRejected { .. }))
    );
    let nan = Pump::after_power_loss(
        Config::default(),
        DrugLibrary::default(),
        0,
        &request,
        f64::NAN,
    );
    assert_eq!(nan.state(), State::Idle);
}

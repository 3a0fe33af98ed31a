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

//! The hot path must not allocate: handling a sensor frame while infusing, and reading
//! `motor_command()`, `state()` and `next_deadline_ms()`. `allocation-counter` (a counting global
//! allocator, in this test binary only) proves it.

use pump::{
    Command, Config, DrugLibrary, EndAction, Input, ProgramRequest, Pump, SelfTest, SensorFrame,
    State,
};

fn frame(motor_ul: f64) -> SensorFrame {
    SensorFrame {
        downstream_pressure_mmhg: 80.0,
        upstream_pressure_mmhg: -5.0,
        air_ul_since_last_frame: 0.0,
        door_closed: true,
        battery_percent: 90.0,
        battery_minutes_left: 600.0,
        mains_present: true,
        motor_volume_ul_total: motor_ul,
        commanded_volume_ul_total: motor_ul,
        mechanism_temperature_c: 30.0,
        self_test: SelfTest::Passed,
    }
}

#[test]
fn a_sensor_frame_while_infusing_allocates_nothing() {
    let rate_ml_per_h = 100.0;
    let mut pump = Pump::new(Config::default(), DrugLibrary::default(), 0);
    pump.handle(0, Input::Sensors(frame(0.0))).unwrap();
    let program = ProgramRequest::continuous(rate_ml_per_h, 5000.0, EndAction::Stop);
    pump.handle(0, Input::Command(Command::Program(program)))
        .unwrap();
    pump.handle(0, Input::Command(Command::Start)).unwrap();
    while pump.poll_event().is_some() {}
    let mut now_ms = 0;
    let mut moved_ul = 0.0;
    let mut step = |pump: &mut Pump| {
        now_ms += 100;
        moved_ul += rate_ml_per_h / 36.0;
        pump.handle(now_ms, Input::Sensors(frame(moved_ul)))
            .unwrap();
        std::hint::black_box((pump.motor_command(), pump.state(), pump.next_deadline_ms()));
    };
    // Warm up past the first flow window and bucket rotations.
    for _ in 0..2_000 {
        step(&mut pump);
    }
    let info = allocation_counter::measure(|| {
        for _ in 0..20_000 {
            step(&mut pump);
        }
    });
    assert_eq!(pump.state(), State::Infusing);
    assert_eq!(
        info.count_total, 0,
        "{} allocations in 20 000 control steps",
        info.count_total
    );
}

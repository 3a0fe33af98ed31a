//! One control step of the pump core: a sensor frame while infusing, then the outputs a driver reads
//! (motor command, state, next deadline). The simulator needs this well under 1 µs.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pump::{
    Command, Config, DrugLibrary, EndAction, Input, ProgramRequest, Pump, SelfTest, SensorFrame,
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

fn step(c: &mut Criterion) {
    let mut pump = Pump::new(Config::default(), DrugLibrary::default(), 0);
    // 1 mL/h with the largest VTBI: 9999 h of simulated time, so however many iterations criterion
    // runs, every step is a steady-state step of an infusion (checked after the run).
    let rate_ml_per_h = 1.0;
    pump.handle(0, Input::Sensors(frame(0.0))).expect("frame");
    let program = ProgramRequest::continuous(rate_ml_per_h, 9999.0, EndAction::Stop);
    pump.handle(0, Input::Command(Command::Program(program)))
        .expect("program");
    pump.handle(0, Input::Command(Command::Start))
        .expect("start");
    while pump.poll_event().is_some() {}
    let mut now_ms = 0u64;
    let mut moved_ul = 0.0;
    c.bench_function("sensor_frame_while_infusing", |b| {
        b.iter(|| {
            now_ms += 100;
            moved_ul += rate_ml_per_h / 36.0; // µL in 100 ms
            let result = pump.handle(now_ms, Input::Sensors(frame(moved_ul)));
            black_box(result.is_ok());
            black_box(pump.motor_command());
            black_box(pump.state());
            black_box(pump.next_deadline_ms());
            while let Some(event) = pump.poll_event() {
                black_box(event);
            }
        })
    });
    assert_eq!(
        pump.state(),
        pump::State::Infusing,
        "the benchmark left steady-state infusion"
    );
    assert_eq!(
        pump.active_alarms().count(),
        0,
        "an alarm was raised during the benchmark"
    );
}

criterion_group!(benches, step);
criterion_main!(benches);

//! Splits one tick's cost between the plant and the core: `cargo run --release -p sim --example tick_profile`.

use std::time::Instant;

use pump::{Command, Input, MotorCommand, Pump};
use sim::{Plant, PlantConfig};

fn main() {
    let ticks = 864_000u64;
    let mut plant = Plant::new(
        PlantConfig {
            reservoir_ml: 1000.0,
            ..PlantConfig::default()
        },
        1,
    );
    let t = Instant::now();
    for _ in 0..ticks {
        plant.advance(
            MotorCommand::Run {
                rate_ml_per_h: 10.0,
            },
            100,
        );
        std::hint::black_box(plant.read_sensors());
    }
    println!("plant: {:?} per patient-day", t.elapsed());

    let mut pump = Pump::new(pump::Config::default(), pump::DrugLibrary::default(), 0);
    let mut plant = Plant::new(
        PlantConfig {
            reservoir_ml: 1000.0,
            ..PlantConfig::default()
        },
        1,
    );
    let request = sim::ProgramSpec {
        rate_ml_per_h: 10.0,
        vtbi_ml: 500.0,
        kvo_ml_per_h: None,
        bolus_ml: None,
        lockout_min: None,
        max_ml_per_h: None,
        reservoir_ml: None,
        drug_id: None,
    }
    .request(plant.config());
    let _ = pump.handle(0, Input::Sensors(plant.read_sensors()));
    pump.handle(0, Input::Command(Command::Program(request)))
        .expect("program");
    pump.handle(0, Input::Command(Command::Start))
        .expect("start");
    let frames: Vec<_> = (0..ticks)
        .map(|_| {
            plant.advance(
                MotorCommand::Run {
                    rate_ml_per_h: 10.0,
                },
                100,
            );
            plant.read_sensors()
        })
        .collect();
    let t = Instant::now();
    for (i, f) in frames.into_iter().enumerate() {
        let now = (i as u64 + 1) * 100;
        let _ = pump.handle(now, Input::Sensors(f));
        while pump.poll_event().is_some() {}
        std::hint::black_box(pump.motor_command());
        std::hint::black_box(pump.next_deadline_ms());
    }
    println!(
        "core: {:?} per patient-day (state {})",
        t.elapsed(),
        pump.state().name()
    );
}

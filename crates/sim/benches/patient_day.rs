//! Speed of one simulated pump: a whole patient-day (864,000 ticks of 100 ms) must take under 0.1 s
//! on one core (issue 3: a million times real time). Also one tick, and one campaign patient-day
//! with its checkers.

use criterion::{Criterion, criterion_group, criterion_main};
use sim::{Action, PlantConfig, ProgramSpec, Simulation};

fn program(rate_ml_per_h: f64) -> ProgramSpec {
    ProgramSpec {
        rate_ml_per_h,
        vtbi_ml: rate_ml_per_h * 30.0,
        kvo_ml_per_h: None,
        bolus_ml: None,
        lockout_min: None,
        max_ml_per_h: None,
        reservoir_ml: None,
        drug_id: None,
    }
}

fn started(rate_ml_per_h: f64) -> Simulation {
    let plant = PlantConfig {
        reservoir_ml: rate_ml_per_h * 30.0 + 10.0,
        ..PlantConfig::default()
    };
    let mut sim = Simulation::with_program(
        Some(&program(rate_ml_per_h)),
        plant,
        pump::Config::default(),
        pump::DrugLibrary::default(),
        1,
    );
    sim.apply(Action::Start).expect("starts");
    sim
}

fn patient_day(c: &mut Criterion) {
    let mut group = c.benchmark_group("one pump");
    group.sample_size(10);
    for rate in [1.0, 100.0] {
        group.bench_function(format!("patient-day at {rate} mL/h"), |b| {
            b.iter(|| {
                let mut sim = started(rate);
                while sim.now_ms() < sim::campaign::DAY_MS {
                    sim.step();
                    sim.discard_events();
                }
                sim.plant().delivered_to_patient_ml
            })
        });
    }
    group.finish();
    let mut sim = started(10.0);
    c.bench_function("one tick (100 ms) at 10 mL/h", |b| {
        b.iter(|| {
            sim.step();
            sim.discard_events();
        })
    });
    let mut group = c.benchmark_group("campaign");
    group.sample_size(10);
    group.bench_function("one patient-day with faults and checkers (1 thread)", |b| {
        let mut config = sim::CampaignConfig::new(1, 0);
        config.jobs = 1;
        let mut seed = 0;
        b.iter(|| {
            seed += 1;
            config.seed = seed;
            sim::campaign(&config, &|_| {})
        })
    });
    group.finish();
}

criterion_group!(benches, patient_day);
criterion_main!(benches);

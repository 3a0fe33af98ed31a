//! Battery honesty (issue 11, point 5), on the simulator's physics: at every rate the low-battery
//! warning comes at least 30 minutes before the pump stops on a depleted battery (IEC 60601-2-24),
//! and the gauge's minutes-left estimate does not jump by more than 20 % between two readings a
//! minute apart at a steady rate (from five minutes after the start; a minute later it should read
//! a minute less, anything else counts as a jump).

use pump::AlarmKind;
use sim::{Action, PlantConfig, ProgramSpec, Simulation};

fn run(rate_ml_per_h: f64, bolus_every_min: Option<u64>) -> (f64, f64) {
    let load_w = 0.12 + 0.5 * rate_ml_per_h / 3.6 / 50.0;
    // About three hours of battery at this load.
    let percent = (3.0 * load_w / 10.0 * 100.0).min(100.0);
    let plant = PlantConfig {
        mains: false,
        battery_percent: percent,
        reservoir_ml: 5_000.0,
        ..PlantConfig::default()
    };
    let program = ProgramSpec {
        rate_ml_per_h,
        vtbi_ml: 4_000.0,
        kvo_ml_per_h: None,
        bolus_ml: bolus_every_min.map(|_| 1.0),
        lockout_min: bolus_every_min.map(|m| m as f64),
        max_ml_per_h: bolus_every_min.map(|_| rate_ml_per_h + 10.0),
        reservoir_ml: None,
        drug_id: None,
    };
    let mut sim = Simulation::with_program(
        Some(&program),
        plant,
        pump::Config::default(),
        pump::DrugLibrary::default(),
        7,
    );
    sim.apply(Action::Start).expect("starts");
    let mut last: Option<f64> = None;
    let mut worst_jump: f64 = 0.0;
    let mut minute = 0u64;
    while sim.now_ms() < 6 * 3_600_000 {
        minute += 1;
        sim.run_until(minute * 60_000);
        sim.discard_events();
        if let Some(every) = bolus_every_min
            && minute.is_multiple_of(every)
        {
            let _ = sim.apply(Action::Bolus);
        }
        let minutes_left = sim.plant().battery_minutes_left;
        let steady = sim.pump().alarm(AlarmKind::BatteryDepleted).is_none();
        if let Some(previous) = last
            && steady
            // Steady: five minutes at the rate (the gauge averages the load over about a minute).
            && minute > 5
            && previous > 0.0
        {
            // A minute later the estimate should be a minute less: anything else is a jump.
            worst_jump = worst_jump.max((minutes_left + 1.0 - previous).abs() / previous);
        }
        last = Some(minutes_left);
        if !steady {
            break;
        }
    }
    let at = |kind| {
        sim.alarm_history()
            .iter()
            .find(|a| a.kind == kind)
            .map(|a| a.raised_at_ms)
    };
    let low = at(AlarmKind::BatteryLow).expect("battery_low raised");
    let depleted = at(AlarmKind::BatteryDepleted).expect("battery_depleted raised");
    ((depleted - low) as f64 / 60_000.0, worst_jump)
}

#[test]
fn low_battery_comes_30_minutes_before_the_end_and_the_estimate_is_steady() {
    for rate in [0.1, 1.0, 10.0, 100.0, 500.0, 999.0] {
        let (warning_min, jump) = run(rate, None);
        assert!(
            warning_min >= 30.0,
            "{rate} mL/h: battery_low only {warning_min:.1} min before battery_depleted"
        );
        assert!(
            jump <= 0.2,
            "{rate} mL/h: the estimate jumped {:.0} % between two readings",
            jump * 100.0
        );
    }
}

#[test]
fn boluses_on_top_still_leave_30_minutes_of_warning() {
    // A patient pressing the bolus button every 20 minutes: the load changes, the warning stays.
    let (warning_min, _) = run(2.0, Some(20));
    assert!(warning_min >= 30.0, "{warning_min:.1} min");
}

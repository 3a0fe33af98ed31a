//! Replays one campaign patient-day with its journal:
//! `cargo run -p sim --example campaign_day -- DAY_SEED [SCALE] [DAY_HOURS] [uniform]`
//! (the same as `infusafe sim campaign --replay DAY_SEED`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: f64| {
        args.get(i)
            .and_then(|a| a.parse::<f64>().ok())
            .unwrap_or(default)
    };
    let seed: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut c = sim::CampaignConfig::new(1, 0);
    c.fault_rate_scale = number(1, 1.0);
    c.day_ms = (number(2, 24.0) * 3_600_000.0) as u64;
    if args.get(3).is_some_and(|a| a == "uniform") {
        c.fault_mix = sim::FaultMix::Uniform;
    }
    let (violations, journal) = sim::replay_day(&c, seed);
    for line in journal {
        println!("{line}");
    }
    for v in violations {
        println!("VIOLATION {v:?}");
    }
}

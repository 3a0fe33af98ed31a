//! Replays one campaign patient-day with its journal: `cargo run -p sim --example campaign_day -- SEED DAY_INDEX [SCALE] [DAY_HOURS]`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: f64| {
        args.get(i)
            .and_then(|a| a.parse::<f64>().ok())
            .unwrap_or(default)
    };
    let mut c = sim::CampaignConfig::new(1, number(0, 0.0) as u64);
    c.fault_rate_scale = number(2, 1.0);
    c.day_ms = (number(3, 24.0) * 3_600_000.0) as u64;
    if args.get(4).is_some_and(|a| a == "uniform") {
        c.fault_mix = sim::FaultMix::Uniform;
    }
    let seed = sim::campaign::day_seed(c.seed, number(1, 0.0) as u64);
    let (violations, journal) = sim::replay_day(&c, seed);
    for line in journal {
        println!("{line}");
    }
    for v in violations {
        println!("VIOLATION {v:?}");
    }
}

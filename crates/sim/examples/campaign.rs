//! The campaign without building the whole binary: `cargo run --release -p sim --example campaign -- DAYS SEED [SCALE]`
//! (same report as `infusafe sim campaign`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let days = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let seed = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut config = sim::CampaignConfig::new(days, seed);
    config.fault_rate_scale = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let started = std::time::Instant::now();
    let report = sim::campaign::campaign_with_progress_bar(&config);
    print!("{}", report.to_text());
    eprintln!("wall time {:.2} s", started.elapsed().as_secs_f64());
    std::process::exit(i32::from(!report.passed()));
}

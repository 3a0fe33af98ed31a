//! What `infusafe sim occlusion --rate R [--seed S] [--json]` prints, without building the whole
//! binary: `cargo run --release -p sim --example occlusion -- R [S] [--json]`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let numbers: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let rate: f64 = numbers
        .first()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| {
            eprintln!("usage: occlusion RATE_ML_PER_H [SEED] [--json]");
            std::process::exit(2)
        });
    let seed: u64 = numbers.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let cfg = sim::MethodConfig {
        seed,
        ..Default::default()
    };
    match sim::occlusion(rate, &cfg) {
        Ok(result) if json => println!(
            "{}",
            serde_json::to_string_pretty(&result).expect("serializable")
        ),
        Ok(result) => print!("{}", result.to_text()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2)
        }
    }
}

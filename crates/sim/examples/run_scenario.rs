//! Runs scenario files and prints each timeline: `cargo run -p sim --example run_scenario -- FILE...`
//! (the same output as `infusafe sim run`, without building the whole binary).

fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        let out = sim::cli::run_command(std::path::Path::new(&path), false, false);
        print!("{}{}", out.stdout, out.stderr);
        println!();
        failed |= out.exit_code != sim::cli::EXIT_PASSED;
    }
    std::process::exit(i32::from(failed));
}

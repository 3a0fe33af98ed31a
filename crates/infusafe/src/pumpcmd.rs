//! `infusafe pump`: a simulated pump as its own process against a server's pump link, for demos, teaching
//! and load tests. Runs the scenario in real time × speed until Ctrl-C / SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub struct PumpArgs {
    /// The server, e.g. http://127.0.0.1:8080
    #[arg(long)]
    server: String,
    /// The pump's device token (from the clinic admin).
    #[arg(long, env = "INFUSAFE_PUMP_TOKEN", hide_env_values = true)]
    token: String,
    /// A scenario file (see docs/simulator.md); default: 100 mL/h for 250 mL, started at once.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

pub fn main(args: PumpArgs) -> ExitCode {
    let text = match &args.scenario {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!(
                    "infusafe pump: cannot read the scenario {}: {e}",
                    path.display()
                );
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let origin = args
        .scenario
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "built-in scenario".into());
    let scenario = match link::simpump::scenario(text.as_deref(), &origin) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("infusafe pump: {e}");
            return ExitCode::from(2);
        }
    };
    if !(args.speed > 0.0 && args.speed <= 10_000.0) {
        eprintln!(
            "infusafe pump: --speed must be above 0 and at most 10000, not {}",
            args.speed
        );
        return ExitCode::from(2);
    }
    if !args.server.starts_with("http://") {
        eprintln!("infusafe pump: --server must be an http:// URL like http://127.0.0.1:8080");
        return ExitCode::from(2);
    }
    match run(args, scenario) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("infusafe pump: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: PumpArgs, scenario: ::sim::Scenario) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let sim = ::sim::Simulation::new(&scenario);
        let client = link::client::LinkClient::new(&args.server, &args.token);
        let config = link::simpump::SimPumpConfig {
            speed: args.speed,
            ..Default::default()
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (_actions, control) = tokio::sync::mpsc::channel(1);
        println!(
            "infusafe pump: running {:?} against {} at {}x",
            scenario.name, args.server, args.speed
        );
        let mut pump = tokio::spawn(link::simpump::run(sim, client, config, control, stopped));
        let result = tokio::select! {
            _ = server::shutdown_signal() => {
                let _ = stop.send(true);
                (&mut pump).await
            }
            r = &mut pump => r,
        };
        drop(_actions);
        result.context("the pump task failed")??;
        Ok(())
    })
}

//! `infusafe pump`: a simulated pump as its own process against a server's pump link (HTTP) or as an IHE PCD
//! gateway (HL7 v2 over MLLP, `--protocol pcd`), for demos, teaching and load tests. Runs the scenario in real time × speed until Ctrl-C / SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

/// How the pump talks to the server.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Protocol {
    /// The Infusafe pump link: JSON over HTTP with a device token.
    Http,
    /// IHE PCD: HL7 v2.6 ORU^R01 and ORU^R40 over MLLP, as a pump gateway sends them.
    Pcd,
}

#[derive(Args)]
pub struct PumpArgs {
    /// The server: http://HOST:PORT for the HTTP link, HOST:PORT (its --pcd-bind) for PCD.
    #[arg(long)]
    server: String,
    /// http (default) or pcd.
    #[arg(long, value_enum, default_value = "http")]
    protocol: Protocol,
    /// The pump's device token (from the clinic admin); HTTP only.
    #[arg(long, env = "INFUSAFE_PUMP_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The gateway's device id sent in MSH-3.2 (an EUI-64, as the clinic admin set it on the pump); PCD only.
    #[arg(long)]
    device_id: Option<String>,
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
    if let Err(message) = check_protocol(&args) {
        eprintln!("infusafe pump: {message}");
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

/// The arguments each protocol needs, and nothing the other one does.
fn check_protocol(args: &PumpArgs) -> Result<(), String> {
    match args.protocol {
        Protocol::Http => {
            if !args.server.starts_with("http://") {
                return Err("--server must be an http:// URL like http://127.0.0.1:8080".into());
            }
            if args.token.as_deref().is_none_or(str::is_empty) {
                return Err("--token (or INFUSAFE_PUMP_TOKEN) is needed for the HTTP link".into());
            }
            if args.device_id.is_some() {
                return Err("--device-id is for --protocol pcd".into());
            }
        }
        Protocol::Pcd => {
            let ok = args.server.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !ok || args.server.contains("://") {
                return Err(
                    "--server must be the server's PCD address HOST:PORT (its --pcd-bind), like 127.0.0.1:2575"
                        .into(),
                );
            }
            if args
                .device_id
                .as_deref()
                .is_none_or(|d| d.trim().is_empty())
            {
                return Err("--device-id is needed for --protocol pcd (the id the clinic admin set on the pump)".into());
            }
        }
    }
    Ok(())
}

fn run(args: PumpArgs, scenario: ::sim::Scenario) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let sim = ::sim::Simulation::new(&scenario);
        let config = link::simpump::SimPumpConfig {
            speed: args.speed,
            ..Default::default()
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (_actions, control) = tokio::sync::mpsc::channel(1);
        println!(
            "infusafe pump: running {:?} against {} ({}) at {}x",
            scenario.name,
            args.server,
            match args.protocol {
                Protocol::Http => "HTTP pump link",
                Protocol::Pcd => "IHE PCD over MLLP",
            },
            args.speed
        );
        let mut pump = match args.protocol {
            Protocol::Http => {
                let token = args.token.clone().unwrap_or_default();
                let client = link::client::LinkClient::new(&args.server, &token);
                tokio::spawn(link::simpump::run(sim, client, config, control, stopped))
            }
            Protocol::Pcd => {
                let device_id = args.device_id.clone().unwrap_or_default();
                let uplink = link::pcdlink::PcdUplink::new(&args.server, device_id.trim());
                tokio::spawn(link::simpump::run(sim, uplink, config, control, stopped))
            }
        };
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

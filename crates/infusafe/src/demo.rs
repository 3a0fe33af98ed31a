//! `infusafe demo`: the server on the embedded SQLite default with a seeded demo clinic and a simulated pump
//! per patient on the pump link; prints the address and the demo logins, stops cleanly on Ctrl-C / SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub struct DemoArgs {
    /// Address to listen on; port 0 picks a free port (the real address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: String,
    /// Data directory for the demo database.
    #[arg(long, env = "INFUSAFE_DATA_DIR", default_value = "infusafe-data")]
    data_dir: PathBuf,
    /// Also open an IHE PCD (HL7 v2 over MLLP) listener here, and run Jordan's pump as a PCD gateway on it
    /// (port 0 picks a free port).
    #[arg(long)]
    pcd_bind: Option<String>,
    /// How many seconds one minute of the plans' escalation times lasts (60 = real time). Lower it to show,
    /// or test, the escalation ladder without waiting: with 3, a plan's "nurse after 5 minutes" takes 15 s.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    escalation_minute_seconds: f64,
}

pub fn main(args: DemoArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("infusafe demo: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mut config = server::ServerConfig::with_data_dir(&args.data_dir);
    config.bind = args.bind.parse().with_context(|| {
        format!(
            "--bind {:?} is not an address like 127.0.0.1:8080",
            args.bind
        )
    })?;
    if let Some(bind) = &args.pcd_bind {
        config.pcd_bind = Some(bind.parse().with_context(|| {
            format!("--pcd-bind {bind:?} is not an address like 127.0.0.1:2575")
        })?);
    }
    if !(args.escalation_minute_seconds.is_finite()
        && (0.1..=3600.0).contains(&args.escalation_minute_seconds))
    {
        anyhow::bail!(
            "--escalation-minute-seconds {} is out of range: give a number of seconds from 0.1 to 3600 (60 is real time)",
            args.escalation_minute_seconds
        );
    }
    config.escalation_minute = std::time::Duration::from_secs_f64(args.escalation_minute_seconds);
    // Plain HTTP on this machine: see docs/server.md ("Cookies").
    config.secure_cookies = false;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let demo = server::demo::start(config).await?;
        println!("Infusafe demo running at {}", demo.running.url());
        println!(
            "Sign in with one of these accounts (password: {}):",
            server::demo::DEMO_PASSWORD
        );
        for l in &demo.logins {
            println!("  {:<8} {:<10} {}", l.username, l.role, l.who);
        }
        match demo.running.pcd_addr {
            Some(pcd) => println!(
                "Alex's simulated pump is on the pump link; Jordan's speaks IHE PCD (HL7 v2 over MLLP) to {pcd} as device {}. Press Ctrl-C to stop.",
                server::demo::DEMO_PCD_DEVICE_ID
            ),
            None => println!("Each patient has a simulated pump on the pump link. Press Ctrl-C to stop."),
        }
        server::shutdown_signal().await;
        println!("infusafe demo: shutting down");
        demo.stop().await?;
        Ok(())
    })
}

//! `infusafe serve`: run the care-team server with configuration from flags, environment and an optional
//! file (flags and environment win), until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "INFUSAFE_BIND")]
    bind: Option<String>,
    /// Database URL: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB (default: sqlite in the data directory).
    #[arg(long, env = "INFUSAFE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Data directory (default ./infusafe-data).
    #[arg(long, env = "INFUSAFE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Optional TOML file with bind, data_dir, database_url, secure_cookies, pump_silent_after_s, session_ttl_h,
    /// allow_loopback_webhooks, pcd_bind, pcd_out, and a [telemetry] section (full_resolution_days,
    /// bucket_minutes, keep_days).
    #[arg(long, env = "INFUSAFE_CONFIG")]
    config: Option<PathBuf>,
    /// Send cookies without the Secure flag. Only for plain HTTP on localhost; production runs behind TLS.
    #[arg(long)]
    insecure_cookies: bool,
    /// Accept http:// webhook URLs to a loopback address (a receiver on this machine; development only). In
    /// service, webhooks are https:// only.
    #[arg(long)]
    allow_loopback_webhooks: bool,
    /// Open an IHE PCD listener (HL7 v2.6 over MLLP) on this address: pump gateways send ORU^R01 and ORU^R40.
    #[arg(long, env = "INFUSAFE_PCD_BIND")]
    pcd_bind: Option<String>,
    /// Send every alarm raised or cleared and every acknowledgement as ORU^R40 over MLLP to this alarm manager
    /// (HOST:PORT).
    #[arg(long, env = "INFUSAFE_PCD_OUT")]
    pcd_out: Option<String>,
    /// Seconds without telemetry from an infusing pump before `pump_silent` is raised.
    #[arg(long)]
    pump_silent_after_s: Option<u64>,
    /// Days telemetry stays at full resolution before it is downsampled (default 7).
    #[arg(long)]
    telemetry_full_resolution_days: Option<u32>,
    /// Minutes per downsampled telemetry bucket (default 15).
    #[arg(long)]
    telemetry_bucket_minutes: Option<u32>,
    /// Days after which telemetry is removed; 0 (the default) keeps it forever. Clinical events are never removed.
    #[arg(long)]
    telemetry_keep_days: Option<u32>,
    /// On first start (no accounts yet), create a clinic admin with this username; the password is read from
    /// INFUSAFE_ADMIN_PASSWORD.
    #[arg(long)]
    bootstrap_admin: Option<String>,
    /// How many seconds one minute of the plans' escalation times lasts: 60 (real time) in service; lower only to
    /// train or to test the ladder without waiting (with 1, "nurse after 5 minutes" takes 5 s).
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    escalation_minute_seconds: f64,
}

pub fn main(args: ServeArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("infusafe serve: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("infusafe-data"));
    let mut config = server::ServerConfig::with_data_dir(&data_dir);
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        config.apply_file(&text, &path.display().to_string())?;
    }
    if args.data_dir.is_some() {
        config.database_url = server::config::default_database_url(&data_dir);
        config.data_dir = data_dir;
    }
    if let Some(url) = args.database_url {
        config.database_url = url;
    }
    if let Some(bind) = args.bind {
        config.bind = bind
            .parse()
            .with_context(|| format!("--bind {bind:?} is not an address like 127.0.0.1:8080"))?;
    }
    if let Some(bind) = &args.pcd_bind {
        config.pcd_bind = Some(bind.parse().with_context(|| {
            format!("--pcd-bind {bind:?} is not an address like 127.0.0.1:2575")
        })?);
    }
    if let Some(out) = &args.pcd_out {
        config.pcd_out = Some(out.clone());
    }
    if args.insecure_cookies {
        config.secure_cookies = false;
    }
    if args.allow_loopback_webhooks {
        config.allow_loopback_webhooks = true;
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
    if let Some(s) = args.pump_silent_after_s {
        anyhow::ensure!(s > 0, "--pump-silent-after-s must be at least 1");
        config.pump_silent_after = std::time::Duration::from_secs(s);
    }
    let telemetry = server::config::TelemetryFile {
        full_resolution_days: args.telemetry_full_resolution_days,
        bucket_minutes: args.telemetry_bucket_minutes,
        keep_days: args.telemetry_keep_days,
    };
    config.telemetry_retention = telemetry.apply(config.telemetry_retention)?;
    let admin_password = match &args.bootstrap_admin {
        Some(_) => Some(
            std::env::var("INFUSAFE_ADMIN_PASSWORD")
                .context("--bootstrap-admin needs the password in INFUSAFE_ADMIN_PASSWORD")?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let running = server::start(config).await?;
        if let (Some(user), Some(password)) = (&args.bootstrap_admin, &admin_password)
            && server::demo::bootstrap_admin(&running.state, "Clinic", user, password).await?
        {
            println!("created the clinic admin {user:?}");
        }
        println!("infusafe serve: listening on {}", running.url());
        if let Some(pcd) = running.pcd_addr {
            println!("infusafe serve: IHE PCD (MLLP) on {pcd}");
        }
        server::shutdown_signal().await;
        println!("infusafe serve: shutting down");
        running.stop().await?;
        Ok(())
    })
}

//! `infusafe sim ...`: parses the simulator's arguments, calls the `sim` library, writes the output
//! and maps the outcome to the exit code (0 all good, 1 an expectation or checker failed, 2 invalid input).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct SimArgs {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(Subcommand)]
enum SimCommand {
    /// Run a scenario file as fast as possible and check its expectations.
    Run {
        /// Scenario file (TOML), see docs/simulator.md.
        file: PathBuf,
        /// Print one JSON object instead of the readable timeline.
        #[arg(long)]
        json: bool,
        /// Also draw pressure, volume delivered and alarms over time into this SVG file.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
    /// Monte Carlo safety campaign over random therapies and faults at realistic rates.
    Campaign {
        #[arg(long, default_value_t = 100)]
        patient_days: u64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Worker threads (default: every core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Multiply every fault rate (1 = realistic).
        #[arg(long, default_value_t = 1.0)]
        fault_rate_scale: f64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Replay one patient-day by the seed a violation printed, with its journal.
        #[arg(long, value_name = "DAY_SEED")]
        replay: Option<u64>,
    },
    /// IEC 60601-2-24 trumpet curve at one rate.
    Trumpet {
        #[arg(long)]
        rate: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// IEC 60601-2-24 occlusion test at one rate: time to alarm and bolus on release.
    Occlusion {
        #[arg(long)]
        rate: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
}

pub fn main(args: SimArgs) -> ExitCode {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SimCommand::Run { file, json, svg } => {
            let out = ::sim::cli::run_command(&file, json, svg.is_some());
            print!("{}", out.stdout);
            eprint!("{}", out.stderr);
            if let (Some(path), Some(text)) = (svg, out.svg) {
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(ExitCode::from(out.exit_code))
        }
        SimCommand::Campaign {
            patient_days,
            seed,
            jobs,
            fault_rate_scale,
            json,
            replay,
        } => {
            if !(fault_rate_scale.is_finite() && (0.0..=1000.0).contains(&fault_rate_scale)) {
                anyhow::bail!(
                    "--fault-rate-scale must be between 0 and 1000, got {fault_rate_scale}"
                );
            }
            let mut config = ::sim::CampaignConfig::new(patient_days, seed);
            config.jobs = jobs.unwrap_or(0);
            config.fault_rate_scale = fault_rate_scale;
            if let Some(day_seed) = replay {
                let (violations, journal) = ::sim::replay_day(&config, day_seed);
                for line in journal {
                    println!("{line}");
                }
                for v in &violations {
                    println!("VIOLATION [{}] at {} ms: {}", v.check, v.at_ms, v.message);
                }
                return Ok(if violations.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            if patient_days == 0 || patient_days > ::sim::campaign::PATIENT_DAYS_MAX {
                anyhow::bail!(
                    "--patient-days must be between 1 and {}",
                    ::sim::campaign::PATIENT_DAYS_MAX
                );
            }
            let report = ::sim::campaign::campaign_with_progress_bar(&config);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        SimCommand::Trumpet {
            rate,
            seed,
            svg,
            json,
        } => {
            let cfg = ::sim::MethodConfig {
                seed,
                ..Default::default()
            };
            let result = ::sim::trumpet(rate, &cfg)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                print!("{}", result.to_text());
            }
            if let Some(path) = svg {
                std::fs::write(&path, ::sim::svg::trumpet_svg(&result))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        SimCommand::Occlusion { rate, seed, json } => {
            let cfg = ::sim::MethodConfig {
                seed,
                ..Default::default()
            };
            let result = ::sim::occlusion(rate, &cfg)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                print!("{}", result.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

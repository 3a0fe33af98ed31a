//! `infusafe reminders PLAN.toml [--out FILE] [--json]`: writes the plan's reminders as an iCalendar file that
//! phones import (stdout, or FILE), or with `--json` as data with the next occurrences.
//! Exit codes: 0 written, 2 the plan is unreadable or invalid, 1 the output could not be written.

use std::process::ExitCode;

/// Arguments of `infusafe reminders`.
#[derive(clap::Args)]
pub struct RemindersArgs {
    /// The therapy plan (TOML), e.g. examples/plans/antibiotics-picc.toml.
    #[arg(value_name = "PLAN.toml")]
    pub plan: String,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<String>,
    /// Print the reminders as JSON data (with the next occurrences) instead of iCalendar.
    #[arg(long)]
    pub json: bool,
    /// How many upcoming occurrences to list with `--json`.
    #[arg(long, default_value_t = 10)]
    pub upcoming: usize,
}

pub fn main(args: RemindersArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.plan) {
        Ok(text) => text,
        Err(e) => {
            eprintln!(
                "infusafe reminders: cannot read the plan {}: {e}",
                args.plan
            );
            return ExitCode::from(2);
        }
    };
    let plan = match care::TherapyPlan::from_toml(&text) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("infusafe reminders: {}: {e}", args.plan);
            return ExitCode::from(2);
        }
    };
    let now = care::jiff::Timestamp::now();
    let output = if args.json {
        let data = serde_json::json!({
            "time_zone": plan.time_zone,
            "reminders": care::reminders::reminders(&plan),
            "upcoming": care::reminders::upcoming(&plan, now, args.upcoming),
        });
        match serde_json::to_string_pretty(&data) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("infusafe reminders: internal error writing JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        care::ical::calendar(&plan, now)
    };
    match &args.out {
        None => {
            use std::io::Write;
            match std::io::stdout().lock().write_all(output.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("infusafe reminders: cannot write the calendar: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(path) => match std::fs::write(path, output) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("infusafe reminders: cannot write {path}: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

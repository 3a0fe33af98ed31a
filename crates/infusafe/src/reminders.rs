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
    let format = if args.json {
        Format::Json {
            upcoming: args.upcoming,
        }
    } else {
        Format::Calendar
    };
    let output = match render(&text, format, care::jiff::Timestamp::now()) {
        Ok(output) => output,
        Err(message) => {
            eprintln!("infusafe reminders: {}: {message}", args.plan);
            return ExitCode::from(2);
        }
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

/// What `render` writes.
#[derive(Debug, Clone, Copy)]
enum Format {
    /// An RFC 5545 file for the phone's calendar.
    Calendar,
    /// The reminders as data, with this many upcoming occurrences.
    Json { upcoming: usize },
}

/// The calendar (or the JSON data) for a plan's text; `Err` is the message for a bad plan (exit 2).
fn render(plan_toml: &str, format: Format, now: care::jiff::Timestamp) -> Result<String, String> {
    let plan = care::TherapyPlan::from_toml(plan_toml).map_err(|e| e.to_string())?;
    let upcoming = match format {
        Format::Calendar => return Ok(care::ical::calendar(&plan, now)),
        Format::Json { upcoming } => upcoming,
    };
    let data = serde_json::json!({
        "time_zone": plan.time_zone,
        "reminders": care::reminders::reminders(&plan),
        "upcoming": care::reminders::upcoming(&plan, now, upcoming),
    });
    serde_json::to_string_pretty(&data)
        .map(|text| text + "\n")
        .map_err(|e| format!("internal error writing JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::{Format, render};

    const PLAN: &str = include_str!("../../../examples/plans/antibiotics-picc.toml");

    fn now() -> care::jiff::Timestamp {
        "2026-11-26T06:00:00Z".parse().unwrap()
    }

    #[test]
    fn calendar_and_json() {
        let ics = render(PLAN, Format::Calendar, now()).unwrap();
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.contains("BEGIN:VALARM"));
        let json: serde_json::Value =
            serde_json::from_str(&render(PLAN, Format::Json { upcoming: 3 }, now()).unwrap())
                .unwrap();
        assert_eq!(json["reminders"].as_array().unwrap().len(), 7);
        assert_eq!(json["upcoming"].as_array().unwrap().len(), 3);
        assert_eq!(json["upcoming"][0]["reminder_id"], "infusion_start-0800-0");
    }

    #[test]
    fn bad_plan_names_the_field() {
        let bad = PLAN.replace("line = \"picc\"", "line = \"picc2\"");
        let message = render(&bad, Format::Calendar, now()).unwrap_err();
        assert!(
            message.starts_with("line: \"picc2\" is not a line type; use one of picc"),
            "{message}"
        );
    }
}

//! `infusafe triage [FILE|-]`: reads a JSON report (file or stdin), prints the triage answer as JSON.
//! Exit codes: 0 answered, 2 the report is unreadable or invalid (the message says what to fix).

use std::io::Read;
use std::process::ExitCode;

/// Arguments of `infusafe triage`.
#[derive(clap::Args)]
pub struct TriageArgs {
    /// The JSON report to triage; `-` or nothing reads standard input.
    #[arg(value_name = "FILE|-")]
    pub file: Option<String>,
}

pub fn main(args: TriageArgs) -> ExitCode {
    let text = match args.file.as_deref() {
        None | Some("-") => {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => text,
                Err(e) => return fail(&format!("cannot read the report from standard input: {e}")),
            }
        }
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => return fail(&format!("cannot read the report {path}: {e}")),
        },
    };
    match answer(&text) {
        Ok(json) => write_stdout(&json),
        Err(message) => fail(&message),
    }
}

/// The answer as pretty JSON, or the message for a bad report (exit 2).
fn answer(report: &str) -> Result<String, String> {
    let answer = care::triage_json(report).map_err(|e| e.to_string())?;
    // Serializing plain data cannot fail; if it ever did, saying so beats printing half an answer.
    serde_json::to_string_pretty(&answer)
        .map(|json| json + "\n")
        .map_err(|e| format!("internal error writing the answer: {e}"))
}

/// Writes the answer; a closed pipe (`| head`) is not an error worth a panic.
fn write_stdout(text: &str) -> ExitCode {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("infusafe triage: cannot write the answer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("infusafe triage: {message}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::answer;

    /// `Ok(level)` for a report that is answered, `Err(part of the message)` for one that exits with code 2.
    fn check(report: &str, expect: Result<&str, &str>) {
        match (answer(report), expect) {
            (Ok(json), Ok(level)) => {
                let value: serde_json::Value = serde_json::from_str(&json).unwrap();
                assert_eq!(value["level"], level, "{report}");
                for field in ["reasons", "steps", "call"] {
                    assert!(value[field].is_array(), "{report}: {field}");
                }
            }
            (Err(message), Err(part)) => assert!(message.contains(part), "{report}: {message}"),
            (got, want) => panic!("{report}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn reports() {
        check(r#"{"observations": []}"#, Ok("self_care"));
        check(r#"{"observations": ["chest_pain"]}"#, Ok("emergency"));
        check(
            r#"{"plan": {"line": "port"}, "observations": ["dressing_wet"]}"#,
            Ok("call_care_team"),
        );
        check(
            r#"{"observations": ["headache"]}"#,
            Err("use one of difficulty_breathing"),
        );
        check("not json", Err("not valid JSON"));
    }
}

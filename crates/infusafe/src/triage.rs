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
    match care::triage_json(&text) {
        Ok(answer) => match serde_json::to_string_pretty(&answer) {
            Ok(json) => write_stdout(&(json + "\n")),
            Err(e) => {
                eprintln!("infusafe triage: internal error writing the answer: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => fail(&e.to_string()),
    }
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

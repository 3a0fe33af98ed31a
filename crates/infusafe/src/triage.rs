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

    /// Issue 12: the new observation words, the `midline` line type and the therapy kinds are accepted; the
    /// error for an unknown word lists the new words too.
    #[test]
    fn new_words_and_midline() {
        for (word, level) in [
            ("confused_or_hard_to_wake", "emergency"),
            ("slow_or_shallow_breathing", "emergency"),
            ("bleeding_at_site", "call_care_team"),
            ("bleeding_will_not_stop", "emergency"),
            ("rash_or_hives", "call_care_team"),
            ("leg_weakness_or_numbness", "call_care_team"),
            ("severe_headache", "call_care_team"),
            ("bladder_or_bowel_change", "call_care_team"),
            ("catheter_broken_or_cracked", "call_care_team"),
            ("swollen_arm_neck_or_shoulder", "call_care_team"),
            ("shaky_sweaty_or_low_blood_sugar", "call_care_team"),
        ] {
            check(
                &format!(r#"{{"plan": {{"line": "midline"}}, "observations": ["{word}"]}}"#),
                Ok(level),
            );
        }
        check(
            r#"{"plan": {"line": "epidural", "therapy_kinds": ["opioid"]}, "observations": ["leg_weakness_or_numbness"]}"#,
            Ok("emergency"),
        );
        check(
            r#"{"plan": {"line": "picc"}, "observations": ["catheter_broken_or_cracked"]}"#,
            Ok("emergency"),
        );
        check(r#"{"plan": {"line": "midline2"}}"#, Err("midline"));
        check(
            r#"{"plan": {"therapy_kinds": ["insulin"]}}"#,
            Err("opioid, parenteral_nutrition, chemotherapy"),
        );
        check(
            r#"{"observations": ["bleeding"]}"#,
            Err("shaky_sweaty_or_low_blood_sugar"),
        );
    }

    /// An emergency answer on the command line starts with calling emergency services.
    #[test]
    fn emergency_answers_start_with_emergency_services() {
        let json = answer(r#"{"plan": {"line": "picc"}, "observations": ["accidental_disconnection", "chest_pain"]}"#)
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["level"], "emergency");
        assert_eq!(value["steps"][0], "Call emergency services now.");
        assert_eq!(value["call"][0]["role"], "emergency");
        let steps = value["steps"].to_string();
        assert!(
            steps.contains("left side") && steps.contains("Close the clamp"),
            "{steps}"
        );
        assert!(!steps.contains("Sit upright"), "{steps}");
    }
}

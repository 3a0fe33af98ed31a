//! Outside input never panics: random text, and random damage to valid plans and reports, always gives an answer
//! or an error with a message (the fuzz-style check of every parser the companion exposes).

use proptest::prelude::*;

const PLAN: &str = include_str!("../../../examples/plans/antibiotics-picc.toml");
const EPIDURAL: &str = include_str!("../../../examples/plans/pain-epidural.toml");
const REPORT: &str = r#"{"plan": {"line": "picc", "critical_therapy": true, "program": {"rate_ml_per_h": 100, "vtbi_ml": 250}},
 "observations": ["new_redness_at_site", "fever"],
 "alarms": [{"kind": "occlusion_downstream", "times_in_last_30_min": 3, "steps_followed": true}],
 "infusion": {"elapsed_min": 60, "volume_left_ml": 100}}"#;

/// Deletes the line at `line % count` and replaces one character at `at % len` with `with`.
fn damage(text: &str, line: usize, at: usize, with: char) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = line % lines.len();
    let mut out: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != skip)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let chars: Vec<char> = out.chars().collect();
    if !chars.is_empty() {
        let i = at % chars.len();
        out = chars[..i]
            .iter()
            .chain(std::iter::once(&with))
            .chain(&chars[i + 1..])
            .collect();
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,300}") {
        let _ = care::triage_json(&text);
        let _ = care::TherapyPlan::from_toml(&text);
        let _ = care::TherapyPlan::from_json(&text);
    }

    #[test]
    fn damaged_plans_are_answered_or_refused_with_a_message(line in any::<usize>(), at in any::<usize>(), with in any::<char>(), which in any::<bool>()) {
        let text = damage(if which { PLAN } else { EPIDURAL }, line, at, with);
        match care::TherapyPlan::from_toml(&text) {
            Ok(plan) => {
                // A plan that passes must also write a calendar and give reminders without panicking.
                let now = care::jiff::Timestamp::from_second(1_790_000_000).unwrap();
                let ics = care::ical::calendar(&plan, now);
                prop_assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"));
                let _ = care::reminders::upcoming(&plan, now, 5);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn damaged_reports_are_answered_or_refused_with_a_message(line in any::<usize>(), at in any::<usize>(), with in any::<char>()) {
        let text = damage(REPORT, line, at, with);
        match care::triage_json(&text) {
            Ok(out) => prop_assert!(!out.steps.is_empty()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn extreme_numbers_in_reports_never_panic(elapsed in proptest::num::f64::ANY, left in proptest::num::f64::ANY, rate in proptest::num::f64::ANY, times in any::<u32>()) {
        let report = serde_json::json!({
            "plan": {"program": {"rate_ml_per_h": rate, "vtbi_ml": 100.0}},
            "alarms": [{"kind": "air_in_line", "times_in_last_30_min": times}],
            "infusion": {"elapsed_min": elapsed, "volume_left_ml": left}
        });
        // serde_json writes non-finite numbers as null, which is a type error: also a message, not a panic.
        let _ = care::triage_json(&report.to_string());
    }
}

//! The clinical case table (`tests/cases/triage.toml`): every case is run through `infusafe triage`'s engine and
//! must give its level, fire its rules and contain (or not contain) its words. The table was written from the
//! patient guide and the cited sources before the rules were changed; it is what a clinician reviews.
//!
//! Also checked here: every rule fires in some case; a case whose level departs from the guide's literal words
//! names a row of the clinical decisions table in docs/traceability.md, and the rule that decides it is marked
//! with that row in content (`departure`); the table and the marks agree both ways.

use std::collections::{BTreeMap, BTreeSet};

use care::{Level, Role, triage_json};
use serde::Deserialize;

const CASES: &str = include_str!("cases/triage.toml");
const TRACEABILITY: &str = include_str!("../../../docs/traceability.md");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    group: String,
    input: toml::Value,
    level: Level,
    #[serde(default)]
    fires: Vec<String>,
    #[serde(default)]
    must_contain: Vec<String>,
    #[serde(default)]
    must_not_contain: Vec<String>,
    #[serde(default)]
    guide_level: Option<Level>,
    #[serde(default)]
    decision: Option<String>,
    reason: String,
    source: String,
}

fn cases() -> Vec<Case> {
    toml::from_str::<File>(CASES)
        .expect("tests/cases/triage.toml parses")
        .cases
}

/// The clinical decisions table of docs/traceability.md: decision id → rule ids in its row.
fn decisions() -> BTreeMap<String, BTreeSet<String>> {
    let start = TRACEABILITY
        .find("## Clinical decisions")
        .expect("docs/traceability.md has a \"## Clinical decisions\" section");
    let mut table = BTreeMap::new();
    for line in TRACEABILITY[start..].lines() {
        if !line.starts_with("| D") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(
            cells.len(),
            6,
            "a decision row has six cells (id, rules, guide, product, reason, source): {line}"
        );
        for cell in &cells[2..] {
            assert!(!cell.is_empty(), "{}: every cell is filled in", cells[0]);
        }
        let rules: BTreeSet<String> = cells[1]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        assert!(!rules.is_empty(), "{}: names its rule ids", cells[0]);
        assert!(
            table.insert(cells[0].to_owned(), rules).is_none(),
            "{} twice",
            cells[0]
        );
    }
    table
}

fn lower(v: &[String]) -> String {
    v.join("\n").to_lowercase()
}

#[test]
fn every_case_gives_its_level_rules_and_steps() {
    let cases = cases();
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    let mut ids = BTreeSet::new();
    let mut failures = Vec::new();
    let emergency_first = &care::content().common.emergency_first_step;
    for case in &cases {
        assert!(ids.insert(case.id.clone()), "case id {} twice", case.id);
        assert!(
            !case.reason.trim().is_empty()
                && !case.source.trim().is_empty()
                && !case.group.is_empty(),
            "{}: every case says why and where from",
            case.id
        );
        let json = serde_json::to_string(&case.input).unwrap();
        let out = match triage_json(&json) {
            Ok(out) => out,
            Err(e) => {
                failures.push(format!("{}: {json}: error {e}", case.id));
                continue;
            }
        };
        let fired: Vec<&str> = out.reasons.iter().map(|r| r.rule.as_str()).collect();
        let steps = lower(&out.steps);
        let mut wrong = Vec::new();
        if out.level != case.level {
            wrong.push(format!("level {} (want {})", out.level, case.level));
        }
        for rule in &case.fires {
            if !fired.contains(&rule.as_str()) {
                wrong.push(format!("{rule} did not fire"));
            }
        }
        for word in &case.must_contain {
            if !steps.contains(&word.to_lowercase()) {
                wrong.push(format!("steps lack {word:?}"));
            }
        }
        for word in &case.must_not_contain {
            if steps.contains(&word.to_lowercase()) {
                wrong.push(format!("steps contain {word:?}"));
            }
        }
        if out.level == Level::Emergency {
            if out.steps.first() != Some(emergency_first) || out.call[0].role != Role::Emergency {
                wrong.push("an emergency starts with calling emergency services".to_owned());
            }
            if steps.contains("nurse first") || steps.contains("nurse line first") {
                wrong.push("an emergency answer says to call the nurse first".to_owned());
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} ({}): {}\n  input: {json}\n  rules: {fired:?}\n  steps: {:?}",
                case.id,
                case.group,
                wrong.join("; "),
                out.steps
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_fires_in_some_case() {
    let mut fired = BTreeSet::new();
    for case in cases() {
        let json = serde_json::to_string(&case.input).unwrap();
        if let Ok(out) = triage_json(&json) {
            fired.extend(out.reasons.into_iter().map(|r| r.rule));
        }
    }
    let missing: Vec<String> = care::triage::rules_table()
        .into_iter()
        .map(|r| r.id)
        .filter(|id| !fired.contains(id))
        .collect();
    assert!(missing.is_empty(), "rules no case reaches: {missing:?}");
}

#[test]
fn departures_from_the_guide_are_clinical_decisions() {
    let table = decisions();
    let content = care::content();
    // Content marks and table rows agree both ways.
    for rule in &content.rules {
        if let Some(d) = &rule.departure {
            let row = table
                .get(d)
                .unwrap_or_else(|| panic!("{} departs as {d}, which is not in the table", rule.id));
            assert!(
                row.contains(&rule.id),
                "{} departs as {d}, but row {d} does not name it",
                rule.id
            );
        }
    }
    for (d, rules) in &table {
        for id in rules {
            let rule = content
                .rule(id)
                .unwrap_or_else(|| panic!("row {d} names {id}, which is not a rule"));
            assert_eq!(
                rule.departure.as_deref(),
                Some(d.as_str()),
                "row {d} names {id}, which is not marked `departure = \"{d}\"` in content/triage.toml"
            );
        }
    }
    // A case where the product's level differs from the guide's literal words is decided by a marked rule.
    for case in cases() {
        let Some(guide) = case.guide_level else {
            continue;
        };
        let json = serde_json::to_string(&case.input).unwrap();
        let out = triage_json(&json).unwrap();
        if out.level == guide {
            assert!(
                case.decision.is_none(),
                "{}: agrees with the guide, so it names no decision",
                case.id
            );
            continue;
        }
        let d = case.decision.as_deref().unwrap_or_else(|| {
            panic!(
                "{}: level {} departs from the guide's {guide} without a clinical decision",
                case.id, out.level
            )
        });
        assert!(
            table.contains_key(d),
            "{}: decision {d} is not in the table",
            case.id
        );
        // The rule that sets the level (above the guide) or that stands where the guide's would be (below it).
        let deciding = out
            .reasons
            .iter()
            .filter(|r| r.level == out.level)
            .any(|r| content.rule(&r.rule).and_then(|t| t.departure.as_deref()) == Some(d));
        assert!(
            deciding,
            "{}: level {} (guide: {guide}) but no rule at that level is marked departure = {d:?}",
            case.id, out.level
        );
    }
}

//! docs/traceability.md maps every section and situation of the patient guide to content ids. This test parses
//! the table and fails when a situation has no content, an id does not exist, a guide section is missing, or a
//! content id is used by no row (content nobody can trace back to the guide or a product need).

use std::collections::BTreeSet;

const TABLE: &str = include_str!("../../../docs/traceability.md");

/// The guide's sections, in its order. A section missing from the table fails the test.
const GUIDE_SECTIONS: [&str; 13] = [
    "What a home infusion pump is",
    "Safety mindset",
    "Daily checklist: before each infusion",
    "Daily checklist: during the infusion",
    "Daily checklist: after the infusion",
    "Alarms: quick reference and details",
    "Watching your access site",
    "Simple routines",
    "When to call: prompt (time-sensitive)",
    "When to call: urgent or emergency",
    "Quick-glance safety tips",
    "Emotional and practical realities",
    "Bringing it all together",
];

struct Row {
    section: String,
    situation: String,
    ids: Vec<String>,
}

fn rows() -> Vec<Row> {
    // The guide table is the first table; the clinical decisions table below it is checked by tests/cases.rs.
    let end = TABLE.find("\n## ").unwrap_or(TABLE.len());
    TABLE[..end]
        .lines()
        .filter(|l| {
            l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| Guide section")
        })
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 3, "a row has three cells: {line}");
            let ids = cells[2]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            Row {
                section: cells[0].to_owned(),
                situation: cells[1].to_owned(),
                ids,
            }
        })
        .collect()
}

#[test]
fn every_guide_situation_has_existing_content() {
    let content = care::content();
    let rows = rows();
    assert!(
        rows.len() > 80,
        "the table was not parsed: {} rows",
        rows.len()
    );
    for row in &rows {
        assert!(
            !row.ids.is_empty(),
            "{} / {}: no content covers it",
            row.section,
            row.situation
        );
        for id in &row.ids {
            assert!(
                content.has_id(id),
                "{} / {}: {id} does not exist",
                row.section,
                row.situation
            );
        }
    }
    for section in GUIDE_SECTIONS {
        assert!(
            rows.iter().any(|r| r.section == section),
            "guide section {section:?} is missing from the table"
        );
    }
}

#[test]
fn every_content_id_is_traced() {
    let used: BTreeSet<String> = rows().into_iter().flat_map(|r| r.ids).collect();
    for id in care::content().ids() {
        assert!(
            used.contains(id),
            "content id {id} is in no row of docs/traceability.md"
        );
    }
}

#[test]
fn when_to_call_rows_are_triage_rules_and_every_rule_is_traced() {
    for row in rows()
        .iter()
        .filter(|r| r.section.starts_with("When to call"))
    {
        assert!(
            row.ids
                .iter()
                .any(|id| care::triage::RULE_IDS.contains(&id.as_str())),
            "{}: a when-to-call situation must be a triage rule",
            row.situation
        );
    }
    let used: BTreeSet<String> = rows().into_iter().flat_map(|r| r.ids).collect();
    for row in care::triage::rules_table() {
        assert!(
            used.contains(&row.id),
            "rule {} is not traced to the guide",
            row.id
        );
    }
}

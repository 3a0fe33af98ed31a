//! Append-only, checked in the source: no SQL in this crate updates, deletes, replaces or truncates.
//! (The database triggers enforce the same at run time; the storage suite tests them.)
//!
//! Two tables are allowed a DELETE and one an UPDATE, none of them history: `record_telemetry` and
//! `record_telemetry_blocks`, sampled pump telemetry that retention packs and downsamples (`src/telemetry.rs`),
//! and (the UPDATE) `record_restatements`, one status row per pump updated on its next state report
//! (`src/restate.rs`, docs/record.md).

/// Statements that would change history, as sequences of upper-case words.
const FORBIDDEN: &[&[&str]] = &[
    &["DELETE", "FROM"],
    &["REPLACE", "INTO"],
    &["OR", "REPLACE"],
    &["DO", "UPDATE"],
    &["DROP", "TABLE"],
];

/// The one table rows may be updated in: a pump's status row, not history (`src/restate.rs`).
const UPDATABLE: &str = "RECORD_RESTATEMENTS";

/// The tables rows may be deleted from (as upper-case words): not history, see the module doc.
const DELETABLE: &[&str] = &["RECORD_TELEMETRY", "RECORD_TELEMETRY_BLOCKS"];

/// The offending statements found in `source`.
fn violations(source: &str) -> Vec<String> {
    let words: Vec<String> = source
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_uppercase())
        .collect();
    let mut found = Vec::new();
    for (i, word) in words.iter().enumerate() {
        for pattern in FORBIDDEN {
            if words[i..].len() >= pattern.len()
                && pattern.iter().zip(&words[i..]).all(|(p, w)| p == w)
            {
                let deletable = *pattern == ["DELETE", "FROM"]
                    && words
                        .get(i + 2)
                        .is_some_and(|table| DELETABLE.contains(&table.as_str()));
                if !deletable {
                    found.push(pattern.join(" "));
                }
            }
        }
        // UPDATE <table> SET, except of the one status table
        if word == "UPDATE"
            && words.get(i + 2).is_some_and(|w| w == "SET")
            && words[i + 1] != UPDATABLE
        {
            found.push(format!("UPDATE {} SET", words[i + 1]));
        }
        // TRUNCATE, except in the trigger that forbids it (`BEFORE TRUNCATE ON`).
        if word == "TRUNCATE" && (i == 0 || words[i - 1] != "BEFORE") {
            found.push("TRUNCATE".into());
        }
    }
    found
}

fn check(source: &str, expect: &[&str]) {
    assert_eq!(violations(source), expect, "source: {source}");
}

#[test]
fn the_checker_catches_what_it_should() {
    check(
        "UPDATE record_events SET payload = $1",
        &["UPDATE RECORD_EVENTS SET"],
    );
    check("delete from record_events where id = 1", &["DELETE FROM"]);
    check("DELETE FROM record_telemetry WHERE at_ms < $1", &[]);
    check(
        "DELETE FROM record_telemetry_x WHERE at_ms < $1",
        &["DELETE FROM"],
    );
    check(
        "DELETE FROM record_restatements WHERE device_id = $1",
        &["DELETE FROM"],
    );
    check("UPDATE record_restatements SET restated = 1", &[]);
    check(
        "UPDATE record_restatements_x SET restated = 1",
        &["UPDATE RECORD_RESTATEMENTS_X SET"],
    );
    check(
        "UPDATE record_telemetry SET state = $1",
        &["UPDATE RECORD_TELEMETRY SET"],
    );
    check(
        "INSERT OR REPLACE INTO record_events",
        &["OR REPLACE", "REPLACE INTO"],
    );
    check(
        "INSERT ... ON CONFLICT (id) DO UPDATE SET x = 1",
        &["DO UPDATE"],
    );
    check("TRUNCATE record_events", &["TRUNCATE"]);
    check(
        "CREATE TRIGGER t BEFORE UPDATE OR DELETE ON record_events",
        &[],
    );
    check("BEFORE TRUNCATE ON record_events", &[]);
    check("INSERT INTO record_events (id) VALUES ($1)", &[]);
}

#[test]
fn no_sql_in_the_crate_changes_history() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            let found = violations(&text);
            assert!(found.is_empty(), "{}: {found:?}", path.display());
            checked += 1;
        }
    }
    assert!(
        checked >= 5,
        "expected the crate's sources, found {checked} files"
    );
}

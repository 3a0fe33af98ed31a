//! Runs the whole scenario library (`scenarios/*.toml` at the workspace root): every file must parse
//! and every expectation in it must hold. A failure prints the run's timeline.

use std::path::PathBuf;

use sim::{RunConfig, Scenario, run_scenario};

fn library_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

fn library() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(library_dir())
        .expect("the scenarios/ directory at the workspace root must exist")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_in_the_library_passes() {
    let files = library();
    assert!(
        files.len() >= 30,
        "the scenario library has only {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let scenario = match Scenario::from_file(path) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{e}"));
                continue;
            }
        };
        assert!(
            !scenario.expectations.is_empty(),
            "{} has no expectations",
            path.display()
        );
        let outcome = run_scenario(&scenario, RunConfig::default());
        if !outcome.report.passed {
            failures.push(format!("{}:\n{}", path.display(), outcome.timeline()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_library_expects_every_alarm_of_the_core() {
    let mut covered = std::collections::BTreeSet::new();
    for path in library() {
        let scenario = Scenario::from_file(&path).expect("library scenarios parse");
        for x in &scenario.expectations {
            if let sim::Expectation::Alarm { alarm, .. } = x {
                covered.insert(alarm.name());
            }
        }
    }
    let missing: Vec<&str> = pump::AlarmKind::ALL
        .iter()
        .map(|k| k.name())
        .filter(|n| !covered.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "no scenario expects these alarms: {missing:?}"
    );
}

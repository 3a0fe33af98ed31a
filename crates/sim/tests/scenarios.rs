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
    assert!(!files.is_empty(), "the scenario library is empty");
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

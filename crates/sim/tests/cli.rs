//! The `infusafe sim run` contract through its library function: exit code 0 when every expectation
//! holds, 1 when one fails, 2 for an invalid file; the JSON report's keys.

use std::path::PathBuf;

use sim::cli::{EXIT_FAILED, EXIT_INVALID, EXIT_PASSED, run_command};

/// Writes `text` to a fresh file under the target directory and returns its path.
fn file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sim-cli-tests");
    std::fs::create_dir_all(&dir).expect("create test dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    path
}

const BASE: &str = r#"
name = "door"
duration = "10m"
[program]
rate_ml_per_h = 10
vtbi_ml = 50
[[event]]
at = "0s"
action = "start"
[[event]]
at = "2m"
action = "open_door"
"#;

fn check(name: &str, text: &str, json: bool, expect_code: u8, expect_out: &[&str]) {
    let out = run_command(&file(name, text), json, false);
    assert_eq!(
        out.exit_code, expect_code,
        "{name}: stdout {}\nstderr {}",
        out.stdout, out.stderr
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    for fragment in expect_out {
        assert!(
            all.contains(fragment),
            "{name}: output lacks `{fragment}`:\n{all}"
        );
    }
}

#[test]
fn exit_codes_follow_the_expectations() {
    let pass = format!("{BASE}[[expect]]\nalarm = \"door_open\"\nby = \"2m1s\"\n");
    let fail = format!("{BASE}[[expect]]\nno_alarm = \"door_open\"\n");
    check(
        "pass.toml",
        &pass,
        false,
        EXIT_PASSED,
        &[
            "ALARM door_open (high) raised",
            "PASS alarm door_open",
            "all expectations hold",
        ],
    );
    check(
        "fail.toml",
        &fail,
        false,
        EXIT_FAILED,
        &["FAIL alarm door_open never raised", "raised at 2m"],
    );
    check(
        "invalid.toml",
        &format!("{BASE}[[event]]\nat = \"3m\"\naction = \"explode\"\n"),
        false,
        EXIT_INVALID,
        &["invalid.toml:15", "unknown action `explode`"],
    );
    let missing = run_command(std::path::Path::new("/no/such/file.toml"), false, false);
    assert_eq!(missing.exit_code, EXIT_INVALID);
    assert!(missing.stderr.contains("cannot read"), "{}", missing.stderr);
}

#[test]
fn json_report_has_the_contract_keys() {
    let text = format!(
        "{BASE}[[expect]]\nalarm = \"door_open\"\nby = \"2m1s\"\n[[expect]]\nfinal_state = \"stopped_by_alarm\"\n"
    );
    let out = run_command(&file("json.toml", &text), true, true);
    assert_eq!(out.exit_code, EXIT_PASSED, "{}", out.stdout);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    for key in [
        "name",
        "passed",
        "final_state",
        "delivered_ml",
        "alarms",
        "expectations",
    ] {
        assert!(v.get(key).is_some(), "missing `{key}` in {v}");
    }
    assert_eq!(v["name"], "door");
    assert_eq!(v["passed"], true);
    assert_eq!(v["final_state"], "stopped_by_alarm");
    let alarm = &v["alarms"][0];
    assert_eq!(alarm["kind"], "door_open");
    assert_eq!(alarm["priority"], "high");
    assert!(
        alarm["raised_at_s"]
            .as_f64()
            .is_some_and(|t| (120.0..=120.2).contains(&t)),
        "{alarm}"
    );
    assert!(
        alarm["cleared_at_s"].is_null(),
        "still active at the end: {alarm}"
    );
    assert_eq!(v["expectations"][0]["passed"], true);
    assert!(
        v["expectations"][0]["description"]
            .as_str()
            .is_some_and(|d| d.contains("door_open"))
    );
    assert!(out.svg.is_some_and(|s| s.starts_with("<?xml")));
}

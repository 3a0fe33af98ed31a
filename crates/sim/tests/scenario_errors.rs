//! Scenario files with mistakes: every error names the key and the file line, and says what to do.

use sim::{Scenario, ScenarioError};

const HEAD: &str = "name = \"t\"\nduration = \"1h\"\n";

/// Parses `body` (after a two-line valid head) and checks the error mentions every `expect` fragment.
fn check(body: &str, expect: &[&str]) {
    let text = format!("{HEAD}{body}");
    match Scenario::from_toml_str(&text, "case.toml") {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => {
            let msg = e.to_string();
            for fragment in expect {
                assert!(
                    msg.contains(fragment),
                    "error `{msg}` lacks `{fragment}` for:\n{text}"
                );
            }
        }
    }
}

#[test]
fn errors_name_the_key_and_the_line() {
    check("colour = \"red\"\n", &["case.toml:3", "colour"]);
    check(
        "[program]\nrate_ml_per_h = 1\nvtbi_ml = 5\nspeed = 3\n",
        &["case.toml:6", "speed"],
    );
    check(
        "[plant]\nreservoir_ml = 100\nbag_colour = 1\n",
        &["case.toml:5", "bag_colour"],
    );
    check(
        "[plant]\nmains = true\nreservoir_ml = -5\n",
        &["case.toml:5", "plant.reservoir_ml", "-5", "allowed 0"],
    );
    check(
        "[[event]]\nat = \"0s\"\naction = \"dance\"\n",
        &["case.toml:5", "unknown action `dance`", "kink"],
    );
    check(
        "[[event]]\nat = \"soon\"\naction = \"start\"\n",
        &["case.toml:4", "`at`", "not a duration"],
    );
    check(
        "[[event]]\nat = \"5\"\naction = \"start\"\n",
        &["case.toml:4", "missing unit"],
    );
    check(
        "[[event]]\nat = \"1m\"\naction = \"air_bubble\"\n",
        &["case.toml:5", "needs `volume_ul`"],
    );
    check(
        "[[event]]\nat = \"1m\"\naction = \"start\"\nvolume_ul = 5\n",
        &["case.toml:6", "takes no `volume_ul`"],
    );
    check(
        "[[event]]\nat = \"1m\"\naction = \"kink\"\nseverity = 2\n",
        &["case.toml:6", "severity", "out of range"],
    );
    check(
        "[[event]]\nat = \"1m\"\naction = \"set_battery_percent\"\npercent = 150\n",
        &["case.toml:6", "percent"],
    );
    check(
        "[[event]]\nat = \"1m\"\naction = \"acknowledge\"\nalarm = \"fire\"\n",
        &["case.toml:6", "unknown alarm `fire`"],
    );
    check(
        "[[event]]\nat = \"1m\"\naction = \"self_test_fail\"\ncode = 70000\n",
        &["case.toml:6", "code"],
    );
    check(
        "[[event]]\nat = \"1m\"\naction = \"start\"\nwhen = \"now\"\n",
        &["case.toml:6", "when"],
    );
    check(
        "[[expect]]\nalarm = \"occlusion\"\n",
        &[
            "case.toml:4",
            "unknown alarm `occlusion`",
            "occlusion_downstream",
        ],
    );
    check(
        "[[expect]]\nalarm = \"door_open\"\nby = \"2h\"\n",
        &["case.toml:5", "`by`", "after the scenario's `duration`"],
    );
    check(
        "[[expect]]\nfinal_state = \"sleeping\"\n",
        &["case.toml:4", "unknown state `sleeping`", "infusing"],
    );
    check(
        "[[expect]]\nfinal_state = \"idle\"\nno_alarm = \"any\"\n",
        &["one check"],
    );
    check("[[expect]]\nby = \"5m\"\n", &["case.toml:4", "one check"]);
    check(
        "[[expect]]\ndelivered_ml_min = 5\ndelivered_ml_max = 1\n",
        &["case.toml:5", "below delivered_ml_min"],
    );
    check("[[expect]]\nwhatever = 1\n", &["case.toml:4", "whatever"]);
    check("seed = -1\n", &["case.toml:3", "seed"]);
    match Scenario::from_toml_str("name = \"a\"\nduration = \"40d\"\n", "x.toml") {
        Err(e) => assert!(e.to_string().contains("at most 31d"), "{e}"),
        Ok(_) => panic!("a 40-day scenario must be refused"),
    }
    check(
        "[pump]\nsensor_period_ms = 0\n",
        &["case.toml:4", "pump.sensor_period_ms"],
    );
    check("this is not toml\n", &["case.toml:3"]);
}

#[test]
fn missing_required_keys_and_bad_duration() {
    match Scenario::from_toml_str("duration = \"1h\"\n", "x.toml") {
        Err(ScenarioError::Syntax { message, .. }) => {
            assert!(message.contains("name"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match Scenario::from_toml_str("name = \"a\"\nduration = \"0s\"\n", "x.toml") {
        Err(ScenarioError::Invalid { line: 2, key, .. }) => assert_eq!(key, "duration"),
        other => panic!("{other:?}"),
    }
    let e = Scenario::from_file(std::path::Path::new("/nonexistent/scenario.toml")).unwrap_err();
    assert!(e.to_string().contains("cannot read"), "{e}");
}

#[test]
fn a_valid_scenario_reads_every_part() {
    let text = r#"
name = "all parts"
duration = "1h30m"
seed = 7

[program]
rate_ml_per_h = 2
vtbi_ml = 50.5
kvo_ml_per_h = 0.5
bolus_ml = 1
lockout_min = 15
max_ml_per_h = 5

[plant]
reservoir_ml = 80
container = "syringe"

[pump]
occlusion_downstream_mmhg = 300.0

[[event]]
at = "10m"
action = "air_bubble"
volume_ul = 250

[[event]]
at = "0s"
action = "start"

[[event]]
at = "20m"
action = "acknowledge"

[[event]]
at = "21m"
action = "bend_arm"
duration = "1m"

[[expect]]
alarm = "air_in_line"
by = "30m"

[[expect]]
no_alarm = "any"

[[expect]]
delivered_ml_min = 1

[[expect]]
final_state = "kvo"
"#;
    let s = Scenario::from_toml_str(text, "ok.toml").expect("valid");
    assert_eq!(s.duration_ms, 5_400_000);
    assert_eq!(s.seed, 7);
    assert_eq!(s.plant.reservoir_ml, 80.0);
    assert_eq!(s.plant.container, sim::ContainerKind::Syringe);
    assert_eq!(s.pump.occlusion_downstream_mmhg, 300.0);
    let p = s.program.as_ref().expect("program");
    assert_eq!(
        (p.rate_ml_per_h, p.vtbi_ml, p.kvo_ml_per_h, p.bolus_ml),
        (2.0, 50.5, Some(0.5), Some(1.0))
    );
    // Sorted by time, file order kept for equal times.
    let names: Vec<&str> = s.events.iter().map(|e| e.action.name()).collect();
    assert_eq!(names, ["start", "air_bubble", "acknowledge", "bend_arm"]);
    assert_eq!(
        s.events[1].action,
        sim::Action::AirBubble { volume_ul: 250.0 }
    );
    assert_eq!(
        s.events[3].action,
        sim::Action::BendArm {
            duration_ms: 60_000
        }
    );
    assert_eq!(s.expectations.len(), 4);
    // The JSON form round-trips.
    let json = serde_json::to_string(&s).expect("serialize");
    let back: Scenario = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, s);
}

mod never_panics {
    use proptest::prelude::*;

    const VALID: &str = "name = \"p\"\nduration = \"1h\"\nseed = 3\n[program]\nrate_ml_per_h = 2\nvtbi_ml = 10\n\
        [plant]\nreservoir_ml = 50\n[[event]]\nat = \"1m\"\naction = \"air_bubble\"\nvolume_ul = 300\n\
        [[expect]]\nalarm = \"air_in_line\"\nby = \"30m\"\n";

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// The parser reads outside input: any text gives a scenario or an error, never a panic.
        #[test]
        fn arbitrary_text(text in "\\PC{0,200}") {
            let _ = sim::Scenario::from_toml_str(&text, "fuzz.toml");
        }

        /// Mutations of a valid file (a byte replaced, a slice cut) hit the deeper validation paths.
        #[test]
        fn mutated_valid_file(at in 0usize..VALID.len(), cut in 0usize..20, byte in 32u8..127) {
            let mut bytes = VALID.as_bytes().to_vec();
            bytes[at] = byte;
            let end = (at + cut).min(bytes.len());
            let mut cut_bytes = bytes.clone();
            cut_bytes.drain(at..end);
            for candidate in [bytes, cut_bytes] {
                if let Ok(text) = String::from_utf8(candidate) {
                    let _ = sim::Scenario::from_toml_str(&text, "fuzz.toml");
                }
            }
        }
    }
}

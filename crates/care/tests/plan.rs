//! Therapy plans: the examples load, every bad plan is refused with the field path and the allowed values, the
//! program converts into the pump core's request, and the JSON form round-trips (the server stores it).

use care::TherapyPlan;

const ANTIBIOTICS: &str = include_str!("../../../examples/plans/antibiotics-picc.toml");
const EPIDURAL: &str = include_str!("../../../examples/plans/pain-epidural.toml");

/// Applies `edit` (a `(from, to)` text replacement, applied once) to the antibiotics example and checks the
/// outcome: `Ok(())` when `expect` is empty, otherwise an error whose text contains every part of `expect`.
fn check(edit: (&str, &str), expect: &[&str]) {
    assert!(
        ANTIBIOTICS.contains(edit.0),
        "the example has no {:?}",
        edit.0
    );
    let text = ANTIBIOTICS.replacen(edit.0, edit.1, 1);
    match (TherapyPlan::from_toml(&text), expect.is_empty()) {
        (Ok(_), true) => {}
        (Ok(_), false) => panic!("{edit:?} should be refused with {expect:?}"),
        (Err(e), true) => panic!("{edit:?} should be accepted: {e}"),
        (Err(e), false) => {
            let message = e.to_string();
            for part in expect {
                assert!(
                    message.contains(part),
                    "error for {edit:?}:\n{message}\nshould contain {part:?}"
                );
            }
        }
    }
}

#[test]
fn examples_load() {
    for text in [ANTIBIOTICS, EPIDURAL] {
        let plan = TherapyPlan::from_toml(text).unwrap();
        assert!(!plan.schedule.reminders.is_empty());
    }
}

#[test]
fn bad_plans_name_the_field_and_the_allowed_values() {
    check(
        ("line = \"picc\"", "line = \"picc2\""),
        &[
            "line: \"picc2\" is not a line type; use one of picc, central_line, port, peripheral_iv, subcutaneous, epidural, midline",
        ],
    );
    check(
        ("critical_therapy = true", "critical_therapy = \"yes\""),
        &["critical_therapy", "bool"],
    );
    check(
        ("critical_therapy = true", ""),
        &["missing field `critical_therapy`"],
    );
    check(
        (
            "time_zone = \"Europe/Amsterdam\"",
            "time_zone = \"Europe/Amsterdan\"",
        ),
        &["time_zone", "IANA", "Europe/Amsterdam"],
    );
    check(
        ("rate_ml_per_h = 200.0", "rate_ml_per_h = 0.0"),
        &["program.rate_ml_per_h", "greater than 0"],
    );
    check(
        ("rate_ml_per_h = 200.0", "rate_ml_per_h = -5.0"),
        &["program.rate_ml_per_h"],
    );
    check(
        ("vtbi_ml = 100.0", "vtbi_ml = \"100\""),
        &["program.vtbi_ml"],
    );
    check(
        ("end_action = \"stop\"", "end_action = \"halt\""),
        &["program.end_action", "stop", "kvo"],
    );
    check(
        ("end_action = \"stop\"", "end_action = \"kvo\""),
        &["program.kvo_rate_ml_per_h", "required"],
    );
    check(
        (
            "end_action = \"stop\"",
            "end_action = \"kvo\"\nkvo_rate_ml_per_h = 500.0",
        ),
        &["program.kvo_rate_ml_per_h", "above"],
    );
    check(
        (
            "end_action = \"stop\"",
            "end_action = \"kvo\"\nkvo_rate_ml_per_h = 5.0",
        ),
        &[],
    );
    check(
        (
            "end_action = \"stop\"",
            "end_action = \"stop\"\nkvo_rate_ml_per_h = 5.0",
        ),
        &["program.kvo_rate_ml_per_h", "only allowed"],
    );
    check(
        (
            "end_action = \"stop\"",
            "end_action = \"stop\"\n[program.bolus]\nvolume_ml = 2.0\nlockout_min = 10.0\nmax_ml_per_h = 20.0",
        ),
        &["program.bolus.max_ml_per_h", "basal"],
    );
    check(
        ("start_date = 2026-11-26", "start_date = \"2026-13-01\""),
        &["schedule.start_date", "YYYY-MM-DD"],
    );
    check(
        ("start_date = 2026-11-26", "start_date = \"2026-11-26\""),
        &[],
    );
    check(
        ("end_date = 2026-12-09", "end_date = 2026-11-01"),
        &["schedule.end_date", "before"],
    );
    check(
        ("times = [\"08:00\", \"20:00\"]", "times = [\"8am\"]"),
        &["schedule.reminders[0].times", "HH:MM"],
    );
    check(
        ("times = [\"08:00\", \"20:00\"]", "times = [\"24:00\"]"),
        &["schedule.reminders[0].times"],
    );
    check(
        ("times = [\"08:00\", \"20:00\"]", "times = []"),
        &["schedule.reminders[0].times", "at least one"],
    );
    check(
        (
            "times = [\"08:00\", \"20:00\"]",
            "times = [\"08:00\", \"08:00\"]",
        ),
        &["schedule.reminders[0].times", "twice"],
    );
    check(
        ("kind = \"site_check\"", "kind = \"site_inspection\""),
        &[
            "schedule.reminders[1].kind",
            "infusion_start, pump_check, site_check, battery, supply_change, dressing_change",
        ],
    );
    check(
        ("weekdays = [\"thu\"]", "weekdays = [\"thursday\"]"),
        &["weekdays", "mon, tue, wed, thu, fri, sat, sun"],
    );
    check(
        (
            "weekdays = [\"thu\"]",
            "weekdays = [\"thu\"]\nevery_days = 2",
        ),
        &["weekdays", "not both"],
    );
    check(
        (
            "kind = \"site_check\"",
            "kind = \"site_check\"\nevery_days = 0",
        ),
        &["schedule.reminders[1].every_days"],
    );
    check(
        ("phone = \"112\"", "phone = \"call 112\""),
        &["contacts.emergency.phone", "not a phone number"],
    );
    check(
        ("phone = \"112\"", "phone = \"\""),
        &["contacts.emergency.phone"],
    );
    check(
        ("emergency = { phone = \"112\" }", ""),
        &["contacts", "missing field `emergency`"],
    );
    check(
        ("patient_to_nurse_min = 5", "patient_to_nurse_min = 0"),
        &["escalation.patient_to_nurse_min", "1 to 60"],
    );
    check(
        ("nurse_to_on_call_min = 10", "nurse_to_on_call_min = 600"),
        &["escalation.nurse_to_on_call_min"],
    );
    check(
        ("about = \"alarm.air_in_line\"", "about = \"alarm.air\""),
        &["notes[1].about", "not a content id"],
    );
    check(
        ("name = \"Alex Example\"", "name = \"\""),
        &["patient.name", "empty"],
    );
    check(
        ("[patient]", "colour = \"blue\"\n[patient]"),
        &["unknown field `colour`"],
    );
    check(("[patient]", "[patient\n"), &["not valid TOML"]);
}

#[test]
fn escalation_has_sane_defaults() {
    let text = ANTIBIOTICS.replace(
        "[escalation]\npatient_to_nurse_min = 5\nnurse_to_on_call_min = 10\n",
        "",
    );
    let plan = TherapyPlan::from_toml(&text).unwrap();
    assert_eq!(plan.escalation, care::Escalation::default());
    assert_eq!(
        (
            plan.escalation.patient_to_nurse_min,
            plan.escalation.nurse_to_on_call_min
        ),
        (5, 10)
    );
}

#[test]
fn program_converts_to_the_pump_request() {
    let plan = TherapyPlan::from_toml(ANTIBIOTICS).unwrap();
    let request = plan.program.to_request(&plan.therapy);
    assert_eq!(request.drug_id.as_deref(), Some("ceftriaxone"));
    assert_eq!((request.rate_ml_per_h, request.vtbi_ml), (200.0, 100.0));
    assert_eq!(request.end_action, pump::EndAction::Stop);
    assert_eq!(request.bolus, None);

    let plan = TherapyPlan::from_toml(EPIDURAL).unwrap();
    let request = plan.program.to_request(&plan.therapy);
    assert_eq!(
        request.drug_id.as_deref(),
        Some("bupivacaine-fentanyl-epidural")
    );
    assert_eq!(
        request.end_action,
        pump::EndAction::Kvo { rate_ml_per_h: 1.0 }
    );
    assert_eq!(
        request.bolus,
        Some(pump::BolusProgram {
            volume_ml: 3.0,
            lockout_min: 20.0,
            max_ml_per_h: 12.0
        })
    );
    assert_eq!(request.reservoir_ml, Some(250.0));
}

#[test]
fn json_round_trip_and_json_errors() {
    for text in [ANTIBIOTICS, EPIDURAL] {
        let plan = TherapyPlan::from_toml(text).unwrap();
        let again = TherapyPlan::from_json(&plan.to_json()).unwrap();
        assert_eq!(plan, again);
        let value: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
        assert_eq!(TherapyPlan::from_value(value).unwrap(), plan);
    }
    let plan = TherapyPlan::from_toml(ANTIBIOTICS).unwrap();
    let bad = plan.to_json().replace("\"picc\"", "\"picc2\"");
    let err = TherapyPlan::from_json(&bad).unwrap_err();
    assert_eq!(err.path(), Some("line"));
    assert!(err.to_string().contains("use one of picc"), "{err}");
    assert!(matches!(
        TherapyPlan::from_json("{"),
        Err(care::PlanError::Syntax { .. })
    ));
}

#[test]
fn notes_for_shows_general_notes_then_specific() {
    let plan = TherapyPlan::from_toml(ANTIBIOTICS).unwrap();
    let notes = plan.notes_for("alarm.air_in_line");
    assert_eq!(notes.len(), 2);
    assert!(notes[0].starts_with("Call the nurse line first"));
    assert!(notes[1].starts_with("You were trained"));
    assert_eq!(plan.notes_for("alarm.door_open").len(), 1);
}

const LIMITS_RATE: &str = "rate_ml_per_h = [50.0, 100.0, 200.0, 250.0, 300.0]";

#[test]
fn bad_limits_name_the_field_and_the_allowed_values() {
    let table: &[((&str, &str), &[&str])] = &[
        (
            (LIMITS_RATE, "rate_ml_per_h = [50.0, 100.0, 200.0, 250.0]"),
            &["therapy.limits.rate_ml_per_h: has 4 numbers; write five"],
        ),
        (
            (
                LIMITS_RATE,
                "rate_ml_per_h = [50.0, 300.0, 200.0, 250.0, 300.0]",
            ),
            &[
                "therapy.limits.rate_ml_per_h",
                "out of order",
                "non-decreasing",
            ],
        ),
        (
            (
                LIMITS_RATE,
                "rate_ml_per_h = [-1.0, 100.0, 200.0, 250.0, 300.0]",
            ),
            &["therapy.limits.rate_ml_per_h", "finite number of 0 or more"],
        ),
        (
            (
                LIMITS_RATE,
                "rate_ml_per_h = [50.0, 100.0, 200.0, 250.0, inf]",
            ),
            &["therapy.limits.rate_ml_per_h", "finite number of 0 or more"],
        ),
        (
            (
                "vtbi_ml = [50.0, 90.0, 100.0, 110.0, 150.0]",
                "vtbi_ml = [50.0, 90.0, 100.0, 110.0, 90.0]",
            ),
            &["therapy.limits.vtbi_ml", "out of order"],
        ),
        (
            (LIMITS_RATE, "rate_ml_per_h = \"fast\""),
            &["therapy.limits.rate_ml_per_h"],
        ),
        (
            (
                LIMITS_RATE,
                "typo = 1\nrate_ml_per_h = [50.0, 100.0, 200.0, 250.0, 300.0]",
            ),
            &["therapy.limits", "unknown field `typo`"],
        ),
        (
            ("amount = 2000.0", "amount = 0.0"),
            &["therapy.limits.concentration.amount: 0 is not allowed"],
        ),
        (
            ("unit = \"mg\"", "unit = \" \""),
            &["therapy.limits.concentration.unit: must not be empty"],
        ),
        (
            ("drug_id = \"ceftriaxone\"", ""),
            &["therapy.drug_id: is required when therapy.limits is given"],
        ),
        // The plan's own program against the limits.
        (
            ("rate_ml_per_h = 200.0", "rate_ml_per_h = 400.0"),
            &[
                "program.rate_ml_per_h: 400 is above the upper hard limit 300 of therapy.limits.rate_ml_per_h",
                "use 100 to 250",
            ],
        ),
        (
            ("rate_ml_per_h = 200.0", "rate_ml_per_h = 20.0"),
            &["program.rate_ml_per_h: 20 is below the lower hard limit 50"],
        ),
        (
            ("vtbi_ml = 100.0", "vtbi_ml = 200.0"),
            &["program.vtbi_ml: 200 is above the upper hard limit 150 of therapy.limits.vtbi_ml"],
        ),
        (
            ("rate_ml_per_h = 200.0", "rate_ml_per_h = 280.0"),
            &[
                "program.rate_ml_per_h: 280 is above the upper soft limit 250",
                "soft_limit_override_confirmed = true",
            ],
        ),
        (
            (
                "rate_ml_per_h = 200.0",
                "rate_ml_per_h = 400.0\nsoft_limit_override_confirmed = true",
            ),
            &["program.rate_ml_per_h: 400 is above the upper hard limit 300"],
        ),
        (
            (
                "end_action = \"stop\"",
                "end_action = \"stop\"\nbolus = { volume_ml = 2.0, lockout_min = 30.0, max_ml_per_h = 250.0 }",
            ),
            &["program.bolus: is not allowed: therapy.limits has no bolus_ml"],
        ),
    ];
    for (edit, expect) in table {
        check(*edit, expect);
    }
    // A soft-limit breach the prescriber confirmed, and a bolus within bolus limits, are accepted.
    check(
        (
            "rate_ml_per_h = 200.0",
            "rate_ml_per_h = 280.0\nsoft_limit_override_confirmed = true",
        ),
        &[],
    );
    let epidural_bolus = |from: &str, to: &str| {
        TherapyPlan::from_toml(&EPIDURAL.replacen(from, to, 1)).map_err(|e| e.to_string())
    };
    assert!(
        epidural_bolus("volume_ml = 3.0", "volume_ml = 6.0")
            .unwrap_err()
            .contains("program.bolus.volume_ml: 6 is above the upper hard limit 5 of therapy.limits.bolus_ml")
    );
    assert!(
        epidural_bolus("bolus_ml = [0.5, 1.0, 3.0, 4.0, 5.0]", "")
            .unwrap_err()
            .contains("program.bolus: is not allowed")
    );
}

#[test]
fn limits_build_the_pump_drug_library() {
    let plan = TherapyPlan::from_toml(ANTIBIOTICS).unwrap();
    let library = plan.drug_library();
    assert_eq!(library.entries().len(), 1);
    let entry = library.get("ceftriaxone").expect("the plan's drug_id");
    assert_eq!(entry.name, "Ceftriaxone");
    assert_eq!(entry.concentration.amount, 2000.0);
    assert_eq!(entry.concentration.unit, "mg");
    assert_eq!(entry.concentration.per_ml, 100.0);
    let r = entry.rate_ml_per_h;
    assert_eq!(
        [
            r.lower_hard(),
            r.lower_soft(),
            r.typical(),
            r.upper_soft(),
            r.upper_hard()
        ],
        [50.0, 100.0, 200.0, 250.0, 300.0]
    );
    assert_eq!(entry.vtbi_ml.upper_hard(), 150.0);
    assert_eq!(entry.bolus_ml, None);

    let epidural = TherapyPlan::from_toml(EPIDURAL).unwrap();
    let entry = epidural
        .drug_library()
        .get("bupivacaine-fentanyl-epidural")
        .cloned()
        .expect("the epidural entry");
    assert_eq!(entry.bolus_ml.map(|b| b.upper_hard()), Some(5.0));

    // The pump core runs the plan's own program under the plan's library, and refuses one above the hard limit.
    let mut pump = pump::Pump::new(pump::Config::default(), plan.drug_library(), 0);
    let request = plan.program.to_request(&plan.therapy);
    pump.handle(
        0,
        pump::Input::Command(pump::Command::Program(request.clone())),
    )
    .expect("the plan's program is within its limits");
    assert_eq!(pump.state(), pump::State::Programmed);
    let too_fast = pump::ProgramRequest {
        rate_ml_per_h: 400.0,
        ..request
    };
    let mut pump = pump::Pump::new(pump::Config::default(), plan.drug_library(), 0);
    assert!(
        pump.handle(0, pump::Input::Command(pump::Command::Program(too_fast)))
            .is_err(),
        "the pump refuses what the plan refuses"
    );

    // Without limits: an empty library, and the limits do not appear in the stored JSON.
    let bare = ANTIBIOTICS.replacen("[therapy.limits]", "[therapy.unused_limits_removed]", 1);
    assert!(
        TherapyPlan::from_toml(&bare).is_err(),
        "an unknown section is refused"
    );
    let start = ANTIBIOTICS.find("[therapy.limits]").unwrap();
    let end = ANTIBIOTICS.find("[program]").unwrap();
    let without = format!("{}{}", &ANTIBIOTICS[..start], &ANTIBIOTICS[end..]);
    let plan = TherapyPlan::from_toml(&without).unwrap();
    assert!(plan.drug_library().entries().is_empty());
    assert!(!plan.to_json().contains("limits"));

    // The limits survive the server's JSON form.
    let plan = TherapyPlan::from_toml(ANTIBIOTICS).unwrap();
    assert_eq!(TherapyPlan::from_json(&plan.to_json()).unwrap(), plan);
}

#[test]
fn therapy_kinds_are_optional_and_checked() {
    // A plan written before therapy_kinds existed loads with none, and writes none back.
    let plan = TherapyPlan::from_toml(ANTIBIOTICS).unwrap();
    assert!(plan.therapy_kinds.is_empty());
    assert!(!plan.to_json().contains("therapy_kinds"));
    // The epidural example marks its opioid; the mark survives the JSON round trip.
    let plan = TherapyPlan::from_toml(EPIDURAL).unwrap();
    assert_eq!(plan.therapy_kinds, vec![care::TherapyKind::Opioid]);
    assert_eq!(TherapyPlan::from_json(&plan.to_json()).unwrap(), plan);
    check(
        (
            "critical_therapy = true",
            "critical_therapy = true\ntherapy_kinds = [\"parenteral_nutrition\", \"chemotherapy\"]",
        ),
        &[],
    );
    check(
        (
            "critical_therapy = true",
            "critical_therapy = true\ntherapy_kinds = [\"insulin\"]",
        ),
        &[
            "therapy_kinds",
            "\"insulin\" is not a therapy kind; use one of opioid, parenteral_nutrition, chemotherapy",
        ],
    );
    check(("line = \"picc\"", "line = \"midline\""), &[]);
}

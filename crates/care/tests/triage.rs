//! The triage contract as a table: every "when to call" situation of the guide is a row, with the level and the
//! rule ids it must produce. One `check` helper; rows read like the guide.

use care::{Level, Observation, TriageConfig, TriageInput, triage, triage_json};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Runs a JSON report and compares level and the set of rule ids that fired (order-insensitive).
fn check(input: Value, level: &str, rules: &[&str]) {
    let out = triage_json(&input.to_string()).unwrap_or_else(|e| panic!("{input}: {e}"));
    let mut got: Vec<&str> = out.reasons.iter().map(|r| r.rule.as_str()).collect();
    got.sort();
    let mut want = rules.to_vec();
    want.sort();
    assert_eq!((out.level.name(), got), (level, want), "input: {input}");
    // Invariants every answer keeps.
    assert!(!out.steps.is_empty(), "{input}: an answer always has steps");
    assert!(!out.care_team_first.is_empty());
    assert_eq!(
        out.level,
        out.reasons.iter().map(|r| r.level).max().unwrap()
    );
    if out.level == Level::Emergency {
        assert_eq!(
            out.call[0].role,
            care::Role::Emergency,
            "{input}: emergency calls emergency services first"
        );
        assert_eq!(
            out.steps[0],
            care::content().common.emergency_first_step,
            "{input}: an emergency answer starts with calling emergency services"
        );
    } else if let Some(i) = out
        .call
        .iter()
        .position(|c| c.role == care::Role::Emergency)
    {
        // Below emergency, emergency services are only the last resort of the critical-therapy fallback.
        assert_eq!(i, out.call.len() - 1, "{input}: the fallback comes last");
        assert!(
            out.reasons
                .iter()
                .any(|r| r.rule == "call.critical_fallback"),
            "{input}: no emergency number below emergency except the fallback"
        );
    }
    if out.level == Level::CallCareTeam {
        assert!(
            !out.call.is_empty(),
            "{input}: call_care_team says whom to call"
        );
    }
}

fn obs(words: &[&str]) -> Value {
    json!({ "observations": words })
}

#[test]
fn guide_emergencies() {
    // Sudden difficulty breathing, chest pain, or severe shortness of breath.
    check(
        obs(&["difficulty_breathing"]),
        "emergency",
        &["emergency.breathing_chest"],
    );
    check(
        obs(&["chest_pain"]),
        "emergency",
        &["emergency.breathing_chest"],
    );
    check(
        obs(&["severe_shortness_of_breath"]),
        "emergency",
        &["emergency.breathing_chest"],
    );
    // Sudden swelling of the face, lips, tongue or throat.
    check(
        obs(&["face_lip_tongue_throat_swelling"]),
        "emergency",
        &["emergency.face_swelling"],
    );
    // Feeling faint.
    check(obs(&["feeling_faint"]), "emergency", &["emergency.faint"]);
    // Rapidly spreading redness, pain or swelling near the site ...
    check(
        obs(&["rapidly_spreading_redness"]),
        "emergency",
        &["emergency.spreading_redness"],
    );
    // ... especially with fever, chills or feeling very unwell.
    check(
        obs(&["rapidly_spreading_redness", "chills"]),
        "emergency",
        &["emergency.spreading_redness", "emergency.site_with_fever"],
    );
    check(
        obs(&["pain_at_site", "feeling_very_unwell"]),
        "emergency",
        &["emergency.site_with_fever", "call.site_signs"],
    );
    check(
        obs(&["swelling_at_site", "fever"]),
        "emergency",
        &["emergency.site_with_fever", "call.site_signs"],
    );
    // A catheter that came out or is displaced, especially a central line.
    for line in ["picc", "central_line", "port"] {
        check(
            json!({"plan": {"line": line}, "observations": ["catheter_came_out"]}),
            "emergency",
            &["emergency.catheter_out_central"],
        );
        check(
            json!({"plan": {"line": line}, "observations": ["catheter_displaced"]}),
            "emergency",
            &["emergency.catheter_displaced_central"],
        );
    }
    // Without a plan the line type is unknown: treated like a central line.
    check(
        obs(&["catheter_came_out"]),
        "emergency",
        &["emergency.catheter_out_central"],
    );
    // The pump stopped, cannot be restarted, and the therapy is marked critical.
    check(
        json!({"plan": {"critical_therapy": true}, "observations": ["pump_stopped_cannot_restart"]}),
        "emergency",
        &["emergency.critical_pump_stopped", "call.critical_fallback"],
    );
    check(
        json!({"plan": {"critical_therapy": true}, "alarms": [{"kind": "system_error", "cannot_restart": true}]}),
        "emergency",
        &[
            "emergency.critical_pump_stopped",
            "call.critical_fallback",
            "alarm.system_error",
        ],
    );
}

#[test]
fn guide_prompt_calls() {
    // Catheter out on a non-central line: call now, not emergency.
    for line in ["peripheral_iv", "subcutaneous", "epidural"] {
        check(
            json!({"plan": {"line": line}, "observations": ["catheter_came_out"]}),
            "call_care_team",
            &["call.catheter_out_other"],
        );
    }
    // Pump stopped without a plan: whether the therapy is critical is unknown, so the fallback comes too.
    check(
        obs(&["pump_stopped_cannot_restart"]),
        "call_care_team",
        &["call.pump_stopped", "call.critical_fallback"],
    );
    check(
        json!({"plan": {"critical_therapy": false}, "observations": ["pump_stopped_cannot_restart"]}),
        "call_care_team",
        &["call.pump_stopped"],
    );
    // Repeated alarms that do not resolve after following the usual steps.
    check(
        json!({"plan": {"critical_therapy": false}, "alarms": [{"kind": "door_open", "times_in_last_30_min": 2, "steps_followed": true}]}),
        "call_care_team",
        &["call.repeated_alarm", "alarm.door_open"],
    );
    // A door alarm that keeps coming back is a call even before the patient says the steps were followed; without
    // a plan the critical-therapy fallback comes with it.
    check(
        json!({"alarms": [{"kind": "door_open", "times_in_last_30_min": 2}]}),
        "call_care_team",
        &[
            "call.repeated_alarm",
            "call.critical_fallback",
            "alarm.door_open",
        ],
    );
    check(
        json!({"plan": {"critical_therapy": false}, "alarms": [{"kind": "repeated_alarm"}]}),
        "call_care_team",
        &["call.repeated_alarm", "alarm.repeated_alarm"],
    );
    // An occlusion alarm coming back without the steps followed: follow the steps first.
    check(
        json!({"alarms": [{"kind": "occlusion_downstream", "times_in_last_30_min": 3, "steps_followed": false}]}),
        "self_care",
        &["alarm.occlusion_downstream"],
    );
    // Repeated air-in-line alarms are never ignored, steps or not.
    check(
        json!({"alarms": [{"kind": "air_in_line", "times_in_last_30_min": 2}]}),
        "call_care_team",
        &["call.air_repeated", "alarm.air_in_line"],
    );
    // Occlusion with pain, swelling or redness at the site.
    check(
        json!({"observations": ["pain_at_site"], "alarms": [{"kind": "occlusion_downstream"}]}),
        "call_care_team",
        &[
            "call.occlusion_with_site_signs",
            "call.site_signs",
            "alarm.occlusion_downstream",
        ],
    );
    // New redness, swelling or discomfort at the site; warmth and burning too.
    for word in [
        "new_redness_at_site",
        "swelling_at_site",
        "pain_at_site",
        "warmth_at_site",
        "burning_at_site",
    ] {
        check(obs(&[word]), "call_care_team", &["call.site_signs"]);
    }
    check(
        obs(&["leaking_at_site"]),
        "call_care_team",
        &["call.site_leak"],
    );
    for word in ["dressing_wet", "dressing_loose", "dressing_soiled"] {
        check(obs(&[word]), "call_care_team", &["call.dressing"]);
    }
    // Cloudy fluid, leaks, particles.
    for word in ["fluid_cloudy", "fluid_particles", "bag_leaking"] {
        check(obs(&[word]), "call_care_team", &["call.fluid_problem"]);
    }
    check(
        obs(&["accidental_disconnection"]),
        "call_care_team",
        &["call.disconnection"],
    );
    // A bag emptying much faster or slower than usual, as the patient sees it.
    check(
        obs(&["bag_emptying_faster_than_usual"]),
        "call_care_team",
        &["call.bag_speed_reported"],
    );
    check(
        obs(&["bag_emptying_slower_than_usual"]),
        "call_care_team",
        &["call.bag_speed_reported"],
    );
    // Unsure whether a dose was started or finished.
    check(
        obs(&["unsure_if_dose_given"]),
        "call_care_team",
        &["call.dose_uncertain"],
    );
    // Fever, chills or feeling very unwell without a site sign.
    for word in ["fever", "chills", "feeling_very_unwell"] {
        check(obs(&[word]), "call_care_team", &["call.fever_unwell"]);
    }
}

#[test]
fn bag_speed_from_the_program() {
    let plan = json!({"program": {"rate_ml_per_h": 100.0, "vtbi_ml": 250.0}});
    // 60 min at 100 mL/h predicts 100 mL given. 150 mL given is 50 % faster.
    check(
        json!({"plan": plan, "infusion": {"elapsed_min": 60, "volume_left_ml": 100}}),
        "call_care_team",
        &["call.bag_speed_measured"],
    );
    // 40 mL given is much slower.
    check(
        json!({"plan": plan, "infusion": {"elapsed_min": 60, "volume_left_ml": 210}}),
        "call_care_team",
        &["call.bag_speed_measured"],
    );
    // 110 mL given is within 20 %.
    check(
        json!({"plan": plan, "infusion": {"elapsed_min": 60, "volume_left_ml": 140}}),
        "self_care",
        &["self.no_concerns"],
    );
    // Small volumes: 3 mL off after 6 minutes is within the 5 mL floor.
    check(
        json!({"plan": plan, "infusion": {"elapsed_min": 6, "volume_left_ml": 237}}),
        "self_care",
        &["self.no_concerns"],
    );
    // After the VTBI the prediction stops growing: 250 mL given after 5 h is right.
    check(
        json!({"plan": plan, "infusion": {"elapsed_min": 300, "volume_left_ml": 0}}),
        "self_care",
        &["self.no_concerns"],
    );
    // The start volume may be given; the reservoir volume is the default.
    check(
        json!({"plan": {"program": {"rate_ml_per_h": 10.0, "vtbi_ml": 100.0, "reservoir_ml": 300.0}},
               "infusion": {"elapsed_min": 120, "volume_left_ml": 280}}),
        "self_care",
        &["self.no_concerns"],
    );
    check(
        json!({"plan": plan, "infusion": {"elapsed_min": 60, "volume_left_ml": 400, "start_volume_ml": 500}}),
        "self_care",
        &["self.no_concerns"],
    );
    // With patient-controlled boluses, up to the hourly ceiling is expected.
    let pca = json!({"program": {"rate_ml_per_h": 6.0, "vtbi_ml": 250.0, "bolus": {"volume_ml": 3.0, "lockout_min": 20.0, "max_ml_per_h": 12.0}}});
    check(
        json!({"plan": pca, "infusion": {"elapsed_min": 120, "volume_left_ml": 228}}),
        "self_care",
        &["self.no_concerns"],
    );
    check(
        json!({"plan": pca, "infusion": {"elapsed_min": 120, "volume_left_ml": 200}}),
        "call_care_team",
        &["call.bag_speed_measured"],
    );
}

#[test]
fn self_care_and_alarms() {
    // An empty report is self_care.
    check(json!({}), "self_care", &["self.no_concerns"]);
    check(obs(&[]), "self_care", &["self.no_concerns"]);
    check(
        obs(&["tubing_kinked"]),
        "self_care",
        &["self.tubing_kinked"],
    );
    check(
        obs(&["feeling_overwhelmed"]),
        "self_care",
        &["self.overwhelmed"],
    );
    // Every alarm alone gives its guide's rule and level.
    for alarm in care::Alarm::all() {
        let guide = care::content().alarm(alarm);
        // The pump's own "repeated alarm" is the repeat rule's situation by definition. Without a plan, an alarm
        // that stops the pump (system error, over-infusion, repeated alarms) brings the critical-therapy fallback.
        let expected: Vec<&str> = match alarm.name() {
            "repeated_alarm" => vec![
                guide.id.as_str(),
                "call.repeated_alarm",
                "call.critical_fallback",
            ],
            "system_error" | "over_infusion" => vec![guide.id.as_str(), "call.critical_fallback"],
            // Without a plan the line counts as central, where a line the pump finds disconnected is an
            // emergency (clinical decision D6); the guide's own level holds on a peripheral line.
            "line_disconnected" => {
                check(
                    json!({"plan": {"line": "peripheral_iv"}, "alarms": [{"kind": alarm.name()}]}),
                    guide.level.name(),
                    &[guide.id.as_str()],
                );
                vec![guide.id.as_str(), "emergency.line_disconnected_central"]
            }
            _ => vec![guide.id.as_str()],
        };
        let level = if alarm.name() == "line_disconnected" {
            "emergency"
        } else {
            guide.level.name()
        };
        check(
            json!({"alarms": [{"kind": alarm.name()}]}),
            level,
            &expected,
        );
    }
    check(
        json!({"alarms": [{"kind": "pump_silent"}]}),
        "self_care",
        &["alarm.pump_silent"],
    );
}

#[test]
fn issue_example() {
    let input = json!({"plan": {"line": "picc", "critical_therapy": true},
        "observations": ["new_redness_at_site", "fever"],
        "alarms": [{"kind": "occlusion_downstream", "times_in_last_30_min": 3, "steps_followed": true}]});
    check(
        input.clone(),
        "emergency",
        &[
            "emergency.site_with_fever",
            "call.critical_fallback",
            "call.repeated_alarm",
            "call.occlusion_with_site_signs",
            "call.site_signs",
            "alarm.occlusion_downstream",
        ],
    );
    let out: Value = serde_json::to_value(triage_json(&input.to_string()).unwrap()).unwrap();
    for field in ["level", "reasons", "steps", "call"] {
        assert!(out.get(field).is_some(), "output has {field}");
    }
    assert_eq!(out["level"], "emergency");
    assert_eq!(out["reasons"][0]["rule"], "emergency.site_with_fever");
}

const FULL_PLAN: &str = include_str!("../../../examples/plans/antibiotics-picc.toml");

#[test]
fn call_list_uses_plan_numbers_and_puts_emergency_first() {
    let plan = care::TherapyPlan::from_toml(FULL_PLAN).unwrap();
    let plan_json: Value = serde_json::from_str(&plan.to_json()).unwrap();
    // A full plan is accepted as the `plan`.
    let out = triage_json(&json!({"plan": plan_json, "observations": ["chest_pain"]}).to_string())
        .unwrap();
    assert_eq!(out.call[0].role, care::Role::Emergency);
    assert_eq!(out.call[0].phone.as_deref(), Some("112"));
    assert!(out.call.iter().all(|c| c.phone.is_some()));
    assert!(out.numbers_note.is_none());
    // A subset plan with some contacts: numbers where given, the hint where not.
    let out = triage_json(
        &json!({"plan": {"contacts": {"pharmacy": {"phone": "+1 555 0100"}}}, "observations": ["fluid_cloudy"]}).to_string(),
    )
    .unwrap();
    assert_eq!(out.call[0].role, care::Role::Pharmacy);
    assert_eq!(out.call[0].phone.as_deref(), Some("+1 555 0100"));
    assert!(
        out.numbers_note.is_some(),
        "the nurse has no number: the answer says where to find it"
    );
    // Without a plan, an emergency still names emergency services first, with no made-up number.
    let out = triage_json(&json!({"observations": ["feeling_faint"]}).to_string()).unwrap();
    assert_eq!(out.call[0].role, care::Role::Emergency);
    assert_eq!(out.call[0].phone, None);
}

#[test]
fn personal_notes_come_before_generic_steps() {
    let plan = care::TherapyPlan::from_toml(FULL_PLAN).unwrap();
    let plan_json: Value = serde_json::from_str(&plan.to_json()).unwrap();
    let out =
        triage_json(&json!({"plan": plan_json, "alarms": [{"kind": "air_in_line"}]}).to_string())
            .unwrap();
    // The general note and the note about alarm.air_in_line, in plan order, before the guide's steps.
    assert_eq!(out.personal_notes.len(), 2);
    assert!(out.steps[0].starts_with("From your care team: Call the nurse line first"));
    assert!(out.steps[1].contains("You were trained to remove air"));
    assert!(!out.steps[2].starts_with("From your care team"));
    // A note about another rule does not show.
    let out =
        triage_json(&json!({"plan": plan_json, "observations": ["tubing_kinked"]}).to_string())
            .unwrap();
    assert_eq!(out.personal_notes.len(), 1);
}

#[test]
fn an_emergency_never_tells_the_patient_to_call_the_nurse_first() {
    let plan = care::TherapyPlan::from_toml(FULL_PLAN).unwrap();
    let plan_json: Value = serde_json::from_str(&plan.to_json()).unwrap();
    let out = triage_json(
        &json!({"plan": plan_json, "observations": ["difficulty_breathing"]}).to_string(),
    )
    .unwrap();
    assert_eq!(out.level, care::Level::Emergency);
    assert_eq!(out.steps[0], care::content().common.emergency_first_step);
    // The general "call the nurse line first during office hours" note is left out of an emergency answer,
    // from the steps and from the notes the screen shows.
    assert!(
        out.steps.iter().all(|s| !s.contains("nurse line first")),
        "{:?}",
        out.steps
    );
    assert!(out.personal_notes.is_empty(), "{:?}", out.personal_notes);
    assert_eq!(
        out.care_team_first,
        care::content().common.care_team_first_emergency
    );
    assert_eq!(out.call[0].role, care::Role::Emergency);
    assert_eq!(out.call[0].phone.as_deref(), Some("112"));
    // A note about an emergency rule that fired is the team's own emergency plan: it follows the first step.
    let out = triage_json(
        &json!({"plan": {"notes": [{"about": "emergency.faint", "text": "Lie flat with your legs up."}]},
                "observations": ["feeling_faint"]})
        .to_string(),
    )
    .unwrap();
    assert_eq!(out.steps[0], care::content().common.emergency_first_step);
    assert_eq!(
        out.steps[1],
        "From your care team: Lie flat with your legs up."
    );
}

/// Bad input: the error names the field and what is allowed; never a panic.
fn check_error(input: &str, expect: &[&str]) {
    let err = triage_json(input).expect_err(input).to_string();
    for part in expect {
        assert!(
            err.contains(part),
            "error for {input}:\n{err}\nshould contain {part:?}"
        );
    }
}

#[test]
fn bad_reports_are_errors_that_say_what_to_write() {
    check_error(
        r#"{"observations": ["feverish"]}"#,
        &[
            "observations[0]",
            "\"feverish\" is not an observation",
            "difficulty_breathing",
            "feeling_overwhelmed",
        ],
    );
    check_error(
        r#"{"plan": {"line": "picc2"}}"#,
        &[
            "plan.line",
            "picc, central_line, port, peripheral_iv, subcutaneous, epidural",
        ],
    );
    check_error(
        r#"{"alarms": [{"kind": "occlusion"}]}"#,
        &["alarms[0].kind", "occlusion_downstream", "pump_silent"],
    );
    check_error(
        r#"{"alarms": [{"kind": "air_in_line", "times_in_last_30_min": 0}]}"#,
        &["alarms[0].times_in_last_30_min"],
    );
    check_error(
        r#"{"observation": ["fever"]}"#,
        &["unknown field `observation`"],
    );
    check_error(
        r#"{"plan": {"critcal_therapy": true}}"#,
        &["plan", "unknown field `critcal_therapy`"],
    );
    check_error("{", &["not valid JSON"]);
    check_error("", &["not valid JSON"]);
    check_error(
        r#"{"plan": {"patient": {"name": "A"}}}"#,
        &["plan", "missing field"],
    );
    check_error(
        r#"{"infusion": {"elapsed_min": 10, "volume_left_ml": 5}}"#,
        &["infusion", "plan.program"],
    );
    check_error(
        r#"{"plan": {"program": {"rate_ml_per_h": 10, "vtbi_ml": 100}}, "infusion": {"elapsed_min": -1, "volume_left_ml": 5}}"#,
        &["infusion.elapsed_min"],
    );
    check_error(
        r#"{"plan": {"program": {"rate_ml_per_h": 10, "vtbi_ml": 100}}, "infusion": {"elapsed_min": 1, "volume_left_ml": 500}}"#,
        &["infusion.volume_left_ml", "more than"],
    );
    check_error(
        r#"{"plan": {"program": {"rate_ml_per_h": 0, "vtbi_ml": 100}}, "infusion": {"elapsed_min": 1, "volume_left_ml": 50}}"#,
        &["plan.program.rate_ml_per_h"],
    );
}

#[test]
fn checklist_problems_agree_with_triage() {
    // An item whose problem is also a triage observation must lead to the same level.
    for item in &care::content().items {
        if let Some(word) = item.observation {
            let out = triage(
                &TriageInput {
                    observations: vec![word],
                    ..Default::default()
                },
                &TriageConfig::default(),
            )
            .unwrap();
            assert_eq!(out.level, item.on_problem.level, "{} ({word})", item.id);
        }
    }
    for sign in &care::content().signs {
        let out = triage(
            &TriageInput {
                observations: vec![sign.observation],
                ..Default::default()
            },
            &TriageConfig::default(),
        )
        .unwrap();
        assert_eq!(out.level, Level::CallCareTeam, "{}", sign.id);
    }
}

fn any_report() -> impl Strategy<Value = TriageInput> {
    let words = proptest::sample::subsequence(Observation::ALL.to_vec(), 0..6);
    let alarms = proptest::collection::vec(
        (
            0..care::Alarm::all().count(),
            1u32..5,
            any::<bool>(),
            any::<bool>(),
        ),
        0..3,
    );
    let line = proptest::option::of(proptest::sample::select(care::LineType::ALL.to_vec()));
    (words, alarms, line, any::<bool>()).prop_map(|(observations, alarms, line, critical)| {
        TriageInput {
            plan: Some(care::TriagePlan {
                line,
                critical_therapy: critical,
                ..Default::default()
            }),
            observations,
            alarms: alarms
                .into_iter()
                .map(|(i, times, steps, stop)| care::AlarmReport {
                    kind: care::Alarm::all().nth(i).unwrap(),
                    times_in_last_30_min: times,
                    steps_followed: steps,
                    cannot_restart: stop,
                })
                .collect(),
            infusion: None,
        }
    })
}

proptest! {
    /// Deterministic, and the answer's shape holds for any report: the level is the highest reason's, an
    /// emergency calls emergency services first, more observations never lower the level.
    #[test]
    fn triage_invariants(report in any_report(), extra in proptest::sample::select(Observation::ALL.to_vec())) {
        let config = TriageConfig::default();
        let a = triage(&report, &config).unwrap();
        let b = triage(&report, &config).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.level, a.reasons.iter().map(|r| r.level).max().unwrap());
        if a.level == Level::Emergency {
            prop_assert_eq!(a.call[0].role, care::Role::Emergency);
        }
        let known: Vec<String> = care::triage::rules_table().into_iter().map(|r| r.id).collect();
        for reason in &a.reasons {
            prop_assert!(known.contains(&reason.rule), "unknown rule {}", reason.rule);
        }
        let mut more = report.clone();
        more.observations.push(extra);
        let c = triage(&more, &config).unwrap();
        // Adding a non-site observation can only raise or keep the level. (A site sign can turn
        // fever-without-site into site-with-fever, which is higher too.)
        prop_assert!(c.level >= a.level, "adding {} lowered {:?} to {:?}", extra, a.level, c.level);
    }
}

/// A report with everything that changes the answer: a plan (or none) with line, critical flag, therapy kinds,
/// PCA, contacts and a general "call the nurse first" note; observations; alarms with their history; bag progress.
fn full_report() -> impl Strategy<Value = TriageInput> {
    let words = proptest::sample::subsequence(Observation::ALL.to_vec(), 0..7);
    let alarms = proptest::collection::vec(
        (
            0..care::Alarm::all().count(),
            1u32..5,
            any::<bool>(),
            any::<bool>(),
        ),
        0..3,
    );
    let plan = proptest::option::of((
        proptest::option::of(proptest::sample::select(care::LineType::ALL.to_vec())),
        any::<bool>(),
        proptest::sample::subsequence(care::TherapyKind::ALL.to_vec(), 0..3),
        any::<bool>(),
        any::<bool>(),
    ));
    let infusion = proptest::option::of((0.0f64..600.0, 0.0f64..1.0));
    (words, alarms, plan, infusion).prop_map(|(observations, alarms, plan, infusion)| {
        let plan = plan.map(|(line, critical, kinds, pca, note)| {
            let contacts = care::Role::ALL
                .iter()
                .map(|r| {
                    (
                        *r,
                        care::Contact {
                            name: None,
                            phone: format!("+31 20 555 01{:02}", *r as u8),
                            hours: None,
                        },
                    )
                })
                .collect();
            care::TriagePlan {
                line,
                critical_therapy: critical,
                therapy_kinds: kinds,
                contacts,
                program: Some(care::triage::ProgramView {
                    rate_ml_per_h: 2.0,
                    vtbi_ml: 100.0,
                    reservoir_ml: None,
                    bolus_max_ml_per_h: pca.then_some(4.0),
                }),
                notes: if note {
                    vec![care::PersonalNote {
                        about: None,
                        text: "Call the nurse line first during office hours.".to_owned(),
                    }]
                } else {
                    Vec::new()
                },
            }
        });
        let infusion = match (&plan, infusion) {
            (Some(_), Some((elapsed_min, left))) => Some(care::InfusionProgress {
                elapsed_min,
                volume_left_ml: left * 100.0,
                start_volume_ml: None,
            }),
            _ => None,
        };
        TriageInput {
            plan,
            observations,
            alarms: alarms
                .into_iter()
                .map(|(i, times, steps, stop)| care::AlarmReport {
                    kind: care::Alarm::all().nth(i).unwrap(),
                    times_in_last_30_min: times,
                    steps_followed: steps,
                    cannot_restart: stop,
                })
                .collect(),
            infusion,
        }
    })
}

/// One way to make a report worse: a new observation, a new alarm, an alarm that came back more often, steps
/// followed, a pump that cannot restart, or a bag reading further from what the program predicts.
#[derive(Debug, Clone)]
enum Worse {
    Observe(Observation),
    Alarm(usize),
    Repeat(usize),
    StepsFollowed(usize),
    CannotRestart(usize),
    BagFurther,
}

fn worse() -> impl Strategy<Value = Worse> {
    prop_oneof![
        proptest::sample::select(Observation::ALL.to_vec()).prop_map(Worse::Observe),
        (0..care::Alarm::all().count()).prop_map(Worse::Alarm),
        (0usize..3).prop_map(Worse::Repeat),
        (0usize..3).prop_map(Worse::StepsFollowed),
        (0usize..3).prop_map(Worse::CannotRestart),
        Just(Worse::BagFurther),
    ]
}

fn apply(report: &TriageInput, change: &Worse) -> TriageInput {
    let mut more = report.clone();
    let n = more.alarms.len();
    match change {
        Worse::Observe(word) => more.observations.push(*word),
        Worse::Alarm(i) => more.alarms.push(care::AlarmReport {
            kind: care::Alarm::all().nth(*i).unwrap(),
            times_in_last_30_min: 1,
            steps_followed: false,
            cannot_restart: false,
        }),
        Worse::Repeat(i) if n > 0 => more.alarms[i % n].times_in_last_30_min += 1,
        Worse::StepsFollowed(i) if n > 0 => more.alarms[i % n].steps_followed = true,
        Worse::CannotRestart(i) if n > 0 => more.alarms[i % n].cannot_restart = true,
        Worse::BagFurther => {
            if let (Some(progress), Some(plan)) = (more.infusion.as_mut(), report.plan.as_ref()) {
                let program = plan.program.unwrap();
                let start = program.vtbi_ml;
                let given = start - progress.volume_left_ml;
                let predicted =
                    (program.rate_ml_per_h * progress.elapsed_min / 60.0).min(program.vtbi_ml);
                progress.volume_left_ml = if given >= predicted {
                    progress.volume_left_ml * 0.5
                } else {
                    progress.volume_left_ml + (start - progress.volume_left_ml) * 0.5
                };
            }
        }
        _ => {}
    }
    more
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Issue 12's guarantees over random reports: monotone levels; emergency answers start with emergency services
    /// and never say to call the nurse first; the first aid of every rule that fired is in the answer; a critical
    /// (or unknown) therapy whose pump is stopped always carries the emergency-services fallback with the number.
    #[test]
    fn issue_12_guarantees(report in full_report(), change in worse()) {
        let config = TriageConfig::default();
        let c = care::content();
        let a = triage(&report, &config).unwrap();
        let b = triage(&apply(&report, &change), &config).unwrap();
        prop_assert!(b.level >= a.level, "{:?} lowered {:?} to {:?}", change, a.level, b.level);

        for out in [&a, &b] {
            let text = out.steps.join("\n").to_lowercase();
            if out.level == Level::Emergency {
                prop_assert_eq!(&out.steps[0], &c.common.emergency_first_step);
                prop_assert_eq!(out.call[0].role, care::Role::Emergency);
                prop_assert!(!text.contains("nurse line first") && !text.contains("nurse first"), "{:?}", out.steps);
            }
            for reason in &out.reasons {
                if let Some(rule) = c.rule(&reason.rule) {
                    for step in &rule.keep_steps {
                        prop_assert!(out.steps.contains(step), "{} fired but {:?} is missing: {:?}", reason.rule, step, out.steps);
                    }
                }
            }
        }

        let critical_or_unknown = report.plan.as_ref().is_none_or(|p| p.critical_therapy);
        let stopped = report.observations.contains(&Observation::PumpStoppedCannotRestart)
            || report.alarms.iter().any(|al| {
                al.cannot_restart
                    || matches!(al.kind.name(), "system_error" | "over_infusion" | "repeated_alarm")
            });
        if critical_or_unknown && stopped {
            let emergency = a.call.iter().find(|e| e.role == care::Role::Emergency);
            prop_assert!(emergency.is_some(), "no emergency services in {:?}", a.call);
            if let Some(plan) = &report.plan {
                let number = &plan.contacts.iter().find(|(r, _)| *r == care::Role::Emergency).unwrap().1.phone;
                prop_assert_eq!(emergency.unwrap().phone.as_ref(), Some(number));
            }
            if a.level != Level::Emergency {
                prop_assert!(a.steps.join("\n").contains("If you cannot reach anyone"), "{:?}", a.steps);
            }
        }
    }
}

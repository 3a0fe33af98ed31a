//! The embedded content loads, covers everything the product needs, and broken content is refused with a message
//! that says what is wrong. Every rendered page puts the care team's instructions and personal notes first.

use care::{Alarm, Content, ContentError, LineType, LogField, Phase, Sources, TherapyPlan, pages};

#[test]
fn embedded_content_loads() {
    let content = Content::embedded().unwrap_or_else(|e| panic!("{e}"));
    assert!(content.ids().len() > 100);
}

#[test]
fn every_core_alarm_and_pump_silent_has_a_guide() {
    let content = care::content();
    for kind in pump::AlarmKind::ALL {
        let guide = content.alarm(Alarm::Core(kind));
        assert_eq!(guide.id, format!("alarm.{}", kind.name()));
        assert!(
            !guide.steps.is_empty() && !guide.do_not.is_empty() && !guide.call.is_empty(),
            "{}",
            guide.id
        );
    }
    assert_eq!(content.alarm(Alarm::PumpSilent).id, "alarm.pump_silent");
    assert_eq!(content.alarms.len(), pump::AlarmKind::ALL.len() + 1);
}

#[test]
fn occlusion_guide_says_not_to_keep_restarting() {
    let guide = care::content().alarm(Alarm::Core(pump::AlarmKind::OcclusionDownstream));
    assert!(guide.do_not.iter().any(|d| d.contains("restarting")));
}

#[test]
fn every_line_type_sign_phase_and_log_field_is_covered() {
    let content = care::content();
    for line in LineType::ALL {
        let page = pages::site_checks(*line, None);
        let signs = &page.sections[1].items;
        assert_eq!(signs.len(), care::SiteSign::ALL.len(), "{line}");
        assert!(signs.iter().all(|s| s.observation.is_some()));
    }
    for phase in Phase::ALL {
        let page = pages::checklist(*phase, None);
        assert!(
            page.sections
                .iter()
                .flat_map(|s| &s.items)
                .all(|i| i.problem.is_some()),
            "{phase}"
        );
    }
    // Site pages agree with triage: a central line that comes out is an emergency, the others are a call.
    for guide in &content.lines {
        assert_eq!(
            guide.special.contains("emergency services"),
            guide.central,
            "{}",
            guide.id
        );
    }
    let fields: Vec<LogField> = pages::log_fields().iter().map(|f| f.field).collect();
    assert_eq!(fields, LogField::ALL.to_vec());
    assert!(
        content
            .items
            .iter()
            .any(|i| i.id == "before.not_cloudy"
                && i.on_problem.call.contains(&care::Role::Pharmacy))
    );
}

/// Loads the embedded content with one file edited; `expect` is part of the error message.
fn check(file: &str, from: &str, to: &str, expect: &str) {
    let mut sources = Sources::embedded();
    let slot = match file {
        "common" => &mut sources.common,
        "checklists" => &mut sources.checklists,
        "alarms" => &mut sources.alarms,
        "sites" => &mut sources.sites,
        "routines" => &mut sources.routines,
        "triage" => &mut sources.triage,
        _ => unreachable!("test table names a file that does not exist: {file}"),
    };
    assert!(slot.contains(from), "{file} has no {from:?}");
    let edited = slot.replacen(from, to, 1);
    *slot = &edited;
    let err = Content::from_sources(&sources).expect_err("the edit must be refused");
    let message = err.to_string();
    assert!(
        message.contains(expect),
        "edit {from:?} → {to:?} in {file}: {message}"
    );
}

#[test]
fn broken_content_is_refused() {
    check(
        "checklists",
        "id = \"before.clean_surface\"",
        "id = \"before.hands\"",
        "\"before.hands\" is used twice",
    );
    check(
        "alarms",
        "alarm = \"door_open\"",
        "alarm = \"battery_low\"",
        "exactly one alarm guide for door_open",
    );
    check(
        "alarms",
        "alarm = \"door_open\"",
        "alarm = \"door_ajar\"",
        "\"door_ajar\" is not an alarm",
    );
    check(
        "alarms",
        "id = \"alarm.door_open\"",
        "id = \"alarm.door\"",
        "alarm.door",
    );
    check(
        "checklists",
        "checklist = \"checklist.after\"",
        "checklist = \"checklist.later\"",
        "checklist.later",
    );
    check(
        "checklists",
        "observation = \"fluid_cloudy\"",
        "observation = \"cloudy\"",
        "\"cloudy\" is not an observation",
    );
    check(
        "checklists",
        "call = [\"pharmacy\"]",
        "call = [\"chemist\"]",
        "is not a contact role",
    );
    check(
        "sites",
        "line = \"epidural\"",
        "line = \"picc\"",
        "site checks for line type epidural",
    );
    check(
        "sites",
        "sign = \"burning\"",
        "sign = \"warmth\"",
        "a site check for sign burning",
    );
    check(
        "routines",
        "id = \"routine.overwhelmed\"",
        "id = \"routine.too_much\"",
        "routine.overwhelmed",
    );
    check(
        "routines",
        "field = \"how_i_felt\"",
        "field = \"site_change\"",
        "log field how_i_felt",
    );
    check(
        "triage",
        "id = \"call.dressing\"",
        "id = \"call.bandage\"",
        "call.dressing",
    );
    check(
        "triage",
        "call = [\"emergency\", \"on_call\"]",
        "call = [\"on_call\"]",
        "emergency services first",
    );
    check(
        "triage",
        "feeling_overwhelmed = \"I feel overwhelmed\"",
        "",
        "feeling_overwhelmed",
    );
    check(
        "common",
        "[roles]",
        "[roles]\nplumber = \"x\"",
        "is not a contact role",
    );
    check(
        "common",
        "battery = \"Charge",
        "batteryx = \"Charge",
        "reminder kind",
    );
    check(
        "alarms",
        "level = \"call_care_team\"",
        "level = \"emergency\"",
        "no alarm alone is an emergency",
    );
    check(
        "alarms",
        "title = \"Battery low\"",
        "titel = \"Battery low\"",
        "unknown field",
    );
    assert!(matches!(
        Content::from_sources(&Sources {
            alarms: "[[alarms]",
            ..Sources::embedded()
        }),
        Err(ContentError::Parse {
            file: "alarms.toml",
            ..
        })
    ));
}

const PLAN: &str = include_str!("../../../examples/plans/antibiotics-picc.toml");

#[test]
fn every_page_puts_the_care_team_first() {
    let plan = TherapyPlan::from_toml(PLAN).unwrap();
    let care_first = &care::content().common.care_team_first;
    let mut all = Vec::new();
    for phase in Phase::ALL {
        all.push(pages::checklist(*phase, Some(&plan)));
    }
    for alarm in Alarm::all() {
        all.push(pages::alarm_guide(alarm, Some(&plan)));
    }
    for line in LineType::ALL {
        all.push(pages::site_checks(*line, Some(&plan)));
    }
    all.extend(pages::routines(Some(&plan)));
    all.extend(pages::about(Some(&plan)));
    assert!(all.len() > 30);
    for page in &all {
        assert_eq!(&page.care_team_first, care_first, "{}", page.id);
        assert!(care::content().has_id(&page.id), "{}", page.id);
        // The plan's general note is shown on every page, first.
        assert!(
            page.personal_notes[0].starts_with("Call the nurse line first"),
            "{}",
            page.id
        );
    }
    let air = pages::alarm_guide(Alarm::Core(pump::AlarmKind::AirInLine), Some(&plan));
    assert_eq!(
        air.personal_notes.len(),
        2,
        "the note about alarm.air_in_line is on its page"
    );
    assert!(
        air.sections[3]
            .items
            .iter()
            .any(|i| i.text.contains("+31 20 555 0101")),
        "whom to call has numbers"
    );
}

#[test]
fn routines_render_as_data() {
    let routines = pages::routines(None);
    let ids: Vec<&str> = routines.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, care::ROUTINE_IDS.to_vec());
    let tips = routines
        .iter()
        .find(|p| p.id == "routine.quick_tips")
        .unwrap();
    assert_eq!(tips.sections[0].items.len(), care::content().tips.len());
    let log = routines.iter().find(|p| p.id == "routine.log").unwrap();
    assert!(log.sections.iter().any(|s| {
        s.items
            .iter()
            .any(|i| i.id.as_deref() == Some("log.site_change"))
    }));
    let overwhelmed = routines
        .iter()
        .find(|p| p.id == "routine.overwhelmed")
        .unwrap();
    assert!(
        overwhelmed.sections[0]
            .items
            .iter()
            .any(|i| i.text.contains("teaching session"))
    );
    // Without a plan, no personal notes and no numbers invented.
    assert!(routines.iter().all(|p| p.personal_notes.is_empty()));
    let corner = pages::contact_line(care::Role::Nurse, None);
    assert!(corner.contains("written plan"), "{corner}");
}

#[test]
fn symptom_check_words() {
    let words = pages::observations();
    assert_eq!(words.len(), care::Observation::ALL.len());
    assert!(
        words
            .iter()
            .all(|w| !w.label.is_empty() && w.label != w.observation.name())
    );
}

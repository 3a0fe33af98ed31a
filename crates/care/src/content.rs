//! The patient-facing content (checklists, alarm guides, site checks, routines, triage words) embedded from
//! `content/*.toml`, and the checks that make a broken content change fail the build's tests instead of
//! reaching a patient.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::words::{Level, LineType, LogField, Observation, Phase, ReminderKind, Role, SiteSign};
use crate::{Alarm, triage};

/// Why the content could not be loaded. Content is embedded in the binary and checked by the tests, so in a
/// released build this only happens if someone edits `content/` without running them.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ContentError {
    /// A file is not valid TOML or does not have the expected shape.
    #[error("content/{file}: {message}")]
    Parse { file: &'static str, message: String },
    /// Two entries share an id; ids must be unique across all content files.
    #[error("content id {id:?} is used twice; ids must be unique across content/*.toml")]
    DuplicateId { id: String },
    /// Something the product needs has no content (an alarm without a guide, a line type without site checks, …).
    #[error("content is missing {what}")]
    Missing { what: String },
    /// An entry refers to something that does not exist.
    #[error("content {from:?} refers to {to:?}, which does not exist")]
    UnknownReference { from: String, to: String },
    /// An entry is malformed (empty text, wrong id prefix, wrong level, …).
    #[error("content {id:?}: {message}")]
    Invalid { id: String, message: String },
}

/// Text shared by every page.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Common {
    /// "Your care team's own instructions come first": shown at the top of every page and triage result.
    pub care_team_first: String,
    /// What stands in place of `care_team_first` on an emergency answer: emergency services come first there.
    pub care_team_first_emergency: String,
    /// The first step of every emergency answer.
    pub emergency_first_step: String,
    pub all_clear: String,
    pub no_plan_numbers: String,
    pub roles: BTreeMap<Role, String>,
    pub levels: BTreeMap<Level, String>,
    pub reminder_titles: BTreeMap<ReminderKind, String>,
    pub reminder_hints: BTreeMap<ReminderKind, String>,
    pub headings: Headings,
}

/// Headings of the rendered pages, so every word a patient reads lives in `content/`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Headings {
    pub alarm_steps: String,
    pub alarm_do_not: String,
    pub alarm_call_when: String,
    pub alarm_whom: String,
    pub site_where: String,
    pub site_signs: String,
    pub site_comes_out: String,
    pub site_intro: String,
    pub log_fields: String,
    pub tips: String,
    pub pump_corner_numbers: String,
}

/// A checklist (before, during or after an infusion); its items point to it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Checklist {
    pub id: String,
    pub phase: Phase,
    pub title: String,
    pub intro: String,
}

/// One check: what "ok" looks like, what counts as a problem, and what a problem leads to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    pub id: String,
    /// The id of the checklist this item belongs to.
    pub checklist: String,
    /// A heading inside the checklist ("Check the medication label").
    pub group: String,
    pub check: String,
    pub problem: String,
    /// The triage observation this problem amounts to, if any; triage then reaches the same level.
    #[serde(default)]
    pub observation: Option<Observation>,
    pub on_problem: Outcome,
}

/// What follows from a problem: how urgent, what to do, whom to call (in order).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub level: Level,
    pub steps: Vec<String>,
    pub call: Vec<Role>,
}

/// The guide for one alarm.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmGuide {
    pub id: String,
    pub alarm: Alarm,
    pub title: String,
    /// The word a pump's own display typically shows for this alarm ("Occlusion", "Air in line"); empty only for
    /// `pump_silent`, which the server raises and no pump shows.
    pub screen: String,
    pub meaning: String,
    /// Numbered first steps a patient may take.
    pub steps: Vec<String>,
    pub do_not: Vec<String>,
    pub call_when: Vec<String>,
    pub call: Vec<Role>,
    /// What one occurrence means; repeats escalate through the triage rules.
    pub level: Level,
}

/// Where and how to look for one line type.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LineGuide {
    pub id: String,
    pub line: LineType,
    pub name: String,
    #[serde(rename = "where")]
    pub where_: String,
    pub look: String,
    pub special: String,
    pub central: bool,
}

/// One sign to look for at any site.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignGuide {
    pub id: String,
    pub sign: SiteSign,
    /// The triage observation a "yes" reports.
    pub observation: Observation,
    pub question: String,
    pub note: String,
}

/// A routine or background page.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InfoPage {
    pub id: String,
    pub kind: PageKind,
    pub title: String,
    pub intro: String,
    pub items: Vec<String>,
}

/// Which screen a page belongs on.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    Routine,
    About,
}

/// The words for one log field.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogFieldGuide {
    pub id: String,
    pub field: LogField,
    pub label: String,
    pub hint: String,
}

/// One quick-glance safety tip.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tip {
    pub id: String,
    pub title: String,
    pub text: String,
}

/// The words of one triage rule (its condition lives in code).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleText {
    pub id: String,
    pub level: Level,
    pub condition: String,
    pub reason: String,
    pub steps: Vec<String>,
    pub call: Vec<Role>,
    /// The steps (each one of `steps`) that are first aid: they stay in the answer when a more urgent rule fires
    /// too (clamp, cover, do not push back, stop the pump).
    #[serde(default)]
    pub keep_steps: Vec<String>,
    /// When the rule deliberately departs from the guide's literal words: the id of its row in the clinical
    /// decisions table of docs/traceability.md (`D1`, …). A test checks both directions.
    #[serde(default)]
    pub departure: Option<String>,
}

/// One group of questions on the symptom-check screen (the server shows them in this order).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckGroup {
    pub legend: String,
    #[serde(default)]
    pub hint: String,
    /// Whether the screen adds the patient's line (name and where to look) to the hint.
    #[serde(default)]
    pub about_line: bool,
    pub observations: Vec<Observation>,
}

/// All content, loaded and checked.
#[derive(Debug, Clone, Serialize)]
pub struct Content {
    pub common: Common,
    pub checklists: Vec<Checklist>,
    pub items: Vec<ChecklistItem>,
    pub alarms: Vec<AlarmGuide>,
    pub lines: Vec<LineGuide>,
    pub signs: Vec<SignGuide>,
    pub pages: Vec<InfoPage>,
    pub log_fields: Vec<LogFieldGuide>,
    pub tips: Vec<Tip>,
    pub rules: Vec<RuleText>,
    pub observations: BTreeMap<Observation, String>,
    pub check_groups: Vec<CheckGroup>,
}

/// The embedded sources, by file name. Exposed so tests and tools can check the files one by one.
pub const SOURCES: [(&str, &str); 6] = [
    ("common.toml", include_str!("../../../content/common.toml")),
    (
        "checklists.toml",
        include_str!("../../../content/checklists.toml"),
    ),
    ("alarms.toml", include_str!("../../../content/alarms.toml")),
    ("sites.toml", include_str!("../../../content/sites.toml")),
    (
        "routines.toml",
        include_str!("../../../content/routines.toml"),
    ),
    ("triage.toml", include_str!("../../../content/triage.toml")),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecklistsFile {
    checklists: Vec<Checklist>,
    items: Vec<ChecklistItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlarmsFile {
    alarms: Vec<AlarmGuide>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SitesFile {
    lines: Vec<LineGuide>,
    signs: Vec<SignGuide>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutinesFile {
    pages: Vec<InfoPage>,
    log_fields: Vec<LogFieldGuide>,
    tips: Vec<Tip>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriageFile {
    rules: Vec<RuleText>,
    observations: BTreeMap<Observation, String>,
    check_groups: Vec<CheckGroup>,
}

/// The routine pages the screens need, by id.
pub const ROUTINE_IDS: [&str; 5] = [
    "routine.pump_corner",
    "routine.log",
    "routine.reminders",
    "routine.quick_tips",
    "routine.overwhelmed",
];

fn parse<T: serde::de::DeserializeOwned>(
    file: &'static str,
    text: &str,
) -> Result<T, ContentError> {
    toml::from_str(text).map_err(|e| ContentError::Parse {
        file,
        message: e.to_string(),
    })
}

impl Content {
    /// Loads and checks the content embedded in this build.
    pub fn embedded() -> Result<Content, ContentError> {
        Content::from_sources(&Sources::embedded())
    }

    /// Loads and checks content from the given file texts (tests use this to prove that broken content is refused).
    pub fn from_sources(sources: &Sources<'_>) -> Result<Content, ContentError> {
        let common: Common = parse("common.toml", sources.common)?;
        let checklists: ChecklistsFile = parse("checklists.toml", sources.checklists)?;
        let alarms: AlarmsFile = parse("alarms.toml", sources.alarms)?;
        let sites: SitesFile = parse("sites.toml", sources.sites)?;
        let routines: RoutinesFile = parse("routines.toml", sources.routines)?;
        let triage: TriageFile = parse("triage.toml", sources.triage)?;
        let content = Content {
            common,
            checklists: checklists.checklists,
            items: checklists.items,
            alarms: alarms.alarms,
            lines: sites.lines,
            signs: sites.signs,
            pages: routines.pages,
            log_fields: routines.log_fields,
            tips: routines.tips,
            rules: triage.rules,
            observations: triage.observations,
            check_groups: triage.check_groups,
        };
        content.validate()?;
        Ok(content)
    }

    /// Every content id, in file order.
    pub fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        ids.extend(self.checklists.iter().map(|c| c.id.as_str()));
        ids.extend(self.items.iter().map(|c| c.id.as_str()));
        ids.extend(self.alarms.iter().map(|c| c.id.as_str()));
        ids.extend(self.lines.iter().map(|c| c.id.as_str()));
        ids.extend(self.signs.iter().map(|c| c.id.as_str()));
        ids.extend(self.pages.iter().map(|c| c.id.as_str()));
        ids.extend(self.log_fields.iter().map(|c| c.id.as_str()));
        ids.extend(self.tips.iter().map(|c| c.id.as_str()));
        ids.extend(self.rules.iter().map(|c| c.id.as_str()));
        ids
    }

    /// Whether `id` names any content entry.
    pub fn has_id(&self, id: &str) -> bool {
        self.ids().contains(&id)
    }

    /// The guide for an alarm. Every alarm has one (checked on load).
    pub fn alarm(&self, alarm: Alarm) -> &AlarmGuide {
        self.alarms
            .iter()
            .find(|g| g.alarm == alarm)
            .expect("every alarm has a guide: checked by Content::validate")
    }

    /// The site guide for a line type. Every line type has one (checked on load).
    pub fn line(&self, line: LineType) -> &LineGuide {
        self.lines
            .iter()
            .find(|g| g.line == line)
            .expect("every line type has a guide: checked by Content::validate")
    }

    /// The words of a triage rule. Every rule has them (checked on load).
    pub fn rule(&self, id: &str) -> Option<&RuleText> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// A page by id.
    pub fn page(&self, id: &str) -> Option<&InfoPage> {
        self.pages.iter().find(|p| p.id == id)
    }

    /// The plain words for an observation.
    pub fn observation_label(&self, observation: Observation) -> &str {
        self.observations
            .get(&observation)
            .map(String::as_str)
            .expect("every observation has a label: checked by Content::validate")
    }

    fn validate(&self) -> Result<(), ContentError> {
        self.validate_ids()?;
        self.validate_common()?;
        self.validate_checklists()?;
        self.validate_alarms()?;
        self.validate_sites()?;
        self.validate_routines()?;
        self.validate_observations()?;
        self.validate_rules()
    }

    /// Ids are unique across all files and well formed.
    fn validate_ids(&self) -> Result<(), ContentError> {
        let mut seen = BTreeSet::new();
        for id in self.ids() {
            if !seen.insert(id) {
                return Err(ContentError::DuplicateId { id: id.to_owned() });
            }
            let well_formed = !id.is_empty()
                && id.split('.').count() >= 2
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
            if !well_formed {
                return Err(invalid(
                    id,
                    "ids are lowercase words separated by dots, like \"alarm.air_in_line\"",
                ));
            }
        }
        Ok(())
    }

    /// The shared texts of common.toml: every text a patient reads must say something.
    fn validate_common(&self) -> Result<(), ContentError> {
        if self.common.care_team_first.trim().is_empty() {
            return Err(invalid("common.care_team_first", "must not be empty"));
        }
        for role in Role::ALL {
            if !self.common.roles.contains_key(role) {
                return Err(missing(format!(
                    "a label for contact role {role} in common.toml [roles]"
                )));
            }
        }
        for level in Level::ALL {
            if !self.common.levels.contains_key(level) {
                return Err(missing(format!(
                    "a text for level {level} in common.toml [levels]"
                )));
            }
        }

        for kind in ReminderKind::ALL {
            if !self.common.reminder_titles.contains_key(kind)
                || !self.common.reminder_hints.contains_key(kind)
            {
                return Err(missing(format!(
                    "a reminder title and hint for {kind} in common.toml"
                )));
            }
        }
        Ok(())
    }

    /// Checklists (one per phase, none empty) and their items.
    fn validate_checklists(&self) -> Result<(), ContentError> {
        for checklist in &self.checklists {
            if !checklist.id.starts_with("checklist.") {
                return Err(invalid(
                    &checklist.id,
                    "checklist ids start with \"checklist.\"",
                ));
            }
            if !self.items.iter().any(|i| i.checklist == checklist.id) {
                return Err(invalid(
                    &checklist.id,
                    "a checklist needs at least one item",
                ));
            }
        }
        for phase in Phase::ALL {
            if !self.checklists.iter().any(|c| c.phase == *phase) {
                return Err(missing(format!("a checklist for phase {phase}")));
            }
        }
        for item in &self.items {
            self.validate_item(item)?;
        }
        Ok(())
    }

    /// One checklist item: it belongs to a checklist, says something, and a problem leads somewhere.
    fn validate_item(&self, item: &ChecklistItem) -> Result<(), ContentError> {
        if !self.checklists.iter().any(|c| c.id == item.checklist) {
            return Err(ContentError::UnknownReference {
                from: item.id.clone(),
                to: item.checklist.clone(),
            });
        }
        for text in [&item.group, &item.check, &item.problem] {
            if text.trim().is_empty() {
                return Err(invalid(
                    &item.id,
                    "group, check and problem must not be empty",
                ));
            }
        }
        if item.on_problem.steps.is_empty() {
            return Err(invalid(
                &item.id,
                "a problem must lead to at least one step",
            ));
        }
        if item.on_problem.level > Level::SelfCare && item.on_problem.call.is_empty() {
            return Err(invalid(
                &item.id,
                "a problem that needs a call must say whom to call",
            ));
        }
        Ok(())
    }

    /// Exactly one guide per alarm, each complete and none an emergency.
    fn validate_alarms(&self) -> Result<(), ContentError> {
        for alarm in Alarm::all() {
            let guides = self.alarms.iter().filter(|g| g.alarm == alarm).count();
            if guides != 1 {
                return Err(missing(format!(
                    "exactly one alarm guide for {alarm} (found {guides})"
                )));
            }
        }
        for guide in &self.alarms {
            if guide.id != format!("alarm.{}", guide.alarm) {
                return Err(invalid(
                    &guide.id,
                    "an alarm guide's id is \"alarm.\" followed by the alarm name",
                ));
            }
            if guide.steps.is_empty() || guide.call_when.is_empty() || guide.call.is_empty() {
                return Err(invalid(
                    &guide.id,
                    "an alarm guide needs steps, when to call and whom to call",
                ));
            }
            if guide.level == Level::Emergency {
                return Err(invalid(
                    &guide.id,
                    "no alarm alone is an emergency; emergencies come from triage rules",
                ));
            }
            let from_pump = guide.alarm != Alarm::PumpSilent;
            if from_pump == guide.screen.trim().is_empty() {
                return Err(invalid(
                    &guide.id,
                    "`screen` is the word the pump's display shows: required for every pump alarm, empty for pump_silent",
                ));
            }
        }
        Ok(())
    }

    /// Site checks for every line type and every sign.
    fn validate_sites(&self) -> Result<(), ContentError> {
        for line in LineType::ALL {
            let guide = self.lines.iter().find(|g| g.line == *line);
            match guide {
                None => return Err(missing(format!("site checks for line type {line}"))),
                Some(g) if g.central != line.is_central() => {
                    return Err(invalid(&g.id, "`central` disagrees with the line type"));
                }
                Some(_) => {}
            }
        }
        for sign in SiteSign::ALL {
            if !self.signs.iter().any(|g| g.sign == *sign) {
                return Err(missing(format!("a site check for sign {sign}")));
            }
        }
        Ok(())
    }

    /// The routine pages the screens need, words for every log field, and some tips.
    fn validate_routines(&self) -> Result<(), ContentError> {
        for id in ROUTINE_IDS {
            match self.page(id) {
                Some(page) if page.kind == PageKind::Routine => {}
                _ => return Err(missing(format!("the routine page {id}"))),
            }
        }
        for field in LogField::ALL {
            if !self.log_fields.iter().any(|g| g.field == *field) {
                return Err(missing(format!("words for log field {field}")));
            }
        }
        if self.tips.is_empty() {
            return Err(missing("quick safety tips".to_owned()));
        }
        Ok(())
    }

    /// Every observation has a label and sits in exactly one check group.
    fn validate_observations(&self) -> Result<(), ContentError> {
        for observation in Observation::ALL {
            if !self.observations.contains_key(observation) {
                return Err(missing(format!(
                    "a label for observation {observation} in triage.toml [observations]"
                )));
            }
        }
        for observation in Observation::ALL {
            let groups = self
                .check_groups
                .iter()
                .filter(|g| g.observations.contains(observation))
                .count();
            if groups != 1 {
                return Err(missing(format!(
                    "observation {observation} in exactly one [[check_groups]] of triage.toml (found {groups})"
                )));
            }
        }
        Ok(())
    }

    /// The emergency texts, and the words of exactly the triage rules the code knows.
    fn validate_rules(&self) -> Result<(), ContentError> {
        for text in [
            &self.common.care_team_first_emergency,
            &self.common.emergency_first_step,
        ] {
            if text.trim().is_empty() {
                return Err(invalid("common.toml", "emergency texts must not be empty"));
            }
        }
        for id in triage::RULE_IDS {
            if self.rule(id).is_none() {
                return Err(missing(format!(
                    "the words of triage rule {id} in triage.toml"
                )));
            }
        }
        for rule in &self.rules {
            validate_rule(rule)?;
        }
        Ok(())
    }
}

/// The words of one triage rule: known to the code, complete, and consistent with its level.
fn validate_rule(rule: &RuleText) -> Result<(), ContentError> {
    if !triage::RULE_IDS.contains(&rule.id.as_str()) {
        return Err(ContentError::UnknownReference {
            from: "triage.toml".to_owned(),
            to: rule.id.clone(),
        });
    }
    if rule.steps.is_empty() || rule.reason.trim().is_empty() {
        return Err(invalid(
            &rule.id,
            "a rule needs a reason and at least one step",
        ));
    }
    if rule.level == Level::Emergency && rule.call.first() != Some(&Role::Emergency) {
        return Err(invalid(
            &rule.id,
            "an emergency rule calls emergency services first",
        ));
    }
    if let Some(step) = rule.keep_steps.iter().find(|k| !rule.steps.contains(k)) {
        return Err(invalid(
            &rule.id,
            &format!("keep_steps must repeat one of the rule's steps word for word: {step:?}"),
        ));
    }
    if let Some(d) = &rule.departure {
        let ok = d.len() > 1 && d.starts_with('D') && d[1..].chars().all(|c| c.is_ascii_digit());
        if !ok {
            return Err(invalid(
                &rule.id,
                "departure is a decision id such as \"D1\"",
            ));
        }
    }
    if rule.level == Level::CallCareTeam && rule.call.is_empty() {
        return Err(invalid(
            &rule.id,
            "a call_care_team rule must say whom to call",
        ));
    }
    Ok(())
}

fn invalid(id: &str, message: &str) -> ContentError {
    ContentError::Invalid {
        id: id.to_owned(),
        message: message.to_owned(),
    }
}

fn missing(what: String) -> ContentError {
    ContentError::Missing { what }
}

/// The texts of the content files, one per file (see [`SOURCES`]).
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub common: &'a str,
    pub checklists: &'a str,
    pub alarms: &'a str,
    pub sites: &'a str,
    pub routines: &'a str,
    pub triage: &'a str,
}

impl Sources<'static> {
    /// The files embedded in this build.
    pub fn embedded() -> Sources<'static> {
        let [common, checklists, alarms, sites, routines, triage] = SOURCES.map(|(_, text)| text);
        Sources {
            common,
            checklists,
            alarms,
            sites,
            routines,
            triage,
        }
    }
}

/// The embedded content, loaded once.
///
/// Panics only if the embedded content is broken, which `cargo test -p care` rules out: the content is part of
/// the program, like its code, and a program with broken content must not ship.
pub fn content() -> &'static Content {
    static CONTENT: OnceLock<Content> = OnceLock::new();
    CONTENT.get_or_init(|| match Content::embedded() {
        Ok(content) => content,
        Err(e) => panic!("embedded content is broken (run `cargo test -p care`): {e}"),
    })
}

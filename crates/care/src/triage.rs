//! The triage engine: deterministic rules that turn what the patient reports and what the pump shows into one
//! level (`emergency`, `call_care_team`, `self_care`), with reasons that cite rule ids, steps and whom to call.
//!
//! Conditions live here, words in `content/triage.toml` (same ids) and `content/alarms.toml` (`alarm.<name>`).
//! Every rule that matches contributes a reason; the level is the highest of them. Nothing reads a clock: the
//! history (how often an alarm came back, how long the bag has run) is part of the input.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::Alarm;
use crate::content::{Content, content};
use crate::plan::{Contact, PersonalNote, TherapyPlan};
use crate::words::{Level, LineType, Observation, Role, TherapyKind};
use pump::AlarmKind;

/// Why a triage request could not be answered. The CLI maps every variant to exit code 2.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TriageError {
    /// The input is not JSON.
    #[error("the report is not valid JSON: {message}")]
    Json { message: String },
    /// A field is missing, unknown or has a value outside its vocabulary.
    #[error("{path}: {message}")]
    Field { path: String, message: String },
}

/// The ids of the rules whose conditions are written in this file, in evaluation order (most urgent first; within
/// a level, the order their steps are listed in). The alarm rules (`alarm.<name>`) come on top, one per alarm guide.
pub const RULE_IDS: [&str; 46] = [
    "emergency.suspected_air",
    "emergency.breathing_chest",
    "emergency.allergy",
    "emergency.face_swelling",
    "emergency.faint",
    "emergency.opioid_sedation",
    "emergency.drowsy_or_slow_breathing",
    "emergency.bleeding",
    "emergency.catheter_broken",
    "emergency.line_disconnected_central",
    "emergency.catheter_out_central",
    "emergency.catheter_displaced_central",
    "emergency.spreading_redness",
    "emergency.site_with_fever",
    "emergency.epidural_nerve",
    "emergency.low_blood_sugar_pn",
    "emergency.critical_pump_stopped",
    "call.critical_fallback",
    "call.catheter_broken_other",
    "call.catheter_out_other",
    "call.catheter_displaced_other",
    "call.hazardous_spill",
    "call.pump_stopped",
    "call.repeated_alarm",
    "call.air_repeated",
    "call.occlusion_with_site_signs",
    "call.bleeding",
    "call.rash",
    "call.swollen_arm",
    "call.epidural_headache",
    "call.new_body_change",
    "call.low_blood_sugar_plan",
    "call.low_blood_sugar",
    "call.site_with_fever",
    "call.site_signs",
    "call.site_leak",
    "call.dressing",
    "call.fluid_problem",
    "call.disconnection",
    "call.bag_speed_reported",
    "call.bag_speed_measured",
    "call.dose_uncertain",
    "call.fever_unwell",
    "self.tubing_kinked",
    "self.overwhelmed",
    "self.no_concerns",
];

/// Tunable thresholds. The defaults are the documented ones (docs/care.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TriageConfig {
    /// The bag counts as emptying at the wrong speed when the volume given differs from the prediction by more
    /// than this fraction of the prediction …
    pub bag_tolerance_fraction: f64,
    /// … and by more than what the program delivers in this many hours (a floor that scales with the rate, so a
    /// few minutes' worth is never an alarm, at 0.5 mL/h as at 200 mL/h) …
    pub bag_floor_hours_at_rate: f64,
    /// … and by more than this many mL (below it no reading of a bag or syringe is meaningful).
    pub bag_tolerance_ml_min: f64,
    /// An alarm counts as "coming back" from this many occurrences in 30 minutes.
    pub repeat_times_min: u32,
}

impl Default for TriageConfig {
    fn default() -> Self {
        TriageConfig {
            bag_tolerance_fraction: 0.2,
            bag_floor_hours_at_rate: 0.1,
            bag_tolerance_ml_min: 0.2,
            repeat_times_min: 2,
        }
    }
}

/// What the patient reports and what the pump shows.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageInput {
    /// The plan, or the part of it triage uses. Optional: without it, numbers are not known.
    #[serde(default)]
    pub plan: Option<TriagePlan>,
    #[serde(default)]
    pub observations: Vec<Observation>,
    #[serde(default)]
    pub alarms: Vec<AlarmReport>,
    /// How far the current infusion has got, to compare with what the program predicts.
    #[serde(default)]
    pub infusion: Option<InfusionProgress>,
}

/// One alarm with its recent history.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmReport {
    pub kind: Alarm,
    /// How many times it went off in the last 30 minutes, this time included.
    #[serde(default = "one")]
    pub times_in_last_30_min: u32,
    /// Whether the patient followed the alarm guide's steps before it came back.
    #[serde(default)]
    pub steps_followed: bool,
    /// Whether the pump is stopped and cannot be restarted.
    #[serde(default)]
    pub cannot_restart: bool,
}

fn one() -> u32 {
    1
}

/// How far the running infusion has got.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InfusionProgress {
    /// Minutes since the infusion started (running time).
    pub elapsed_min: f64,
    /// What the bag or the pump says is left.
    pub volume_left_ml: f64,
    /// What was in the container at the start; defaults to the program's reservoir volume, then its VTBI.
    #[serde(default)]
    pub start_volume_ml: Option<f64>,
}

/// The part of a plan triage uses. Deserializes from a full plan (anything with `patient`, checked like any plan)
/// or from a subset such as `{"line": "picc", "critical_therapy": true}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriagePlan {
    pub line: Option<LineType>,
    pub critical_therapy: bool,
    /// What kind of medicine it is (opioid, parenteral nutrition, chemotherapy); empty when not said.
    pub therapy_kinds: Vec<TherapyKind>,
    /// Contacts by role; a subset is fine.
    pub contacts: Vec<(Role, Contact)>,
    pub program: Option<ProgramView>,
    pub notes: Vec<PersonalNote>,
}

/// The numbers of the program that predict how fast the bag empties.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
pub struct ProgramView {
    pub rate_ml_per_h: f64,
    pub vtbi_ml: f64,
    #[serde(default)]
    pub reservoir_ml: Option<f64>,
    /// The hourly ceiling when patient-controlled boluses are allowed.
    #[serde(default)]
    pub bolus_max_ml_per_h: Option<f64>,
}

impl From<&TherapyPlan> for TriagePlan {
    fn from(plan: &TherapyPlan) -> Self {
        TriagePlan {
            line: Some(plan.line),
            critical_therapy: plan.critical_therapy,
            therapy_kinds: plan.therapy_kinds.clone(),
            contacts: Role::ALL
                .iter()
                .map(|r| (*r, plan.contacts.get(*r).clone()))
                .collect(),
            program: Some(ProgramView {
                rate_ml_per_h: plan.program.rate_ml_per_h,
                vtbi_ml: plan.program.vtbi_ml,
                reservoir_ml: plan.program.reservoir_ml,
                bolus_max_ml_per_h: plan.program.bolus.map(|b| b.max_ml_per_h),
            }),
            notes: plan.notes.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialPlan {
    #[serde(default)]
    line: Option<LineType>,
    #[serde(default)]
    critical_therapy: bool,
    #[serde(default)]
    therapy_kinds: Vec<TherapyKind>,
    #[serde(default)]
    contacts: std::collections::BTreeMap<Role, Contact>,
    #[serde(default)]
    program: Option<PartialProgram>,
    #[serde(default)]
    notes: Vec<PersonalNote>,
}

/// Only the numbers triage needs; other program fields (end action, KVO) are accepted and not used.
#[derive(Deserialize)]
struct PartialProgram {
    rate_ml_per_h: f64,
    vtbi_ml: f64,
    #[serde(default)]
    reservoir_ml: Option<f64>,
    #[serde(default)]
    bolus: Option<crate::plan::PlanBolus>,
}

impl<'de> Deserialize<'de> for TriagePlan {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        if value.get("patient").is_some() {
            let plan = TherapyPlan::from_value(value).map_err(D::Error::custom)?;
            return Ok(TriagePlan::from(&plan));
        }
        let partial: PartialPlan = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            D::Error::custom(format!("{path}: {}", e.into_inner()))
        })?;
        Ok(TriagePlan::from(partial))
    }
}

impl From<PartialPlan> for TriagePlan {
    fn from(partial: PartialPlan) -> Self {
        TriagePlan {
            line: partial.line,
            critical_therapy: partial.critical_therapy,
            therapy_kinds: partial.therapy_kinds,
            contacts: partial.contacts.into_iter().collect(),
            program: partial.program.map(|p| ProgramView {
                rate_ml_per_h: p.rate_ml_per_h,
                vtbi_ml: p.vtbi_ml,
                reservoir_ml: p.reservoir_ml,
                bolus_max_ml_per_h: p.bolus.map(|b| b.max_ml_per_h),
            }),
            notes: partial.notes,
        }
    }
}

/// The answer. Field names are a public contract (`level`, `reasons`, `steps`, `call`); fields may be added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriageOutput {
    pub level: Level,
    /// Every matching rule, most urgent first.
    pub reasons: Vec<Reason>,
    /// What to do, in order: the care team's own notes first, then the steps of each reason; in an emergency the
    /// emergency steps come first and the care team's notes follow them.
    pub steps: Vec<String>,
    /// Whom to call, in order. An emergency always starts with the local emergency number.
    pub call: Vec<CallEntry>,
    /// What the level means, in plain words.
    pub level_text: String,
    /// Always present: the care team's own instructions come first.
    pub care_team_first: String,
    /// The care team's notes that apply (general ones, and ones about a matching rule or alarm guide).
    pub personal_notes: Vec<String>,
    /// Where to find numbers the report did not carry (when the plan gave none for some role).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numbers_note: Option<String>,
}

/// One matching rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The rule id (see docs/care.md).
    pub rule: String,
    pub level: Level,
    pub text: String,
    /// The inputs that made the rule match (observation words, alarm names, measured volumes).
    pub because: Vec<String>,
}

/// One entry of the call list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEntry {
    pub role: Role,
    /// "Home infusion nurse", or the contact's name from the plan.
    pub label: String,
    /// The number from the plan, when a plan with contacts was given.
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hours: Option<String>,
}

/// The report as it arrives: the plan is parsed on its own so its errors carry the full path (`plan.line`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    #[serde(default)]
    plan: Option<serde_json::Value>,
    #[serde(default)]
    observations: Vec<Observation>,
    #[serde(default)]
    alarms: Vec<AlarmReport>,
    #[serde(default)]
    infusion: Option<InfusionProgress>,
}

fn json_field_error(
    path: &serde_path_to_error::Path,
    inner: serde_json::Error,
    prefix: &str,
) -> TriageError {
    if inner.is_syntax() || inner.is_eof() {
        return TriageError::Json {
            message: inner.to_string(),
        };
    }
    let message = inner.to_string();
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    let path = path.to_string();
    let path = match (prefix, path.as_str()) {
        ("", ".") => "(report)".to_owned(),
        (prefix, ".") => prefix.to_owned(),
        ("", path) => path.to_owned(),
        (prefix, path) => format!("{prefix}.{path}"),
    };
    TriageError::Field { path, message }
}

/// Parses a JSON report and triages it with the default thresholds.
pub fn triage_json(json: &str) -> Result<TriageOutput, TriageError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    let raw: RawInput = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().clone();
        json_field_error(&path, e.into_inner(), "")
    })?;
    let plan = match raw.plan {
        None => None,
        Some(value) if value.get("patient").is_some() => {
            let plan = TherapyPlan::from_value(value).map_err(|e| match e {
                crate::PlanError::Field { path, message }
                | crate::PlanError::Invalid { path, message } => {
                    let path = if path == "(top level)" {
                        "plan".to_owned()
                    } else {
                        format!("plan.{path}")
                    };
                    TriageError::Field { path, message }
                }
                crate::PlanError::Syntax { message, .. } => TriageError::Field {
                    path: "plan".to_owned(),
                    message,
                },
            })?;
            Some(TriagePlan::from(&plan))
        }
        Some(value) => {
            let partial: PartialPlan = serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().clone();
                json_field_error(&path, e.into_inner(), "plan")
            })?;
            Some(TriagePlan::from(partial))
        }
    };
    let input = TriageInput {
        plan,
        observations: raw.observations,
        alarms: raw.alarms,
        infusion: raw.infusion,
    };
    triage(&input, &TriageConfig::default())
}

/// What the rules see: the report with the plan's defaults applied.
struct Facts<'a> {
    observations: BTreeSet<Observation>,
    line: Option<LineType>,
    /// Whether a plan was given at all: without one, whether the therapy is critical is not known.
    plan_known: bool,
    critical: bool,
    kinds: &'a [TherapyKind],
    /// The program allows patient-controlled boluses (PCA).
    pca: bool,
    /// The alarms that came back (see `repeated_alarms`), computed once.
    repeated: Vec<String>,
    /// The content ids the care team's notes are about.
    notes_about: BTreeSet<&'a str>,
    alarms: &'a [AlarmReport],
    bag: Option<BagCheck>,
}

struct BagCheck {
    given_ml: f64,
    predicted_low_ml: f64,
    predicted_high_ml: f64,
    tolerance_low_ml: f64,
    tolerance_high_ml: f64,
}

impl Facts<'_> {
    fn any(&self, words: &[Observation]) -> Vec<String> {
        words
            .iter()
            .filter(|w| self.observations.contains(w))
            .map(|w| w.name().to_owned())
            .collect()
    }

    fn kind(&self, kind: TherapyKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// A central line, or a line of unknown type (treated as central: the safer assumption).
    fn central_or_unknown(&self) -> bool {
        self.line.is_none_or(LineType::is_central)
    }

    fn line_because(&self) -> String {
        self.line
            .map_or("line type unknown".to_owned(), |l| format!("line: {l}"))
    }

    fn alarm(&self, kind: AlarmKind) -> bool {
        self.alarms.iter().any(|a| a.kind == Alarm::Core(kind))
    }
}

use Observation as O;

const SITE_SIGNS: [Observation; 5] = [
    O::NewRednessAtSite,
    O::WarmthAtSite,
    O::SwellingAtSite,
    O::PainAtSite,
    O::BurningAtSite,
];
const SYSTEMIC: [Observation; 3] = [O::Fever, O::Chills, O::FeelingVeryUnwell];
const BREATHING: [Observation; 3] = [
    O::DifficultyBreathing,
    O::ChestPain,
    O::SevereShortnessOfBreath,
];
const SEDATION: [Observation; 2] = [O::ConfusedOrHardToWake, O::SlowOrShallowBreathing];
const EPIDURAL_NERVE: [Observation; 2] = [O::LegWeaknessOrNumbness, O::BladderOrBowelChange];
const HAZARDOUS_LEAK: [Observation; 4] = [
    O::BagLeaking,
    O::LeakingAtSite,
    O::AccidentalDisconnection,
    O::CatheterBrokenOrCracked,
];

/// Alarms whose own guide's steps can fix the cause, so a repeat is the care team's business only once the
/// steps were followed. Any other alarm that comes back (a door that will not latch, a fault, a flow error) is
/// a call whether or not the steps were followed; an alarm added later is in this second group by default.
fn fixable_by_its_steps(kind: Alarm) -> bool {
    use AlarmKind as K;
    matches!(
        kind,
        Alarm::Core(
            K::OcclusionDownstream
                | K::OcclusionUpstream
                | K::BatteryLow
                | K::BatteryDepleted
                | K::MainsLost
                | K::InfusionNearEnd
                | K::InfusionComplete
                | K::PausedTooLong
                | K::BolusLockedOut
                | K::HourlyLimitReached
        )
    )
}

/// The alarms that came back in a way the care team must hear of: after the steps were followed; or at all, for an
/// alarm the patient's steps cannot fix (air_in_line has its own rule); or the pump's own repeated_alarm.
fn repeated_alarms(alarms: &[AlarmReport], config: &TriageConfig) -> Vec<String> {
    alarms
        .iter()
        .filter(|a| {
            let repeats = a.times_in_last_30_min >= config.repeat_times_min;
            (repeats
                && (a.steps_followed
                    || (!fixable_by_its_steps(a.kind)
                        && a.kind != Alarm::Core(AlarmKind::AirInLine))))
                || a.kind == Alarm::Core(AlarmKind::RepeatedAlarm)
        })
        .map(|a| {
            format!(
                "{} {}× in 30 min{}",
                a.kind,
                a.times_in_last_30_min,
                if a.steps_followed {
                    ", steps followed"
                } else {
                    ""
                }
            )
        })
        .collect()
}

/// Evaluates one rule of `RULE_IDS`: `Some(because)` when it matches.
///
/// The rules are grouped by theme; every id has its arm in exactly one group (a rule id is never repeated), so
/// at most one group can answer for it and the others fall through to `None`.
fn evaluate(id: &str, f: &Facts<'_>, config: &TriageConfig) -> Option<Vec<String>> {
    emergency_body(id, f)
        .or_else(|| emergency_line_or_pump(id, f))
        .or_else(|| call_line_or_pump(id, f, config))
        .or_else(|| call_body(id, f))
        .or_else(|| call_site_bag_or_self(id, f))
}

/// `Some(v)` when `v` is not empty.
fn nonempty(v: Vec<String>) -> Option<Vec<String>> {
    if v.is_empty() { None } else { Some(v) }
}

/// Both lists, joined, when neither is empty.
fn both(a: Vec<String>, b: Vec<String>) -> Option<Vec<String>> {
    if a.is_empty() || b.is_empty() {
        None
    } else {
        Some(a.into_iter().chain(b).collect())
    }
}

impl Facts<'_> {
    fn epidural(&self) -> bool {
        self.line == Some(LineType::Epidural)
    }

    /// Opioid sedation risk: an opioid, or a line or program used for opioids (epidural, PCA).
    fn opioid_like(&self) -> bool {
        self.kind(TherapyKind::Opioid) || self.epidural() || self.pca
    }

    fn pump_stopped(&self) -> Vec<String> {
        let mut because = self.any(&[O::PumpStoppedCannotRestart]);
        because.extend(
            self.alarms
                .iter()
                .filter(|a| a.cannot_restart)
                .map(|a| format!("{} (cannot restart)", a.kind)),
        );
        because
    }

    /// The pump is stopped or its infusion interrupted in a way the patient must not or cannot fix.
    fn interrupted(&self) -> Vec<String> {
        let mut because = self.pump_stopped();
        for kind in [AlarmKind::SystemError, AlarmKind::OverInfusion] {
            if self.alarm(kind) {
                because.push(format!("{} (pump stopped)", Alarm::Core(kind)));
            }
        }
        because.extend(self.repeated.iter().cloned());
        because
    }

    fn air_context(&self) -> Vec<String> {
        let mut because = self.any(&[O::AccidentalDisconnection, O::CatheterBrokenOrCracked]);
        for kind in [AlarmKind::AirInLine, AlarmKind::LineDisconnected] {
            if self.alarm(kind) {
                because.push(kind.name().to_owned());
            }
        }
        because
    }

    fn site(&self) -> Vec<String> {
        let mut site = self.any(&SITE_SIGNS);
        site.extend(self.any(&[O::RapidlySpreadingRedness]));
        site
    }

    /// `because` with the line type added, when not empty.
    fn with_line(&self, because: Vec<String>) -> Option<Vec<String>> {
        if because.is_empty() {
            None
        } else {
            Some(because.into_iter().chain([self.line_because()]).collect())
        }
    }
}

/// Emergency rules about breathing, allergy, fainting, sedation and bleeding.
fn emergency_body(id: &str, f: &Facts<'_>) -> Option<Vec<String>> {
    let central = f.central_or_unknown();
    let opioid_like = f.opioid_like();
    match id {
        "emergency.suspected_air" if central => {
            let signs = f.any(&[
                O::DifficultyBreathing,
                O::ChestPain,
                O::SevereShortnessOfBreath,
                O::FeelingFaint,
            ]);
            both(signs, f.air_context()).and_then(|b| f.with_line(b))
        }
        "emergency.breathing_chest" => {
            if central && !f.air_context().is_empty() {
                None
            } else {
                nonempty(f.any(&BREATHING))
            }
        }
        "emergency.allergy" => {
            let mut severe = f.any(&BREATHING);
            severe.extend(f.any(&[O::FaceLipTongueThroatSwelling]));
            both(f.any(&[O::RashOrHives]), severe)
        }
        "emergency.face_swelling" => nonempty(f.any(&[O::FaceLipTongueThroatSwelling])),
        "emergency.faint" => nonempty(f.any(&[O::FeelingFaint])),
        "emergency.opioid_sedation" if opioid_like => opioid_sedation(f),
        "emergency.drowsy_or_slow_breathing" if !opioid_like => nonempty(f.any(&SEDATION)),
        "emergency.bleeding" => nonempty(f.any(&[O::BleedingWillNotStop])),
        _ => None,
    }
}

/// Sedation signs, with what makes the therapy opioid-like.
fn opioid_sedation(f: &Facts<'_>) -> Option<Vec<String>> {
    let mut because = f.any(&SEDATION);
    if !because.is_empty() {
        because.push(if f.kind(TherapyKind::Opioid) {
            "therapy: opioid".to_owned()
        } else if f.epidural() {
            "line: epidural".to_owned()
        } else {
            "program: patient-controlled doses".to_owned()
        });
    }
    nonempty(because)
}

/// Emergency rules about the catheter, the site, the epidural, parenteral nutrition and a critical pump.
fn emergency_line_or_pump(id: &str, f: &Facts<'_>) -> Option<Vec<String>> {
    let central = f.central_or_unknown();
    let epidural = f.epidural();
    match id {
        "emergency.catheter_broken" if central => f.with_line(f.any(&[O::CatheterBrokenOrCracked])),
        "emergency.line_disconnected_central" if central => {
            let detected = f.alarm(AlarmKind::LineDisconnected);
            f.with_line(if detected {
                vec![AlarmKind::LineDisconnected.name().to_owned()]
            } else {
                vec![]
            })
        }
        "emergency.catheter_out_central" if central => f.with_line(f.any(&[O::CatheterCameOut])),
        "emergency.catheter_displaced_central" if central => {
            f.with_line(f.any(&[O::CatheterDisplaced]))
        }
        "emergency.spreading_redness" => nonempty(f.any(&[O::RapidlySpreadingRedness])),
        "emergency.site_with_fever" => {
            let site = if central || epidural {
                f.site()
            } else {
                f.any(&[O::RapidlySpreadingRedness])
            };
            both(site, f.any(&SYSTEMIC)).and_then(|b| f.with_line(b))
        }
        "emergency.epidural_nerve" if epidural => nonempty(f.any(&EPIDURAL_NERVE)),
        "emergency.low_blood_sugar_pn"
            if f.kind(TherapyKind::ParenteralNutrition)
                && !f.notes_about.contains("call.low_blood_sugar_plan") =>
        {
            both(
                f.any(&[O::ShakySweatyOrLowBloodSugar]),
                vec!["therapy: parenteral_nutrition, no plan instruction".to_owned()],
            )
        }
        "emergency.critical_pump_stopped" if f.critical => {
            both(f.pump_stopped(), vec!["therapy marked critical".to_owned()])
        }
        _ => None,
    }
}

/// Call rules about the catheter, a hazardous spill, the pump and its alarms.
fn call_line_or_pump(id: &str, f: &Facts<'_>, config: &TriageConfig) -> Option<Vec<String>> {
    let central = f.central_or_unknown();
    match id {
        "call.critical_fallback" if f.critical || !f.plan_known => both(
            f.interrupted(),
            vec![if f.critical {
                "therapy marked critical".to_owned()
            } else {
                "no plan: not known whether the therapy is critical".to_owned()
            }],
        ),
        "call.catheter_broken_other" if !central => {
            f.with_line(f.any(&[O::CatheterBrokenOrCracked]))
        }
        "call.catheter_out_other" if !central => f.with_line(f.any(&[O::CatheterCameOut])),
        "call.catheter_displaced_other" if !central => f.with_line(f.any(&[O::CatheterDisplaced])),
        "call.hazardous_spill" if f.kind(TherapyKind::Chemotherapy) => both(
            f.any(&HAZARDOUS_LEAK),
            vec!["therapy: chemotherapy".to_owned()],
        ),
        "call.pump_stopped" if !f.critical => nonempty(f.pump_stopped()),
        "call.repeated_alarm" => nonempty(f.repeated.clone()),
        "call.air_repeated" => nonempty(
            f.alarms
                .iter()
                .filter(|a| {
                    a.kind == Alarm::Core(AlarmKind::AirInLine)
                        && a.times_in_last_30_min >= config.repeat_times_min
                })
                .map(|a| format!("{} {}× in 30 min", a.kind, a.times_in_last_30_min))
                .collect(),
        ),
        "call.occlusion_with_site_signs" => occlusion_with_site_signs(f),
        _ => None,
    }
}

/// An occlusion alarm together with signs at the site.
fn occlusion_with_site_signs(f: &Facts<'_>) -> Option<Vec<String>> {
    let occlusions: Vec<String> = f
        .alarms
        .iter()
        .filter(|a| a.kind.is_occlusion())
        .map(|a| a.kind.to_string())
        .collect();
    let site = f.any(&[
        O::PainAtSite,
        O::SwellingAtSite,
        O::NewRednessAtSite,
        O::RapidlySpreadingRedness,
    ]);
    both(occlusions, site)
}

/// Call rules about bleeding, rash, swelling, nerves and blood sugar.
fn call_body(id: &str, f: &Facts<'_>) -> Option<Vec<String>> {
    let epidural = f.epidural();
    match id {
        "call.bleeding" => nonempty(f.any(&[O::BleedingAtSite])),
        "call.rash" => nonempty(f.any(&[O::RashOrHives])),
        "call.swollen_arm" => nonempty(f.any(&[O::SwollenArmNeckOrShoulder])),
        "call.epidural_headache" if epidural => nonempty(f.any(&[O::SevereHeadache])),
        "call.new_body_change" if !epidural => nonempty(f.any(&[
            O::LegWeaknessOrNumbness,
            O::BladderOrBowelChange,
            O::SevereHeadache,
        ])),
        "call.low_blood_sugar_plan"
            if f.kind(TherapyKind::ParenteralNutrition)
                && f.notes_about.contains("call.low_blood_sugar_plan") =>
        {
            nonempty(f.any(&[O::ShakySweatyOrLowBloodSugar]))
        }
        "call.low_blood_sugar" if !f.kind(TherapyKind::ParenteralNutrition) => {
            nonempty(f.any(&[O::ShakySweatyOrLowBloodSugar]))
        }
        _ => None,
    }
}

/// Call rules about the site, the dressing, the fluid, the bag and the dose; and the self-care rules.
fn call_site_bag_or_self(id: &str, f: &Facts<'_>) -> Option<Vec<String>> {
    let central = f.central_or_unknown();
    let epidural = f.epidural();
    match id {
        "call.site_with_fever" if !(central || epidural) => {
            both(f.any(&SITE_SIGNS), f.any(&SYSTEMIC)).and_then(|b| f.with_line(b))
        }
        "call.site_signs" => nonempty(f.any(&SITE_SIGNS)),
        "call.site_leak" => nonempty(f.any(&[O::LeakingAtSite])),
        "call.dressing" => nonempty(f.any(&[O::DressingWet, O::DressingLoose, O::DressingSoiled])),
        "call.fluid_problem" => {
            nonempty(f.any(&[O::FluidCloudy, O::FluidParticles, O::BagLeaking]))
        }
        "call.disconnection" => nonempty(f.any(&[O::AccidentalDisconnection])),
        "call.bag_speed_reported" => {
            nonempty(f.any(&[O::BagEmptyingFasterThanUsual, O::BagEmptyingSlowerThanUsual]))
        }
        "call.bag_speed_measured" => f.bag.as_ref().and_then(bag_speed_measured),
        "call.dose_uncertain" => nonempty(f.any(&[O::UnsureIfDoseGiven])),
        "call.fever_unwell" => {
            if f.site().is_empty() {
                nonempty(f.any(&SYSTEMIC))
            } else {
                None
            }
        }
        "self.tubing_kinked" => nonempty(f.any(&[O::TubingKinked])),
        "self.overwhelmed" => nonempty(f.any(&[O::FeelingOverwhelmed])),
        // Evaluated last, on the result: see `triage`.
        _ => None,
    }
}

/// The bag emptied faster or slower than the program predicts, beyond the tolerance.
fn bag_speed_measured(bag: &BagCheck) -> Option<Vec<String>> {
    let faster = bag.given_ml > bag.predicted_high_ml + bag.tolerance_high_ml;
    let slower = bag.given_ml < bag.predicted_low_ml - bag.tolerance_low_ml;
    let predicted = if bag.predicted_low_ml == bag.predicted_high_ml {
        format!("{:.1} mL", bag.predicted_low_ml)
    } else {
        format!(
            "{:.1}–{:.1} mL",
            bag.predicted_low_ml, bag.predicted_high_ml
        )
    };
    let speed = if faster { "faster" } else { "slower" };
    (faster || slower).then(|| {
        vec![format!(
            "{:.1} mL given, program predicts {predicted}: emptying {speed}",
            bag.given_ml
        )]
    })
}

/// The rules in evaluation order (the static ones; alarm rules are added per reported alarm).
pub fn rule_ids() -> impl Iterator<Item = &'static str> {
    RULE_IDS.into_iter()
}

/// Triage a report. Pure: the same input always gives the same output.
pub fn triage(input: &TriageInput, config: &TriageConfig) -> Result<TriageOutput, TriageError> {
    let c = content();
    check_alarm_counts(&input.alarms)?;
    let plan = input.plan.clone().unwrap_or_default();
    let facts = facts(input, &plan, config)?;
    let reasons = reasons(c, input, &facts, config);
    let level = reasons
        .iter()
        .map(|r| r.level)
        .max()
        .unwrap_or(Level::SelfCare);
    let personal_notes = personal_notes(&plan, &reasons, level);
    let steps = steps(c, &reasons, level, &personal_notes);
    let call = call_entries(c, &plan, roles(c, &reasons, level));
    let numbers_note = call
        .iter()
        .any(|entry| entry.phone.is_none())
        .then(|| c.common.no_plan_numbers.clone());

    Ok(TriageOutput {
        level,
        reasons,
        steps,
        call,
        level_text: c.common.levels[&level].clone(),
        care_team_first: if level == Level::Emergency {
            c.common.care_team_first_emergency.clone()
        } else {
            c.common.care_team_first.clone()
        },
        personal_notes,
        numbers_note,
    })
}

fn field(path: &str, message: String) -> TriageError {
    TriageError::Field {
        path: path.to_owned(),
        message,
    }
}

/// Every alarm counts itself, so it went off at least once.
fn check_alarm_counts(alarms: &[AlarmReport]) -> Result<(), TriageError> {
    for (i, alarm) in alarms.iter().enumerate() {
        if alarm.times_in_last_30_min == 0 {
            return Err(field(
                &format!("alarms[{i}].times_in_last_30_min"),
                "must be 1 or more: it counts this alarm too".to_owned(),
            ));
        }
    }
    Ok(())
}

/// The facts the rules see: the report with `plan` (the report's plan or the default one) applied.
fn facts<'a>(
    input: &'a TriageInput,
    plan: &'a TriagePlan,
    config: &TriageConfig,
) -> Result<Facts<'a>, TriageError> {
    let bag = match input.infusion {
        None => None,
        Some(progress) => Some(bag_check(&progress, plan.program.as_ref(), config)?),
    };
    Ok(Facts {
        observations: input.observations.iter().copied().collect(),
        line: plan.line,
        plan_known: input.plan.is_some(),
        critical: plan.critical_therapy,
        kinds: &plan.therapy_kinds,
        pca: plan
            .program
            .as_ref()
            .is_some_and(|p| p.bolus_max_ml_per_h.is_some()),
        notes_about: plan
            .notes
            .iter()
            .filter_map(|n| n.about.as_deref())
            .collect(),
        repeated: repeated_alarms(&input.alarms, config),
        alarms: &input.alarms,
        bag,
    })
}

/// Every matching rule, then one reason per reported alarm; "no concerns" when nothing matched. Most urgent
/// first; within a level, rule order.
fn reasons(
    c: &Content,
    input: &TriageInput,
    facts: &Facts<'_>,
    config: &TriageConfig,
) -> Vec<Reason> {
    let mut reasons: Vec<Reason> = Vec::new();
    for id in rule_ids() {
        if let Some(because) = evaluate(id, facts, config) {
            let text = c
                .rule(id)
                .expect("every rule has words: checked by Content::validate");
            reasons.push(Reason {
                rule: id.to_owned(),
                level: text.level,
                text: text.reason.clone(),
                because,
            });
        }
    }
    let mut seen_alarms = BTreeSet::new();
    for alarm in &input.alarms {
        if !seen_alarms.insert(alarm.kind) {
            continue;
        }
        let guide = c.alarm(alarm.kind);
        reasons.push(Reason {
            rule: guide.id.clone(),
            level: guide.level,
            text: format!("{}: {}", guide.title, guide.meaning),
            because: vec![alarm.kind.to_string()],
        });
    }
    if reasons.is_empty() {
        let text = c
            .rule("self.no_concerns")
            .expect("checked by Content::validate");
        reasons.push(Reason {
            rule: text.id.clone(),
            level: text.level,
            text: text.reason.clone(),
            because: Vec::new(),
        });
    }
    // Most urgent first; within a level, rule order (stable sort).
    reasons.sort_by_key(|r| std::cmp::Reverse(r.level));
    reasons
}

/// The care team's notes: general ones and those about a matching rule, first. In an emergency only the notes
/// about an emergency rule that fired apply: a general note such as "call the nurse line first during office
/// hours" must never appear in an emergency answer.
fn personal_notes(plan: &TriagePlan, reasons: &[Reason], level: Level) -> Vec<String> {
    let mut personal_notes: Vec<String> = Vec::new();
    for note in &plan.notes {
        let applies = match &note.about {
            None => level != Level::Emergency,
            Some(about) => reasons
                .iter()
                .any(|r| &r.rule == about && (level != Level::Emergency || r.level == level)),
        };
        if applies && !personal_notes.contains(&note.text) {
            personal_notes.push(note.text.clone());
        }
    }
    personal_notes
}

/// The steps and whom to call of one reason. An alarm rule's steps are its guide's first steps followed by what
/// not to do ("do not keep restarting").
fn rule_steps_and_call<'c>(c: &'c Content, reason: &Reason) -> (Vec<&'c String>, &'c [Role]) {
    match c.rule(&reason.rule) {
        Some(text) => (text.steps.iter().collect(), &text.call),
        None => {
            let guide = c
                .alarms
                .iter()
                .find(|g| g.id == reason.rule)
                .expect("alarm rules come from guides");
            (
                guide.steps.iter().chain(&guide.do_not).collect(),
                &guide.call,
            )
        }
    }
}

/// Steps: an emergency starts with calling emergency services; otherwise the care team's notes come first.
/// Then the steps of every reason at the final level, in rule order; then the first-aid steps (`keep_steps`)
/// of the lower-level rules that fired too (clamp, cover, do not push back, stop the pump), so escalation
/// never drops them. Lower-level advice that is not first aid (an alarm guide's "restart the pump") is left
/// out: it could contradict the more urgent advice. Every step appears once.
fn steps(c: &Content, reasons: &[Reason], level: Level, personal_notes: &[String]) -> Vec<String> {
    let mut steps: Vec<String> = Vec::new();
    let mut push = |step: &String| {
        if !steps.contains(step) {
            steps.push(step.clone());
        }
    };
    if level == Level::Emergency {
        push(&c.common.emergency_first_step);
    }
    for note in personal_notes {
        push(&format!("From your care team: {note}"));
    }
    for reason in reasons.iter().filter(|r| r.level == level) {
        for step in rule_steps_and_call(c, reason).0 {
            push(step);
        }
    }
    for reason in reasons.iter().filter(|r| r.level < level) {
        if let Some(text) = c.rule(&reason.rule) {
            for step in &text.keep_steps {
                push(step);
            }
        }
    }
    steps
}

/// Whom to call, in order: emergency services first in an emergency, then the roles of every reason at the final
/// level, in rule order, each once.
fn roles(c: &Content, reasons: &[Reason], level: Level) -> Vec<Role> {
    let mut roles: Vec<Role> = Vec::new();
    if level == Level::Emergency {
        roles.push(Role::Emergency);
    }
    for reason in reasons.iter().filter(|r| r.level == level) {
        for role in rule_steps_and_call(c, reason).1 {
            if !roles.contains(role) {
                roles.push(*role);
            }
        }
    }
    // Below emergency, emergency services are only ever the last resort (the critical-therapy fallback).
    if level != Level::Emergency
        && let Some(i) = roles.iter().position(|r| *r == Role::Emergency)
    {
        roles.remove(i);
        roles.push(Role::Emergency);
    }
    roles
}

/// The call list: each role with the plan's contact for it when there is one, else the role's label.
fn call_entries(c: &Content, plan: &TriagePlan, roles: Vec<Role>) -> Vec<CallEntry> {
    roles
        .into_iter()
        .map(|role| {
            let contact = plan
                .contacts
                .iter()
                .find(|(r, _)| *r == role)
                .map(|(_, c)| c);
            CallEntry {
                role,
                label: contact
                    .and_then(|c| c.name.clone())
                    .unwrap_or_else(|| c.common.roles[&role].clone()),
                phone: contact.map(|c| c.phone.clone()),
                hours: contact.and_then(|c| c.hours.clone()),
            }
        })
        .collect()
}

fn bag_check(
    progress: &InfusionProgress,
    program: Option<&ProgramView>,
    config: &TriageConfig,
) -> Result<BagCheck, TriageError> {
    let Some(program) = program else {
        return Err(field("infusion", "needs plan.program (rate_ml_per_h and vtbi_ml) to compare the bag with; give the plan, or report bag_emptying_faster_than_usual / bag_emptying_slower_than_usual instead".to_owned()));
    };
    check_bag_numbers(progress, program)?;
    let start = start_volume(progress, program)?;
    Ok(predict_bag(progress, program, start, config))
}

/// The program's rate and VTBI, and the reported elapsed time and volume left, are usable numbers.
fn check_bag_numbers(
    progress: &InfusionProgress,
    program: &ProgramView,
) -> Result<(), TriageError> {
    if !(program.rate_ml_per_h.is_finite() && program.rate_ml_per_h > 0.0) {
        return Err(field(
            "plan.program.rate_ml_per_h",
            "must be a number greater than 0".to_owned(),
        ));
    }
    if !(program.vtbi_ml.is_finite() && program.vtbi_ml > 0.0) {
        return Err(field(
            "plan.program.vtbi_ml",
            "must be a number greater than 0".to_owned(),
        ));
    }
    if !(progress.elapsed_min.is_finite() && progress.elapsed_min >= 0.0) {
        return Err(field(
            "infusion.elapsed_min",
            format!(
                "{} is not allowed; use 0 or more minutes",
                progress.elapsed_min
            ),
        ));
    }
    if !(progress.volume_left_ml.is_finite() && progress.volume_left_ml >= 0.0) {
        return Err(field(
            "infusion.volume_left_ml",
            format!(
                "{} is not allowed; use 0 or more mL",
                progress.volume_left_ml
            ),
        ));
    }
    Ok(())
}

/// What was in the container at the start (reported, else the reservoir, else the VTBI), checked against what is
/// left.
fn start_volume(progress: &InfusionProgress, program: &ProgramView) -> Result<f64, TriageError> {
    let start = progress
        .start_volume_ml
        .or(program.reservoir_ml)
        .unwrap_or(program.vtbi_ml);
    if !(start.is_finite() && start > 0.0) {
        return Err(field(
            "infusion.start_volume_ml",
            format!("{start} is not allowed; use a number greater than 0"),
        ));
    }
    if progress.volume_left_ml > start {
        return Err(field(
            "infusion.volume_left_ml",
            format!(
                "{} mL left is more than the {start} mL the bag started with",
                progress.volume_left_ml
            ),
        ));
    }
    Ok(start)
}

/// What the program predicts has been given by now, and how far off a reading may be.
fn predict_bag(
    progress: &InfusionProgress,
    program: &ProgramView,
    start: f64,
    config: &TriageConfig,
) -> BagCheck {
    let hours = progress.elapsed_min / 60.0;
    let cap = program.vtbi_ml.min(start);
    let predicted_low_ml = (program.rate_ml_per_h * hours).min(cap);
    let predicted_high_ml =
        (program.bolus_max_ml_per_h.unwrap_or(program.rate_ml_per_h) * hours).min(cap);
    let high_rate = program.bolus_max_ml_per_h.unwrap_or(program.rate_ml_per_h);
    // A fraction of the prediction, with a floor that scales with the rate (a few minutes' worth of the program)
    // and a tiny absolute one: at 0.5 mL/h as at 200 mL/h, "nothing given in hours" and "three times too fast"
    // are caught, and ordinary reading error is not.
    let tolerance = |predicted: f64, rate: f64| {
        (predicted * config.bag_tolerance_fraction)
            .max(rate * config.bag_floor_hours_at_rate)
            .max(config.bag_tolerance_ml_min)
    };
    BagCheck {
        given_ml: start - progress.volume_left_ml,
        predicted_low_ml,
        predicted_high_ml,
        tolerance_low_ml: tolerance(predicted_low_ml, program.rate_ml_per_h),
        tolerance_high_ml: tolerance(predicted_high_ml, high_rate),
    }
}

/// One row of the rules table in docs/care.md.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleRow {
    pub id: String,
    pub level: Level,
    pub condition: String,
}

/// Every rule with its level and condition, in evaluation order: the static rules, then one per alarm guide.
pub fn rules_table() -> Vec<RuleRow> {
    let c = content();
    let mut rows: Vec<RuleRow> = rule_ids()
        .map(|id| {
            let text = c.rule(id).expect("checked by Content::validate");
            RuleRow {
                id: id.to_owned(),
                level: text.level,
                condition: text.condition.clone(),
            }
        })
        .collect();
    rows.extend(c.alarms.iter().map(|g| RuleRow {
        id: g.id.clone(),
        level: g.level,
        condition: format!(
            "the pump or server reports {} (once; repeats escalate through call.repeated_alarm)",
            g.alarm
        ),
    }));
    rows
}

/// The rules table as Markdown, as it must appear in docs/care.md.
pub fn rules_table_markdown() -> String {
    let mut out = String::from("| Rule id | Level | Condition |\n|---|---|---|\n");
    for row in rules_table() {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            row.id,
            row.level,
            row.condition.replace('|', "\\|")
        ));
    }
    out
}

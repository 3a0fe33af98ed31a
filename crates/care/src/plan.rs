//! The therapy plan: what the care team decided for one patient (therapy, pump program, line, whether the therapy
//! is critical, schedule, contacts, escalation timing, personal notes). Read from TOML by the CLI and stored as
//! JSON by the server; both paths run the same checks, and every error names the field and what is allowed.

use std::fmt;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::words::{LineType, ReminderKind, Role, TherapyKind, Weekday};

/// Why a plan was refused. `Display` starts with the field path (`contacts.nurse.phone: …`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The text is not valid TOML or JSON at all.
    #[error("the plan is not valid {format}: {message}")]
    Syntax {
        format: &'static str,
        message: String,
    },
    /// A field is missing, unknown, of the wrong type, or not one of the allowed words.
    #[error("{path}: {message}")]
    Field { path: String, message: String },
    /// A field is well-formed but its value is not acceptable (a rate of zero, an unknown time zone, …).
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl PlanError {
    /// The path of the offending field (`program.rate_ml_per_h`), if the error is about one field.
    pub fn path(&self) -> Option<&str> {
        match self {
            PlanError::Syntax { .. } => None,
            PlanError::Field { path, .. } | PlanError::Invalid { path, .. } => Some(path),
        }
    }
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// The care team's plan for one patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TherapyPlan {
    pub patient: Patient,
    /// The patient's time zone, an IANA name such as `Europe/Amsterdam`; reminders follow its daylight saving.
    pub time_zone: String,
    pub line: LineType,
    /// Whether the care team marked this therapy as one that must not be missed.
    pub critical_therapy: bool,
    /// What kind of medicine this is (opioid, parenteral nutrition, chemotherapy), so the triage rules for it
    /// apply. Optional: plans written before it existed load unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub therapy_kinds: Vec<TherapyKind>,
    pub therapy: Therapy,
    pub program: PlanProgram,
    pub schedule: Schedule,
    pub contacts: Contacts,
    #[serde(default)]
    pub escalation: Escalation,
    /// The care team's personal instructions. They are shown before any generic content.
    #[serde(default)]
    pub notes: Vec<PersonalNote>,
}

/// Who the plan is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    pub name: String,
    /// The care team's own identifier, if they use one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// The therapy and its drug.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Therapy {
    /// What the therapy is, in the patient's words ("IV antibiotics").
    pub name: String,
    pub drug: String,
    /// As on the label ("2 g in 100 mL").
    pub concentration: String,
    /// The pump drug-library entry, if the pump runs under one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drug_id: Option<String>,
    /// The pump drug-library entry for this drug (requires `drug_id`); see [`TherapyPlan::drug_library`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<PlanLimits>,
}

/// The drug-library limits the pump runs this therapy under. Each limit list is five numbers: lower hard, lower
/// soft, typical, upper soft, upper hard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    pub concentration: PlanConcentration,
    pub rate_ml_per_h: Vec<f64>,
    pub vtbi_ml: Vec<f64>,
    /// Without it, no patient bolus is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bolus_ml: Option<Vec<f64>>,
}

/// The drug concentration as numbers, for the pump (`amount` `unit` in `per_ml` mL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConcentration {
    pub amount: f64,
    pub unit: String,
    pub per_ml: f64,
}

/// What happens at the end of the programmed volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndActionName {
    /// Stop and raise `infusion_complete`.
    Stop,
    /// Keep the vein open at `kvo_rate_ml_per_h`.
    Kvo,
}

/// The pump program as the care team prescribed it; [`PlanProgram::to_request`] gives the pump core's request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanProgram {
    pub rate_ml_per_h: f64,
    pub vtbi_ml: f64,
    pub end_action: EndActionName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kvo_rate_ml_per_h: Option<f64>,
    /// Volume in the container when attached, if it differs from the VTBI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservoir_ml: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bolus: Option<PlanBolus>,
    /// The prescriber confirmed a program outside a soft drug-library limit (the pump asks the same).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub soft_limit_override_confirmed: bool,
}

/// Patient-controlled extra doses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanBolus {
    pub volume_ml: f64,
    pub lockout_min: f64,
    pub max_ml_per_h: f64,
}

/// When things happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// First day of the therapy, in the patient's time zone.
    #[serde(with = "flex_date")]
    pub start_date: Date,
    /// Last day, if the therapy has an end.
    #[serde(
        default,
        with = "flex_date_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub end_date: Option<Date>,
    #[serde(default)]
    pub reminders: Vec<ScheduleEntry>,
}

/// One recurring reminder: infusion start, pump or site check, battery, supply or dressing change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    pub kind: ReminderKind,
    /// Times of day in the patient's time zone ("08:00").
    #[serde(with = "flex_times")]
    pub times: Vec<Time>,
    /// Every this many days (1 = daily). Not together with `weekdays`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_days: Option<u32>,
    /// Only on these days of the week. Not together with `every_days`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<Weekday>,
    /// How many minutes before the time the phone should alert (0 = at the time).
    #[serde(default)]
    pub alert_before_min: u32,
    /// How long to block in the calendar; by default the infusion's running time, or 15 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_min: Option<u32>,
    /// The care team's words for this reminder, shown in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One person or line to call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Who answers ("Nurse Sam Jones"); the role's own label is used when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub phone: String,
    /// When the line is staffed ("weekdays 8-17"), if not always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<String>,
}

/// Whom to call, by role. Every role is required so that no advice ever lacks a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contacts {
    pub nurse: Contact,
    pub on_call: Contact,
    pub pharmacy: Contact,
    pub device_support: Contact,
    /// The local emergency number ("112", "911").
    pub emergency: Contact,
}

impl Contacts {
    /// The contact for a role.
    pub fn get(&self, role: Role) -> &Contact {
        match role {
            Role::Nurse => &self.nurse,
            Role::OnCall => &self.on_call,
            Role::Pharmacy => &self.pharmacy,
            Role::DeviceSupport => &self.device_support,
            Role::Emergency => &self.emergency,
        }
    }
}

/// How long the server waits before escalating an alarm nobody acknowledged that stops or endangers the infusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Minutes such an alarm may stay unacknowledged on the patient's screen before the nurse is alerted.
    #[serde(default = "Escalation::default_patient_to_nurse_min")]
    pub patient_to_nurse_min: u32,
    /// Minutes the nurse's alert may stay unacknowledged before the on-call line is alerted.
    #[serde(default = "Escalation::default_nurse_to_on_call_min")]
    pub nurse_to_on_call_min: u32,
}

impl Escalation {
    fn default_patient_to_nurse_min() -> u32 {
        5
    }
    fn default_nurse_to_on_call_min() -> u32 {
        10
    }
    /// The longest wait accepted at either step: beyond an hour an unanswered alarm is no longer "escalated".
    pub const STEP_MIN_MAX: u32 = 60;
}

impl Default for Escalation {
    fn default() -> Self {
        Escalation {
            patient_to_nurse_min: Self::default_patient_to_nurse_min(),
            nurse_to_on_call_min: Self::default_nurse_to_on_call_min(),
        }
    }
}

/// A personal instruction from the care team. With `about`, it is shown on that content page, triage rule or alarm
/// guide (a content id such as `alarm.air_in_line`); without, everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalNote {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    pub text: String,
}

impl TherapyPlan {
    /// Reads and checks a plan from TOML.
    pub fn from_toml(text: &str) -> Result<TherapyPlan, PlanError> {
        let de = toml::Deserializer::parse(text).map_err(|e| PlanError::Syntax {
            format: "TOML",
            message: one_line(&e.to_string()),
        })?;
        let plan: TherapyPlan = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = path_text(e.path());
            let inner = e.into_inner();
            let line = inner.span().map(|span| line_of(text, span.start));
            let mut message = inner.message().to_owned();
            if let Some(line) = line {
                message.push_str(&format!(" (line {line})"));
            }
            PlanError::Field { path, message }
        })?;
        plan.validate()?;
        Ok(plan)
    }

    /// Reads and checks a plan from JSON (the server's stored form).
    pub fn from_json(text: &str) -> Result<TherapyPlan, PlanError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let plan: TherapyPlan = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = path_text(e.path());
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                PlanError::Syntax {
                    format: "JSON",
                    message: inner.to_string(),
                }
            } else {
                PlanError::Field {
                    path,
                    message: strip_json_position(&inner.to_string()),
                }
            }
        })?;
        plan.validate()?;
        Ok(plan)
    }

    /// Checks a plan from a JSON value (used when a plan is embedded in a larger document).
    pub fn from_value(value: serde_json::Value) -> Result<TherapyPlan, PlanError> {
        let plan: TherapyPlan =
            serde_path_to_error::deserialize(value).map_err(|e| PlanError::Field {
                path: path_text(e.path()),
                message: e.into_inner().to_string(),
            })?;
        plan.validate()?;
        Ok(plan)
    }

    /// The plan as pretty JSON (the server's stored form).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .expect("a plan always serializes: it has no maps with non-string keys")
    }

    /// The patient's time zone. Checked when the plan was read.
    pub fn tz(&self) -> TimeZone {
        TimeZone::get(&self.time_zone).expect("the time zone was checked when the plan was read")
    }

    /// The care team's notes that apply to the page, rule or alarm guide `id`: general notes first, then notes
    /// about `id`, in plan order.
    pub fn notes_for(&self, id: &str) -> Vec<&str> {
        let general = self.notes.iter().filter(|n| n.about.is_none());
        let specific = self.notes.iter().filter(|n| n.about.as_deref() == Some(id));
        general.chain(specific).map(|n| n.text.as_str()).collect()
    }

    /// Every check beyond the shape of the data; each error names the field.
    pub fn validate(&self) -> Result<(), PlanError> {
        non_empty("patient.name", &self.patient.name)?;
        non_empty("therapy.name", &self.therapy.name)?;
        non_empty("therapy.drug", &self.therapy.drug)?;
        non_empty("therapy.concentration", &self.therapy.concentration)?;
        self.validate_time_zone()?;
        self.program.validate()?;
        self.validate_limits()?;
        self.validate_schedule()?;
        self.validate_contacts()?;
        self.validate_escalation()?;
        self.validate_notes()
    }

    fn validate_time_zone(&self) -> Result<(), PlanError> {
        if TimeZone::get(&self.time_zone).is_err() {
            return Err(invalid(
                "time_zone",
                format!(
                    "{:?} is not a known IANA time zone; write a name like \"Europe/Amsterdam\" or \"America/New_York\"",
                    self.time_zone
                ),
            ));
        }
        Ok(())
    }

    /// The schedule ends no earlier than it starts, and every reminder is well formed.
    fn validate_schedule(&self) -> Result<(), PlanError> {
        if let Some(end) = self.schedule.end_date
            && end < self.schedule.start_date
        {
            return Err(invalid(
                "schedule.end_date",
                format!(
                    "{end} is before schedule.start_date {}",
                    self.schedule.start_date
                ),
            ));
        }
        for (i, entry) in self.schedule.reminders.iter().enumerate() {
            entry.validate(&format!("schedule.reminders[{i}]"))?;
        }
        Ok(())
    }

    /// Every contact's phone is a phone number.
    fn validate_contacts(&self) -> Result<(), PlanError> {
        for role in Role::ALL {
            let contact = self.contacts.get(*role);
            let path = format!("contacts.{role}.phone");
            let phone = contact.phone.trim();
            let allowed = |c: char| c.is_ascii_digit() || " +-()./".contains(c);
            if !phone.chars().any(|c| c.is_ascii_digit()) || !phone.chars().all(allowed) {
                return Err(invalid(
                    path,
                    format!(
                        "{:?} is not a phone number; use digits, spaces and + - ( ) only, like \"+31 20 555 0100\"",
                        contact.phone
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Each escalation step is between 1 minute and `Escalation::STEP_MIN_MAX`.
    fn validate_escalation(&self) -> Result<(), PlanError> {
        let e = &self.escalation;
        for (path, value) in [
            ("escalation.patient_to_nurse_min", e.patient_to_nurse_min),
            ("escalation.nurse_to_on_call_min", e.nurse_to_on_call_min),
        ] {
            if value == 0 || value > Escalation::STEP_MIN_MAX {
                return Err(invalid(
                    path,
                    format!(
                        "{value} is out of range; use 1 to {} minutes",
                        Escalation::STEP_MIN_MAX
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Every note says something, and a note about something names a content id.
    fn validate_notes(&self) -> Result<(), PlanError> {
        let content = crate::content();
        for (i, note) in self.notes.iter().enumerate() {
            non_empty(&format!("notes[{i}].text"), &note.text)?;
            if let Some(about) = &note.about
                && !content.has_id(about)
            {
                return Err(invalid(
                    format!("notes[{i}].about"),
                    format!(
                        "{about:?} is not a content id; use the id of a page, checklist item, alarm guide or triage rule, like \"alarm.air_in_line\", \"checklist.before\" or \"call.fever_unwell\" (all ids: docs/traceability.md)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The pump drug library for this plan: one entry built from `therapy.drug_id`, `therapy.drug` and
    /// `therapy.limits`, or an empty library when the plan has no limits.
    pub fn drug_library(&self) -> pump::DrugLibrary {
        match self.library_entry() {
            Ok(Some(entry)) => pump::DrugLibrary::new(vec![entry])
                .expect("the limits were checked when the plan was read"),
            Ok(None) => pump::DrugLibrary::default(),
            Err(e) => panic!("the limits were checked when the plan was read: {e}"),
        }
    }

    /// The drug-library entry from `therapy.limits`, each limit list checked by `pump::Limits::new`.
    fn library_entry(&self) -> Result<Option<pump::DrugEntry>, PlanError> {
        let Some(limits) = &self.therapy.limits else {
            return Ok(None);
        };
        let id = match self.therapy.drug_id.as_deref() {
            Some(id) if !id.trim().is_empty() => id,
            _ => {
                return Err(invalid(
                    "therapy.drug_id",
                    "is required when therapy.limits is given: the limits are the pump drug-library entry of that id",
                ));
            }
        };
        let c = &limits.concentration;
        positive("therapy.limits.concentration.amount", c.amount)?;
        positive("therapy.limits.concentration.per_ml", c.per_ml)?;
        non_empty("therapy.limits.concentration.unit", &c.unit)?;
        Ok(Some(pump::DrugEntry {
            id: id.to_owned(),
            name: self.therapy.drug.clone(),
            concentration: pump::Concentration {
                amount: c.amount,
                unit: c.unit.clone(),
                per_ml: c.per_ml,
            },
            rate_ml_per_h: five_limits("therapy.limits.rate_ml_per_h", &limits.rate_ml_per_h)?,
            vtbi_ml: five_limits("therapy.limits.vtbi_ml", &limits.vtbi_ml)?,
            bolus_ml: limits
                .bolus_ml
                .as_deref()
                .map(|b| five_limits("therapy.limits.bolus_ml", b))
                .transpose()?,
        }))
    }

    /// The limits themselves, and the plan's own program against them: outside a hard limit is refused (the pump
    /// would refuse it), outside a soft limit only with `program.soft_limit_override_confirmed = true`.
    fn validate_limits(&self) -> Result<(), PlanError> {
        let Some(entry) = self.library_entry()? else {
            return Ok(());
        };
        for (path, value, limits_path, limits) in self.limit_checks(entry)? {
            check_limit(
                path,
                value,
                limits_path,
                limits,
                self.program.soft_limit_override_confirmed,
            )?;
        }
        Ok(())
    }

    /// The program's values with the limits each must respect: (path, value, limits path, limits). A bolus
    /// without bolus limits is refused.
    fn limit_checks(
        &self,
        entry: pump::DrugEntry,
    ) -> Result<Vec<(&'static str, f64, &'static str, pump::Limits)>, PlanError> {
        let p = &self.program;
        let mut checks = vec![
            (
                "program.rate_ml_per_h",
                p.rate_ml_per_h,
                "therapy.limits.rate_ml_per_h",
                entry.rate_ml_per_h,
            ),
            (
                "program.vtbi_ml",
                p.vtbi_ml,
                "therapy.limits.vtbi_ml",
                entry.vtbi_ml,
            ),
        ];
        if let Some(bolus) = p.bolus {
            let Some(bolus_limits) = entry.bolus_ml else {
                return Err(invalid(
                    "program.bolus",
                    "is not allowed: therapy.limits has no bolus_ml, so the pump allows no patient bolus for this drug; add bolus_ml limits or remove program.bolus",
                ));
            };
            checks.push((
                "program.bolus.volume_ml",
                bolus.volume_ml,
                "therapy.limits.bolus_ml",
                bolus_limits,
            ));
        }
        Ok(checks)
    }

    /// How long one infusion runs, in minutes, from the program (VTBI / rate).
    pub fn infusion_duration_min(&self) -> f64 {
        self.program.vtbi_ml / self.program.rate_ml_per_h * 60.0
    }
}

impl PlanProgram {
    /// The pump core's program request for this program. The core still checks it against its limits and drug
    /// library before running it.
    pub fn to_request(&self, therapy: &Therapy) -> pump::ProgramRequest {
        pump::ProgramRequest {
            drug_id: therapy.drug_id.clone(),
            rate_ml_per_h: self.rate_ml_per_h,
            vtbi_ml: self.vtbi_ml,
            end_action: match self.end_action {
                EndActionName::Stop => pump::EndAction::Stop,
                EndActionName::Kvo => pump::EndAction::Kvo {
                    rate_ml_per_h: self.kvo_rate_ml_per_h.unwrap_or(0.0),
                },
            },
            bolus: self.bolus.map(|b| pump::BolusProgram {
                volume_ml: b.volume_ml,
                lockout_min: b.lockout_min,
                max_ml_per_h: b.max_ml_per_h,
            }),
            reservoir_ml: self.reservoir_ml,
        }
    }

    fn validate(&self) -> Result<(), PlanError> {
        positive("program.rate_ml_per_h", self.rate_ml_per_h)?;
        positive("program.vtbi_ml", self.vtbi_ml)?;
        match (self.end_action, self.kvo_rate_ml_per_h) {
            (EndActionName::Kvo, None) => {
                return Err(invalid(
                    "program.kvo_rate_ml_per_h",
                    "is required when end_action is \"kvo\"",
                ));
            }
            (EndActionName::Kvo, Some(kvo)) => {
                positive("program.kvo_rate_ml_per_h", kvo)?;
                if kvo > self.rate_ml_per_h {
                    return Err(invalid(
                        "program.kvo_rate_ml_per_h",
                        format!(
                            "{kvo} is above program.rate_ml_per_h {}; the keep-vein-open rate must not exceed the infusion rate",
                            self.rate_ml_per_h
                        ),
                    ));
                }
            }
            (EndActionName::Stop, Some(_)) => {
                return Err(invalid(
                    "program.kvo_rate_ml_per_h",
                    "is only allowed when end_action is \"kvo\" (allowed end_action values: stop, kvo)",
                ));
            }
            (EndActionName::Stop, None) => {}
        }
        if let Some(reservoir) = self.reservoir_ml {
            positive("program.reservoir_ml", reservoir)?;
        }
        if let Some(bolus) = self.bolus {
            positive("program.bolus.volume_ml", bolus.volume_ml)?;
            positive("program.bolus.lockout_min", bolus.lockout_min)?;
            positive("program.bolus.max_ml_per_h", bolus.max_ml_per_h)?;
            if bolus.max_ml_per_h < self.rate_ml_per_h {
                return Err(invalid(
                    "program.bolus.max_ml_per_h",
                    format!(
                        "{} is below the basal rate {}; the hourly limit covers basal plus boluses",
                        bolus.max_ml_per_h, self.rate_ml_per_h
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl ScheduleEntry {
    fn validate(&self, path: &str) -> Result<(), PlanError> {
        if self.times.is_empty() {
            return Err(invalid(
                format!("{path}.times"),
                "needs at least one time of day, like [\"08:00\"]",
            ));
        }
        let mut sorted = self.times.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.times.len() {
            return Err(invalid(
                format!("{path}.times"),
                "lists the same time twice",
            ));
        }
        match (self.every_days, self.weekdays.is_empty()) {
            (Some(_), false) => {
                return Err(invalid(
                    format!("{path}.weekdays"),
                    "use either every_days or weekdays, not both",
                ));
            }
            (Some(0), true) => {
                return Err(invalid(
                    format!("{path}.every_days"),
                    "must be 1 or more (1 = every day)",
                ));
            }
            (Some(days), true) if days > 366 => {
                return Err(invalid(
                    format!("{path}.every_days"),
                    format!("{days} is out of range; use 1 to 366"),
                ));
            }
            _ => {}
        }
        if self.alert_before_min > 24 * 60 {
            return Err(invalid(
                format!("{path}.alert_before_min"),
                "is out of range; use 0 to 1440 minutes",
            ));
        }
        if let Some(duration) = self.duration_min
            && (duration == 0 || duration > 24 * 60)
        {
            return Err(invalid(
                format!("{path}.duration_min"),
                "is out of range; use 1 to 1440 minutes",
            ));
        }
        Ok(())
    }
}

fn non_empty(path: &str, value: &str) -> Result<(), PlanError> {
    if value.trim().is_empty() {
        return Err(invalid(path, "must not be empty"));
    }
    Ok(())
}

/// Five limits (lower hard, lower soft, typical, upper soft, upper hard) checked by `pump::Limits::new`.
fn five_limits(path: &str, values: &[f64]) -> Result<pump::Limits, PlanError> {
    let &[lower_hard, lower_soft, typical, upper_soft, upper_hard] = values else {
        return Err(invalid(
            path,
            format!(
                "has {} numbers; write five: [lower hard, lower soft, typical, upper soft, upper hard], like [10.0, 25.0, 50.0, 100.0, 200.0]",
                values.len()
            ),
        ));
    };
    pump::Limits::new(lower_hard, lower_soft, typical, upper_soft, upper_hard).map_err(|e| {
        let why = match e {
            pump::LibraryError::NotANumber => {
                "every limit must be a finite number of 0 or more".to_owned()
            }
            other => other.to_string(),
        };
        invalid(
            path,
            format!(
                "{values:?} is not allowed: {why}; write five numbers in non-decreasing order: [lower hard, lower soft, typical, upper soft, upper hard]"
            ),
        )
    })
}

fn positive(path: &str, value: f64) -> Result<(), PlanError> {
    if !value.is_finite() || value <= 0.0 {
        return Err(invalid(
            path,
            format!("{value} is not allowed; use a number greater than 0"),
        ));
    }
    Ok(())
}

/// One program value against its limits: outside a hard limit is refused, outside a soft limit only allowed when
/// `override_confirmed`.
fn check_limit(
    path: &str,
    value: f64,
    limits_path: &str,
    limits: pump::Limits,
    override_confirmed: bool,
) -> Result<(), PlanError> {
    let zone = limits.zone(value);
    let allowed = format!(
        "use {} to {} (typical {})",
        limits.lower_soft(),
        limits.upper_soft(),
        limits.typical()
    );
    match zone {
        pump::LimitZone::Within => {}
        pump::LimitZone::BelowLowerHard | pump::LimitZone::AboveUpperHard => {
            return Err(invalid(
                path,
                format!(
                    "{value} is {} hard limit {} of {limits_path}; the pump refuses it — {allowed}, never outside {} to {}",
                    zone.side(),
                    limits.limit_for(zone),
                    limits.lower_hard(),
                    limits.upper_hard()
                ),
            ));
        }
        pump::LimitZone::BelowLowerSoft | pump::LimitZone::AboveUpperSoft => {
            if !override_confirmed {
                return Err(invalid(
                    path,
                    format!(
                        "{value} is {} soft limit {} of {limits_path}; {allowed}, or, if the prescriber confirmed this value, set program.soft_limit_override_confirmed = true",
                        zone.side(),
                        limits.limit_for(zone)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn path_text(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." {
        "(top level)".to_owned()
    } else {
        text
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// serde_json appends " at line L column C"; the path already says where, so keep the message short.
fn strip_json_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A string, or a TOML date/time value, as text: lets plans write `start_date = 2026-11-26` or `"2026-11-26"`.
struct FlexText(String);

impl<'de> Deserialize<'de> for FlexText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = FlexText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date like \"2026-11-26\" or a time like \"08:00\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FlexText, E> {
                Ok(FlexText(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FlexText, A::Error> {
                // toml hands its date-time values to serde as a one-entry map holding the text.
                match map.next_entry::<String, String>()? {
                    Some((_, value)) => Ok(FlexText(value)),
                    None => Err(serde::de::Error::custom("expected a date or a time")),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn parse_date(text: &str) -> Result<Date, String> {
    text.parse::<Date>()
        .map_err(|_| format!("{text:?} is not a date; write YYYY-MM-DD, like \"2026-11-26\""))
}

fn parse_time(text: &str) -> Result<Time, String> {
    let bad = || {
        format!(
            "{text:?} is not a time of day; write HH:MM on a 24-hour clock, like \"08:00\" or \"20:30\""
        )
    };
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let m = m.strip_suffix(":00").unwrap_or(m);
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let hour: i8 = h.parse().map_err(|_| bad())?;
    let minute: i8 = m.parse().map_err(|_| bad())?;
    Time::new(hour, minute, 0, 0).map_err(|_| bad())
}

mod flex_date {
    use super::*;
    pub fn serialize<S: serde::Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(date)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        parse_date(&FlexText::deserialize(d)?.0).map_err(serde::de::Error::custom)
    }
}

mod flex_date_opt {
    use super::*;
    pub fn serialize<S: serde::Serializer>(date: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match date {
            Some(date) => s.collect_str(date),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        parse_date(&FlexText::deserialize(d)?.0)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

mod flex_times {
    use super::*;
    pub fn serialize<S: serde::Serializer>(times: &[Time], s: S) -> Result<S::Ok, S::Error> {
        let texts: Vec<String> = times
            .iter()
            .map(|t| t.strftime("%H:%M").to_string())
            .collect();
        texts.serialize(s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Time>, D::Error> {
        let texts = Vec::<FlexText>::deserialize(d)?;
        texts
            .iter()
            .map(|t| parse_time(&t.0))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }
}

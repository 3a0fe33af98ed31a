//! The patient companion engine: the home infusion guide turned into checked content and deterministic rules.
//!
//! - [`content()`]: checklists, alarm guides, site checks, routines and triage words, embedded from `content/`
//!   and checked on load (unique ids, every reference resolves, every alarm and line type covered).
//! - [`pages`]: the same content rendered as screen data, with the care team's instructions and the plan's
//!   personal notes first.
//! - [`triage()`]: what the patient reports and what the pump shows → one [`Level`], reasons citing rule ids,
//!   steps and whom to call.
//! - [`TherapyPlan`]: the care team's plan for one patient (TOML file, JSON in the server's database).
//! - [`reminders`]: the plan's schedule as data (next occurrences) and as an iCalendar file.
//!
//! Nothing here reads a clock or a file: "now" and the inputs are arguments, so the app, the server and the
//! tests get the same answers.

/// Re-exported so callers (the binary, the server) use the same time types as the reminders.
pub use jiff;

mod alarm;
mod content;
pub mod ical;
pub mod pages;
mod plan;
pub mod reminders;
pub mod triage;
mod words;

pub use alarm::Alarm;
pub use content::{
    AlarmGuide, CheckGroup, Checklist, ChecklistItem, Common, Content, ContentError, Headings,
    InfoPage, LineGuide, LogFieldGuide, Outcome, PageKind, ROUTINE_IDS, RuleText, SOURCES,
    SignGuide, Sources, Tip, content,
};
pub use plan::{
    Contact, Contacts, EndActionName, Escalation, Patient, PersonalNote, PlanBolus, PlanError,
    PlanProgram, Schedule, ScheduleEntry, Therapy, TherapyPlan,
};
pub use reminders::Reminder;
pub use triage::{
    AlarmReport, CallEntry, InfusionProgress, Reason, TriageConfig, TriageError, TriageInput,
    TriageOutput, TriagePlan, triage, triage_json,
};
pub use words::{
    Level, LineType, LogField, Observation, Phase, ReminderKind, Role, SiteSign, TherapyKind,
    Weekday,
};

//! The event envelope and the typed event kinds: what one line of the infusion record says.
//!
//! The store keeps every event as its kind name plus a canonical JSON payload, so an event written by a
//! newer client whose kind this build does not know is stored and read back unchanged
//! ([`Body::Unknown`]); [`Body`] is the typed view on top.

use crate::error::RecordError;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Longest accepted identifier (patient, device, actor), in bytes.
pub const ID_LEN_MAX: usize = 128;
/// Largest accepted payload, as canonical JSON, in bytes.
pub const PAYLOAD_BYTES_MAX: usize = 64 * 1024;
/// Longest accepted kind name, in bytes.
pub const KIND_LEN_MAX: usize = 64;
/// Local offsets beyond ±18 h do not exist (RFC 3339 / jiff bounds).
pub const LOCAL_OFFSET_S_MAX: i32 = 18 * 3600;

/// An opaque patient identifier chosen by the server (never a name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PatientId(String);

impl PatientId {
    /// Checks the identifier: 1 to [`ID_LEN_MAX`] bytes, no control characters, no surrounding spaces.
    pub fn new(id: impl Into<String>) -> Result<PatientId, RecordError> {
        let id = id.into();
        check_id("patient id", &id)?;
        Ok(PatientId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PatientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The identifier the store assigned to an event. Ids grow with appends but are not dense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub i64);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Pump,
    Patient,
    Caregiver,
    Nurse,
    System,
}

impl Source {
    pub const ALL: [Source; 5] = [
        Source::Pump,
        Source::Patient,
        Source::Caregiver,
        Source::Nurse,
        Source::System,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Source::Pump => "pump",
            Source::Patient => "patient",
            Source::Caregiver => "caregiver",
            Source::Nurse => "nurse",
            Source::System => "system",
        }
    }

    pub fn from_name(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Priority of an escalation to the care team, the FHIR `Communication.priority` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationPriority {
    Routine,
    Urgent,
    Asap,
    Stat,
}

impl EscalationPriority {
    pub fn name(self) -> &'static str {
        match self {
            EscalationPriority::Routine => "routine",
            EscalationPriority::Urgent => "urgent",
            EscalationPriority::Asap => "asap",
            EscalationPriority::Stat => "stat",
        }
    }
}

/// The typed view of an event's kind and payload. The serialized kind names (`infusion_started`, …) are
/// the stored `kind` column and the public names used by every client.
///
/// Alarm names, priorities, pump states and triage levels are kept as text (the names from the pump
/// core and the care crate), so an alarm a newer pump knows is recorded faithfully by an older server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Body {
    // --- Who and what: written by the server.
    PatientRegistered {
        display_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        birth_date: Option<jiff::civil::Date>,
    },
    DeviceAssigned {
        device_id: String,
        model: String,
        serial: String,
    },
    PlanChanged {
        summary: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan_id: Option<String>,
    },

    // --- Pump events, mirrored from `pump::Event`.
    ProgramAccepted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        drug_id: Option<String>,
        rate_ml_per_h: f64,
        vtbi_ml: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bolus_ml: Option<f64>,
    },
    LimitOverrideConfirmed {
        field: String,
        value: f64,
        zone: String,
        limit: f64,
    },
    /// The start of an infusion; `vtbi_ml` is the volume expected to be delivered.
    InfusionStarted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        drug_id: Option<String>,
        rate_ml_per_h: f64,
        vtbi_ml: f64,
    },
    InfusionPaused {},
    InfusionResumed {},
    /// Stopped before the end, by the operator or an alarm.
    InfusionStopped {
        delivered_ml: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    InfusionCompleted {
        delivered_ml: f64,
    },
    AlarmRaised {
        alarm: String,
        priority: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    AlarmAcknowledged {
        alarm: String,
    },
    AlarmSilenced {
        alarm: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        silenced_for_s: Option<u32>,
    },
    /// The alarm condition ended; `resolution` says how (the guide asks "how they were resolved").
    AlarmCleared {
        alarm: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resolution: Option<String>,
    },
    AlarmEscalated {
        alarm: String,
        unacknowledged_for_s: u32,
    },
    BolusGiven {
        volume_ml: f64,
    },
    BolusDenied {
        reason: String,
    },
    /// A periodic status snapshot of a pump.
    Telemetry {
        state: String,
        rate_ml_per_h: f64,
        delivered_ml: f64,
        remaining_ml: f64,
        battery_percent: f64,
        mains_present: bool,
        downstream_pressure_mmhg: f64,
    },

    // --- What the patient and caregivers record in the companion.
    ChecklistCompleted {
        checklist: String,
        #[serde(default)]
        items: Vec<String>,
    },
    /// A look at the access site; `findings` is empty when the site looked normal.
    SiteCheck {
        #[serde(default)]
        findings: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A symptom check and the triage result the companion gave (`self_care`, `call_nurse`, `emergency`, …).
    SymptomCheck {
        #[serde(default)]
        symptoms: Vec<String>,
        triage: String,
        #[serde(default)]
        reasons: Vec<String>,
    },
    /// How the patient felt; `rating` from 1 (very bad) to 5 (very well).
    Feeling {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rating: Option<u8>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    Note {
        text: String,
    },
    ReminderDone {
        reminder: String,
    },
    EscalationSent {
        escalation_id: String,
        to: String,
        priority: EscalationPriority,
        reason: String,
    },
    EscalationAnswered {
        escalation_id: String,
        by: String,
        response: String,
    },
    /// The patient's own log: how they felt, compared with before (`better`, `same`, `worse`), the symptoms
    /// they noticed (the triage words, `care::Observation` names) and their own words. `infusion` names the
    /// `infusion_started` event it follows, when written at the end of an infusion.
    HowIFelt {
        compared: String,
        #[serde(default)]
        symptoms: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        infusion: Option<EventId>,
    },
    /// The patient's own log: what they see at the access site (the guide's site signs, as the triage words;
    /// empty when nothing changed), their words, and a photo kept with the record, named by its SHA-256.
    SiteSeen {
        #[serde(default)]
        signs: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        photo: Option<Photo>,
    },
    /// A question for the nurse, written by the patient or a caregiver.
    QuestionAsked {
        text: String,
    },
    /// The care team's answer to a question (`question` is the `question_asked` event).
    QuestionAnswered {
        question: EventId,
        text: String,
    },

    // --- Audit.
    RecordRead {
        reader: String,
        scope: String,
    },
    Login {
        account: String,
        #[serde(default)]
        success: bool,
    },

    /// A correction: `supersedes` names the earlier event it replaces. History is never edited.
    Correction {
        supersedes: EventId,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        corrected: Option<Value>,
    },

    /// A kind this build does not know (written by a newer client), kept verbatim.
    #[serde(skip)]
    Unknown {
        kind: String,
        payload: Value,
    },
}

/// A photo kept with the record: the bytes live beside the record (the server's photo store), the event holds
/// their SHA-256 (hex), so the hash chain pins the exact image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Photo {
    pub sha256: String,
    /// `image/jpeg`, `image/png` or `image/webp`.
    pub media_type: String,
    pub bytes: u64,
}

/// Every event kind this build knows: one variant per typed [`Body`] variant, named as stored.
///
/// The stored `kind` column stays text (so a newer client's kind survives as [`Body::Unknown`]); this
/// enum is the typed name for code that means a known kind, instead of a string literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    PatientRegistered,
    DeviceAssigned,
    PlanChanged,
    ProgramAccepted,
    LimitOverrideConfirmed,
    InfusionStarted,
    InfusionPaused,
    InfusionResumed,
    InfusionStopped,
    InfusionCompleted,
    AlarmRaised,
    AlarmAcknowledged,
    AlarmSilenced,
    AlarmCleared,
    AlarmEscalated,
    BolusGiven,
    BolusDenied,
    Telemetry,
    ChecklistCompleted,
    SiteCheck,
    SymptomCheck,
    Feeling,
    Note,
    ReminderDone,
    EscalationSent,
    EscalationAnswered,
    HowIFelt,
    SiteSeen,
    QuestionAsked,
    QuestionAnswered,
    RecordRead,
    Login,
    Correction,
}

impl Kind {
    /// Every kind, in [`Body`]'s declaration order.
    pub const ALL: [Kind; 33] = [
        Kind::PatientRegistered,
        Kind::DeviceAssigned,
        Kind::PlanChanged,
        Kind::ProgramAccepted,
        Kind::LimitOverrideConfirmed,
        Kind::InfusionStarted,
        Kind::InfusionPaused,
        Kind::InfusionResumed,
        Kind::InfusionStopped,
        Kind::InfusionCompleted,
        Kind::AlarmRaised,
        Kind::AlarmAcknowledged,
        Kind::AlarmSilenced,
        Kind::AlarmCleared,
        Kind::AlarmEscalated,
        Kind::BolusGiven,
        Kind::BolusDenied,
        Kind::Telemetry,
        Kind::ChecklistCompleted,
        Kind::SiteCheck,
        Kind::SymptomCheck,
        Kind::Feeling,
        Kind::Note,
        Kind::ReminderDone,
        Kind::EscalationSent,
        Kind::EscalationAnswered,
        Kind::HowIFelt,
        Kind::SiteSeen,
        Kind::QuestionAsked,
        Kind::QuestionAnswered,
        Kind::RecordRead,
        Kind::Login,
        Kind::Correction,
    ];

    /// The stored (and serialized) name: `infusion_started`, ….
    pub const fn name(self) -> &'static str {
        match self {
            Kind::PatientRegistered => "patient_registered",
            Kind::DeviceAssigned => "device_assigned",
            Kind::PlanChanged => "plan_changed",
            Kind::ProgramAccepted => "program_accepted",
            Kind::LimitOverrideConfirmed => "limit_override_confirmed",
            Kind::InfusionStarted => "infusion_started",
            Kind::InfusionPaused => "infusion_paused",
            Kind::InfusionResumed => "infusion_resumed",
            Kind::InfusionStopped => "infusion_stopped",
            Kind::InfusionCompleted => "infusion_completed",
            Kind::AlarmRaised => "alarm_raised",
            Kind::AlarmAcknowledged => "alarm_acknowledged",
            Kind::AlarmSilenced => "alarm_silenced",
            Kind::AlarmCleared => "alarm_cleared",
            Kind::AlarmEscalated => "alarm_escalated",
            Kind::BolusGiven => "bolus_given",
            Kind::BolusDenied => "bolus_denied",
            Kind::Telemetry => "telemetry",
            Kind::ChecklistCompleted => "checklist_completed",
            Kind::SiteCheck => "site_check",
            Kind::SymptomCheck => "symptom_check",
            Kind::Feeling => "feeling",
            Kind::Note => "note",
            Kind::ReminderDone => "reminder_done",
            Kind::EscalationSent => "escalation_sent",
            Kind::EscalationAnswered => "escalation_answered",
            Kind::HowIFelt => "how_i_felt",
            Kind::SiteSeen => "site_seen",
            Kind::QuestionAsked => "question_asked",
            Kind::QuestionAnswered => "question_answered",
            Kind::RecordRead => "record_read",
            Kind::Login => "login",
            Kind::Correction => "correction",
        }
    }

    /// The stored names of `kinds`, as a [`crate::TimelineQuery`] filter takes them.
    pub fn names(kinds: &[Kind]) -> Vec<String> {
        kinds.iter().map(|k| k.name().to_owned()).collect()
    }

    /// The kind with this stored name, or `None` for a kind this build does not know.
    pub fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "patient_registered" => Kind::PatientRegistered,
            "device_assigned" => Kind::DeviceAssigned,
            "plan_changed" => Kind::PlanChanged,
            "program_accepted" => Kind::ProgramAccepted,
            "limit_override_confirmed" => Kind::LimitOverrideConfirmed,
            "infusion_started" => Kind::InfusionStarted,
            "infusion_paused" => Kind::InfusionPaused,
            "infusion_resumed" => Kind::InfusionResumed,
            "infusion_stopped" => Kind::InfusionStopped,
            "infusion_completed" => Kind::InfusionCompleted,
            "alarm_raised" => Kind::AlarmRaised,
            "alarm_acknowledged" => Kind::AlarmAcknowledged,
            "alarm_silenced" => Kind::AlarmSilenced,
            "alarm_cleared" => Kind::AlarmCleared,
            "alarm_escalated" => Kind::AlarmEscalated,
            "bolus_given" => Kind::BolusGiven,
            "bolus_denied" => Kind::BolusDenied,
            "telemetry" => Kind::Telemetry,
            "checklist_completed" => Kind::ChecklistCompleted,
            "site_check" => Kind::SiteCheck,
            "symptom_check" => Kind::SymptomCheck,
            "feeling" => Kind::Feeling,
            "note" => Kind::Note,
            "reminder_done" => Kind::ReminderDone,
            "escalation_sent" => Kind::EscalationSent,
            "escalation_answered" => Kind::EscalationAnswered,
            "how_i_felt" => Kind::HowIFelt,
            "site_seen" => Kind::SiteSeen,
            "question_asked" => Kind::QuestionAsked,
            "question_answered" => Kind::QuestionAnswered,
            "record_read" => Kind::RecordRead,
            "login" => Kind::Login,
            "correction" => Kind::Correction,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every kind name [`Body`] knows, in declaration order: the names of [`Kind::ALL`].
pub const KNOWN_KINDS: [&str; 33] = {
    let mut names = [""; 33];
    let mut i = 0;
    while i < Kind::ALL.len() {
        names[i] = Kind::ALL[i].name();
        i += 1;
    }
    names
};

impl Body {
    /// The stored kind name and the payload.
    pub fn to_parts(&self) -> Result<(String, Value), RecordError> {
        if let Body::Unknown { kind, payload } = self {
            return Ok((kind.clone(), payload.clone()));
        }
        let value = serde_json::to_value(self).map_err(|e| RecordError::InvalidEvent {
            what: "payload".into(),
            reason: format!("cannot be encoded as JSON: {e}"),
        })?;
        let Value::Object(mut map) = value else {
            unreachable!("an adjacently tagged enum serializes to an object")
        };
        let kind = match map.remove("kind") {
            Some(Value::String(kind)) => kind,
            other => unreachable!("adjacent tag is a string, got {other:?}"),
        };
        let payload = map
            .remove("payload")
            .unwrap_or(Value::Object(Default::default()));
        Ok((kind, payload))
    }

    /// The typed view of a stored kind and payload. A kind this build does not know, or a payload that
    /// does not match this build's shape for the kind, comes back as [`Body::Unknown`], never as an error:
    /// a record must stay readable by older code.
    pub fn from_parts(kind: &str, payload: Value) -> Body {
        match Body::parse_known(kind, &payload) {
            Some(body) => body,
            None => Body::Unknown {
                kind: kind.to_owned(),
                payload,
            },
        }
    }

    fn parse_known(kind: &str, payload: &Value) -> Option<Body> {
        if !is_known_kind(kind) {
            return None;
        }
        let tagged = serde_json::json!({ "kind": kind, "payload": payload });
        serde_json::from_value(tagged).ok()
    }

    /// The kind name, as stored: [`Kind::name`] of a typed body, or an unknown kind's own name.
    pub fn kind(&self) -> String {
        self.kind_name().to_owned()
    }

    /// The kind name, as stored, without allocating.
    pub fn kind_name(&self) -> &str {
        match self.kind_or_unknown() {
            Ok(kind) => kind.name(),
            Err(name) => name,
        }
    }

    /// The typed kind; `None` only for [`Body::Unknown`] (even when its name is a known kind's: such a
    /// body holds a payload that did not match that kind's fields).
    pub fn typed_kind(&self) -> Option<Kind> {
        self.kind_or_unknown().ok()
    }

    /// The typed kind, or the name of an unknown kind. The match is exhaustive, so a new [`Body`]
    /// variant does not compile without its [`Kind`].
    fn kind_or_unknown(&self) -> Result<Kind, &str> {
        Ok(match self {
            Body::PatientRegistered { .. } => Kind::PatientRegistered,
            Body::DeviceAssigned { .. } => Kind::DeviceAssigned,
            Body::PlanChanged { .. } => Kind::PlanChanged,
            Body::ProgramAccepted { .. } => Kind::ProgramAccepted,
            Body::LimitOverrideConfirmed { .. } => Kind::LimitOverrideConfirmed,
            Body::InfusionStarted { .. } => Kind::InfusionStarted,
            Body::InfusionPaused { .. } => Kind::InfusionPaused,
            Body::InfusionResumed { .. } => Kind::InfusionResumed,
            Body::InfusionStopped { .. } => Kind::InfusionStopped,
            Body::InfusionCompleted { .. } => Kind::InfusionCompleted,
            Body::AlarmRaised { .. } => Kind::AlarmRaised,
            Body::AlarmAcknowledged { .. } => Kind::AlarmAcknowledged,
            Body::AlarmSilenced { .. } => Kind::AlarmSilenced,
            Body::AlarmCleared { .. } => Kind::AlarmCleared,
            Body::AlarmEscalated { .. } => Kind::AlarmEscalated,
            Body::BolusGiven { .. } => Kind::BolusGiven,
            Body::BolusDenied { .. } => Kind::BolusDenied,
            Body::Telemetry { .. } => Kind::Telemetry,
            Body::ChecklistCompleted { .. } => Kind::ChecklistCompleted,
            Body::SiteCheck { .. } => Kind::SiteCheck,
            Body::SymptomCheck { .. } => Kind::SymptomCheck,
            Body::Feeling { .. } => Kind::Feeling,
            Body::Note { .. } => Kind::Note,
            Body::ReminderDone { .. } => Kind::ReminderDone,
            Body::EscalationSent { .. } => Kind::EscalationSent,
            Body::EscalationAnswered { .. } => Kind::EscalationAnswered,
            Body::HowIFelt { .. } => Kind::HowIFelt,
            Body::SiteSeen { .. } => Kind::SiteSeen,
            Body::QuestionAsked { .. } => Kind::QuestionAsked,
            Body::QuestionAnswered { .. } => Kind::QuestionAnswered,
            Body::RecordRead { .. } => Kind::RecordRead,
            Body::Login { .. } => Kind::Login,
            Body::Correction { .. } => Kind::Correction,
            Body::Unknown { kind, .. } => return Err(kind),
        })
    }
}

/// Whether this build has a typed [`Body`] variant for a stored kind name (see [`Kind::from_name`]).
pub fn is_known_kind(kind: &str) -> bool {
    Kind::from_name(kind).is_some()
}

/// An event as a client hands it to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub patient: PatientId,
    /// The device (pump, phone, server) that produced the event; with `device_seq` the de-duplication key.
    pub device_id: String,
    /// The producing device's own sequence number, increasing per device. A re-sent event with the same
    /// `(device_id, device_seq)` is recognised and not stored twice.
    pub device_seq: u64,
    /// When it happened. Stored to the microsecond.
    pub occurred_at: Timestamp,
    /// The wall-clock offset from UTC where it happened, in seconds (kept so the record shows local time).
    pub local_offset_s: i32,
    pub source: Source,
    /// Who acted: an account, a device id, or `system`.
    pub actor: String,
    /// Set for events from the practice (teaching) pump, which are never clinical data.
    pub teaching: bool,
    pub body: Body,
}

/// An event as stored: the envelope the store completed, the payload as canonical JSON and the chain link.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub id: EventId,
    pub patient: PatientId,
    /// Position in the patient's chain, 1 for the first event.
    pub chain_seq: i64,
    pub device_id: String,
    pub device_seq: i64,
    pub occurred_at: Timestamp,
    pub local_offset_s: i32,
    /// When the store accepted it.
    pub recorded_at: Timestamp,
    pub source: Source,
    pub actor: String,
    pub teaching: bool,
    pub kind: String,
    /// Canonical JSON (sorted keys, no spaces); hashed exactly as stored.
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredEvent {
    /// The typed view of kind and payload; see [`Body::from_parts`].
    pub fn body(&self) -> Body {
        match serde_json::from_str(&self.payload) {
            Ok(value) => Body::from_parts(&self.kind, value),
            Err(_) => Body::Unknown {
                kind: self.kind.clone(),
                payload: Value::String(self.payload.clone()),
            },
        }
    }

    /// `occurred_at` in the local time where it happened, RFC 3339 with the offset.
    pub fn occurred_at_local(&self) -> String {
        match jiff::tz::Offset::from_seconds(self.local_offset_s) {
            Ok(offset) => self.occurred_at.display_with_offset(offset).to_string(),
            Err(_) => self.occurred_at.to_string(),
        }
    }
}

/// A validated event ready for hashing: the form the store writes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreparedEvent {
    pub patient: PatientId,
    pub device_id: String,
    pub device_seq: i64,
    pub occurred_at_us: i64,
    pub local_offset_s: i32,
    pub source: Source,
    pub actor: String,
    pub teaching: bool,
    pub kind: String,
    pub payload: String,
}

impl NewEvent {
    /// Checks every field and produces the stored form. `index` names the event in error messages.
    pub(crate) fn prepare(&self, index: usize) -> Result<PreparedEvent, RecordError> {
        let at = |what: &str| format!("event {index}: {what}");
        check_id(&at("device id"), &self.device_id)?;
        check_id(&at("actor"), &self.actor)?;
        let device_seq = i64::try_from(self.device_seq).map_err(|_| RecordError::InvalidEvent {
            what: at("device sequence number"),
            reason: format!("{} is larger than {}", self.device_seq, i64::MAX),
        })?;
        if self.local_offset_s.abs() > LOCAL_OFFSET_S_MAX {
            return Err(RecordError::InvalidEvent {
                what: at("local offset"),
                reason: format!(
                    "{} s is beyond ±18 h; give the offset from UTC in seconds (e.g. 3600 for +01:00)",
                    self.local_offset_s
                ),
            });
        }
        let (kind, payload) = self.body.to_parts()?;
        check_kind(&at("kind"), &kind)?;
        if let Body::Unknown { .. } = &self.body
            && is_known_kind(&kind)
            && Body::parse_known(&kind, &payload).is_none()
        {
            return Err(RecordError::InvalidEvent {
                what: at("payload"),
                reason: format!("does not match the fields of a `{kind}` event"),
            });
        }
        if !payload.is_object() {
            return Err(RecordError::InvalidEvent {
                what: at("payload"),
                reason: "must be a JSON object".into(),
            });
        }
        let payload = crate::chain::canonical_json(&payload);
        if payload.len() > PAYLOAD_BYTES_MAX {
            return Err(RecordError::InvalidEvent {
                what: at("payload"),
                reason: format!(
                    "is {} bytes; the limit is {PAYLOAD_BYTES_MAX} bytes",
                    payload.len()
                ),
            });
        }
        Ok(PreparedEvent {
            patient: self.patient.clone(),
            device_id: self.device_id.clone(),
            device_seq,
            occurred_at_us: self.occurred_at.as_microsecond(),
            local_offset_s: self.local_offset_s,
            source: self.source,
            actor: self.actor.clone(),
            teaching: self.teaching,
            kind,
            payload,
        })
    }
}

fn check_id(what: &str, id: &str) -> Result<(), RecordError> {
    let reason = if id.is_empty() {
        "is empty".to_string()
    } else if id.len() > ID_LEN_MAX {
        format!("is {} bytes; the limit is {ID_LEN_MAX}", id.len())
    } else if id.chars().any(char::is_control) {
        "contains a control character".to_string()
    } else if id.trim() != id {
        "starts or ends with white space".to_string()
    } else {
        return Ok(());
    };
    Err(RecordError::InvalidEvent {
        what: what.to_string(),
        reason,
    })
}

fn check_kind(what: &str, kind: &str) -> Result<(), RecordError> {
    let well_formed = !kind.is_empty()
        && kind.len() <= KIND_LEN_MAX
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if well_formed {
        Ok(())
    } else {
        Err(RecordError::InvalidEvent {
            what: what.to_string(),
            reason: format!(
                "{kind:?} is not a kind name: use lower-case letters, digits and `_`, at most {KIND_LEN_MAX} bytes"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_distinct_and_parse_back() {
        let mut seen = std::collections::BTreeSet::new();
        for kind in Kind::ALL {
            assert!(seen.insert(kind.name()), "{kind:?} repeats a name");
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
            assert_eq!(kind.to_string(), kind.name());
            check_kind("kind", kind.name()).expect("a well-formed kind name");
        }
        assert_eq!(KNOWN_KINDS.len(), Kind::ALL.len());
        assert!(
            KNOWN_KINDS
                .iter()
                .zip(Kind::ALL)
                .all(|(n, k)| *n == k.name())
        );
        assert_eq!(Kind::from_name("infusion_startd"), None);
        assert_eq!(Kind::from_name("Note"), None);
        assert!(!is_known_kind(""));
    }

    #[test]
    fn kind_serializes_as_its_stored_name() {
        for kind in Kind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, Value::String(kind.name().to_owned()));
            assert_eq!(serde_json::from_value::<Kind>(json).unwrap(), kind);
        }
        assert!(serde_json::from_value::<Kind>(serde_json::json!("telemetry_x")).is_err());
    }

    #[test]
    fn an_unknown_body_has_no_typed_kind_even_under_a_known_name() {
        let body = Body::from_parts("note", serde_json::json!({ "text": 5 }));
        assert_eq!(body.kind(), "note");
        assert_eq!(body.typed_kind(), None);
        let future = Body::from_parts("pump_rebooted", serde_json::json!({}));
        assert_eq!(future.kind_name(), "pump_rebooted");
        assert_eq!(future.typed_kind(), None);
    }
}

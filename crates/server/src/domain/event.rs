//! What the server writes to the record, as values: the kind (the record's own kinds plus the few only the
//! server writes), who or what it came from, and the payload. The journal turns an `EventDraft` into a record
//! event; the board and the services only build drafts.

use serde::Serialize;
use serde_json::Value;

/// Kinds only the server writes (the record keeps them verbatim as kinds it does not type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// A person ticked one step of an alarm's guide ("I did this").
    AlarmStepDone,
    /// One checklist item answered (the completed checklist is the record's `checklist_completed`).
    ChecklistAnswered,
    PracticeStarted,
    PracticeStopped,
    /// A fault injected into the practice pump by the nurse.
    PracticeFault,
    /// A fix or button pressed on the practice pump.
    PracticeAction,
    /// A clinic admin set or removed the clinic's webhook.
    WebhookChanged,
    /// A pump sent events stamped far from the server's time (its clock is wrong); the events keep the pump's
    /// time, and this records which ones and by how much.
    PumpClockSkew,
    /// An account's password was changed by its owner or reset by a clinic admin.
    PasswordChanged,
    /// A pump's link token was revoked by a clinic admin.
    DeviceRevoked,
    /// A clinic admin set or removed the id a pump's IHE PCD gateway sends.
    DevicePcdIdSet,
    /// An alarm report (ORU^R40) was sent, or given up, to the alarm manager: the outcome after every attempt.
    PcdReportSent,
    /// A secret calendar address for the patient's reminders was made (any earlier one stops working).
    CalendarLinkCreated,
    /// The patient's secret calendar address was revoked.
    CalendarLinkRevoked,
}

impl ServerKind {
    pub const ALL: [ServerKind; 14] = [
        ServerKind::AlarmStepDone,
        ServerKind::ChecklistAnswered,
        ServerKind::PracticeStarted,
        ServerKind::PracticeStopped,
        ServerKind::PracticeFault,
        ServerKind::PracticeAction,
        ServerKind::WebhookChanged,
        ServerKind::PumpClockSkew,
        ServerKind::PasswordChanged,
        ServerKind::DeviceRevoked,
        ServerKind::DevicePcdIdSet,
        ServerKind::PcdReportSent,
        ServerKind::CalendarLinkCreated,
        ServerKind::CalendarLinkRevoked,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::AlarmStepDone => "alarm_step_done",
            ServerKind::ChecklistAnswered => "checklist_answered",
            ServerKind::PracticeStarted => "practice_started",
            ServerKind::PracticeStopped => "practice_stopped",
            ServerKind::PracticeFault => "practice_fault",
            ServerKind::PracticeAction => "practice_action",
            ServerKind::WebhookChanged => "webhook_changed",
            ServerKind::PumpClockSkew => "pump_clock_skew",
            ServerKind::PasswordChanged => "password_changed",
            ServerKind::DeviceRevoked => "device_revoked",
            ServerKind::DevicePcdIdSet => "device_pcd_id_set",
            ServerKind::PcdReportSent => "pcd_report_sent",
            ServerKind::CalendarLinkCreated => "calendar_link_created",
            ServerKind::CalendarLinkRevoked => "calendar_link_revoked",
        }
    }
}

/// The kind of an event the server writes: one the record types, one of the server's own, or a kind a pump
/// named that neither knows (kept verbatim, as the record keeps unknown kinds).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKind {
    Record(record::Kind),
    Server(ServerKind),
    Pump(String),
}

impl EventKind {
    pub fn name(&self) -> &str {
        match self {
            EventKind::Record(kind) => kind.name(),
            EventKind::Server(kind) => kind.name(),
            EventKind::Pump(name) => name,
        }
    }
}

impl From<record::Kind> for EventKind {
    fn from(kind: record::Kind) -> EventKind {
        EventKind::Record(kind)
    }
}

impl From<ServerKind> for EventKind {
    fn from(kind: ServerKind) -> EventKind {
        EventKind::Server(kind)
    }
}

/// What a person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Patient,
    Caregiver,
    Nurse,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Patient, Role::Caregiver, Role::Nurse, Role::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Caregiver => "caregiver",
            Role::Nurse => "nurse",
            Role::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Nurses and clinic admins see every patient of their clinic.
    pub fn is_clinician(self) -> bool {
        matches!(self, Role::Nurse | Role::Admin)
    }

    /// How the role is written in events a person makes.
    pub fn origin(self) -> Origin {
        match self {
            Role::Patient => Origin::Patient,
            Role::Caregiver => Origin::Caregiver,
            Role::Nurse => Origin::Nurse,
            Role::Admin => Origin::Admin,
        }
    }

    /// How the screens name someone acting in this role.
    pub fn label(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Caregiver => "caregiver",
            Role::Nurse => "nurse",
            Role::Admin => "clinic admin",
        }
    }
}

/// A signed-in person acting on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub display_name: String,
    pub role: Role,
}

/// Who or what produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Pump,
    Patient,
    Caregiver,
    Nurse,
    /// A clinic admin; recorded as the record's `nurse` source (care team), with the admin as actor.
    Admin,
    System,
}

impl Origin {
    /// The record's source for this origin.
    pub fn record_source(self) -> record::Source {
        match self {
            Origin::Pump => record::Source::Pump,
            Origin::Patient => record::Source::Patient,
            Origin::Caregiver => record::Source::Caregiver,
            Origin::Nurse | Origin::Admin => record::Source::Nurse,
            Origin::System => record::Source::System,
        }
    }
}

/// An event to append to a patient's record.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    pub patient_id: String,
    pub kind: EventKind,
    pub origin: Origin,
    /// User id or device id; `None` for the system.
    pub actor: Option<String>,
    pub occurred_at_ms: i64,
    /// The payload; for kinds the record types it must hold that kind's fields (extra fields are kept).
    pub payload: Value,
    /// The pump the event is about, if any.
    pub device_id: Option<String>,
    /// The pump's own sequence number (pump events only); `None` lets the journal number it.
    pub device_seq: Option<u64>,
    /// Practice-pump (teaching) events are marked so they are never mistaken for real ones.
    pub teaching: bool,
}

impl EventDraft {
    /// An event at `at_ms` by `origin`/`actor`.
    pub fn new(
        patient_id: &str,
        kind: impl Into<EventKind>,
        origin: Origin,
        actor: Option<&str>,
        at_ms: i64,
        payload: Value,
    ) -> EventDraft {
        EventDraft {
            patient_id: patient_id.to_string(),
            kind: kind.into(),
            origin,
            actor: actor.map(str::to_string),
            occurred_at_ms: at_ms,
            payload,
            device_id: None,
            device_seq: None,
            teaching: false,
        }
    }

    /// An event the server itself writes (watchdog, escalation).
    pub fn system(
        patient_id: &str,
        kind: impl Into<EventKind>,
        at_ms: i64,
        payload: Value,
    ) -> EventDraft {
        EventDraft::new(patient_id, kind, Origin::System, None, at_ms, payload)
    }

    /// About this pump (for alarm-related events written by the server).
    pub fn for_device(mut self, device_id: Option<&str>) -> EventDraft {
        self.device_id = device_id.map(str::to_string);
        self
    }

    /// Marked as practice (teaching) or not.
    pub fn teaching(mut self, teaching: bool) -> EventDraft {
        self.teaching = teaching;
        self
    }
}

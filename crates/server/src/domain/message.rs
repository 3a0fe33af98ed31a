//! Live updates, as the streams send them: one message per change of the board, addressed to a patient (and
//! through the clinic to the care team's dashboards).

use serde::Serialize;

/// The SSE event name of a live message. These names are a public contract of the live streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// The whole picture of one patient, sent first on every stream.
    Snapshot,
    Alarm,
    AlarmCleared,
    Acknowledged,
    Silenced,
    Escalation,
    Telemetry,
}

impl MessageKind {
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Snapshot => "snapshot",
            MessageKind::Alarm => "alarm",
            MessageKind::AlarmCleared => "alarm_cleared",
            MessageKind::Acknowledged => "acknowledged",
            MessageKind::Silenced => "silenced",
            MessageKind::Escalation => "escalation",
            MessageKind::Telemetry => "telemetry",
        }
    }
}

/// One live update.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LiveMessage {
    pub kind: MessageKind,
    pub patient_id: String,
    #[serde(skip)]
    pub clinic_id: String,
    pub at_ms: i64,
    pub data: serde_json::Value,
    /// A routine update (telemetry with the pump's state unchanged): the patient's own streams carry it, the
    /// clinic's dashboard streams leave it out (at 10,000 pumps that is a thousand a second, which would crowd out
    /// the alarms; the dashboard shows nothing finer than the state).
    #[serde(skip)]
    pub routine: bool,
}

//! The wire format between a pump (or the gateway in front of real pumps) and the server. A pump authenticates
//! with its own device token (`Authorization: Bearer …`), sends batches of events and a telemetry snapshot,
//! numbered by a per-device sequence so a re-sent batch is harmless, and heartbeats when it has nothing else to
//! say. These types and their limits are the contract; `validate_batch` is the one check both ends apply.

use serde::{Deserialize, Serialize};

/// Events per link batch: the most a pump sends, and the most the server's link accepts, in one request.
pub const LINK_BATCH_EVENTS_MAX: usize = 500;

/// Pump sequence numbers are below this (2^62); the range above is reserved for events the server writes
/// about a pump, so the two can never collide.
pub const PUMP_SEQ_MAX: u64 = 1 << 62;

/// Alarm names listed in one telemetry snapshot.
pub const TELEMETRY_ALARMS_MAX: usize = 64;

/// A field of a link message that is not acceptable, and what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct LinkError {
    /// The JSON path of the field, like `events[3].kind` or `telemetry.state`.
    pub field: String,
    pub message: String,
}

impl LinkError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> LinkError {
        LinkError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A batch of events plus the latest telemetry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinkBatch {
    #[serde(default)]
    pub events: Vec<LinkEvent>,
    #[serde(default)]
    pub telemetry: Option<Telemetry>,
}

/// One pump event. `kind` follows the record's names (`alarm_raised`, `alarm_cleared`, `alarm_acknowledged`,
/// `alarm_silenced`, `state_changed`, `infusion_started`, …); unknown kinds are stored as they are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinkEvent {
    /// Per-device sequence number, strictly increasing across the pump's life; the dedup key.
    pub seq: u64,
    /// When the pump saw it (RFC 3339 UTC).
    pub occurred_at: jiff::Timestamp,
    pub kind: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// What the pump is doing now; drives the live screens and the silence watchdog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// `pump::State::name()`: idle, programmed, infusing, paused, stopped_by_alarm, complete, kvo, …
    pub state: String,
    pub rate_ml_per_h: f64,
    pub delivered_ml: f64,
    pub remaining_ml: f64,
    #[serde(default)]
    pub minutes_left: Option<f64>,
    pub battery_percent: f64,
    #[serde(default)]
    pub battery_minutes_left: Option<f64>,
    #[serde(default)]
    pub downstream_pressure_mmhg: Option<f64>,
    #[serde(default)]
    pub mains_present: Option<bool>,
    /// Names of the alarms active on the pump.
    #[serde(default)]
    pub active_alarms: Vec<String>,
}

impl Telemetry {
    /// Reject values no pump can report, naming the field.
    pub fn validate(&self) -> Result<(), LinkError> {
        if pump::State::from_name(&self.state).is_none() {
            let names: Vec<_> = pump::State::ALL.iter().map(|s| s.name()).collect();
            return Err(LinkError::new(
                "telemetry.state",
                format!(
                    "{:?} is not a pump state; use one of {}",
                    self.state,
                    names.join(", ")
                ),
            ));
        }
        for (field, value, max) in [
            ("telemetry.rate_ml_per_h", self.rate_ml_per_h, 10_000.0),
            ("telemetry.delivered_ml", self.delivered_ml, 100_000.0),
            ("telemetry.remaining_ml", self.remaining_ml, 100_000.0),
            ("telemetry.battery_percent", self.battery_percent, 100.0),
        ] {
            if !value.is_finite() || !(0.0..=max).contains(&value) {
                return Err(LinkError::new(
                    field,
                    format!("must be a number from 0 to {max}"),
                ));
            }
        }
        if self.active_alarms.len() > TELEMETRY_ALARMS_MAX
            || self.active_alarms.iter().any(|a| !valid_name(a))
        {
            return Err(LinkError::new(
                "telemetry.active_alarms",
                format!("a list of at most {TELEMETRY_ALARMS_MAX} alarm names (a-z, 0-9, _)"),
            ));
        }
        Ok(())
    }

    pub fn is_infusing(&self) -> bool {
        matches!(self.state.as_str(), "infusing" | "kvo")
    }
}

/// `[a-z0-9_]{1,64}`: event kinds and alarm names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The server's answer to a batch or heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchResponse {
    /// Sequence numbers stored now.
    pub accepted: Vec<u64>,
    /// Sequence numbers already stored earlier (a re-sent batch); not stored again.
    pub duplicates: Vec<u64>,
    /// Things the pump should do, from the screens (acknowledge an alarm acknowledged on the phone).
    #[serde(default)]
    pub commands: Vec<PumpCommand>,
}

/// A remote command for the pump. The pump applies it with its own rules (the core may refuse).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum PumpCommand {
    Acknowledge { alarm: String },
    Silence { alarm: String },
}

/// A heartbeat body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    #[serde(default)]
    pub telemetry: Option<Telemetry>,
}

/// Check a batch against the link's limits, naming the first field that is wrong.
pub fn validate_batch(batch: &LinkBatch) -> Result<(), LinkError> {
    if batch.events.len() > LINK_BATCH_EVENTS_MAX {
        return Err(LinkError::new(
            "events",
            format!("send at most {LINK_BATCH_EVENTS_MAX} events per batch"),
        ));
    }
    for (i, e) in batch.events.iter().enumerate() {
        if !valid_name(&e.kind) {
            return Err(LinkError::new(
                format!("events[{i}].kind"),
                "use 1 to 64 characters a-z, 0-9, _",
            ));
        }
        if e.seq >= PUMP_SEQ_MAX {
            return Err(LinkError::new(
                format!("events[{i}].seq"),
                "must be below 2^62 (the range above is the server's)",
            ));
        }
        if !(e.data.is_object() || e.data.is_null()) {
            return Err(LinkError::new(
                format!("events[{i}].data"),
                "must be a JSON object",
            ));
        }
        if matches!(
            e.kind.as_str(),
            "alarm_raised" | "alarm_cleared" | "alarm_acknowledged" | "alarm_silenced"
        ) {
            let alarm = e.data.get("alarm").and_then(|a| a.as_str()).unwrap_or("");
            if !valid_name(alarm) {
                return Err(LinkError::new(
                    format!("events[{i}].data.alarm"),
                    "name the alarm (for example occlusion_downstream)",
                ));
            }
        }
        if e.kind == "alarm_raised" {
            let p = e
                .data
                .get("priority")
                .and_then(|a| a.as_str())
                .unwrap_or("");
            if pump::Priority::from_name(p).is_none() {
                return Err(LinkError::new(
                    format!("events[{i}].data.priority"),
                    "use one of low, medium, high",
                ));
            }
        }
    }
    if let Some(t) = &batch.telemetry {
        t.validate()?;
    }
    Ok(())
}

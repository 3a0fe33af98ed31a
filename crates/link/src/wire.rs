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

/// The physical bounds of what a pump can report, from the pump core's own limits (`pump::Config`): a value
/// outside them is a broken or lying sender, never a reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// The fastest programmable rate.
    pub rate_ml_per_h_max: f64,
    /// The largest programmable volume to be infused.
    pub vtbi_ml_max: f64,
    /// The largest bolus.
    pub bolus_ml_max: f64,
    /// Delivered volume on one pump: a full program plus a day of the fastest KVO, with room.
    pub delivered_ml_max: f64,
    /// Minutes left: the largest VTBI at the slowest rate.
    pub minutes_left_max: f64,
    /// Battery minutes left: a week.
    pub battery_minutes_max: f64,
    /// Line pressure: from a full vacuum to well past every occlusion limit.
    pub pressure_mmhg_min: f64,
    pub pressure_mmhg_max: f64,
}

impl Bounds {
    pub fn of_pump() -> Bounds {
        let c = pump::Config::default();
        Bounds {
            rate_ml_per_h_max: c.rate_ml_per_h_max,
            vtbi_ml_max: c.vtbi_ml_max,
            bolus_ml_max: c.bolus_ml_max,
            delivered_ml_max: 2.0 * c.vtbi_ml_max,
            minutes_left_max: c.vtbi_ml_max / c.rate_ml_per_h_min * 60.0,
            battery_minutes_max: 7.0 * 24.0 * 60.0,
            pressure_mmhg_min: -760.0,
            pressure_mmhg_max: 5_000.0,
        }
    }
}

fn in_range(field: &str, value: f64, min: f64, max: f64) -> Result<(), LinkError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(LinkError::new(
            field,
            format!("must be a number from {min} to {max}"),
        ))
    }
}

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
        let b = Bounds::of_pump();
        in_range(
            "telemetry.rate_ml_per_h",
            self.rate_ml_per_h,
            0.0,
            b.rate_ml_per_h_max,
        )?;
        in_range(
            "telemetry.delivered_ml",
            self.delivered_ml,
            0.0,
            b.delivered_ml_max,
        )?;
        in_range(
            "telemetry.remaining_ml",
            self.remaining_ml,
            0.0,
            b.vtbi_ml_max,
        )?;
        in_range(
            "telemetry.battery_percent",
            self.battery_percent,
            0.0,
            100.0,
        )?;
        if let Some(v) = self.minutes_left {
            in_range("telemetry.minutes_left", v, 0.0, b.minutes_left_max)?;
        }
        if let Some(v) = self.battery_minutes_left {
            in_range(
                "telemetry.battery_minutes_left",
                v,
                0.0,
                b.battery_minutes_max,
            )?;
        }
        if let Some(v) = self.downstream_pressure_mmhg {
            in_range(
                "telemetry.downstream_pressure_mmhg",
                v,
                b.pressure_mmhg_min,
                b.pressure_mmhg_max,
            )?;
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
        check_event_numbers(i, &e.data)?;
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

/// The numeric fields of a pump event, within what the pump can do. A field that is present must be a number in
/// range; absent ones are the record's business (its typed kinds say what each kind needs).
fn check_event_numbers(index: usize, data: &serde_json::Value) -> Result<(), LinkError> {
    let b = Bounds::of_pump();
    for (key, min, max) in [
        ("rate_ml_per_h", 0.0, b.rate_ml_per_h_max),
        ("vtbi_ml", 0.0, b.vtbi_ml_max),
        ("bolus_ml", 0.0, b.bolus_ml_max),
        ("volume_ml", 0.0, b.bolus_ml_max),
        ("delivered_ml", 0.0, b.delivered_ml_max),
    ] {
        let Some(value) = data.get(key) else {
            continue;
        };
        let field = format!("events[{index}].data.{key}");
        match value.as_f64() {
            Some(v) => in_range(&field, v, min, max)?,
            None if value.is_null() => {}
            None => return Err(LinkError::new(field, "must be a number")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telemetry() -> Telemetry {
        Telemetry {
            state: "infusing".into(),
            rate_ml_per_h: 100.0,
            delivered_ml: 10.0,
            remaining_ml: 90.0,
            minutes_left: Some(54.0),
            battery_percent: 80.0,
            battery_minutes_left: Some(600.0),
            downstream_pressure_mmhg: Some(20.0),
            mains_present: Some(true),
            active_alarms: vec![],
        }
    }

    fn field_of(batch: &LinkBatch) -> Option<String> {
        validate_batch(batch).err().map(|e| e.field)
    }

    #[test]
    fn values_no_pump_can_report_are_refused_by_name() {
        let ok = LinkBatch {
            events: vec![],
            telemetry: Some(telemetry()),
        };
        assert_eq!(field_of(&ok), None);
        type Change = fn(&mut Telemetry);
        let cases: [(&str, Change); 6] = [
            ("telemetry.rate_ml_per_h", |t| t.rate_ml_per_h = 1e308),
            ("telemetry.rate_ml_per_h", |t| t.rate_ml_per_h = f64::NAN),
            ("telemetry.minutes_left", |t| t.minutes_left = Some(-5.0)),
            ("telemetry.remaining_ml", |t| t.remaining_ml = -0.5),
            ("telemetry.battery_minutes_left", |t| {
                t.battery_minutes_left = Some(1e9)
            }),
            ("telemetry.downstream_pressure_mmhg", |t| {
                t.downstream_pressure_mmhg = Some(1e6)
            }),
        ];
        for (field, change) in cases {
            let mut t = telemetry();
            change(&mut t);
            let batch = LinkBatch {
                events: vec![],
                telemetry: Some(t),
            };
            assert_eq!(field_of(&batch).as_deref(), Some(field));
        }
    }

    #[test]
    fn program_values_in_events_are_bounded() {
        let event = |data: serde_json::Value| LinkBatch {
            events: vec![LinkEvent {
                seq: 1,
                occurred_at: jiff::Timestamp::UNIX_EPOCH,
                kind: "program_accepted".into(),
                data,
            }],
            telemetry: None,
        };
        assert_eq!(
            field_of(&event(
                serde_json::json!({"rate_ml_per_h": 5.0, "vtbi_ml": 100.0})
            )),
            None
        );
        assert_eq!(
            field_of(&event(
                serde_json::json!({"rate_ml_per_h": 5.0, "vtbi_ml": -5.0})
            ))
            .as_deref(),
            Some("events[0].data.vtbi_ml")
        );
        assert_eq!(
            field_of(&event(
                serde_json::json!({"rate_ml_per_h": 1e308, "vtbi_ml": 5.0})
            ))
            .as_deref(),
            Some("events[0].data.rate_ml_per_h")
        );
        assert_eq!(
            field_of(&event(serde_json::json!({"rate_ml_per_h": "fast"}))).as_deref(),
            Some("events[0].data.rate_ml_per_h")
        );
    }
}

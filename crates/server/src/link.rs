//! The pump link: the wire format between a pump (or the gateway in front of real pumps) and the server, and
//! the server's handlers for it. A pump authenticates with its own device token (`Authorization: Bearer …`),
//! sends batches of events and a telemetry snapshot, numbered by a per-device sequence so a re-sent batch is
//! harmless, and heartbeats when it has nothing else to say. The same types are used by `client`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::AppState;
use crate::db::token_hash;
use crate::error::AppError;

/// Events per batch, and the largest event payload, accepted by the server.
pub const BATCH_EVENTS_MAX: usize = 500;

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
    pub fn validate(&self) -> Result<(), AppError> {
        if pump::State::from_name(&self.state).is_none() {
            let names: Vec<_> = pump::State::ALL.iter().map(|s| s.name()).collect();
            return Err(AppError::invalid(
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
                return Err(AppError::invalid(
                    field,
                    format!("must be a number from 0 to {max}"),
                ));
            }
        }
        if self.active_alarms.len() > 64 || self.active_alarms.iter().any(|a| !valid_name(a)) {
            return Err(AppError::invalid(
                "telemetry.active_alarms",
                "a list of at most 64 alarm names (a-z, 0-9, _)",
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

/// A device, as authenticated by its token.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub patient_id: String,
    pub clinic_id: String,
    pub teaching: bool,
}

/// Authenticate a device from its bearer token.
pub async fn device_from_headers(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Device, AppError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 200)
        .ok_or(AppError::BadDeviceToken)?;
    let row = sqlx::query(
        "SELECT d.id, d.patient_id, d.teaching, p.clinic_id FROM srv_devices d JOIN srv_patients p ON p.id = d.patient_id WHERE d.token_hash = $1",
    )
    .bind(token_hash(token))
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or(AppError::BadDeviceToken)?;
    Ok(Device {
        id: row.try_get("id")?,
        patient_id: row.try_get("patient_id")?,
        clinic_id: row.try_get("clinic_id")?,
        teaching: row.try_get::<i64, _>("teaching")? != 0,
    })
}

/// `POST /api/link/v1/batch`
pub async fn post_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    crate::api::ApiJson(batch): crate::api::ApiJson<LinkBatch>,
) -> Result<Json<BatchResponse>, AppError> {
    let device = device_from_headers(&state, &headers).await?;
    validate_batch(&batch)?;
    Ok(Json(crate::live::ingest(&state, &device, batch).await?))
}

/// `POST /api/link/v1/heartbeat`: telemetry only (or nothing), so the server knows the pump is alive.
pub async fn post_heartbeat(
    State(state): State<AppState>,
    headers: HeaderMap,
    crate::api::ApiJson(beat): crate::api::ApiJson<Heartbeat>,
) -> Result<Json<BatchResponse>, AppError> {
    let device = device_from_headers(&state, &headers).await?;
    let batch = LinkBatch {
        events: vec![],
        telemetry: beat.telemetry,
    };
    validate_batch(&batch)?;
    Ok(Json(crate::live::ingest(&state, &device, batch).await?))
}

/// A heartbeat body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    #[serde(default)]
    pub telemetry: Option<Telemetry>,
}

fn validate_batch(batch: &LinkBatch) -> Result<(), AppError> {
    if batch.events.len() > BATCH_EVENTS_MAX {
        return Err(AppError::invalid(
            "events",
            format!("send at most {BATCH_EVENTS_MAX} events per batch"),
        ));
    }
    for (i, e) in batch.events.iter().enumerate() {
        if !valid_name(&e.kind) {
            return Err(AppError::invalid(
                format!("events[{i}].kind"),
                "use 1 to 64 characters a-z, 0-9, _",
            ));
        }
        if e.seq >= crate::journal::SERVER_SEQ_BASE {
            return Err(AppError::invalid(
                format!("events[{i}].seq"),
                "must be below 2^62 (the range above is the server's)",
            ));
        }
        if !(e.data.is_object() || e.data.is_null()) {
            return Err(AppError::invalid(
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
                return Err(AppError::invalid(
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
                return Err(AppError::invalid(
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

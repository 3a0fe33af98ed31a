//! The practice pump: a simulated pump a nurse starts for a patient in teaching mode, so the patient rehearses
//! the home faults (kink, closed clamp, air, low battery, door, system error) and their response before going
//! home. It is a real simulated pump on the link with its own teaching device: every event it causes is
//! marked `teaching` in the record, its alarms show on the patient's screen but never escalate or page anyone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use link::simpump::{self, SimPumpConfig};

use crate::domain::{EventDraft, ServerKind};
use crate::error::AppError;
use crate::services::AppState;
use crate::services::access::PatientAccess;
use crate::services::now_ms;

/// A fault the nurse can set on the practice pump: the simulator actions that cause it, in order, and the alarm
/// the pump's own physics then raises (the practice page and its test hold the pump to it).
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub id: &'static str,
    pub label: &'static str,
    pub actions: &'static [&'static str],
    /// Then set the battery so that it lasts about this many minutes at the pump's present load.
    pub battery_minutes: Option<f64>,
    pub alarm: &'static str,
}

/// The faults the practice screen offers. Low battery unplugs the pump and leaves its battery about 20 minutes
/// at the pump's present load (worked out from its own gauge): below the core's 40-minute `battery_low`
/// threshold, far above the 3-minute `battery_depleted` one, so the patient practises plugging in before the
/// pump stops. (A fixed percentage would not do: the same 8 % lasts hours at a slow rate.)
pub const FAULTS: &[Fault] = &[
    Fault {
        id: "kink",
        label: "Kinked tubing",
        actions: &[r#"{"action": "kink"}"#],
        battery_minutes: None,
        alarm: "occlusion_downstream",
    },
    Fault {
        id: "closed_clamp",
        label: "Closed clamp",
        actions: &[r#"{"action": "close_downstream_clamp"}"#],
        battery_minutes: None,
        alarm: "occlusion_downstream",
    },
    Fault {
        id: "air",
        label: "Air in the line",
        actions: &[r#"{"action": "air_bubble", "volume_ul": 250.0}"#],
        battery_minutes: None,
        alarm: "air_in_line",
    },
    Fault {
        id: "low_battery",
        label: "Low battery",
        actions: &[r#"{"action": "unplug_mains"}"#],
        battery_minutes: Some(20.0),
        alarm: "battery_low",
    },
    Fault {
        id: "door",
        label: "Door open",
        actions: &[r#"{"action": "open_door"}"#],
        battery_minutes: None,
        alarm: "door_open",
    },
    Fault {
        id: "system_error",
        label: "System error",
        actions: &[r#"{"action": "self_test_fail", "code": 42}"#],
        battery_minutes: None,
        alarm: "system_error",
    },
];

/// What the patient can do at the practice pump (the fixes and the buttons).
pub const FIXES: &[(&str, &str, &str)] = &[
    ("unkink", "Straighten the tubing", r#"{"action": "unkink"}"#),
    (
        "open_clamp",
        "Open the clamp",
        r#"{"action": "open_downstream_clamp"}"#,
    ),
    (
        "close_door",
        "Close the door",
        r#"{"action": "close_door"}"#,
    ),
    (
        "plug_in",
        "Plug in the charger",
        r#"{"action": "plug_mains"}"#,
    ),
    (
        "acknowledge",
        "Press acknowledge",
        r#"{"action": "acknowledge"}"#,
    ),
    ("silence", "Press silence", r#"{"action": "silence"}"#),
    ("resume", "Press resume", r#"{"action": "resume"}"#),
    ("start", "Press start", r#"{"action": "start"}"#),
];

struct Session {
    actions: mpsc::Sender<sim::Action>,
    stop: watch::Sender<bool>,
    started_by: String,
}

/// Running practice pumps by patient.
#[derive(Clone, Default)]
pub struct Practice {
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

impl std::fmt::Debug for Practice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Practice")
    }
}

/// State of a patient's practice pump.
#[derive(Debug, Clone, Serialize)]
pub struct PracticeStatus {
    pub running: bool,
    pub started_by: Option<String>,
    /// `(id, label)` of the faults that can be injected.
    pub faults: Vec<(&'static str, &'static str)>,
    /// `(id, label)` of the fixes and buttons.
    pub fixes: Vec<(&'static str, &'static str)>,
}

impl Practice {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Session>) -> R) -> R {
        f(&mut self.sessions.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Whether a practice pump runs for this patient, and what can be done with it.
pub fn status(state: &AppState, access: &PatientAccess) -> PracticeStatus {
    let started_by = state
        .practice
        .with(|m| m.get(&access.patient_id).map(|s| s.started_by.clone()));
    PracticeStatus {
        running: started_by.is_some(),
        started_by,
        faults: FAULTS.iter().map(|f| (f.id, f.label)).collect(),
        fixes: FIXES.iter().map(|(id, label, _)| (*id, *label)).collect(),
    }
}

/// Start a practice pump for a patient (nurses and clinic admins). The pump starts infusing the plan's
/// program (or 100 mL/h) at real-time speed.
pub async fn start(state: &AppState, access: &PatientAccess) -> Result<PracticeStatus, AppError> {
    crate::services::access::require_clinician(&access.user)?;
    if state.practice.with(|m| m.contains_key(&access.patient_id)) {
        return Ok(status(state, access));
    }
    let Some(base_url) = state.self_url.get().cloned() else {
        return Err(AppError::Unavailable(
            "the server is still starting; try again in a moment".into(),
        ));
    };
    let plan = crate::services::plans::get(state, access)
        .await?
        .and_then(|p| care::TherapyPlan::from_value(p.plan).ok());
    let scenario_text = match &plan {
        Some(p) => crate::services::plans::scenario_text(p, "practice", 7),
        None => simpump::DEFAULT_SCENARIO.to_string(),
    };
    let scenario = simpump::scenario(Some(&scenario_text), "practice pump")
        .map_err(|e| AppError::invalid("plan.program", e.to_string()))?;
    let device = crate::services::directory::create_device(
        state,
        &access.patient_id,
        "Practice pump (teaching)",
        true,
        Some(&access.user.id),
    )
    .await?;
    let (actions, control) = mpsc::channel(32);
    let (stop, stopped) = watch::channel(false);
    let client = link::LinkClient::new(&base_url, &device.token);
    let config = SimPumpConfig {
        heartbeat_every: std::time::Duration::from_secs(1),
        ..SimPumpConfig::default()
    };
    // The pump core runs the plan's program under the plan's drug-library limits.
    let library = plan
        .as_ref()
        .map(care::TherapyPlan::drug_library)
        .unwrap_or_default();
    let sim = sim::Simulation::with_library(&scenario, library);
    let patient_id = access.patient_id.clone();
    let practice = state.practice.clone();
    tokio::spawn(async move {
        if let Err(e) = simpump::run(sim, client, config, control, stopped).await {
            eprintln!("infusafe server: practice pump for {patient_id} stopped: {e}");
        }
        practice.with(|m| m.remove(&patient_id));
    });
    state.practice.with(|m| {
        m.insert(
            access.patient_id.clone(),
            Session {
                actions,
                stop,
                started_by: access.user.display_name.clone(),
            },
        )
    });
    let event = EventDraft::new(
        &access.patient_id,
        ServerKind::PracticeStarted,
        access.user.role.origin(),
        Some(&access.user.id),
        now_ms(),
        json!({"device_id": device.device_id, "by": access.user.display_name}),
    )
    .teaching(true);
    state.journal.append_one(event).await?;
    Ok(status(state, access))
}

/// Inject a fault or press a button on the practice pump: `what` is a fault or fix id from `FAULTS` / `FIXES`.
pub async fn act(
    state: &AppState,
    access: &PatientAccess,
    what: &str,
) -> Result<PracticeStatus, AppError> {
    let (is_fault, texts, battery_minutes): (bool, Vec<&str>, Option<f64>) = match (
        FAULTS.iter().find(|f| f.id == what),
        FIXES.iter().find(|f| f.0 == what),
    ) {
        (Some(f), _) => (true, f.actions.to_vec(), f.battery_minutes),
        (None, Some(f)) => (false, vec![f.2], None),
        (None, None) => {
            let names: Vec<&str> = FAULTS
                .iter()
                .map(|f| f.id)
                .chain(FIXES.iter().map(|f| f.0))
                .collect();
            return Err(AppError::invalid(
                "action",
                format!(
                    "{what:?} is not a practice action; use one of {}",
                    names.join(", ")
                ),
            ));
        }
    };
    // Faults are the nurse's to set; fixes and buttons are the patient's to practise.
    if is_fault {
        crate::services::access::require_clinician(&access.user)?;
    }
    let mut actions = texts
        .iter()
        .map(|t| serde_json::from_str::<sim::Action>(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(AppError::internal)?;
    if let Some(minutes) = battery_minutes {
        actions.push(sim::Action::SetBatteryPercent {
            percent: battery_percent_for(state, access, minutes),
        });
    }
    let sender = state
        .practice
        .with(|m| m.get(&access.patient_id).map(|s| s.actions.clone()))
        .ok_or_else(|| {
            AppError::Conflict(
                "no practice pump is running for this patient; start one first".into(),
            )
        })?;
    for action in actions {
        sender.send(action).await.map_err(|_| {
            AppError::Conflict("the practice pump has stopped; start it again".into())
        })?;
    }
    let event = EventDraft::new(
        &access.patient_id,
        if is_fault {
            ServerKind::PracticeFault
        } else {
            ServerKind::PracticeAction
        },
        access.user.role.origin(),
        Some(&access.user.id),
        now_ms(),
        json!({"action": what, "by": access.user.display_name}),
    )
    .teaching(true);
    state.journal.append_one(event).await?;
    Ok(status(state, access))
}

/// The battery charge that lasts about `minutes` at the practice pump's present load, from its own gauge
/// (percent now and minutes left now); a cautious 0.5 % when the pump has not reported both yet.
fn battery_percent_for(state: &AppState, access: &PatientAccess, minutes: f64) -> f64 {
    crate::services::alarms::snapshot(state, access)
        .practice_telemetry
        .and_then(|t| {
            let left = t.battery_minutes_left?;
            (left > 0.0 && t.battery_percent > 0.0).then(|| t.battery_percent * minutes / left)
        })
        .filter(|p| p.is_finite())
        .map(|p| p.clamp(0.01, 50.0))
        .unwrap_or(0.5)
}

/// Stop the practice pump and clear its alarms from the screens.
pub async fn stop(state: &AppState, access: &PatientAccess) -> Result<PracticeStatus, AppError> {
    crate::services::access::require_clinician(&access.user)?;
    if let Some(session) = state.practice.with(|m| m.remove(&access.patient_id)) {
        let _ = session.stop.send(true);
        // Let the pump send its last batch before its alarms are cleared from the board.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        crate::services::alarms::clear_teaching(state, &access.patient_id);
        let event = EventDraft::new(
            &access.patient_id,
            ServerKind::PracticeStopped,
            access.user.role.origin(),
            Some(&access.user.id),
            now_ms(),
            json!({"by": access.user.display_name}),
        )
        .teaching(true);
        state.journal.append_one(event).await?;
    }
    Ok(status(state, access))
}

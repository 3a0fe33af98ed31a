//! The practice pump screens: the nurse starts a simulated pump in teaching mode for a patient and triggers
//! the home faults; the patient practises the fixes with the pump's buttons on their own "My pump" page.
//! The pump itself, and the marking of its events as teaching, is `crate::practice`.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use crate::error::AppError;
use crate::http::extract::WebUser;
use crate::services::AppState;
use crate::services::access;

use super::common::{self, patient_base, patient_layout, see_other};
use super::view::{FaultButton, PracticeButtons, PracticePage, PumpScreen, html};

/// `?done=<action>` after a press: the page confirms what was sent to the practice pump.
#[derive(Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
}

impl Done {
    pub fn done(&self) -> Option<&str> {
        self.done.as_deref()
    }
}

/// The confirmation for a press, or `None` for an unknown or missing action.
pub fn done_notice(done: Option<&str>) -> Option<String> {
    let what = done?;
    let status_label = crate::services::practice::FAULTS
        .iter()
        .map(|f| (f.id, f.label))
        .chain(crate::services::practice::FIXES.iter().map(|f| (f.0, f.1)))
        .find(|(id, _)| *id == what)
        .map(|(_, label)| label)?;
    Some(format!(
        "Done: \u{201c}{status_label}\u{201d} was sent to the practice pump. Its screen below shows what it does."
    ))
}

/// The practice pump's screen: its state and, during an alarm, the word on its display, with what it needs next.
pub fn pump_screen(
    state: &AppState,
    access: &crate::services::access::PatientAccess,
) -> Option<PumpScreen> {
    let snapshot = crate::services::alarms::snapshot(state, access);
    let t = snapshot.practice_telemetry.as_ref()?;
    let (state_label, state_class) = super::view::state_words(&t.state);
    let alarm = snapshot.active_alarms.iter().find(|a| a.teaching);
    let alarm_word = alarm
        .and_then(|a| care::Alarm::from_name(&a.alarm))
        .map(|k| care::content().alarm(k).screen.clone())
        .unwrap_or_default();
    let running = matches!(t.state.as_str(), "infusing" | "kvo");
    let hint = match t.state.as_str() {
        "stopped_by_alarm" | "alarm" => {
            "Stopped by the alarm: fix the cause, press Acknowledge, then Resume to run it again."
        }
        "fault" => "A system fault: this pump cannot run again. Stop the practice pump and start a new one.",
        "paused" => "Paused: press Resume to run it again.",
        _ if alarm.is_some() => "Fix the cause and press Acknowledge.",
        _ if !running => {
            "Not running: press Start before the next fault. A stopped pump cannot sense a blocked line."
        }
        _ => "",
    }
    .to_string();
    Some(PumpScreen {
        state_label,
        state_class,
        detail: format!(
            "{} · {} infused · battery {}{}",
            super::view::format_ml(t.rate_ml_per_h, "mL/h"),
            super::view::format_ml(t.delivered_ml, "mL"),
            if t.battery_percent < 1.0 {
                "under 1%".to_string()
            } else {
                format!("{:.0}%", t.battery_percent)
            },
            match t.mains_present {
                Some(true) => ", plugged in",
                Some(false) => ", on battery",
                None => "",
            }
        ),
        alarm_word,
        hint,
    })
}

fn practice_base(patient_id: &str) -> String {
    format!("/nurse/patients/{patient_id}/practice")
}

/// `GET /nurse/patients/{patient}/practice`
pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, AppError> {
    crate::services::access::require_clinician(&user)?;
    let access = common::read_access(&state, &user, &patient_id).await?;
    let status = crate::services::practice::status(&state, &access);
    let mut layout = patient_layout(&state, &access, "Practice pump", "practice", true).await;
    layout.title = format!("Practice pump: {}", access.display_name);
    layout.notice = done_notice(done.done.as_deref());
    let base = practice_base(&patient_id);
    Ok(html(&PracticePage {
        patient_name: access.display_name.clone(),
        running: status.running,
        started_by: status.started_by.unwrap_or_default(),
        patient_pump_href: format!("{}/pump", patient_base(&patient_id)),
        faults: status
            .faults
            .iter()
            .map(|(value, label)| FaultButton { value, label })
            .collect(),
        fault_action: format!("{base}/act"),
        fixes: status
            .fixes
            .iter()
            .map(|(value, label)| FaultButton { value, label })
            .collect(),
        screen: pump_screen(&state, &access),
        start_action: format!("{base}/start"),
        stop_action: format!("{base}/stop"),
        patient_href: format!("/nurse/patients/{patient_id}"),
        layout,
    }))
}

/// `POST /nurse/patients/{patient}/practice/start`
pub async fn start(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
) -> Result<Response, AppError> {
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    crate::services::practice::start(&state, &access).await?;
    Ok(see_other(&practice_base(&patient_id)))
}

/// `POST /nurse/patients/{patient}/practice/stop`
pub async fn stop(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
) -> Result<Response, AppError> {
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    crate::services::practice::stop(&state, &access).await?;
    Ok(see_other(&practice_base(&patient_id)))
}

/// `POST /nurse/patients/{patient}/practice/act` (a fault, nurses only) and `POST /p/{patient}/practice`
/// (a fix or button, the patient too): `what` names it.
pub async fn act(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    let pairs = common::form_pairs(&body)?;
    let what = common::form_value(&pairs, "what").unwrap_or_default();
    crate::services::practice::act(&state, &access, what).await?;
    // The page says what was pressed (feedback for every press); the action is a known id, checked above.
    if uri.path().starts_with("/nurse/") {
        Ok(see_other(&format!(
            "{}?done={what}",
            practice_base(&patient_id)
        )))
    } else {
        Ok(see_other(&format!(
            "{}/pump?done={what}#practice-h",
            patient_base(&patient_id)
        )))
    }
}

/// The buttons on the patient's pump page while a practice pump runs for them.
pub fn patient_buttons(
    state: &AppState,
    access: &crate::services::access::PatientAccess,
) -> Option<PracticeButtons> {
    let status = crate::services::practice::status(state, access);
    status.running.then(|| PracticeButtons {
        action: format!("{}/practice", patient_base(&access.patient_id)),
        buttons: status
            .fixes
            .iter()
            .map(|(value, label)| FaultButton { value, label })
            .collect(),
        screen: pump_screen(state, access),
    })
}

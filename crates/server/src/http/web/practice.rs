//! The practice pump screens: the nurse starts a simulated pump in teaching mode for a patient and triggers
//! the home faults; the patient practises the fixes with the pump's buttons on their own "My pump" page.
//! The pump itself, and the marking of its events as teaching, is `crate::practice`.

use axum::extract::{Path, State};
use axum::response::Response;

use crate::error::AppError;
use crate::http::extract::WebUser;
use crate::services::AppState;
use crate::services::access;

use super::common::{self, patient_base, patient_layout, see_other};
use super::view::{FaultButton, PracticeButtons, PracticePage, html};

fn practice_base(patient_id: &str) -> String {
    format!("/nurse/patients/{patient_id}/practice")
}

/// `GET /nurse/patients/{patient}/practice`
pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
) -> Result<Response, AppError> {
    crate::services::access::require_clinician(&user)?;
    let access = common::read_access(&state, &user, &patient_id).await?;
    let status = crate::services::practice::status(&state, &access);
    let mut layout = patient_layout(&state, &access, "Practice pump", "practice", true).await;
    layout.title = format!("Practice pump: {}", access.display_name);
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
    if uri.path().starts_with("/nurse/") {
        Ok(see_other(&practice_base(&patient_id)))
    } else {
        Ok(see_other(&format!("{}/pump", patient_base(&patient_id))))
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
    })
}

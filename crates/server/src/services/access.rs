//! The one place that decides whether a person may touch a patient's record: a patient or caregiver only
//! the patients linked to their account, a nurse or clinic admin only the patients of their own clinic.
//! Reads through `patient` are audited as `record_read` events.

use record::Kind;
use serde::Serialize;

use crate::domain::{EventDraft, Role};
use crate::error::AppError;
use crate::services::AppState;
pub use crate::services::auth::{CurrentUser, require_admin, require_clinician};
use crate::services::now_ms;

/// Proof that `user` may act on `patient_id`; handlers take one before touching patient data.
#[derive(Debug, Clone, Serialize)]
pub struct PatientAccess {
    pub patient_id: String,
    pub clinic_id: String,
    pub display_name: String,
    pub user: CurrentUser,
}

/// Check access and record the read. Unknown patients and patients outside the person's reach answer the
/// same 404, so ids of other clinics' patients cannot be probed.
pub async fn patient(
    state: &AppState,
    user: &CurrentUser,
    patient_id: &str,
) -> Result<PatientAccess, AppError> {
    patient_for(state, user, patient_id, Some("read")).await
}

/// Check access without writing a `record_read` event, for actions that record their own event
/// (acknowledge, silence, plan change) and for live streams (audited once when opened).
pub async fn patient_for_action(
    state: &AppState,
    user: &CurrentUser,
    patient_id: &str,
) -> Result<PatientAccess, AppError> {
    patient_for(state, user, patient_id, None).await
}

async fn patient_for(
    state: &AppState,
    user: &CurrentUser,
    patient_id: &str,
    audit: Option<&str>,
) -> Result<PatientAccess, AppError> {
    if patient_id.is_empty()
        || patient_id.len() > 64
        || !patient_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(AppError::not_found("this patient"));
    }
    let (clinic_id, display_name) = crate::store::directory::patient(&state.db, patient_id)
        .await?
        .ok_or_else(|| AppError::not_found("this patient"))?;
    let allowed = match user.role {
        Role::Patient | Role::Caregiver => user.patient_ids.iter().any(|p| p == patient_id),
        Role::Nurse | Role::Admin => user.clinic_id == clinic_id,
    };
    if !allowed {
        return Err(AppError::not_found("this patient"));
    }
    let access = PatientAccess {
        patient_id: patient_id.to_string(),
        clinic_id,
        display_name,
        user: user.clone(),
    };
    if let Some(what) = audit {
        state
            .journal
            .append_one(EventDraft::new(
                patient_id,
                Kind::RecordRead,
                user.role.origin(),
                Some(&user.id),
                now_ms(),
                serde_json::json!({"reader": user.id, "scope": what, "role": user.role.name(), "display_name": user.display_name}),
            ))
            .await?;
    }
    Ok(access)
}

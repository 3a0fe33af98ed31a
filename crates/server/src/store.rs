//! Clinics, patients and device tokens: the server's own directory, kept next to the record in the same
//! database. Creating a patient or assigning a device is also written to the record (`patient_registered`,
//! `device_assigned`) so the record alone can rebuild who was who.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use crate::AppState;
use crate::db::{new_id, now_ms, random_hex, token_hash};
use crate::error::AppError;
use crate::journal::{NewEvent, Source};

/// Create a clinic with a fresh webhook signing secret.
pub async fn create_clinic(state: &AppState, name: &str) -> Result<String, AppError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(AppError::invalid(
            "name",
            "give the clinic a name of 1 to 200 characters",
        ));
    }
    let id = new_id("cln");
    sqlx::query("INSERT INTO srv_clinics (id, name, webhook_url, webhook_secret, created_at_ms) VALUES ($1, $2, NULL, $3, $4)")
        .bind(id.clone())
        .bind(name.trim().to_string())
        .bind(random_hex(32))
        .bind(now_ms())
        .execute(&state.db.pool)
        .await?;
    Ok(id)
}

/// Create a patient in a clinic; recorded as `patient_registered`.
pub async fn create_patient(
    state: &AppState,
    clinic_id: &str,
    display_name: &str,
    actor: Option<&str>,
) -> Result<String, AppError> {
    let name = display_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::invalid(
            "display_name",
            "give the patient's name (1 to 200 characters)",
        ));
    }
    let id = new_id("pat");
    sqlx::query("INSERT INTO srv_patients (id, clinic_id, display_name, created_at_ms) VALUES ($1, $2, $3, $4)")
        .bind(id.clone())
        .bind(clinic_id.to_string())
        .bind(name.to_string())
        .bind(now_ms())
        .execute(&state.db.pool)
        .await?;
    state
        .journal
        .append_one(NewEvent::now(
            &id,
            "patient_registered",
            if actor.is_some() {
                Source::Admin
            } else {
                Source::System
            },
            actor,
            json!({"display_name": name, "clinic_id": clinic_id}),
        ))
        .await?;
    crate::live::register(state, &id, clinic_id);
    Ok(id)
}

/// A device token, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct NewDevice {
    pub device_id: String,
    /// The bearer token for the pump link. Only its hash is stored; it cannot be shown again.
    pub token: String,
}

/// Give a patient a pump (or a practice pump with `teaching`); recorded as `device_assigned`.
pub async fn create_device(
    state: &AppState,
    patient_id: &str,
    label: &str,
    teaching: bool,
    actor: Option<&str>,
) -> Result<NewDevice, AppError> {
    if label.trim().is_empty() || label.len() > 200 {
        return Err(AppError::invalid(
            "label",
            "give the pump a label of 1 to 200 characters (model and serial)",
        ));
    }
    let device_id = new_id("dev");
    let token = format!("pump_{}", random_hex(32));
    sqlx::query("INSERT INTO srv_devices (id, patient_id, token_hash, label, teaching, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(device_id.clone())
        .bind(patient_id.to_string())
        .bind(token_hash(&token))
        .bind(label.trim().to_string())
        .bind(i64::from(teaching))
        .bind(now_ms())
        .execute(&state.db.pool)
        .await?;
    let mut event = NewEvent::now(
        patient_id,
        "device_assigned",
        if actor.is_some() {
            Source::Admin
        } else {
            Source::System
        },
        actor,
        json!({"device_id": device_id, "model": label.trim(), "serial": device_id, "teaching": teaching}),
    );
    event.teaching = teaching;
    state.journal.append_one(event).await?;
    Ok(NewDevice { device_id, token })
}

/// `(id, display_name)` of a clinic's patients, by name.
pub async fn clinic_patients(
    state: &AppState,
    clinic_id: &str,
) -> Result<Vec<(String, String)>, AppError> {
    let rows = sqlx::query(
        "SELECT id, display_name FROM srv_patients WHERE clinic_id = $1 ORDER BY display_name, id",
    )
    .bind(clinic_id.to_string())
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("display_name")?)))
        .collect()
}

/// Every patient with their clinic (for loading the live board at start).
pub async fn all_patients(state: &AppState) -> Result<Vec<(String, String)>, AppError> {
    let rows = sqlx::query("SELECT id, clinic_id FROM srv_patients")
        .fetch_all(&state.db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("clinic_id")?)))
        .collect()
}

/// Set (or remove, with `None`) a clinic's webhook URL. Returns the signing secret to configure the receiver.
pub async fn set_webhook(
    state: &AppState,
    clinic_id: &str,
    url: Option<&str>,
) -> Result<String, AppError> {
    if let Some(u) = url {
        let ok = u.len() <= 500
            && u.starts_with("http://")
            && u.parse::<http::Uri>().is_ok_and(|uri| uri.host().is_some());
        if !ok {
            return Err(AppError::invalid(
                "url",
                "give an http:// URL of at most 500 characters (for https, point it at a local TLS relay; see docs/server.md)",
            ));
        }
    }
    sqlx::query("UPDATE srv_clinics SET webhook_url = $1 WHERE id = $2")
        .bind(url.map(str::to_string))
        .bind(clinic_id.to_string())
        .execute(&state.db.pool)
        .await?;
    let row = sqlx::query("SELECT webhook_secret FROM srv_clinics WHERE id = $1")
        .bind(clinic_id.to_string())
        .fetch_one(&state.db.pool)
        .await?;
    Ok(row.try_get("webhook_secret")?)
}

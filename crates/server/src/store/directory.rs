//! Clinics, patients and devices (`srv_clinics`, `srv_patients`, `srv_devices`): the server's own directory,
//! kept next to the record in the same database.

use sqlx::Row;

use super::Db;
use crate::error::AppError;

pub async fn insert_clinic(
    db: &Db,
    id: &str,
    name: &str,
    webhook_secret: &str,
    now_ms: i64,
) -> Result<(), AppError> {
    sqlx::query("INSERT INTO srv_clinics (id, name, webhook_url, webhook_secret, created_at_ms) VALUES ($1, $2, NULL, $3, $4)")
        .bind(id.to_string())
        .bind(name.to_string())
        .bind(webhook_secret.to_string())
        .bind(now_ms)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn insert_patient(
    db: &Db,
    id: &str,
    clinic_id: &str,
    display_name: &str,
    now_ms: i64,
) -> Result<(), AppError> {
    sqlx::query("INSERT INTO srv_patients (id, clinic_id, display_name, created_at_ms) VALUES ($1, $2, $3, $4)")
        .bind(id.to_string())
        .bind(clinic_id.to_string())
        .bind(display_name.to_string())
        .bind(now_ms)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// A patient as stored: `(clinic_id, display_name)`.
pub async fn patient(db: &Db, patient_id: &str) -> Result<Option<(String, String)>, AppError> {
    let Some(row) = sqlx::query("SELECT clinic_id, display_name FROM srv_patients WHERE id = $1")
        .bind(patient_id.to_string())
        .fetch_optional(&db.pool)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        row.try_get("clinic_id")?,
        row.try_get("display_name")?,
    )))
}

/// `(id, display_name)` of a clinic's patients, by name.
pub async fn clinic_patients(db: &Db, clinic_id: &str) -> Result<Vec<(String, String)>, AppError> {
    let rows = sqlx::query(
        "SELECT id, display_name FROM srv_patients WHERE clinic_id = $1 ORDER BY display_name, id",
    )
    .bind(clinic_id.to_string())
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("display_name")?)))
        .collect()
}

/// Every patient with their clinic (for loading the live board at start).
pub async fn all_patients(db: &Db) -> Result<Vec<(String, String)>, AppError> {
    let rows = sqlx::query("SELECT id, clinic_id FROM srv_patients")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("clinic_id")?)))
        .collect()
}

/// A device row to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub id: String,
    pub patient_id: String,
    pub token_hash: String,
    pub label: String,
    pub teaching: bool,
    /// The id its IHE PCD gateway sends (MSH-3.2), if it speaks PCD.
    pub pcd_device_id: Option<String>,
}

pub async fn insert_device(db: &Db, d: &DeviceRow, now_ms: i64) -> Result<(), AppError> {
    sqlx::query("INSERT INTO srv_devices (id, patient_id, token_hash, label, teaching, created_at_ms, pcd_device_id) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(d.id.clone())
        .bind(d.patient_id.clone())
        .bind(d.token_hash.clone())
        .bind(d.label.clone())
        .bind(i64::from(d.teaching))
        .bind(now_ms)
        .bind(d.pcd_device_id.clone())
        .execute(&db.pool)
        .await
        .map_err(super::pcd::unique_violation)?;
    Ok(())
}

/// The device holding this token hash: `(device_id, patient_id, clinic_id, teaching)`.
pub async fn device_by_token(
    db: &Db,
    token_hash: &str,
) -> Result<Option<(String, String, String, bool)>, AppError> {
    let Some(row) = sqlx::query(
        "SELECT d.id, d.patient_id, d.teaching, p.clinic_id FROM srv_devices d JOIN srv_patients p ON p.id = d.patient_id WHERE d.token_hash = $1 AND d.revoked_at_ms IS NULL",
    )
    .bind(token_hash.to_string())
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        row.try_get("id")?,
        row.try_get("patient_id")?,
        row.try_get("clinic_id")?,
        row.try_get::<i64, _>("teaching")? != 0,
    )))
}

/// The ids of every practice (teaching) device.
pub async fn teaching_devices(db: &Db) -> Result<Vec<String>, AppError> {
    sqlx::query("SELECT id FROM srv_devices WHERE teaching = 1")
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("id")?))
        .collect()
}

/// A device's patient and clinic: `(patient_id, clinic_id, revoked)`.
pub async fn device(db: &Db, device_id: &str) -> Result<Option<(String, String, bool)>, AppError> {
    let Some(row) = sqlx::query(
        "SELECT d.patient_id, p.clinic_id, d.revoked_at_ms FROM srv_devices d JOIN srv_patients p ON p.id = d.patient_id WHERE d.id = $1",
    )
    .bind(device_id.to_string())
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        row.try_get("patient_id")?,
        row.try_get("clinic_id")?,
        row.try_get::<Option<i64>, _>("revoked_at_ms")?.is_some(),
    )))
}

/// Revoke a device's token: the link refuses it from now on.
pub async fn revoke_device(db: &Db, device_id: &str, now_ms: i64) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE srv_devices SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL",
    )
    .bind(now_ms)
    .bind(device_id.to_string())
    .execute(&db.pool)
    .await?;
    Ok(())
}

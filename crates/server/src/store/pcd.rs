//! IHE PCD: the device id a gateway sends (`srv_devices.pcd_device_id`) and every outbound alarm report attempt
//! (`srv_pcd_attempts`).

use sqlx::Row;

use super::Db;
use crate::error::AppError;

/// The live (not revoked) device with this PCD id: `(device_id, patient_id, clinic_id, teaching)`.
pub async fn device_by_pcd_id(
    db: &Db,
    pcd_device_id: &str,
) -> Result<Option<(String, String, String, bool)>, AppError> {
    let Some(row) = sqlx::query(
        "SELECT d.id, d.patient_id, d.teaching, p.clinic_id FROM srv_devices d JOIN srv_patients p ON p.id = d.patient_id WHERE d.pcd_device_id = $1 AND d.revoked_at_ms IS NULL",
    )
    .bind(pcd_device_id.to_string())
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

/// The device that already holds this PCD id, if any.
pub async fn holder(db: &Db, pcd_device_id: &str) -> Result<Option<String>, AppError> {
    Ok(
        sqlx::query("SELECT id FROM srv_devices WHERE pcd_device_id = $1")
            .bind(pcd_device_id.to_string())
            .fetch_optional(&db.pool)
            .await?
            .map(|r| r.try_get("id"))
            .transpose()?,
    )
}

/// Set (or remove) a device's PCD id. A unique index keeps one device per id, also against a race.
pub async fn set_pcd_device_id(
    db: &Db,
    device_id: &str,
    pcd_device_id: Option<&str>,
) -> Result<(), AppError> {
    sqlx::query("UPDATE srv_devices SET pcd_device_id = $1 WHERE id = $2")
        .bind(pcd_device_id.map(str::to_string))
        .bind(device_id.to_string())
        .execute(&db.pool)
        .await
        .map_err(unique_violation)?;
    Ok(())
}

/// A unique-index violation is a conflict the caller can fix, not a fault.
pub(crate) fn unique_violation(e: sqlx::Error) -> AppError {
    if let sqlx::Error::Database(d) = &e
        && d.is_unique_violation()
    {
        return AppError::Conflict("another pump already has this PCD device id".into());
    }
    AppError::from(e)
}

/// One attempt to send an alarm report out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub id: String,
    pub control_id: String,
    pub patient_id: String,
    pub alarm: String,
    pub phase: String,
    pub target: String,
    pub attempt: i64,
    pub at_ms: i64,
    pub ack_code: Option<String>,
    pub error: Option<String>,
    pub delivered: bool,
}

pub async fn insert_attempt(db: &Db, a: &Attempt) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO srv_pcd_attempts (id, control_id, patient_id, alarm, phase, target, attempt, at_ms, ack_code, error, delivered) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(a.id.clone())
    .bind(a.control_id.clone())
    .bind(a.patient_id.clone())
    .bind(a.alarm.clone())
    .bind(a.phase.clone())
    .bind(a.target.clone())
    .bind(a.attempt)
    .bind(a.at_ms)
    .bind(a.ack_code.clone())
    .bind(a.error.clone())
    .bind(i64::from(a.delivered))
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Every attempt for a patient, oldest first.
pub async fn attempts(db: &Db, patient_id: &str) -> Result<Vec<Attempt>, AppError> {
    let rows = sqlx::query(
        "SELECT id, control_id, patient_id, alarm, phase, target, attempt, at_ms, ack_code, error, delivered FROM srv_pcd_attempts WHERE patient_id = $1 ORDER BY at_ms, attempt, id",
    )
    .bind(patient_id.to_string())
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Attempt {
                id: r.try_get("id")?,
                control_id: r.try_get("control_id")?,
                patient_id: r.try_get("patient_id")?,
                alarm: r.try_get("alarm")?,
                phase: r.try_get("phase")?,
                target: r.try_get("target")?,
                attempt: r.try_get("attempt")?,
                at_ms: r.try_get("at_ms")?,
                ack_code: r.try_get("ack_code")?,
                error: r.try_get("error")?,
                delivered: r.try_get::<i64, _>("delivered")? != 0,
            })
        })
        .collect()
}

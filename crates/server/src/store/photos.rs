//! Photos of the access site from the patient's log (`srv_log_photos`), kept per patient under their SHA-256,
//! which the record's `site_seen` event names.

use sqlx::Row;

use super::Db;
use crate::error::AppError;

/// Keep a photo (storing the same bytes twice for a patient is a no-op).
pub async fn insert(
    db: &Db,
    patient_id: &str,
    sha256: &str,
    media_type: &str,
    data_base64: &str,
    now_ms: i64,
) -> Result<(), AppError> {
    let exists =
        sqlx::query("SELECT 1 AS one FROM srv_log_photos WHERE patient_id = $1 AND sha256 = $2")
            .bind(patient_id.to_string())
            .bind(sha256.to_string())
            .fetch_optional(&db.pool)
            .await?
            .is_some();
    if exists {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO srv_log_photos (patient_id, sha256, media_type, data_base64, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(patient_id.to_string())
    .bind(sha256.to_string())
    .bind(media_type.to_string())
    .bind(data_base64.to_string())
    .bind(now_ms)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// `(media_type, data_base64)` of a patient's photo.
pub async fn get(
    db: &Db,
    patient_id: &str,
    sha256: &str,
) -> Result<Option<(String, String)>, AppError> {
    let row = sqlx::query(
        "SELECT media_type, data_base64 FROM srv_log_photos WHERE patient_id = $1 AND sha256 = $2",
    )
    .bind(patient_id.to_string())
    .bind(sha256.to_string())
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| Ok((r.try_get("media_type")?, r.try_get("data_base64")?)))
        .transpose()
}

//! Each clinic's webhook address and signing secret (`srv_clinics`) and every delivery attempt
//! (`srv_webhook_attempts`).

use sqlx::Row;

use super::Db;
use crate::error::AppError;

/// `(url, secret)` of a clinic's webhook; `None` when the clinic does not exist.
pub async fn target(
    db: &Db,
    clinic_id: &str,
) -> Result<Option<(Option<String>, String)>, AppError> {
    let Some(row) =
        sqlx::query("SELECT webhook_url, webhook_secret FROM srv_clinics WHERE id = $1")
            .bind(clinic_id.to_string())
            .fetch_optional(&db.pool)
            .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        row.try_get("webhook_url").ok().flatten(),
        row.try_get("webhook_secret").unwrap_or_default(),
    )))
}

/// Set (or remove) a clinic's webhook URL; returns the signing secret.
pub async fn set_url(db: &Db, clinic_id: &str, url: Option<&str>) -> Result<String, AppError> {
    sqlx::query("UPDATE srv_clinics SET webhook_url = $1 WHERE id = $2")
        .bind(url.map(str::to_string))
        .bind(clinic_id.to_string())
        .execute(&db.pool)
        .await?;
    let row = sqlx::query("SELECT webhook_secret FROM srv_clinics WHERE id = $1")
        .bind(clinic_id.to_string())
        .fetch_one(&db.pool)
        .await?;
    Ok(row.try_get("webhook_secret")?)
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub id: String,
    pub clinic_id: String,
    pub notification_id: String,
    pub attempt: i64,
    pub at_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub delivered: bool,
}

pub async fn insert_attempt(db: &Db, a: &Attempt) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO srv_webhook_attempts (id, clinic_id, notification_id, attempt, at_ms, status_code, error, delivered) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.id.clone())
    .bind(a.clinic_id.clone())
    .bind(a.notification_id.clone())
    .bind(a.attempt)
    .bind(a.at_ms)
    .bind(a.status_code)
    .bind(a.error.clone())
    .bind(i64::from(a.delivered))
    .execute(&db.pool)
    .await?;
    Ok(())
}

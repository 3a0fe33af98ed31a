//! The patients' secret calendar addresses (`srv_calendar_links`): only each token's SHA-256 is stored, and a
//! token is found by that hash, so the database never holds a working address.

use sqlx::Row;

use super::Db;
use crate::error::AppError;

/// A patient's calendar address as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarLink {
    pub token_hash: String,
    pub patient_id: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub last_fetched_at_ms: Option<i64>,
}

fn link_of(row: &sqlx::any::AnyRow) -> Result<CalendarLink, AppError> {
    Ok(CalendarLink {
        token_hash: row.try_get("token_hash")?,
        patient_id: row.try_get("patient_id")?,
        created_by: row.try_get("created_by")?,
        created_at_ms: row.try_get("created_at_ms")?,
        last_fetched_at_ms: row.try_get("last_fetched_at_ms")?,
    })
}

/// Revoke the patient's current address (if any) and store a new one, in one transaction, so a patient never
/// has two working addresses. Returns the hash of the address it replaced.
pub async fn replace(
    db: &Db,
    patient_id: &str,
    token_hash: &str,
    by: &str,
    now_ms: i64,
) -> Result<Option<String>, AppError> {
    let mut tx = db.pool.begin().await?;
    let old: Option<String> = sqlx::query(
        "SELECT token_hash FROM srv_calendar_links WHERE patient_id = $1 AND revoked_at_ms IS NULL",
    )
    .bind(patient_id.to_string())
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| r.try_get("token_hash"))
    .transpose()?;
    sqlx::query(
        "UPDATE srv_calendar_links SET revoked_at_ms = $1, revoked_by = $2 WHERE patient_id = $3 AND revoked_at_ms IS NULL",
    )
    .bind(now_ms)
    .bind(by.to_string())
    .bind(patient_id.to_string())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO srv_calendar_links (token_hash, patient_id, created_by, created_at_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash.to_string())
    .bind(patient_id.to_string())
    .bind(by.to_string())
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(old)
}

/// Revoke the patient's current address; returns the hash it revoked, `None` when there was none.
pub async fn revoke(
    db: &Db,
    patient_id: &str,
    by: &str,
    now_ms: i64,
) -> Result<Option<String>, AppError> {
    let mut tx = db.pool.begin().await?;
    let old: Option<String> = sqlx::query(
        "SELECT token_hash FROM srv_calendar_links WHERE patient_id = $1 AND revoked_at_ms IS NULL",
    )
    .bind(patient_id.to_string())
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| r.try_get("token_hash"))
    .transpose()?;
    sqlx::query(
        "UPDATE srv_calendar_links SET revoked_at_ms = $1, revoked_by = $2 WHERE patient_id = $3 AND revoked_at_ms IS NULL",
    )
    .bind(now_ms)
    .bind(by.to_string())
    .bind(patient_id.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(old)
}

/// The patient's working address, if any.
pub async fn current(db: &Db, patient_id: &str) -> Result<Option<CalendarLink>, AppError> {
    let row = sqlx::query(
        "SELECT token_hash, patient_id, created_by, created_at_ms, last_fetched_at_ms FROM srv_calendar_links WHERE patient_id = $1 AND revoked_at_ms IS NULL",
    )
    .bind(patient_id.to_string())
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(link_of).transpose()
}

/// The working address with this token hash (a revoked or unknown one is `None`), noting the fetch.
pub async fn fetched(
    db: &Db,
    token_hash: &str,
    now_ms: i64,
) -> Result<Option<CalendarLink>, AppError> {
    let row = sqlx::query(
        "SELECT token_hash, patient_id, created_by, created_at_ms, last_fetched_at_ms FROM srv_calendar_links WHERE token_hash = $1 AND revoked_at_ms IS NULL",
    )
    .bind(token_hash.to_string())
    .fetch_optional(&db.pool)
    .await?;
    let Some(link) = row.as_ref().map(link_of).transpose()? else {
        return Ok(None);
    };
    sqlx::query("UPDATE srv_calendar_links SET last_fetched_at_ms = $1 WHERE token_hash = $2")
        .bind(now_ms)
        .bind(token_hash.to_string())
        .execute(&db.pool)
        .await?;
    Ok(Some(link))
}

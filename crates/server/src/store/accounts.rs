//! Accounts, patient links and sessions (`srv_users`, `srv_patient_links`, `srv_sessions`). Secrets arrive here
//! already hashed: this module never sees a password or a session token.

use sqlx::Row;

use super::Db;
use crate::error::AppError;

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub clinic_id: String,
}

/// `(id, role, password_hash)` of the account with this (lower-case) username.
pub async fn credentials(
    db: &Db,
    username: &str,
) -> Result<Option<(String, String, String)>, AppError> {
    let Some(r) = sqlx::query("SELECT id, role, password_hash FROM srv_users WHERE username = $1")
        .bind(username.to_string())
        .fetch_optional(&db.pool)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        r.try_get("id")?,
        r.try_get("role")?,
        r.try_get("password_hash")?,
    )))
}

/// Whether any account exists (the first start of `serve` creates the first admin).
pub async fn any_user(db: &Db) -> Result<bool, AppError> {
    Ok(sqlx::query("SELECT id FROM srv_users LIMIT 1")
        .fetch_optional(&db.pool)
        .await?
        .is_some())
}

pub async fn username_taken(db: &Db, username: &str) -> Result<bool, AppError> {
    Ok(sqlx::query("SELECT id FROM srv_users WHERE username = $1")
        .bind(username.to_string())
        .fetch_optional(&db.pool)
        .await?
        .is_some())
}

pub async fn user(db: &Db, user_id: &str) -> Result<Option<UserRow>, AppError> {
    let Some(row) = sqlx::query(
        "SELECT id, username, display_name, role, clinic_id FROM srv_users WHERE id = $1",
    )
    .bind(user_id.to_string())
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(UserRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        role: row.try_get("role")?,
        clinic_id: row.try_get("clinic_id")?,
    }))
}

/// The patients a (patient or caregiver) account is linked to.
pub async fn patient_links(db: &Db, user_id: &str) -> Result<Vec<String>, AppError> {
    sqlx::query("SELECT patient_id FROM srv_patient_links WHERE user_id = $1 ORDER BY patient_id")
        .bind(user_id.to_string())
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get::<String, _>("patient_id")?))
        .collect()
}

/// Store a new account and its patient links in one transaction.
pub async fn insert_user(
    db: &Db,
    user: &UserRow,
    password_hash: &str,
    patient_ids: &[String],
    now_ms: i64,
) -> Result<(), AppError> {
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO srv_users (id, username, display_name, role, clinic_id, password_hash, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(user.id.clone())
    .bind(user.username.clone())
    .bind(user.display_name.clone())
    .bind(user.role.clone())
    .bind(user.clinic_id.clone())
    .bind(password_hash.to_string())
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    for patient in patient_ids {
        sqlx::query("INSERT INTO srv_patient_links (user_id, patient_id) VALUES ($1, $2)")
            .bind(user.id.clone())
            .bind(patient.clone())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A session as stored: `(user_id, csrf_token, expires_at_ms)`.
pub async fn session(db: &Db, token_hash: &str) -> Result<Option<(String, String, i64)>, AppError> {
    let Some(row) = sqlx::query(
        "SELECT user_id, csrf_token, expires_at_ms FROM srv_sessions WHERE token_hash = $1",
    )
    .bind(token_hash.to_string())
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        row.try_get("user_id")?,
        row.try_get("csrf_token")?,
        row.try_get("expires_at_ms")?,
    )))
}

pub async fn insert_session(
    db: &Db,
    token_hash: &str,
    user_id: &str,
    csrf_token: &str,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO srv_sessions (token_hash, user_id, csrf_token, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash.to_string())
    .bind(user_id.to_string())
    .bind(csrf_token.to_string())
    .bind(now_ms)
    .bind(expires_at_ms)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn delete_session(db: &Db, token_hash: &str) -> Result<(), AppError> {
    sqlx::query("DELETE FROM srv_sessions WHERE token_hash = $1")
        .bind(token_hash.to_string())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Remove sessions that expired before `now_ms` (they are already refused when used).
pub async fn delete_expired_sessions(db: &Db, now_ms: i64) -> Result<u64, AppError> {
    Ok(
        sqlx::query("DELETE FROM srv_sessions WHERE expires_at_ms < $1")
            .bind(now_ms)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}

/// A stored password hash for an account.
pub async fn password_hash(db: &Db, user_id: &str) -> Result<Option<String>, AppError> {
    Ok(
        sqlx::query("SELECT password_hash FROM srv_users WHERE id = $1")
            .bind(user_id.to_string())
            .fetch_optional(&db.pool)
            .await?
            .map(|r| r.try_get("password_hash"))
            .transpose()?,
    )
}

/// Replace an account's password hash and end its sessions (all, or all but `keep_session_hash`), in one
/// transaction: a changed password never leaves a stolen session open.
pub async fn set_password(
    db: &Db,
    user_id: &str,
    password_hash: &str,
    keep_session_hash: Option<&str>,
) -> Result<(), AppError> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("UPDATE srv_users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash.to_string())
        .bind(user_id.to_string())
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM srv_sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id.to_string())
        .bind(keep_session_hash.unwrap_or("").to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

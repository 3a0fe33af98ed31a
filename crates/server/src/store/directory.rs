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

/// The `LIKE` pattern that finds `search` anywhere in a lowercased column: `%`, `_` and `\\` match themselves.
fn contains_pattern(search: &str) -> String {
    let mut pattern = String::from("%");
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One page of a clinic's patients by name, `(id, display_name)`, with how many match in all: those whose name
/// or id contains `search` without regard to case (every patient when it is empty). The database does the
/// search, the count and the paging, so a page costs the same at 100 patients as at 10,000.
pub async fn clinic_patients_page(
    db: &Db,
    clinic_id: &str,
    search: &str,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<(String, String)>), AppError> {
    const MATCHES: &str = "clinic_id = $1 AND (LOWER(display_name) LIKE $2 ESCAPE '\\' OR LOWER(id) LIKE $2 ESCAPE '\\')";
    let pattern = contains_pattern(search);
    let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM srv_patients WHERE {MATCHES}"
    )))
    .bind(clinic_id.to_string())
    .bind(pattern.clone())
    .fetch_one(&db.pool)
    .await?
    .try_get("n")?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, display_name FROM srv_patients WHERE {MATCHES} ORDER BY display_name, id LIMIT $3 OFFSET $4"
    )))
    .bind(clinic_id.to_string())
    .bind(pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    let page = rows
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("display_name")?)))
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok((total, page))
}

/// The names of these patients of a clinic, `(id, display_name)` (ids of another clinic are left out).
pub async fn clinic_patient_names(
    db: &Db,
    clinic_id: &str,
    patient_ids: &[String],
) -> Result<Vec<(String, String)>, AppError> {
    /// Ids per query, well under every backend's limit on bound parameters.
    const IDS_PER_QUERY_MAX: usize = 500;
    let mut named = Vec::with_capacity(patient_ids.len());
    for chunk in patient_ids.chunks(IDS_PER_QUERY_MAX) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT id, display_name FROM srv_patients WHERE clinic_id = $1 AND id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(clinic_id.to_string());
        for id in chunk {
            query = query.bind(id.clone());
        }
        for r in query.fetch_all(&db.pool).await? {
            named.push((r.try_get("id")?, r.try_get("display_name")?));
        }
    }
    Ok(named)
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

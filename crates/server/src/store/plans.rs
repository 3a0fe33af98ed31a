//! Stored therapy plans (`srv_plans`): one row per patient, versioned for optimistic concurrency.

use sqlx::Row;

use super::Db;
use crate::error::AppError;

/// A plan row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    pub plan_json: String,
    pub version: i64,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

pub async fn load(db: &Db, patient_id: &str) -> Result<Option<PlanRow>, AppError> {
    let Some(row) = sqlx::query(
        "SELECT plan_json, version, updated_at_ms, updated_by FROM srv_plans WHERE patient_id = $1",
    )
    .bind(patient_id.to_string())
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(PlanRow {
        plan_json: row.try_get("plan_json")?,
        version: row.try_get("version")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        updated_by: row.try_get("updated_by")?,
    }))
}

/// Store `row` as the patient's plan: the first version (insert) or the next one after `row.version - 1`
/// (update). Returns false when someone else saved in between (nothing was written).
pub async fn save(db: &Db, patient_id: &str, row: &PlanRow) -> Result<bool, AppError> {
    let changed = if row.version > 1 {
        sqlx::query("UPDATE srv_plans SET plan_json = $1, version = $2, updated_at_ms = $3, updated_by = $4 WHERE patient_id = $5 AND version = $6")
            .bind(row.plan_json.clone())
            .bind(row.version)
            .bind(row.updated_at_ms)
            .bind(row.updated_by.clone())
            .bind(patient_id.to_string())
            .bind(row.version - 1)
            .execute(&db.pool)
            .await?
            .rows_affected()
    } else {
        sqlx::query("INSERT INTO srv_plans (patient_id, plan_json, version, updated_at_ms, updated_by) VALUES ($1, $2, $3, $4, $5)")
            .bind(patient_id.to_string())
            .bind(row.plan_json.clone())
            .bind(row.version)
            .bind(row.updated_at_ms)
            .bind(row.updated_by.clone())
            .execute(&db.pool)
            .await?
            .rows_affected()
    };
    Ok(changed == 1)
}

/// Every stored plan: `(patient_id, plan_json)`.
pub async fn all(db: &Db) -> Result<Vec<(String, String)>, AppError> {
    sqlx::query("SELECT patient_id, plan_json FROM srv_plans")
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("patient_id")?, r.try_get("plan_json")?)))
        .collect()
}

//! Therapy plans in the server: stored as JSON (the companion's `TherapyPlan` shape), validated before any
//! write, versioned so two editors cannot overwrite each other, every change recorded as `plan_changed`; and
//! the two things the live engine needs from a plan: the escalation timing and whom to call.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::AppState;
use crate::access::PatientAccess;
use crate::db::now_ms;
use crate::error::AppError;
use crate::escalation::{Rung, Timing};
use crate::journal::NewEvent;

fn normalised(plan: &care::TherapyPlan) -> Value {
    serde_json::from_str(&plan.to_json()).unwrap_or(Value::Null)
}

/// A stored plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRecord {
    pub patient_id: String,
    pub plan: Value,
    /// Increases by one on every save; send it back to save (optimistic concurrency).
    pub version: i64,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// The plan of a patient the caller may see, if one was saved.
pub async fn get(state: &AppState, access: &PatientAccess) -> Result<Option<PlanRecord>, AppError> {
    load(state, &access.patient_id).await
}

async fn load(state: &AppState, patient_id: &str) -> Result<Option<PlanRecord>, AppError> {
    let Some(row) = sqlx::query(
        "SELECT plan_json, version, updated_at_ms, updated_by FROM srv_plans WHERE patient_id = $1",
    )
    .bind(patient_id.to_string())
    .fetch_optional(&state.db.pool)
    .await?
    else {
        return Ok(None);
    };
    let text: String = row.try_get("plan_json")?;
    Ok(Some(PlanRecord {
        patient_id: patient_id.into(),
        plan: serde_json::from_str(&text).map_err(AppError::internal)?,
        version: row.try_get("version")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        updated_by: row.try_get("updated_by")?,
    }))
}

/// Validate and save a plan (clinicians only). `expected_version` must match the stored version (None for
/// the first plan), so a stale editor gets a 409 instead of silently overwriting a colleague's change.
pub async fn save(
    state: &AppState,
    access: &PatientAccess,
    plan: Value,
    expected_version: Option<i64>,
) -> Result<PlanRecord, AppError> {
    crate::access::require_clinician(&access.user)?;
    let parsed_plan = validate(&plan)?;
    state
        .journal
        .set_time_zone(&access.patient_id, parsed_plan.tz());
    let plan = normalised(&parsed_plan);
    let current = load(state, &access.patient_id).await?;
    let current_version = current.as_ref().map(|p| p.version);
    if current_version != expected_version {
        return Err(AppError::Conflict(format!(
            "the plan was changed by someone else (version {} now, you edited version {}); reload it and make your change again",
            current_version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "none".into()),
            expected_version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "none".into()),
        )));
    }
    let version = current_version.unwrap_or(0) + 1;
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let text = plan.to_string();
    let changed = if current.is_some() {
        sqlx::query("UPDATE srv_plans SET plan_json = $1, version = $2, updated_at_ms = $3, updated_by = $4 WHERE patient_id = $5 AND version = $6")
            .bind(text)
            .bind(version)
            .bind(now)
            .bind(access.user.id.clone())
            .bind(access.patient_id.clone())
            .bind(version - 1)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    } else {
        sqlx::query("INSERT INTO srv_plans (patient_id, plan_json, version, updated_at_ms, updated_by) VALUES ($1, $2, $3, $4, $5)")
            .bind(access.patient_id.clone())
            .bind(text)
            .bind(version)
            .bind(now)
            .bind(access.user.id.clone())
            .execute(&mut *tx)
            .await?
            .rows_affected()
    };
    if changed != 1 {
        return Err(AppError::Conflict(
            "the plan was changed by someone else at the same moment; reload it and try again"
                .into(),
        ));
    }
    tx.commit().await?;
    state
        .journal
        .append_one(NewEvent::now(
            &access.patient_id,
            "plan_changed",
            access.user.role.source(),
            Some(&access.user.id),
            json!({"summary": format!("plan version {version} saved by {}", access.user.display_name), "plan_id": format!("{}/v{version}", access.patient_id), "version": version, "by": access.user.id, "plan": plan}),
        ))
        .await?;
    Ok(PlanRecord {
        patient_id: access.patient_id.clone(),
        plan,
        version,
        updated_at_ms: now,
        updated_by: access.user.id.clone(),
    })
}

/// Save a plan as the system (demo seeding); validated the same way, recorded as a `plan_changed` event.
pub async fn seed(state: &AppState, patient_id: &str, plan: Value) -> Result<(), AppError> {
    let parsed_plan = validate(&plan)?;
    state.journal.set_time_zone(patient_id, parsed_plan.tz());
    let plan = normalised(&parsed_plan);
    if load(state, patient_id).await?.is_some() {
        return Ok(());
    }
    sqlx::query("INSERT INTO srv_plans (patient_id, plan_json, version, updated_at_ms, updated_by) VALUES ($1, $2, 1, $3, 'system')")
        .bind(patient_id.to_string())
        .bind(plan.to_string())
        .bind(now_ms())
        .execute(&state.db.pool)
        .await?;
    state
        .journal
        .append_one(NewEvent::now(patient_id, "plan_changed", crate::journal::Source::System, None, json!({"summary": "plan version 1 loaded", "plan_id": format!("{patient_id}/v1"), "version": 1, "by": "system", "plan": plan})))
        .await?;
    Ok(())
}

/// Validate with the companion's rules (`care::TherapyPlan`, the same as the plan file); errors name the field
/// path (`plan.contacts.nurse.phone: …`). Returns the plan in its normalised stored form.
pub fn validate(plan: &Value) -> Result<care::TherapyPlan, AppError> {
    if !plan.is_object() {
        return Err(AppError::invalid(
            "plan",
            "must be a JSON object (a therapy plan; see docs/care.md)",
        ));
    }
    care::TherapyPlan::from_value(plan.clone()).map_err(|e| {
        let field = e
            .path()
            .map(|p| format!("plan.{p}"))
            .unwrap_or_else(|| "plan".to_string());
        let message = match &e {
            care::PlanError::Field { message, .. } | care::PlanError::Invalid { message, .. } => {
                message.clone()
            }
            other => other.to_string(),
        };
        AppError::invalid(field, message)
    })
}

/// A stored plan, parsed (plans are validated before they are stored, so this only fails on a plan written by
/// an older or newer version with different rules; then the defaults apply).
async fn parsed(state: &AppState, patient_id: &str) -> Option<care::TherapyPlan> {
    let stored = load(state, patient_id).await.ok().flatten()?;
    care::TherapyPlan::from_value(stored.plan).ok()
}

/// The plan's escalation timing, with the companion's defaults when there is no (readable) plan.
pub async fn escalation_timing(state: &AppState, patient_id: &str) -> Timing {
    let escalation = parsed(state, patient_id)
        .await
        .map(|p| p.escalation)
        .unwrap_or_default();
    let minute = state.config.escalation_minute;
    Timing {
        patient_ack: minute.saturating_mul(escalation.patient_to_nurse_min),
        nurse_ack: minute.saturating_mul(escalation.nurse_to_on_call_min),
    }
}

/// The plan contact for an escalation rung (`nurse` → the home-infusion nurse, `on_call` → on-call), if any.
pub async fn contact_for(state: &AppState, patient_id: &str, rung: Rung) -> Value {
    let Some(plan) = parsed(state, patient_id).await else {
        return Value::Null;
    };
    let contact = match rung {
        Rung::Patient => return Value::Null,
        Rung::Nurse => &plan.contacts.nurse,
        Rung::OnCall => &plan.contacts.on_call,
    };
    json!({"role": rung.name(), "name": contact.name, "phone": contact.phone})
}

/// Load every stored plan's time zone into the journal (at start).
pub async fn load_time_zones(state: &AppState) -> Result<(), AppError> {
    let rows = sqlx::query("SELECT patient_id, plan_json FROM srv_plans")
        .fetch_all(&state.db.pool)
        .await?;
    for row in rows {
        let patient_id: String = row.try_get("patient_id")?;
        let text: String = row.try_get("plan_json")?;
        if let Ok(plan) = care::TherapyPlan::from_json(&text) {
            state.journal.set_time_zone(&patient_id, plan.tz());
        }
    }
    Ok(())
}

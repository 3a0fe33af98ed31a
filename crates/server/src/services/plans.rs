//! Therapy plans in the server: stored as JSON (the companion's `TherapyPlan` shape), validated before any
//! write, versioned so two editors cannot overwrite each other, every change recorded as `plan_changed`; kept
//! parsed in memory (loaded at start, replaced on every save) for the two things the live engine needs from a
//! plan: the escalation timing (handed to the board) and whom to call.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use record::Kind;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::ServerConfig;
use crate::domain::{EventDraft, Origin, Rung, Timing};
use crate::error::AppError;
use crate::services::AppState;
use crate::services::access::PatientAccess;
use crate::services::now_ms;
use crate::store;
use crate::store::plans::PlanRow;

fn normalised(plan: &care::TherapyPlan) -> Value {
    serde_json::from_str(&plan.to_json()).unwrap_or(Value::Null)
}

/// Every patient's plan, parsed once: read by the ladder and the notifications without touching the database.
#[derive(Debug, Clone, Default)]
pub struct PlanCache {
    inner: Arc<RwLock<HashMap<String, Arc<care::TherapyPlan>>>>,
}

impl PlanCache {
    pub fn get(&self, patient_id: &str) -> Option<Arc<care::TherapyPlan>> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(patient_id)
            .cloned()
    }

    fn put(&self, patient_id: &str, plan: care::TherapyPlan) {
        self.inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(patient_id.to_string(), Arc::new(plan));
    }
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
    let Some(row) = store::plans::load(&state.db, patient_id).await? else {
        return Ok(None);
    };
    Ok(Some(PlanRecord {
        patient_id: patient_id.into(),
        plan: serde_json::from_str(&row.plan_json).map_err(AppError::internal)?,
        version: row.version,
        updated_at_ms: row.updated_at_ms,
        updated_by: row.updated_by,
    }))
}

/// Make a parsed plan current everywhere it is used: the cache, the board's escalation timing and the journal's
/// time zone for the patient.
fn adopt(state: &AppState, patient_id: &str, plan: care::TherapyPlan) {
    state.journal.set_time_zone(patient_id, plan.tz());
    let timing = timing_of(&state.config, Some(&plan));
    state.board.with(|b| b.set_timing(patient_id, timing));
    state.plans.put(patient_id, plan);
}

/// Validate and save a plan (clinicians only). `expected_version` must match the stored version (None for
/// the first plan), so a stale editor gets a 409 instead of silently overwriting a colleague's change.
pub async fn save(
    state: &AppState,
    access: &PatientAccess,
    plan: Value,
    expected_version: Option<i64>,
) -> Result<PlanRecord, AppError> {
    crate::services::access::require_clinician(&access.user)?;
    let parsed_plan = validate(&plan)?;
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
    let row = PlanRow {
        plan_json: plan.to_string(),
        version: current_version.unwrap_or(0) + 1,
        updated_at_ms: now_ms(),
        updated_by: access.user.id.clone(),
    };
    if !store::plans::save(&state.db, &access.patient_id, &row).await? {
        return Err(AppError::Conflict(
            "the plan was changed by someone else at the same moment; reload it and try again"
                .into(),
        ));
    }
    adopt(state, &access.patient_id, parsed_plan);
    let version = row.version;
    state
        .journal
        .append_one(EventDraft::new(
            &access.patient_id,
            Kind::PlanChanged,
            access.user.role.origin(),
            Some(&access.user.id),
            row.updated_at_ms,
            json!({"summary": format!("plan version {version} saved by {}", access.user.display_name), "plan_id": format!("{}/v{version}", access.patient_id), "version": version, "by": access.user.id, "plan": plan}),
        ))
        .await?;
    Ok(PlanRecord {
        patient_id: access.patient_id.clone(),
        plan,
        version,
        updated_at_ms: row.updated_at_ms,
        updated_by: row.updated_by,
    })
}

/// Store a first plan for a patient without an access check (the demo and admin bootstrap). Does nothing if a
/// plan exists.
pub async fn seed(state: &AppState, patient_id: &str, plan: Value) -> Result<(), AppError> {
    let parsed_plan = validate(&plan)?;
    let plan = normalised(&parsed_plan);
    if load(state, patient_id).await?.is_some() {
        return Ok(());
    }
    let row = PlanRow {
        plan_json: plan.to_string(),
        version: 1,
        updated_at_ms: now_ms(),
        updated_by: "system".into(),
    };
    store::plans::save(&state.db, patient_id, &row).await?;
    adopt(state, patient_id, parsed_plan);
    state
        .journal
        .append_one(EventDraft::new(patient_id, Kind::PlanChanged, Origin::System, None, row.updated_at_ms, json!({"summary": "plan version 1 loaded", "plan_id": format!("{patient_id}/v1"), "version": 1, "by": "system", "plan": plan})))
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

/// A plan's escalation timing, with the companion's defaults when there is no (readable) plan.
pub fn timing_of(config: &ServerConfig, plan: Option<&care::TherapyPlan>) -> Timing {
    let escalation = plan.map(|p| p.escalation).unwrap_or_default();
    let minute = config.escalation_minute;
    Timing {
        patient_ack: minute.saturating_mul(escalation.patient_to_nurse_min),
        nurse_ack: minute.saturating_mul(escalation.nurse_to_on_call_min),
    }
}

/// The plan contact for an escalation rung (`nurse` → the home-infusion nurse, `on_call` → on-call), if any.
pub fn contact_for(state: &AppState, patient_id: &str, rung: Rung) -> Value {
    let Some(plan) = state.plans.get(patient_id) else {
        return Value::Null;
    };
    let contact = match rung {
        Rung::Patient => return Value::Null,
        Rung::Nurse => &plan.contacts.nurse,
        Rung::OnCall => &plan.contacts.on_call,
    };
    json!({"role": rung.name(), "name": contact.name, "phone": contact.phone})
}

/// Load every stored plan at start (plans are validated before they are stored, so one that no longer reads was
/// written by a version with other rules; the defaults apply to it).
pub async fn load_all(state: &AppState) -> Result<(), AppError> {
    for (patient_id, text) in store::plans::all(&state.db).await? {
        if let Ok(plan) = care::TherapyPlan::from_json(&text) {
            adopt(state, &patient_id, plan);
        }
    }
    Ok(())
}

/// The scenario text of a simulated pump running a patient's plan: its program (with the plan's `drug_id` when
/// the plan has drug-library limits), started at 0 s. `name` and `seed` tell the practice and demo pumps apart.
pub fn scenario_text(plan: &care::TherapyPlan, name: &str, seed: u64) -> String {
    let drug_id = match (&plan.therapy.drug_id, &plan.therapy.limits) {
        (Some(id), Some(_)) => format!("drug_id = {}\n", toml_string(id)),
        _ => String::new(),
    };
    format!(
        "name = {}\nduration = \"24h\"\nseed = {seed}\n[program]\nrate_ml_per_h = {}\nvtbi_ml = {}\n{drug_id}[[event]]\nat = \"0s\"\naction = \"start\"\n",
        toml_string(name),
        plan.program.rate_ml_per_h,
        plan.program.vtbi_ml
    )
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use link::simpump::scenario;

    const PLAN: &str = include_str!("../../../../examples/plans/antibiotics-picc.toml");

    #[test]
    fn a_plan_pump_runs_under_the_plan_drug_library() {
        let plan = care::TherapyPlan::from_toml(PLAN).expect("the example plan reads");
        let text = scenario_text(&plan, "test pump", 1);
        let parsed = scenario(Some(&text), "test").expect("the plan scenario parses");
        let mut sim = sim::Simulation::with_library(&parsed, plan.drug_library());
        sim.step();
        assert!(sim.pump().library().get("ceftriaxone").is_some());
        assert_eq!(
            sim.pump().program().and_then(|p| p.drug_id()),
            Some("ceftriaxone")
        );
        assert_eq!(sim.pump().state(), pump::State::Infusing);

        // The program names the plan's drug: under an empty library the core refuses it, so the library is what
        // lets it run.
        let mut sim = sim::Simulation::with_library(&parsed, pump::DrugLibrary::default());
        sim.step();
        assert_ne!(sim.pump().state(), pump::State::Infusing);

        // Actions later than 0 s run as scheduled under the plan's library too.
        let late = format!("{text}[[event]]\nat = \"10s\"\naction = \"pause\"\n");
        let late = scenario(Some(&late), "test").expect("parses");
        let mut sim = sim::Simulation::with_library(&late, plan.drug_library());
        sim.run_until(11_000);
        assert_eq!(sim.pump().state(), pump::State::Paused);
    }
}

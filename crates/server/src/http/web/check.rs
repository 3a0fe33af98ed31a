//! "Something's wrong?": the site and symptom check. The answers go through the companion's triage (the
//! same rules the rest of the product uses), the result says plainly what to do, and both are recorded.

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::EventDraft;
use crate::error::AppError;
use crate::http::extract::WebUser;
use crate::services::AppState;
use crate::services::access;
use crate::services::now_ms;

use super::common::{self, patient_base, patient_layout, see_other};
use super::patient::outcome_page;
use super::view::{CheckGroup, CheckOption, CheckPage, Contact, html, html_with_status};

/// The question for an observation: a site sign's own question when there is one, else the triage label.
fn option_for(observation: care::Observation, checked: bool) -> CheckOption {
    let content = care::content();
    let sign = content.signs.iter().find(|s| s.observation == observation);
    CheckOption {
        value: observation.name().to_string(),
        label: sign
            .map(|s| s.question.clone())
            .unwrap_or_else(|| content.observation_label(observation).to_string()),
        hint: sign.map(|s| s.note.clone()).unwrap_or_default(),
        checked,
    }
}

/// The check's questions, grouped as a person thinks about them (how they feel, the line, the bag and pump): the
/// groups and their words live in `content/triage.toml` (`[[check_groups]]`), which lists every observation.
fn groups(plan: Option<&care::TherapyPlan>, checked: &[care::Observation]) -> Vec<CheckGroup> {
    care::content()
        .check_groups
        .iter()
        .map(|group| {
            let mut hint = group.hint.clone();
            if group.about_line
                && let Some(plan) = plan
            {
                let line = care::content().line(plan.line);
                hint = format!("Your line: {}. {}", line.name, line.look);
            }
            CheckGroup {
                name: "observation",
                legend: group.legend.clone(),
                hint,
                options: group
                    .observations
                    .iter()
                    .map(|o| option_for(*o, checked.contains(o)))
                    .collect(),
            }
        })
        .collect()
}

fn parsed_plan(plan: Option<Value>) -> Option<care::TherapyPlan> {
    plan.and_then(|p| care::TherapyPlan::from_value(p).ok())
}

/// `GET /p/{patient}/check?observation=…`: the query pre-ticks observations (the patient's own log links here
/// with what was written); words that are not observations are ignored.
pub async fn form(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, AppError> {
    let prefill: Vec<care::Observation> = query
        .as_deref()
        .and_then(|q| common::form_pairs(q.as_bytes()).ok())
        .unwrap_or_default()
        .iter()
        .filter(|(k, _)| k == "observation")
        .filter_map(|(_, v)| care::Observation::parse(v).ok())
        .collect();
    let access = common::read_access(&state, &user, &patient_id).await?;
    let layout = patient_layout(&state, &access, "Something's wrong?", "check", false).await;
    let plan = parsed_plan(common::load_plan(&state, &access).await);
    let emergency = common::emergency_contact(&layout.contacts);
    Ok(html(&CheckPage {
        emergency,
        errors: Vec::new(),
        groups: groups(plan.as_ref(), &prefill),
        action: format!("{}/check", patient_base(&patient_id)),
        layout,
    }))
}

/// `POST /p/{patient}/check`: triage, record, and show what to do.
pub async fn submit(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    let observations = observations_of(&common::form_pairs(&body)?)?;
    let plan = parsed_plan(common::load_plan(&state, &access).await);
    if observations.is_empty() {
        return Ok(nothing_ticked(&state, &access, plan.as_ref()).await);
    }
    let input = care::TriageInput {
        plan: plan.as_ref().map(care::triage::TriagePlan::from),
        observations: observations.clone(),
        alarms: alarm_reports(&state, &access).await?,
        infusion: None,
    };
    let output = care::triage(&input, &care::triage::TriageConfig::default())
        .map_err(|e| AppError::invalid("observation", e.to_string()))?;
    let headline = headline(output.level);
    let id = record_check(
        &state,
        &user,
        &patient_id,
        &observations,
        &output,
        &headline,
    )
    .await?;
    // POST-redirect-GET: the answer is read back from the record, so reloading it never records the check twice.
    Ok(see_other(&format!(
        "{}/check/result/{id}",
        patient_base(&patient_id)
    )))
}

/// How far back a symptom check's answer can be opened again by its address.
const RESULT_DAYS: i64 = 30;

/// `GET /p/{patient}/check/result/{id}`: the answer of one recorded symptom check, as the record keeps it.
pub async fn result(
    State(state): State<AppState>,
    user: WebUser,
    Path((patient_id, check_id)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    let not_found = || AppError::not_found("this symptom check's answer (do the check again)");
    let id: i64 = check_id.parse().map_err(|_| not_found())?;
    let checks = crate::services::records::timeline(
        &state,
        &patient_id,
        &["symptom_check".to_string()],
        usize::MAX,
        RESULT_DAYS,
    )
    .await?;
    let entry = checks
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(not_found)?;
    let output: care::TriageOutput = entry
        .payload
        .get("output")
        .cloned()
        .and_then(|o| serde_json::from_value(o).ok())
        .ok_or_else(not_found)?;
    let headline = headline(output.level);
    let mut layout = patient_layout(&state, &access, "What to do", "check", false).await;
    layout.notice = Some(format!(
        "Your answers were saved to your record at {}.",
        super::view::format_time(
            crate::services::now_ms(),
            entry.occurred_at.as_millisecond()
        )
    ));
    Ok(html(&result_page(layout, &output, headline, &patient_id)))
}

/// The ticked observations, each once, in the order ticked.
fn observations_of(pairs: &[(String, String)]) -> Result<Vec<care::Observation>, AppError> {
    let mut observations = Vec::new();
    for (k, v) in pairs {
        if k == "observation" {
            let o = care::Observation::parse(v)
                .map_err(|message| AppError::invalid("observation", message))?;
            if !observations.contains(&o) {
                observations.push(o);
            }
        }
    }
    Ok(observations)
}

/// The check again, saying that something must be ticked.
async fn nothing_ticked(
    state: &AppState,
    access: &access::PatientAccess,
    plan: Option<&care::TherapyPlan>,
) -> Response {
    let layout = patient_layout(state, access, "Something's wrong?", "check", false).await;
    let emergency = common::emergency_contact(&layout.contacts);
    html_with_status(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        &CheckPage {
            emergency,
            errors: vec!["Tick at least one thing that is wrong. If nothing on the list fits and you are worried, call your nurse.".into()],
            groups: groups(plan, &[]),
            action: format!("{}/check", patient_base(&access.patient_id)),
            layout,
        },
    )
}

/// What the pump shows now counts too: an alarm that keeps coming back changes the answer.
async fn alarm_reports(
    state: &AppState,
    access: &access::PatientAccess,
) -> Result<Vec<care::triage::AlarmReport>, AppError> {
    let snapshot = crate::services::alarms::snapshot(state, access);
    let recent = crate::services::records::timeline(
        state,
        &access.patient_id,
        &["alarm_raised".to_string(), "alarm_step_done".to_string()],
        500,
        1,
    )
    .await?;
    let since = now_ms() - 30 * 60_000;
    let about = |e: &crate::services::records::Entry, kind: &str, alarm: &str| {
        e.kind == kind
            && e.occurred_at.as_millisecond() >= since
            && e.payload.get("alarm").and_then(Value::as_str) == Some(alarm)
    };
    Ok(snapshot
        .active_alarms
        .iter()
        .filter_map(|a| {
            let kind = care::Alarm::from_name(&a.alarm)?;
            let times = recent
                .iter()
                .filter(|e| about(e, "alarm_raised", &a.alarm))
                .count()
                .max(1);
            // "I did this" on any step of this alarm in the last 30 minutes: the guide's steps were followed,
            // so a return of the alarm means the care team should hear of it.
            let steps_followed = recent.iter().any(|e| about(e, "alarm_step_done", &a.alarm));
            Some(care::triage::AlarmReport {
                kind,
                times_in_last_30_min: u32::try_from(times).unwrap_or(u32::MAX),
                steps_followed,
                cannot_restart: false,
            })
        })
        .collect())
}

fn headline(level: care::Level) -> String {
    match level {
        care::Level::Emergency => "This is an emergency".to_string(),
        care::Level::CallCareTeam => "Call your care team now".to_string(),
        _ => "Follow these steps".to_string(),
    }
}

/// The check and its answer in the record (`symptom_check`, plus the words the timeline shows).
async fn record_check(
    state: &AppState,
    user: &WebUser,
    patient_id: &str,
    observations: &[care::Observation],
    output: &care::TriageOutput,
    headline: &str,
) -> Result<i64, AppError> {
    crate::services::records::append(
        state,
        EventDraft::new(
            patient_id,
            record::Kind::SymptomCheck,
            user.role.origin(),
            Some(&user.id),
            crate::services::now_ms(),
            json!({
                "symptoms": observations.iter().map(|o| o.name()).collect::<Vec<_>>(),
                "triage": output.level.name(),
                "reasons": output.reasons.iter().map(|r| r.rule.clone()).collect::<Vec<_>>(),
                "level": output.level.name(), "headline": headline,
                "by": user.id, "display_name": user.display_name, "role": user.role.name(),
                "output": output,
            }),
        ),
    )
    .await
}

/// The triage's call list as contacts, in its order (it starts with the emergency number on an emergency).
fn triage_contacts(output: &care::TriageOutput) -> Vec<Contact> {
    output
        .call
        .iter()
        .filter_map(|c| {
            c.phone.as_ref().map(|p| {
                Contact::new(
                    common::role_label(c.role.name()),
                    c.label.clone(),
                    p.clone(),
                )
            })
        })
        .map(|mut c| {
            if c.name == c.role_label {
                c.name.clear();
            }
            c
        })
        .collect()
}

/// The answer page: level, steps (care puts the care team's own notes first), reasons and whom to call.
fn result_page(
    layout: super::view::Layout,
    output: &care::TriageOutput,
    headline: String,
    patient_id: &str,
) -> super::view::ResultPage {
    let roles: Vec<String> = output
        .call
        .iter()
        .map(|c| c.role.name().to_string())
        .collect();
    let reasons = output.reasons.iter().map(|r| r.text.clone()).collect();
    let mut page = outcome_page(
        layout,
        output.level,
        headline,
        output.level_text.clone(),
        output.steps.clone(),
        &roles,
        reasons,
        format!("{}/check", patient_base(patient_id)),
    );
    let triage_calls = triage_contacts(output);
    if !triage_calls.is_empty() {
        if output.level == care::Level::Emergency {
            page.emergency = triage_calls
                .iter()
                .find(|c| c.role_label == common::role_label("emergency"))
                .cloned()
                .or(page.emergency);
        }
        page.calls = triage_calls;
        if let Some(e) = &page.emergency {
            page.calls.retain(|c| c != e);
            page.calls.insert(0, e.clone());
        }
    }
    page
}

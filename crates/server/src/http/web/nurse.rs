//! The nurse's screens: the clinic dashboard (the patients who need attention, then a searchable page of
//! every patient, with fragments for its live updates), and a patient's page with active
//! alarms, charts, escalations, the timeline and the therapy plan editor. The editor takes the plan as the
//! same TOML a plan file holds and runs the same checks (`care::TherapyPlan`), so a plan saved here is one
//! the command-line tools accept and the other way round.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use crate::error::AppError;
use crate::http::extract::WebUser;
use crate::services::AppState;
use crate::services::access;
use crate::services::alarms::PatientSummary;
use crate::services::dashboard::{self, needs_attention};
use crate::services::now_ms;
use crate::services::records::Entry;

use super::alarm::{alarm_line, pump_view};
use super::common::{self, clinic_layout, patient_base, patient_layout, see_other};
use super::log::{charts_svg, entry_view};
use super::view::{
    AttentionFragment, AttentionSection, DashboardPage, DashboardRow, NursePatientPage, PageLink,
    PlanField, RowFragment, format_ago, html, html_with_status, priority_label, state_words,
};

/// Days of history on the nurse's patient page.
const PATIENT_PAGE_DAYS: u32 = 7;
/// Timeline entries on the nurse's patient page (the full log has filters).
const PATIENT_PAGE_ENTRIES: usize = 40;
/// The largest plan text accepted from the editor.
pub const PLAN_TEXT_BYTES_MAX: usize = 64 * 1024;

/// Above this many patients needing attention, their rows leave out note fields and status lines, so the
/// section stays short enough to take in at a glance; no row is ever left out.
const ATTENTION_FULL_ROWS_MAX: usize = 20;

/// `GET /nurse?q=…&page=…`: both optional. `page` counts from 1; anything that is not a page number shows
/// the first page, and a page past the end shows the last.
#[derive(Debug, Deserialize, Default)]
pub struct DashboardQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    page: Option<String>,
}

/// One dashboard row as the nurse sees it. `element` is `att` (the attention section: alarms with their
/// acknowledge forms) or `row` (the list: a patient who needs attention points up to their row there).
fn dashboard_row(r: &PatientSummary, now: i64, element: &str, compact: bool) -> DashboardRow {
    let base = patient_base(&r.patient_id);
    let (urgency_class, urgency_label) = match r.top_priority {
        Some(p) => (
            super::view::priority_class(p),
            priority_label(p).to_string(),
        ),
        None if r.link == "silent" => ("high", "Pump not reporting".to_string()),
        None => ("", "No alarms".to_string()),
    };
    let pump_line = match (&r.state, r.link) {
        (_, "silent") => "The pump has stopped sending updates.".to_string(),
        (Some(s), _) => format!(
            "Pump: {}{}",
            state_words(s).0,
            if r.teaching { " (practice pump)" } else { "" }
        ),
        (None, _) => "No pump connected.".to_string(),
    };
    let see_above = element == "row" && needs_attention(r);
    DashboardRow {
        element_id: format!("{element}-{}", r.patient_id),
        patient_id: r.patient_id.clone(),
        href: format!("/nurse/patients/{}", r.patient_id),
        name: r.display_name.clone(),
        urgency_class,
        urgency_label,
        pump_line,
        state: format!("{}:{}", r.link, r.state.as_deref().unwrap_or("")),
        alarms: if see_above {
            Vec::new()
        } else {
            r.active_alarms
                .iter()
                .map(|a| alarm_line(a, now, format!("{base}/alarms/{}/ack", a.id)))
                .collect()
        },
        see_above,
        compact,
    }
}

fn attention_section(rows: &[PatientSummary], now: i64) -> AttentionSection {
    let compact = rows.len() > ATTENTION_FULL_ROWS_MAX;
    AttentionSection {
        count_label: match rows.len() {
            0 => "No patient needs attention now.".to_string(),
            1 => "1 patient needs attention.".to_string(),
            n => format!("{n} patients need attention."),
        },
        rows: rows
            .iter()
            .map(|r| dashboard_row(r, now, "att", compact))
            .collect(),
    }
}

/// The address of a page of the list, keeping the search.
fn page_href(search: &str, page: usize) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if !search.is_empty() {
        pairs.push(("q", search.to_string()));
    }
    if page > 1 {
        pairs.push(("page", page.to_string()));
    }
    match serde_urlencoded::to_string(&pairs) {
        Ok(query) if !query.is_empty() => format!("/nurse?{query}"),
        _ => "/nurse".to_string(),
    }
}

/// `GET /nurse`
pub async fn dashboard(
    State(state): State<AppState>,
    user: WebUser,
    query: Result<Query<DashboardQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(|e| AppError::invalid("q", e.body_text()))?;
    let search = dashboard::search_text(query.q.as_deref().unwrap_or(""))?;
    let wanted = query
        .page
        .as_deref()
        .and_then(|p| p.trim().parse::<usize>().ok())
        .unwrap_or(1);
    let data = dashboard::page(&state, &user, &search, wanted).await?;
    let now = now_ms();
    let matching_label = match (search.is_empty(), data.matching) {
        (true, 1) => "1 patient, by name.".to_string(),
        (true, n) => format!("{n} patients, by name."),
        (false, 1) => format!("1 patient matches “{search}”."),
        (false, n) => format!("{n} patients match “{search}”."),
    };
    let link = |on: bool, page: usize, label| PageLink {
        href: if on {
            page_href(&search, page)
        } else {
            String::new()
        },
        label,
    };
    Ok(html(&DashboardPage {
        layout: clinic_layout(&user, "Dashboard", true),
        csrf: user.csrf_token.clone(),
        attention: attention_section(&data.attention, now),
        rows: data
            .patients
            .iter()
            .map(|r| dashboard_row(r, now, "row", false))
            .collect(),
        matching_label,
        page_label: format!("Page {} of {}", data.page, data.pages),
        previous: link(data.page > 1, data.page - 1, "Previous page"),
        next: link(data.page < data.pages, data.page + 1, "Next page"),
        search,
    }))
}

/// `GET /nurse/attention`: the attention section alone (the live script swaps it in when an alarm changes).
pub async fn attention(State(state): State<AppState>, user: WebUser) -> Result<Response, AppError> {
    let rows = dashboard::attention(&state, &user).await?;
    Ok(html(&AttentionFragment {
        csrf: user.csrf_token.clone(),
        attention: attention_section(&rows, now_ms()),
    }))
}

/// `GET /nurse/rows/{patient}`: one patient's row of the list alone (the live script swaps it in when that
/// patient changes). A read of the patient like any other: checked and audited by `services::access`.
pub async fn row(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
) -> Result<Response, AppError> {
    crate::services::access::require_clinician(&user)?;
    let access = common::read_access(&state, &user, &patient_id).await?;
    let summary = dashboard::row(&state, &access);
    Ok(html(&RowFragment {
        csrf: user.csrf_token.clone(),
        row: dashboard_row(&summary, now_ms(), "row", false),
    }))
}

/// The plan as TOML for the editor: the stored JSON read as a `TherapyPlan` (so the text is canonical),
/// or, if it no longer reads, the JSON itself converted as it is so nothing is lost.
fn plan_as_toml(plan: &Value) -> String {
    match care::TherapyPlan::from_value(plan.clone()) {
        Ok(p) => toml::to_string_pretty(&p).unwrap_or_default(),
        Err(_) => toml::to_string_pretty(plan).unwrap_or_else(|_| plan.to_string()),
    }
}

fn plan_fields(text: String, version: String, error: String) -> Vec<PlanField> {
    vec![
        PlanField {
            name: "plan_toml",
            label: "Plan (TOML, the same as a plan file)",
            hint: "Therapy, program (rate_ml_per_h, vtbi_ml, end action), drug library entry (therapy.drug_id and its [therapy.limits]: five numbers each for rate_ml_per_h, vtbi_ml and optional bolus_ml — lower hard, lower soft, typical, upper soft, upper hard), line, critical_therapy, schedule and reminders, contacts for every role, escalation minutes and personal notes. The program must be within the hard limits; outside a soft limit only with program.soft_limit_override_confirmed = true.".into(),
            kind: "textarea",
            value: text,
            error,
            rows: 28,
        },
        PlanField { name: "version", label: "Version you are editing", hint: "Leave as it is: it stops two people overwriting each other's changes.".into(), kind: "text", value: version, error: String::new(), rows: 1 },
    ]
}

async fn patient_page(
    state: &AppState,
    user: &WebUser,
    patient_id: &str,
    plan_override: Option<(String, String, Vec<String>)>,
) -> Result<NursePatientPage, AppError> {
    crate::services::access::require_clinician(user)?;
    let access = common::read_access(state, user, patient_id).await?;
    let now = now_ms();
    let snapshot = crate::services::alarms::snapshot(state, &access);
    let stored = crate::services::plans::get(state, &access).await?;
    let plan_value = stored.as_ref().map(|p| p.plan.clone());
    let since = now - i64::from(PATIENT_PAGE_DAYS) * 24 * 3600 * 1000;
    // The charts read the telemetry table as well as the legacy `telemetry` events.
    let events: Vec<Entry> = crate::services::records::timeline_with_telemetry(
        state,
        patient_id,
        5000,
        i64::from(PATIENT_PAGE_DAYS),
    )
    .await?
    .into_iter()
    .filter(|e| e.occurred_at.as_millisecond() >= since)
    .collect();
    let telemetry = snapshot
        .telemetry
        .as_ref()
        .zip(snapshot.telemetry_at_ms)
        .filter(|_| !snapshot.teaching);
    let (volume_svg, alarms_svg) = charts_svg(
        &events,
        telemetry,
        plan_value.as_ref(),
        PATIENT_PAGE_DAYS,
        now,
    );
    let base = patient_base(patient_id);
    let escalations = events
        .iter()
        .filter(|e| e.kind == "alarm_escalated")
        .take(50)
        .map(|e| entry_view(e, now))
        .collect();
    let entries = events
        .iter()
        .filter(|e| !matches!(e.kind.as_str(), "record_read" | "telemetry"))
        .take(PATIENT_PAGE_ENTRIES)
        .map(|e| entry_view(e, now))
        .collect();
    let (text, version, errors) = match plan_override {
        Some(o) => o,
        None => (
            plan_value.as_ref().map(plan_as_toml).unwrap_or_default(),
            stored
                .as_ref()
                .map(|p| p.version.to_string())
                .unwrap_or_default(),
            Vec::new(),
        ),
    };
    let field_error = errors.first().cloned().unwrap_or_default();
    let mut layout = patient_layout(state, &access, "Patient", "nurse-patient", true).await;
    layout.title = access.display_name.clone();
    Ok(NursePatientPage {
        patient_name: access.display_name.clone(),
        practice_href: format!("/nurse/patients/{patient_id}/practice"),
        log_href: format!("{base}/log"),
        alarms: snapshot
            .active_alarms
            .iter()
            .map(|a| alarm_line(a, now, format!("{base}/alarms/{}/ack", a.id)))
            .collect(),
        pump: pump_view(&snapshot, plan_value.as_ref(), now),
        volume_svg,
        alarms_svg,
        escalations,
        entries,
        days: PATIENT_PAGE_DAYS,
        plan_version: stored
            .as_ref()
            .map(|p| format!("{} (saved {})", p.version, format_ago(now, p.updated_at_ms)))
            .unwrap_or_default(),
        plan_errors: errors,
        plan_fields: plan_fields(text, version, field_error),
        plan_action: format!("/nurse/patients/{patient_id}/plan"),
        own_log: super::patient_log::nurse_section(state, patient_id, now).await?,
        layout,
    })
}

/// `GET /nurse/patients/{patient}`
pub async fn patient(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
) -> Result<Response, AppError> {
    Ok(html(&patient_page(&state, &user, &patient_id, None).await?))
}

/// `POST /nurse/patients/{patient}/plan`: parse and check the TOML like a plan file, then save it with the
/// version the nurse edited. Any error re-shows the editor with the text kept and the field named.
pub async fn save_plan(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    crate::services::access::require_clinician(&user)?;
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    let pairs = common::form_pairs(&body)?;
    let text = common::form_value(&pairs, "plan_toml")
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let version_text = common::form_value(&pairs, "version")
        .unwrap_or_default()
        .trim()
        .to_string();
    let rejected = |errors: Vec<String>| (text.clone(), version_text.clone(), errors);
    if text.len() > PLAN_TEXT_BYTES_MAX {
        let page = patient_page(
            &state,
            &user,
            &patient_id,
            Some(rejected(vec![format!(
                "plan: the text is longer than {} KB; remove what is not part of the plan",
                PLAN_TEXT_BYTES_MAX / 1024
            )])),
        )
        .await?;
        return Ok(html_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let expected_version = if version_text.is_empty() {
        None
    } else {
        match version_text.parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => {
                let page = patient_page(&state, &user, &patient_id, Some(rejected(vec!["version: must be the whole number shown when the page was opened; reload the page".into()]))).await?;
                return Ok(html_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
            }
        }
    };
    let plan = match care::TherapyPlan::from_toml(&text).and_then(|p| p.validate().map(|()| p)) {
        Ok(p) => p,
        Err(e) => {
            let page = patient_page(
                &state,
                &user,
                &patient_id,
                Some(rejected(vec![e.to_string()])),
            )
            .await?;
            return Ok(html_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let value: Value = serde_json::from_str(&plan.to_json()).map_err(AppError::internal)?;
    match crate::services::plans::save(&state, &access, value, expected_version).await {
        Ok(_) => Ok(see_other(&format!("/nurse/patients/{patient_id}#plan-h"))),
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict(_))) => {
            let status = e.status();
            let page = patient_page(
                &state,
                &user,
                &patient_id,
                Some(rejected(vec![e.to_string()])),
            )
            .await?;
            Ok(html_with_status(status, &page))
        }
        Err(e) => Err(e),
    }
}

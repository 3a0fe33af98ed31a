//! The patient and caregiver screens: Today (next infusion and checklists), My pump (live state, and the
//! alarm guide when an alarm is active), what to do after a checklist problem, and the chooser for a
//! caregiver who looks after more than one person.
//!
//! Every handler takes access through `crate::access` first (which audits the read), and every action
//! is written to the record before the page says it happened.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::EventDraft;
use crate::error::AppError;
use crate::http::extract::WebUser;
use crate::services::AppState;
use crate::services::access;
use crate::services::auth::CurrentUser;
use crate::services::now_ms;

use super::common::{self, patient_base, patient_layout, see_other};
use super::view::{
    ChecklistItemView, ChecklistView, Layout, NextInfusion, PhaseTab, ResultPage, TodayPage,
    format_minutes, format_ml, format_time, html,
};

/// Events read back to show today's answers and an alarm's progress; enough for a long day.
const TIMELINE_READ_MAX: usize = 2000;

/// `GET /` for a caregiver linked to several patients (or none).
pub async fn chooser(state: &AppState, user: &CurrentUser) -> Response {
    let mut names = Vec::new();
    for pid in &user.patient_ids {
        match access::patient_for_action(state, user, pid).await {
            Ok(a) => names.push((pid.clone(), a.display_name)),
            Err(e) => return e.into_response(),
        }
    }
    let layout = Layout {
        title: "Choose a person".into(),
        home: "/".into(),
        signed_in_as: Some(user.display_name.clone()),
        csrf: user.csrf_token.clone(),
        care_first: care::content().common.care_team_first.clone(),
        no_numbers: care::content().common.no_plan_numbers.clone(),
        body_class: "patient",
        asset_version: super::assets::version(),
        ..Layout::default()
    };
    html(&super::view::ChooserPage {
        layout,
        people: names
            .into_iter()
            .map(|(id, name)| (format!("{}/today", patient_base(&id)), name))
            .collect(),
    })
}

#[derive(Deserialize, Default)]
pub struct TodayQuery {
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    saved: Option<String>,
}

/// Which checklist fits what the pump is doing now.
fn phase_for_state(state: Option<&str>) -> care::Phase {
    match state {
        Some("infusing" | "kvo" | "paused" | "stopped_by_alarm") => care::Phase::During,
        Some("complete") => care::Phase::After,
        _ => care::Phase::Before,
    }
}

/// The latest answer per checklist item since local midnight: (answer, when).
async fn todays_answers(
    state: &AppState,
    patient_id: &str,
) -> Result<HashMap<String, (String, i64)>, AppError> {
    let events = crate::services::records::timeline(
        state,
        patient_id,
        &["checklist_answered".to_string()],
        TIMELINE_READ_MAX,
        1,
    )
    .await?;
    let now = now_ms();
    let midnight_ms = local_midnight_ms(now);
    let mut out = HashMap::new();
    // Newest first: the first answer seen for an item is its latest.
    for e in events
        .iter()
        .filter(|e| e.occurred_at.as_millisecond() >= midnight_ms)
    {
        let Some(item) = e.payload.get("item_id").and_then(Value::as_str) else {
            continue;
        };
        let answer = e
            .payload
            .get("answer")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        out.entry(item.to_string())
            .or_insert((answer, e.occurred_at.as_millisecond()));
    }
    Ok(out)
}

fn local_midnight_ms(now_ms: i64) -> i64 {
    let tz = jiff::tz::TimeZone::system();
    jiff::Timestamp::from_millisecond(now_ms)
        .ok()
        .and_then(|t| t.to_zoned_datetime(tz).start_of_day().ok())
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(now_ms - 24 * 3600 * 1000)
}

/// The element id of a checklist item on the Today page.
fn item_anchor(item_id: &str) -> String {
    format!(
        "item-{}",
        item_id.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
            "-"
        )
    )
}

fn items_of(checklist_id: &str) -> impl Iterator<Item = &'static care::ChecklistItem> {
    let id = checklist_id.to_string();
    care::content()
        .items
        .iter()
        .filter(move |i| i.checklist == id)
}

/// `GET /p/{patient}/today`
pub async fn today(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    Query(q): Query<TodayQuery>,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    let snapshot = crate::services::alarms::snapshot(&state, &access);
    let answers = todays_answers(&state, &patient_id).await?;
    let base = patient_base(&patient_id);
    let current = q
        .phase
        .as_deref()
        .and_then(care::Phase::from_name)
        .unwrap_or_else(|| phase_for_state(snapshot.telemetry.as_ref().map(|t| t.state.as_str())));

    let mut phases = Vec::new();
    let mut checklist = None;
    for list in &care::content().checklists {
        let items: Vec<&care::ChecklistItem> = items_of(&list.id).collect();
        let done = items
            .iter()
            .filter(|i| answers.get(&i.id).is_some_and(|(a, _)| a == "ok"))
            .count();
        let total = items.len();
        phases.push(PhaseTab {
            href: format!("{base}/today?phase={}", list.phase.name()),
            label: short_phase_label(list.phase),
            current: list.phase == current,
            done,
            total,
        });
        if list.phase == current {
            let now = now_ms();
            let mut last_group = "";
            let views = items
                .iter()
                .map(|i| {
                    let group_start = if i.group != last_group {
                        i.group.clone()
                    } else {
                        String::new()
                    };
                    last_group = &i.group;
                    let (state_name, answered_label) = match answers.get(&i.id) {
                        Some((a, at)) if a == "ok" => ("ok", format_time(now, *at)),
                        Some((a, at)) if a == "problem" => ("problem", format_time(now, *at)),
                        _ => ("", String::new()),
                    };
                    ChecklistItemView {
                        id: i.id.clone(),
                        anchor: item_anchor(&i.id),
                        group_start,
                        check: i.check.clone(),
                        problem: i.problem.clone(),
                        state: state_name,
                        answered_label,
                        problem_href: format!("{base}/what-to-do/{}", i.id),
                    }
                })
                .collect();
            checklist = Some(ChecklistView {
                phase: list.phase.name().to_string(),
                title: list.title.clone(),
                intro: list.intro.clone(),
                done,
                total,
                items: views,
            });
        }
    }

    let plan = common::load_plan(&state, &access).await;
    let next_infusion = next_infusion(plan.as_ref(), snapshot.telemetry.as_ref());
    let mut layout = patient_layout(&state, &access, "Today", "today", false).await;
    if q.saved.as_deref() == Some("1") {
        layout.notice = Some("Saved to your record.".into());
    }
    Ok(html(&TodayPage {
        whose_capital: super::person::PersonWords::new(&user, &access.display_name).whose_capital(),
        layout,
        next_infusion,
        phases,
        checklist,
        checklist_action: format!("{base}/checklist"),
        check_href: format!("{base}/check"),
        felt_href: format!("{base}/log/felt?after=latest"),
    }))
}

fn short_phase_label(phase: care::Phase) -> String {
    match phase {
        care::Phase::Before => "Before".into(),
        care::Phase::During => "During".into(),
        care::Phase::After => "After".into(),
    }
}

/// The next infusion: the one running now, or the next scheduled start from the plan.
fn next_infusion(
    plan: Option<&Value>,
    telemetry: Option<&link::Telemetry>,
) -> Option<NextInfusion> {
    let parsed = plan
        .cloned()
        .and_then(|p| care::TherapyPlan::from_value(p).ok());
    let what = parsed
        .as_ref()
        .map(|p| {
            format!(
                "{} ({}, {})",
                p.therapy.name, p.therapy.drug, p.therapy.concentration
            )
        })
        .unwrap_or_else(|| "your infusion".into());
    if let Some(t) = telemetry
        && t.is_infusing()
    {
        let left = t
            .minutes_left
            .map(format_minutes)
            .unwrap_or_else(|| "unknown".into());
        return Some(NextInfusion {
            when_label: "Running now".into(),
            what,
            detail: format!(
                "{} to go, about {left} left.",
                format_ml(t.remaining_ml, "mL")
            ),
        });
    }
    let plan = parsed?;
    let now = jiff::Timestamp::now();
    let next = care::reminders::upcoming(&plan, now, 50)
        .into_iter()
        .find(|u| u.kind == care::ReminderKind::InfusionStart)?;
    let at = next.at;
    let today = now.to_zoned_datetime(at.time_zone().clone()).date();
    let day = if at.date() == today {
        "Today".to_string()
    } else if Some(at.date()) == today.tomorrow().ok() {
        "Tomorrow".to_string()
    } else {
        at.strftime("%A %-d %B").to_string()
    };
    Some(NextInfusion {
        when_label: format!("{day} at {}", at.strftime("%H:%M")),
        what,
        detail: format!(
            "{} at {}, about {}.",
            format_ml(plan.program.vtbi_ml, "mL"),
            format_ml(plan.program.rate_ml_per_h, "mL/h"),
            format_minutes(plan.infusion_duration_min())
        ),
    })
}

/// `POST /p/{patient}/checklist`: one tick, saved to the record. A problem leads straight to what to do.
pub async fn checklist_answer(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    let pairs = common::form_pairs(&body)?;
    let item_id = common::form_value(&pairs, "item_id").unwrap_or_default();
    let item = care::content()
        .items
        .iter()
        .find(|i| i.id == item_id)
        .ok_or_else(|| {
            AppError::invalid(
                "item_id",
                "this checklist item does not exist; reload the page",
            )
        })?;
    let answer = common::form_value(&pairs, "answer").unwrap_or_default();
    if answer != "ok" && answer != "problem" {
        return Err(AppError::invalid("answer", "choose Done or Problem"));
    }
    let phase = care::content()
        .checklists
        .iter()
        .find(|c| c.id == item.checklist)
        .map(|c| c.phase.name())
        .unwrap_or("");
    let text = if answer == "ok" {
        &item.check
    } else {
        &item.problem
    };
    crate::services::records::append(&state, EventDraft::new(
            &patient_id,
            crate::domain::ServerKind::ChecklistAnswered,
            user.role.origin(),
            Some(&user.id),
            crate::services::now_ms(),
            json!({
                "item_id": item.id, "checklist": item.checklist, "phase": phase, "answer": answer, "text": text,
                "observation": item.observation.map(|o| o.name()), "level": item.on_problem.level.name(),
                "by": user.id, "display_name": user.display_name, "role": user.role.name(),
            }),
        ))
        .await?;
    let base = patient_base(&patient_id);
    if answer == "ok" {
        record_completion(&state, &access, &user, item).await?;
    }
    if answer == "problem" {
        return Ok(see_other(&format!("{base}/what-to-do/{}", item.id)));
    }
    // Move on to the next unanswered item so the phone scrolls to it.
    let siblings: Vec<&care::ChecklistItem> = items_of(&item.checklist).collect();
    let next = siblings
        .iter()
        .skip_while(|i| i.id != item.id)
        .nth(1)
        .map(|i| format!("#{}", item_anchor(&i.id)))
        .unwrap_or_default();
    Ok(see_other(&format!(
        "{base}/today?phase={phase}&saved=1{next}"
    )))
}

/// When this tick completes its checklist for today, the record also gets the record's own
/// `checklist_completed` event (with every item), which exports and the care team's views understand.
async fn record_completion(
    state: &AppState,
    access: &access::PatientAccess,
    user: &CurrentUser,
    item: &care::ChecklistItem,
) -> Result<(), AppError> {
    let answers = todays_answers(state, &access.patient_id).await?;
    let items: Vec<&care::ChecklistItem> = items_of(&item.checklist).collect();
    if !items
        .iter()
        .all(|i| answers.get(&i.id).is_some_and(|(a, _)| a == "ok"))
    {
        return Ok(());
    }
    crate::services::records::append(state, EventDraft::new(
            &access.patient_id,
            record::Kind::ChecklistCompleted,
            user.role.origin(),
            Some(&user.id),
            crate::services::now_ms(),
            json!({"checklist": item.checklist, "items": items.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), "display_name": user.display_name}),
        ))
        .await?;
    Ok(())
}

/// `GET /p/{patient}/what-to-do/{item}`: the answer to a checklist problem.
pub async fn what_to_do(
    State(state): State<AppState>,
    user: WebUser,
    Path((patient_id, item_id)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    let item = care::content()
        .items
        .iter()
        .find(|i| i.id == item_id)
        .ok_or_else(|| AppError::not_found("this checklist item"))?;
    let layout = patient_layout(&state, &access, "What to do", "today", false).await;
    let roles: Vec<String> = item
        .on_problem
        .call
        .iter()
        .map(|r| r.name().to_string())
        .collect();
    let page = outcome_page(
        layout,
        item.on_problem.level,
        item.problem.clone(),
        String::new(),
        item.on_problem.steps.clone(),
        &roles,
        Vec::new(),
        format!("{}/today", patient_base(&patient_id)),
    );
    Ok(html(&page))
}

/// A result page for a level: emergency shows the emergency number first and largest.
#[allow(clippy::too_many_arguments)]
pub fn outcome_page(
    mut layout: Layout,
    level: care::Level,
    headline: String,
    about: String,
    steps: Vec<String>,
    call_roles: &[String],
    reasons: Vec<String>,
    again_href: String,
) -> ResultPage {
    let emergency = if level == care::Level::Emergency {
        // Nothing comes between the emergency number and the emergency steps, not even a pump alarm's banner.
        layout.banner = None;
        common::emergency_contact(&layout.contacts)
    } else {
        None
    };
    let mut calls = common::contacts_for_roles(&layout.contacts, call_roles);
    // In an emergency the emergency number heads "Who to call" too, not only the big button above.
    if let Some(e) = &emergency {
        calls.retain(|c| c != e);
        calls.insert(0, e.clone());
    }
    let level_label = care::content()
        .common
        .levels
        .get(&level)
        .cloned()
        .unwrap_or_else(|| level.name().replace('_', " "));
    let about = if about == level_label {
        String::new()
    } else {
        about
    };
    ResultPage {
        level_class: match level {
            care::Level::Emergency => "emergency",
            care::Level::CallCareTeam => "call-now",
            _ => "self-care",
        },
        level_label,
        headline,
        about,
        emergency,
        steps,
        calls,
        reasons,
        again_href,
        layout,
    }
}

/// `GET /p/{patient}`: the person's Today page.
pub async fn home(Path(patient_id): Path<String>) -> Response {
    see_other(&format!("{}/today", patient_base(&patient_id)))
}

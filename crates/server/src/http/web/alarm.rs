//! The alarm on the patient's side: "My pump" (live state; during an alarm, the alarm's own page with the care
//! team's notes first, what happens next and when, numbered steps and whom to call), the banner every other
//! patient page carries during an alarm, and the two actions ("I did this", acknowledge).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::EventDraft;
use crate::error::AppError;
use crate::http::extract::WebUser;
use crate::services::AppState;
use crate::services::access::{self, PatientAccess};
use crate::services::alarms::AlarmView;
use crate::services::now_ms;

use super::banner::{ack_lines, occurrence_id, what_happens_next};
use super::common::{self, PATIENT_NAV, patient_base, patient_layout, see_other};
use super::person::PersonWords;
use super::view::{
    AlarmGuideView, AlarmLine, PumpPage, PumpView, StepView, format_ago, format_minutes, format_ml,
    format_time, html, priority_class, priority_label, state_words,
};

/// Events read back to show an alarm's progress; enough for a long day.
const TIMELINE_READ_MAX: usize = 2000;

/// The care team's own notes for this alarm (its guide's id, `alarm.<name>`) after their general notes.
pub fn care_notes(state: &AppState, patient_id: &str, alarm: &str) -> Vec<String> {
    state
        .plans
        .get(patient_id)
        .map(|plan| {
            plan.notes_for(&format!("alarm.{alarm}"))
                .into_iter()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Lines that say who was alerted and who acknowledged, for the patient and the nurse.
pub fn status_lines(alarm: &AlarmView, now: i64) -> Vec<String> {
    let mut lines = Vec::new();
    match alarm.escalation {
        Some(crate::domain::escalation::Rung::Nurse) => {
            lines.push("Not acknowledged in time: the nurse has been alerted.".to_string())
        }
        Some(crate::domain::escalation::Rung::OnCall) => lines.push(
            "Not acknowledged in time: the nurse and the on-call team have been alerted."
                .to_string(),
        ),
        _ => {}
    }
    for ack in &alarm.acknowledgements {
        let mut line = if ack.role == "pump" {
            format!(
                "Acknowledged on the pump itself at {}.",
                format_time(now, ack.at_ms)
            )
        } else {
            format!(
                "Acknowledged by {} ({}) at {}.",
                ack.by_name,
                ack.role,
                format_time(now, ack.at_ms)
            )
        };
        if let Some(note) = &ack.note {
            line.push_str(&format!(" Note: {note}"));
        }
        lines.push(line);
    }
    if let Some(until) = alarm.silenced_until_ms
        && until > now
    {
        lines.push(format!("Sound paused until {}.", format_time(now, until)));
    }
    if alarm.raised_by_server {
        lines.push("Raised by the server: the pump stopped sending updates.".to_string());
    }
    lines
}

pub fn alarm_line(alarm: &AlarmView, now: i64, ack_action: String) -> AlarmLine {
    AlarmLine {
        id: occurrence_id(alarm),
        title: common::alarm_title(&alarm.alarm),
        priority: priority_class(alarm.priority).to_string(),
        priority_label: priority_label(alarm.priority).to_string(),
        raised_label: format!(
            "{} ({})",
            format_time(now, alarm.raised_at_ms),
            format_ago(now, alarm.raised_at_ms)
        ),
        acknowledged: alarm.is_acknowledged(),
        acknowledged_by_nurse: alarm
            .acknowledgements
            .iter()
            .any(|a| a.role == "nurse" || a.role == "admin"),
        teaching: alarm.teaching,
        status_lines: status_lines(alarm, now),
        ack_action,
    }
}

pub fn pump_view(
    snapshot: &crate::services::alarms::PatientSnapshot,
    plan: Option<&Value>,
    now: i64,
) -> Option<PumpView> {
    let t = snapshot.telemetry.as_ref()?;
    let (state_label, state_class) = state_words(&t.state);
    let drug = plan
        .and_then(|p| p.get("therapy"))
        .map(|t| {
            let s = |k: &str| {
                t.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            [s("drug"), s("concentration")]
                .into_iter()
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let updated_label = snapshot
        .telemetry_at_ms
        .map(|at| format_ago(now, at))
        .unwrap_or_else(|| "never".into());
    let battery = match t.battery_minutes_left {
        Some(m) => format!("{:.0}% (about {})", t.battery_percent, format_minutes(m)),
        None => format!("{:.0}%", t.battery_percent),
    };
    let stale = snapshot.link == "silent";
    Some(PumpView {
        state_label,
        state_class,
        rate: format_ml(t.rate_ml_per_h, "mL/h"),
        infused: format_ml(t.delivered_ml, "mL"),
        remaining: format_ml(t.remaining_ml, "mL"),
        time_left: t.minutes_left.map(format_minutes).unwrap_or_else(|| "—".into()),
        battery,
        drug: if drug.is_empty() { "Your infusion".into() } else { drug },
        updated_label,
        teaching: snapshot.teaching,
        stale,
        stale_message: "The pump has stopped sending updates. What you see may be out of date: look at the pump itself, and call your nurse if it should be running.".into(),
    })
}

/// `GET /p/{patient}/pump`: live state; during an alarm the page is the alarm guide.
pub async fn pump(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    Query(done): Query<super::practice::Done>,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    let snapshot = crate::services::alarms::snapshot(&state, &access);
    let plan = common::load_plan(&state, &access).await;
    let now = now_ms();
    let base = patient_base(&patient_id);
    let title = if snapshot.active_alarms.is_empty() {
        PersonWords::new(&user, &access.display_name).nav_label("pump", "My pump")
    } else {
        "Pump alarm".to_string()
    };
    let mut layout = patient_layout(&state, &access, &title, "pump", true).await;
    layout.notice = super::practice::done_notice(done.done());

    let words = PersonWords::new(&user, &access.display_name);
    let mut alarm = None;
    let mut other_alarms = Vec::new();
    for (i, a) in snapshot.active_alarms.iter().enumerate() {
        if i == 0 {
            alarm = Some(alarm_guide(&state, &access, a, &layout.contacts, &words, now).await?);
        } else {
            other_alarms.push(alarm_line(a, now, format!("{base}/alarms/{}/ack", a.id)));
        }
    }
    let pump = pump_view(&snapshot, plan.as_ref(), now);
    let practice = super::practice::patient_buttons(&state, &access);
    Ok(html(&PumpPage {
        heading: words.nav_label("pump", "My pump"),
        layout,
        alarm,
        other_alarms,
        pump,
        practice,
        self_href: format!("{base}/pump"),
        check_href: format!("{base}/check"),
    }))
}

async fn alarm_guide(
    state: &AppState,
    access: &PatientAccess,
    a: &AlarmView,
    contacts: &[super::view::Contact],
    words: &PersonWords,
    now: i64,
) -> Result<AlarmGuideView, AppError> {
    let patient_id = access.patient_id.as_str();
    let base = patient_base(patient_id);
    let guide = care::Alarm::from_name(&a.alarm).map(|k| care::content().alarm(k));
    let events = crate::services::records::timeline(
        state,
        patient_id,
        &["alarm_step_done".to_string(), "alarm_raised".to_string()],
        TIMELINE_READ_MAX,
        1,
    )
    .await?;
    let mut done_steps = Vec::new();
    let mut repeats = 0usize;
    for e in &events {
        let same_alarm = e.payload.get("alarm").and_then(Value::as_str) == Some(a.alarm.as_str());
        if !same_alarm {
            continue;
        }
        match e.kind.as_str() {
            "alarm_step_done"
                if e.payload.get("raised_at_ms").and_then(Value::as_i64)
                    == Some(a.raised_at_ms) =>
            {
                if let Some(n) = e.payload.get("step").and_then(Value::as_u64) {
                    done_steps.push(n as usize);
                }
            }
            "alarm_raised" if e.occurred_at.as_millisecond() >= now - 24 * 3600 * 1000 => {
                repeats += 1
            }
            _ => {}
        }
    }
    let (title, screen, meaning, steps, do_not, call_when, roles) = match guide {
        Some(g) => (
            g.title.clone(),
            g.screen.clone(),
            g.meaning.clone(),
            g.steps.clone(),
            g.do_not.clone(),
            g.call_when.clone(),
            g.call
                .iter()
                .map(|r| r.name().to_string())
                .collect::<Vec<_>>(),
        ),
        None => (
            a.alarm.replace('_', " "),
            String::new(),
            "The pump raised an alarm this app has no guide for.".to_string(),
            vec!["Look at the pump's screen and follow your pump's manual.".to_string()],
            Vec::new(),
            vec!["You are unsure what the alarm means.".to_string()],
            vec!["nurse".to_string()],
        ),
    };
    let mut escalation = Vec::new();
    if repeats >= 3 {
        escalation.push(
            "This alarm keeps coming back: call your care team now, even if you fixed it."
                .to_string(),
        );
    }
    let mut status = ack_lines(a, &access.user.id, now);
    status.extend(what_happens_next(state, patient_id, a, words, now));
    Ok(AlarmGuideView {
        id: occurrence_id(a),
        title,
        screen,
        care_notes: care_notes(state, patient_id, &a.alarm),
        status,
        priority: priority_class(a.priority).to_string(),
        priority_label: priority_label(a.priority).to_string(),
        meaning,
        raised_label: format!(
            "at {} ({})",
            format_time(now, a.raised_at_ms),
            format_ago(now, a.raised_at_ms)
        ),
        repeats,
        escalation,
        steps: steps
            .into_iter()
            .enumerate()
            .map(|(i, text)| StepView {
                number: i + 1,
                text,
                done: done_steps.contains(&(i + 1)),
            })
            .collect(),
        do_not,
        call_when,
        calls: common::contacts_for_roles(contacts, &roles),
        acknowledged: a.is_acknowledged(),
        teaching: a.teaching,
        step_action: format!("{base}/alarms/{}/step", a.id),
        ack_action: format!("{base}/alarms/{}/ack", a.id),
    })
}

/// `POST /p/{patient}/alarms/{alarm}/step`: "I did this", recorded against this occurrence of the alarm.
pub async fn alarm_step(
    State(state): State<AppState>,
    user: WebUser,
    Path((patient_id, alarm)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    let pairs = common::form_pairs(&body)?;
    let step: usize = common::form_value(&pairs, "step")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| AppError::invalid("step", "the step number is missing; reload the page"))?;
    let snapshot = crate::services::alarms::snapshot(&state, &access);
    // The form names this occurrence by its id (older pages by the alarm's name).
    let Some(active) = snapshot
        .active_alarms
        .iter()
        .find(|a| a.id == alarm || a.alarm == alarm)
    else {
        // The alarm cleared while the page was open: show the pump as it is now.
        return Ok(see_other(&format!("{}/pump", patient_base(&patient_id))));
    };
    let alarm = active.alarm.clone();
    let steps = care::Alarm::from_name(&alarm)
        .map(|k| care::content().alarm(k).steps.clone())
        .unwrap_or_default();
    let text = steps.get(step.wrapping_sub(1)).cloned().ok_or_else(|| {
        AppError::invalid("step", format!("this alarm has steps 1 to {}", steps.len()))
    })?;
    let event = EventDraft::new(
        &patient_id,
        crate::domain::ServerKind::AlarmStepDone,
        user.role.origin(),
        Some(&user.id),
        crate::services::now_ms(),
        json!({"alarm": alarm, "alarm_id": active.id, "raised_at_ms": active.raised_at_ms, "step": step, "text": text, "by": user.id, "display_name": user.display_name, "role": user.role.name()}),
    )
    .teaching(active.teaching);
    crate::services::records::append(&state, event).await?;
    // Back at the next step, not at the top of the page: the person keeps their place in the list.
    let next = if step < steps.len() {
        format!("step-{}", step + 1)
    } else {
        "alarm-ack".to_string()
    };
    Ok(see_other(&format!(
        "{}/pump#{next}",
        patient_base(&patient_id)
    )))
}

/// `POST /p/{patient}/alarms/{alarm}/ack`: acknowledge, from the patient's screen or a nurse's.
pub async fn alarm_ack(
    State(state): State<AppState>,
    user: WebUser,
    Path((patient_id, alarm)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    let pairs = common::form_pairs(&body)?;
    let note = common::form_value(&pairs, "note");
    let back = common::form_value(&pairs, "back").unwrap_or_default();
    let base = patient_base(&patient_id);
    // Back where the person acknowledged: the dashboard, the nurse's patient page, or one of this patient's own
    // pages (named by its path, checked against the list so the form cannot redirect anywhere else).
    let target = match back {
        "dashboard" if user.role.is_clinician() => "/nurse".to_string(),
        "patient" if user.role.is_clinician() => format!("/nurse/patients/{patient_id}"),
        page if PATIENT_NAV
            .iter()
            .any(|(suffix, _)| page == format!("{base}/{suffix}")) =>
        {
            page.to_string()
        }
        _ => format!("{base}/pump"),
    };
    match crate::services::alarms::acknowledge(&state, &access, &alarm, note).await {
        Ok(_) => Ok(see_other(&target)),
        // Cleared or already gone while the page was open: nothing left to acknowledge; show the current state.
        Err(AppError::NotFound { .. }) => Ok(see_other(&target)),
        Err(e) => Err(e),
    }
}

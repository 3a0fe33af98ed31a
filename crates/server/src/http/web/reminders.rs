//! Reminders: the plan's schedule as a list a person can read, and as an iCalendar file for their own
//! phone's calendar (infusion times, pump and site checks, battery, supplies), made by `care::ical`: as a
//! download, or at a secret address the phone subscribes to (`services::calendar`), so a plan change reaches
//! the phone by itself.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::AppError;
use crate::http::extract::WebUser;
use crate::services::AppState;
use crate::services::{access, calendar, now_ms};

use super::common::{self, patient_base, patient_layout, see_other};
use super::view::{CalendarView, ReminderView, RemindersPage, format_time, html};

#[derive(Deserialize, Default)]
pub struct RemindersQuery {
    /// The address just made (shown once more, only while it is the patient's working one).
    #[serde(default)]
    new: Option<String>,
}

/// The day's name in words ("thu" → "Thursday").
fn weekday_word(name: &str) -> String {
    let word = match name {
        "mon" => "Monday",
        "tue" => "Tuesday",
        "wed" => "Wednesday",
        "thu" => "Thursday",
        "fri" => "Friday",
        "sat" => "Saturday",
        "sun" => "Sunday",
        other => other,
    };
    word.to_string()
}

fn plan_of(value: Option<serde_json::Value>) -> Option<care::TherapyPlan> {
    value.and_then(|v| care::TherapyPlan::from_value(v).ok())
}

/// `GET /p/{patient}/reminders?new=`
pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    Query(q): Query<RemindersQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    let layout = patient_layout(&state, &access, "Reminders", "reminders", false).await;
    let plan = plan_of(common::load_plan(&state, &access).await);
    let reminders = plan
        .as_ref()
        .map(|p| {
            care::reminders::reminders(p)
                .into_iter()
                .map(|r| {
                    let when = match &r.recurrence {
                        care::reminders::Recurrence::EveryDays(1) => {
                            format!("every day at {}", r.time.strftime("%H:%M"))
                        }
                        care::reminders::Recurrence::EveryDays(n) => {
                            format!("every {n} days at {}", r.time.strftime("%H:%M"))
                        }
                        care::reminders::Recurrence::Weekdays(days) => format!(
                            "on {} at {}",
                            days.iter()
                                .map(|d| weekday_word(d.name()))
                                .collect::<Vec<_>>()
                                .join(", "),
                            r.time.strftime("%H:%M")
                        ),
                    };
                    let detail = if r.alert_before_min > 0 {
                        format!(
                            "Your phone alerts you {} minutes before.",
                            r.alert_before_min
                        )
                    } else {
                        String::new()
                    };
                    ReminderView {
                        note_lines: r
                            .description
                            .lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(str::to_string)
                            .collect(),
                        title: r.title,
                        when,
                        detail,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let calendar = calendar_view(&state, &access, q.new.as_deref(), &headers).await?;
    let shows_address = calendar.address.is_some();
    let mut response = html(&RemindersPage {
        layout,
        ics_href: format!("{}/reminders.ics", patient_base(&patient_id)),
        reminders,
        calendar,
    });
    if shows_address {
        // The address is in this page's own URL: no link from it may carry it elsewhere.
        response.headers_mut().insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    Ok(response)
}

async fn calendar_view(
    state: &AppState,
    access: &access::PatientAccess,
    new: Option<&str>,
    headers: &HeaderMap,
) -> Result<CalendarView, AppError> {
    let now = now_ms();
    let current = calendar::current(state, access).await?;
    let base = patient_base(&access.patient_id);
    let mut view = CalendarView {
        address: None,
        webcal: None,
        active: current.is_some(),
        made_label: String::new(),
        fetched_label: String::new(),
        create_action: format!("{base}/reminders/calendar-link"),
        revoke_action: format!("{base}/reminders/calendar-link/revoke"),
    };
    if let Some(link) = &current {
        view.made_label = format_time(now, link.created_at_ms);
        view.fetched_label = link
            .last_fetched_at_ms
            .map(|at| format_time(now, at))
            .unwrap_or_else(|| "not yet".into());
    }
    if let Some(token) = new
        && calendar::is_current(state, access, token).await?
    {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
            })
            .unwrap_or("localhost");
        let scheme = if state.config.secure_cookies {
            "https"
        } else {
            "http"
        };
        view.address = Some(format!("{scheme}://{host}/cal/{token}.ics"));
        view.webcal = Some(format!("webcal://{host}/cal/{token}.ics"));
    }
    Ok(view)
}

/// `POST /p/{patient}/reminders/calendar-link`: a new secret address (the old one stops working).
pub async fn create_link(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
) -> Result<Response, AppError> {
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    let token = calendar::create(&state, &access).await?;
    Ok(see_other(&format!(
        "{}/reminders?new={token}#calendar",
        patient_base(&patient_id)
    )))
}

/// `POST /p/{patient}/reminders/calendar-link/revoke`
pub async fn revoke_link(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
) -> Result<Response, AppError> {
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    calendar::revoke(&state, &access).await?;
    Ok(see_other(&format!(
        "{}/reminders#calendar",
        patient_base(&patient_id)
    )))
}

/// `GET /cal/{token}.ics`: the calendar at a secret address, for a phone's calendar (no session: the
/// address is the key). Unknown and revoked addresses are a 404 that says what to do.
pub async fn subscribed(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, AppError> {
    let token = file.strip_suffix(".ics").ok_or_else(|| {
        AppError::not_found(
            "this calendar address (it ends in .ics; copy it again from the Reminders page)",
        )
    })?;
    let body = calendar::calendar_for_token(&state, token).await?;
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

/// `GET /p/{patient}/reminders.ics`: the calendar file (also usable as a subscription while signed in).
pub async fn ics(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    let plan = plan_of(common::load_plan(&state, &access).await).ok_or_else(|| {
        AppError::not_found("a therapy plan with reminders (ask your nurse to add one)")
    })?;
    let body = care::ical::calendar(&plan, jiff::Timestamp::now());
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"infusafe-reminders.ics\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

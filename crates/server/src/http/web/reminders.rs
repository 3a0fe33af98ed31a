//! Reminders: the plan's schedule as a list a person can read, and as an iCalendar file for their own
//! phone's calendar (infusion times, pump and site checks, battery, supplies), made by `care::ical`.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::http::extract::WebUser;
use crate::services::AppState;

use super::common::{self, patient_base, patient_layout};
use super::view::{ReminderView, RemindersPage, html};

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

/// `GET /p/{patient}/reminders`
pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
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
                        title: r.title,
                        when,
                        detail,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(html(&RemindersPage {
        layout,
        ics_href: format!("{}/reminders.ics", patient_base(&patient_id)),
        reminders,
    }))
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

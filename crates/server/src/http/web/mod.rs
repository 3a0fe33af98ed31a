//! The HTML screens for patients, caregivers and nurses, rendered on the server with askama: plain links
//! and forms that work without JavaScript (POST, then redirect, then GET), one small script that refreshes
//! live parts from the server-sent event streams, and SVG charts drawn here.
//!
//! Every handler checks access through `crate::access` (which audits reads) and every form carries the
//! session's CSRF token, checked by the router-wide guard in `crate::auth`. See docs/screens.md.

pub mod alarm;
pub mod assets;
pub mod banner;
pub mod card;
pub mod charts;
pub mod check;
pub mod common;
pub mod log;
pub mod log_words;
pub mod login;
pub mod nurse;
pub mod patient;
pub mod patient_log;
pub mod person;
pub mod practice;
pub mod reminders;
pub mod view;

use axum::Router;
use axum::routing::{get, post};

use crate::services::AppState;

/// Middleware: a request about one patient (`/p/{id}/…`, `/nurse/patients/{id}/…`) shows clock times in that
/// patient's plan time zone, so "If no one acknowledges it by 14:05" is 14:05 where the patient is, whatever the
/// server's own zone. Other requests use the server's zone.
pub async fn display_zone(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path();
    let patient = path
        .strip_prefix("/p/")
        .or_else(|| path.strip_prefix("/nurse/patients/"))
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty());
    let zone = patient
        .and_then(|id| state.plans.get(id))
        .map(|plan| plan.tz())
        .unwrap_or_else(jiff::tz::TimeZone::system);
    view::DISPLAY_ZONE.scope(zone, next.run(request)).await
}

/// The screens' routes, merged into the server's router by `server::router`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(login::start))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/static/{file}", get(assets::serve))
        .route("/p/{patient_id}", get(patient::home))
        .route("/p/{patient_id}/today", get(patient::today))
        .route("/p/{patient_id}/checklist", post(patient::checklist_answer))
        .route(
            "/p/{patient_id}/what-to-do/{item_id}",
            get(patient::what_to_do),
        )
        .route("/p/{patient_id}/pump", get(alarm::pump))
        .route(
            "/p/{patient_id}/alarms/{alarm}/step",
            post(alarm::alarm_step),
        )
        .route("/p/{patient_id}/alarms/{alarm}/ack", post(alarm::alarm_ack))
        .route(
            "/p/{patient_id}/check",
            get(check::form).post(check::submit),
        )
        .route(
            "/p/{patient_id}/check/result/{check_id}",
            get(check::result),
        )
        .route("/p/{patient_id}/log", get(log::page))
        .route(
            "/p/{patient_id}/log/felt",
            get(patient_log::felt_form).post(patient_log::felt_submit),
        )
        .route(
            "/p/{patient_id}/log/site",
            get(patient_log::site_form)
                .post(patient_log::site_submit)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::http::extract::UPLOAD_BYTES_MAX,
                )),
        )
        .route(
            "/p/{patient_id}/log/question",
            get(patient_log::question_form).post(patient_log::question_submit),
        )
        .route("/p/{patient_id}/log/entries/{id}", get(patient_log::saved))
        .route(
            "/p/{patient_id}/log/photos/{sha256}",
            get(patient_log::photo),
        )
        .route(
            "/nurse/patients/{patient_id}/questions/{id}/answer",
            post(patient_log::answer),
        )
        .route("/p/{patient_id}/reminders", get(reminders::page))
        .route("/p/{patient_id}/reminders.ics", get(reminders::ics))
        .route(
            "/p/{patient_id}/reminders/calendar-link",
            post(reminders::create_link),
        )
        .route(
            "/p/{patient_id}/reminders/calendar-link/revoke",
            post(reminders::revoke_link),
        )
        .route("/cal/{file}", get(reminders::subscribed))
        .route("/p/{patient_id}/card", get(card::page))
        .route("/nurse", get(nurse::dashboard))
        .route("/nurse/attention", get(nurse::attention))
        .route("/nurse/rows/{patient_id}", get(nurse::row))
        .route("/nurse/patients/{patient_id}", get(nurse::patient))
        .route("/nurse/patients/{patient_id}/plan", post(nurse::save_plan))
        .route("/nurse/patients/{patient_id}/practice", get(practice::page))
        .route(
            "/nurse/patients/{patient_id}/practice/start",
            post(practice::start),
        )
        .route(
            "/nurse/patients/{patient_id}/practice/stop",
            post(practice::stop),
        )
        .route(
            "/nurse/patients/{patient_id}/practice/act",
            post(practice::act),
        )
        .route("/p/{patient_id}/practice", post(practice::act))
}

//! The patient's own log: "how I felt", "what I see at my site" (with an optional photo) and "a question for my
//! nurse", one plain form per screen, each saved as an event in the record (POST, then a redirect to the saved
//! entry). When care's triage would send the person to the care team for what they ticked, the saved page offers
//! the symptom check at once, pre-filled. The nurse sees the entries on the patient's page, with a chart of how
//! the patient felt beside alarms and doses, and answers questions there.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::error::AppError;
use crate::http::extract::WebUser;
use crate::http::multipart;
use crate::services::AppState;
use crate::services::access::{self, PatientAccess};
use crate::services::now_ms;
use crate::services::patient_log::{self as log, Compared, PhotoUpload};
use crate::services::records::Entry;

use super::charts::{self, ChartConfig, DayFelt};
use super::common::{self, patient_base, patient_layout, see_other};
use super::log_words;
use super::person::PersonWords;
use super::view::{
    CheckOption, Layout, NurseSection, OwnEntryView, format_time, html, html_with_status,
};

/// Days of the chart on the nurse's page.
const CHART_DAYS: u32 = 14;
/// Entries of the patient's own log listed on the nurse's page.
const NURSE_ENTRIES_MAX: usize = 20;

// ------------------------------------------------------------------------------------------------ page models

pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "log_felt.html")]
pub struct FeltPage {
    pub layout: Layout,
    /// The form's title in this person's words ("How I felt", "How Alex felt").
    pub heading: String,
    pub action: String,
    pub errors: Vec<String>,
    pub compared_legend: String,
    pub compared: Vec<Choice>,
    pub symptoms: Vec<CheckOption>,
    pub text: String,
    /// `(event id, "the infusion that started at …")` when written at the end of an infusion.
    pub infusion: Option<(i64, String)>,
    pub log_href: String,
}

#[derive(Template)]
#[template(path = "log_site.html")]
pub struct SitePage {
    pub layout: Layout,
    /// The form's title in this person's words ("How I felt", "How Alex felt").
    pub heading: String,
    pub action: String,
    pub errors: Vec<String>,
    pub line_hint: String,
    pub signs: Vec<CheckOption>,
    pub text: String,
    pub photo_max_mb: usize,
    pub log_href: String,
}

#[derive(Template)]
#[template(path = "log_question.html")]
pub struct QuestionPage {
    pub layout: Layout,
    /// The form's title in this person's words ("How I felt", "How Alex felt").
    pub heading: String,
    /// "your" or "Alex's", and with a capital.
    pub whose: String,
    pub whose_capital: String,
    pub action: String,
    pub errors: Vec<String>,
    pub text: String,
    pub log_href: String,
}

#[derive(Template)]
#[template(path = "log_saved.html")]
pub struct SavedPage {
    pub layout: Layout,
    pub entry: OwnEntryView,
    /// The symptom check, pre-filled, when triage would send the person to the care team.
    pub check_href: Option<String>,
    pub check_urgent: bool,
    /// On an emergency: the plan's emergency number, first and largest.
    pub emergency: Option<super::view::Contact>,
    pub log_href: String,
}

// ------------------------------------------------------------------------------------------------ words

fn compared_choices(checked: Option<Compared>) -> Vec<Choice> {
    Compared::ALL
        .into_iter()
        .map(|c| Choice {
            value: c.name(),
            label: log_words::compared_label(c),
            checked: Some(c) == checked,
        })
        .collect()
}

fn options(words: &[care::Observation], checked: &[care::Observation]) -> Vec<CheckOption> {
    words
        .iter()
        .map(|o| CheckOption {
            value: o.name().to_string(),
            label: log_words::label(*o),
            hint: String::new(),
            checked: checked.contains(o),
        })
        .collect()
}

fn site_options(checked: &[care::Observation]) -> Vec<CheckOption> {
    care::content()
        .signs
        .iter()
        .map(|s| CheckOption {
            value: s.observation.name().to_string(),
            label: s.question.clone(),
            hint: String::new(),
            checked: checked.contains(&s.observation),
        })
        .collect()
}

fn own_entry_view(e: &Entry, now: i64, base: &str) -> OwnEntryView {
    let photo_href = e
        .payload
        .get("photo")
        .and_then(|p| p.get("sha256"))
        .and_then(Value::as_str)
        .map(|sha| format!("{base}/log/photos/{sha}"));
    OwnEntryView {
        id: e.id,
        title: log_words::title(&e.kind, &e.payload)
            .unwrap_or_else(|| common::event_title(&e.kind, &e.payload)),
        at_label: format_time(now, e.occurred_at.as_millisecond()),
        at_iso: super::view::iso_time(e.occurred_at.as_millisecond()),
        lines: log_words::detail_lines(&e.kind, &e.payload).unwrap_or_default(),
        who: common::event_who(&e.payload),
        photo_href,
        answers: Vec::new(),
        is_question: e.kind == record::Kind::QuestionAsked.name(),
        answer_action: String::new(),
    }
}

fn answer_line(a: &Entry, now: i64) -> String {
    format!(
        "{} ({}, {})",
        a.payload
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        common::event_who(&a.payload),
        format_time(now, a.occurred_at.as_millisecond())
    )
}

// ------------------------------------------------------------------------------------------------ forms

fn log_href(patient_id: &str) -> String {
    format!("{}/log", patient_base(patient_id))
}

fn parse_observations(
    pairs: &[(String, String)],
    field: &str,
    errors: &mut Vec<String>,
) -> Vec<care::Observation> {
    let mut out = Vec::new();
    for (k, v) in pairs.iter().filter(|(k, _)| k == field) {
        match care::Observation::parse(v) {
            Ok(o) if !out.contains(&o) => out.push(o),
            Ok(_) => {}
            Err(_) => errors.push(format!(
                "\"{}\" is not one of the choices for {k}. Tick only the boxes shown on this page.",
                v.chars().take(40).collect::<String>()
            )),
        }
    }
    out
}

/// The latest real infusion start, for "after=latest".
async fn latest_infusion(state: &AppState, patient_id: &str) -> Result<Option<Entry>, AppError> {
    Ok(
        log::events(state, patient_id, &[record::Kind::InfusionStarted])
            .await?
            .into_iter()
            .find(|e| !e.teaching),
    )
}

#[derive(Deserialize, Default)]
pub struct FeltQuery {
    #[serde(default)]
    after: Option<String>,
}

/// `GET /p/{patient}/log/felt?after=latest`
pub async fn felt_form(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    Query(q): Query<FeltQuery>,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    let infusion = match q.after.as_deref() {
        Some(_) => latest_infusion(&state, &patient_id).await?.map(|e| {
            let at = format_time(now_ms(), e.occurred_at.as_millisecond());
            (e.id, format!("the infusion that started {at}"))
        }),
        None => None,
    };
    let page = felt_page(
        &state,
        &access,
        Vec::new(),
        None,
        &[],
        String::new(),
        infusion,
    )
    .await;
    Ok(html(&page))
}

async fn felt_page(
    state: &AppState,
    access: &PatientAccess,
    errors: Vec<String>,
    compared: Option<Compared>,
    symptoms: &[care::Observation],
    text: String,
    infusion: Option<(i64, String)>,
) -> FeltPage {
    let words = PersonWords::new(&access.user, &access.display_name);
    let [heading, _, _] = log_words::form_titles(&words);
    FeltPage {
        layout: patient_layout(state, access, &heading, "log", false).await,
        compared_legend: if words.is_patient {
            "Compared with before, I feel".into()
        } else {
            format!("Compared with before, {} feels", words.who)
        },
        heading,
        action: format!("{}/log/felt", patient_base(&access.patient_id)),
        errors,
        compared: compared_choices(compared),
        symptoms: options(&log::feeling_words(), symptoms),
        text,
        infusion,
        log_href: log_href(&access.patient_id),
    }
}

/// `POST /p/{patient}/log/felt`: `compared`, `symptom` (repeated), `text`, `infusion`.
pub async fn felt_submit(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    let pairs = common::form_pairs(&body)?;
    let mut errors = Vec::new();
    let compared = common::form_value(&pairs, "compared").and_then(Compared::from_name);
    if compared.is_none() {
        errors.push("Choose how you feel compared with before: better, the same or worse.".into());
    }
    let symptoms = parse_observations(&pairs, "symptom", &mut errors);
    let raw_text = common::form_value(&pairs, "text")
        .unwrap_or_default()
        .to_string();
    let text = match log::clean_text("text", &raw_text) {
        Ok(t) => t,
        Err(e) => {
            errors.push(format!("Your words {}.", message_of(&e)));
            None
        }
    };
    let infusion = match common::form_value(&pairs, "infusion").filter(|v| !v.is_empty()) {
        Some(v) => match v.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push("The infusion this follows could not be read. Open the form again from the log.".into());
                None
            }
        },
        None => None,
    };
    let infusion_label = infusion.map(|id| (id, "the infusion you came from".to_string()));
    let (Some(compared), true) = (compared, errors.is_empty()) else {
        let page = felt_page(
            &state,
            &access,
            errors,
            compared,
            &symptoms,
            raw_text,
            infusion_label,
        )
        .await;
        return Ok(html_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
    };
    match log::write_felt(&state, &access, compared, &symptoms, text, infusion).await {
        Ok(id) => Ok(see_other(&format!(
            "{}/log/entries/{id}",
            patient_base(&patient_id)
        ))),
        Err(AppError::Invalid { message, .. }) => {
            let page = felt_page(
                &state,
                &access,
                vec![sentence(&message)],
                Some(compared),
                &symptoms,
                raw_text,
                infusion_label,
            )
            .await;
            Ok(html_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e),
    }
}

fn message_of(e: &AppError) -> String {
    match e {
        AppError::Invalid { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// `GET /p/{patient}/log/site`
pub async fn site_form(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    Ok(html(
        &site_page(&state, &access, Vec::new(), &[], String::new()).await,
    ))
}

async fn site_page(
    state: &AppState,
    access: &PatientAccess,
    errors: Vec<String>,
    signs: &[care::Observation],
    text: String,
) -> SitePage {
    let plan = common::load_plan(state, access)
        .await
        .and_then(|p| care::TherapyPlan::from_value(p).ok());
    let line_hint = plan
        .map(|p| {
            let line = care::content().line(p.line);
            format!("Your line: {}. {}", line.name, line.look)
        })
        .unwrap_or_default();
    let [_, heading, _] =
        log_words::form_titles(&PersonWords::new(&access.user, &access.display_name));
    SitePage {
        layout: patient_layout(state, access, &heading, "log", false).await,
        heading,
        action: format!("{}/log/site", patient_base(&access.patient_id)),
        errors,
        line_hint,
        signs: site_options(signs),
        text,
        photo_max_mb: log::PHOTO_BYTES_MAX / 1_048_576,
        log_href: log_href(&access.patient_id),
    }
}

/// A form's fields as `(name, value)` in the order sent.
type FormPairs = Vec<(String, String)>;

/// The site form's fields, from a multipart body (with a photo) or an urlencoded one.
fn site_fields(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(FormPairs, Option<PhotoUpload>), AppError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(boundary) = multipart::boundary(content_type) else {
        return Ok((common::form_pairs(body)?, None));
    };
    let parts = multipart::parse(body, &boundary).map_err(|why| {
        AppError::invalid(
            "form",
            format!("the form could not be read ({why}); reload the page and try again"),
        )
    })?;
    let mut pairs = Vec::new();
    let mut photo = None;
    for part in parts {
        if part.filename.is_some() {
            if part.name == "photo" && !part.data.is_empty() {
                photo = Some(PhotoUpload { bytes: part.data });
            }
        } else if let Some(text) = part.text() {
            pairs.push((part.name.clone(), text.to_string()));
        }
    }
    Ok((pairs, photo))
}

/// `POST /p/{patient}/log/site`: `sign` (repeated), `text`, `photo` (a file; the form is multipart).
pub async fn site_submit(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    let (pairs, photo) = site_fields(&headers, &body)?;
    let mut errors = Vec::new();
    let signs = parse_observations(&pairs, "sign", &mut errors);
    let raw_text = common::form_value(&pairs, "text")
        .unwrap_or_default()
        .to_string();
    let text = match log::clean_text("text", &raw_text) {
        Ok(t) => t,
        Err(e) => {
            errors.push(format!("Your words {}.", message_of(&e)));
            None
        }
    };
    if let Some(p) = &photo
        && let Err(e) = log::check_photo(&p.bytes)
    {
        errors.push(format!("The photo {}.", message_of(&e)));
    }
    if errors.is_empty() {
        match log::write_site(&state, &access, &signs, text, photo).await {
            Ok(id) => {
                return Ok(see_other(&format!(
                    "{}/log/entries/{id}",
                    patient_base(&patient_id)
                )));
            }
            Err(AppError::Invalid { message, .. }) => errors.push(sentence(&message)),
            Err(e) => return Err(e),
        }
    }
    let page = site_page(&state, &access, errors, &signs, raw_text).await;
    Ok(html_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// `GET /p/{patient}/log/question`
pub async fn question_form(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    Ok(html(
        &question_page(&state, &access, Vec::new(), String::new()).await,
    ))
}

async fn question_page(
    state: &AppState,
    access: &PatientAccess,
    errors: Vec<String>,
    text: String,
) -> QuestionPage {
    let words = PersonWords::new(&access.user, &access.display_name);
    let [_, _, heading] = log_words::form_titles(&words);
    QuestionPage {
        layout: patient_layout(state, access, &heading, "log", false).await,
        heading,
        whose: words.whose.clone(),
        whose_capital: words.whose_capital(),
        action: format!("{}/log/question", patient_base(&access.patient_id)),
        errors,
        text,
        log_href: log_href(&access.patient_id),
    }
}

/// `POST /p/{patient}/log/question`: `text`.
pub async fn question_submit(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    let pairs = common::form_pairs(&body)?;
    let raw_text = common::form_value(&pairs, "text")
        .unwrap_or_default()
        .to_string();
    let error = match log::clean_text("text", &raw_text) {
        Ok(Some(text)) => match log::ask(&state, &access, text).await {
            Ok(id) => {
                return Ok(see_other(&format!(
                    "{}/log/entries/{id}",
                    patient_base(&patient_id)
                )));
            }
            Err(AppError::Invalid { message, .. }) => sentence(&message),
            Err(e) => return Err(e),
        },
        Ok(None) => "Write your question in the box first.".to_string(),
        Err(e) => format!("Your question {}.", message_of(&e)),
    };
    let page = question_page(&state, &access, vec![error], raw_text).await;
    Ok(html_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// `GET /p/{patient}/log/entries/{id}`: the saved entry, its answers, and the symptom check when triage says so.
pub async fn saved(
    State(state): State<AppState>,
    user: WebUser,
    Path((patient_id, id)): Path<(String, i64)>,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    let entry = log::entry(&state, &access, id).await?;
    let now = now_ms();
    let base = patient_base(&patient_id);
    let mut view = own_entry_view(&entry, now, &base);
    if entry.kind == record::Kind::QuestionAsked.name() {
        let threads = log::questions(&state, &patient_id).await?;
        if let Some(t) = threads.iter().find(|t| t.question.id == id) {
            view.answers = t.answers.iter().map(|a| answer_line(a, now)).collect();
        }
    }
    let reported = log::reported(&entry);
    let plan = common::load_plan(&state, &access)
        .await
        .and_then(|p| care::TherapyPlan::from_value(p).ok());
    let level = log::triage_level(plan.as_ref(), &reported);
    let check_href = (level != care::Level::SelfCare).then(|| {
        let query: Vec<(&str, &str)> = reported.iter().map(|o| ("observation", o.name())).collect();
        format!(
            "{base}/check?{}",
            serde_urlencoded::to_string(&query).unwrap_or_default()
        )
    });
    let mut layout = patient_layout(&state, &access, "Saved in your log", "log", false).await;
    layout.notice = Some("Saved in your log.".into());
    let urgent = level == care::Level::Emergency;
    // What was written can be an emergency: the emergency number first and largest, as on the symptom check's
    // answer, and nothing (not even a pump alarm's banner) before it.
    let emergency = if urgent {
        layout.banner = None;
        common::emergency_contact(&layout.contacts)
    } else {
        None
    };
    Ok(html(&SavedPage {
        emergency,
        layout,
        entry: view,
        check_href,
        check_urgent: urgent,
        log_href: log_href(&patient_id),
    }))
}

/// `GET /p/{patient}/log/photos/{sha256}`: a photo kept with the record, to people who may see the record.
pub async fn photo(
    State(state): State<AppState>,
    user: WebUser,
    Path((patient_id, sha256)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    let (media_type, bytes) = log::photo(&state, &access, &sha256)
        .await?
        .ok_or_else(|| AppError::not_found("this photo"))?;
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&media_type).map_err(AppError::internal)?,
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    Ok(response)
}

/// `POST /nurse/patients/{patient}/questions/{id}/answer`: `text`.
pub async fn answer(
    State(state): State<AppState>,
    user: WebUser,
    Path((patient_id, id)): Path<(String, i64)>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    access::require_clinician(&user)?;
    let access = access::patient_for_action(&state, &user, &patient_id).await?;
    let pairs = common::form_pairs(&body)?;
    let text = log::clean_text(
        "text",
        common::form_value(&pairs, "text").unwrap_or_default(),
    )
    .map_err(|e| {
        AppError::invalid(
            "text",
            format!(
                "the answer {}; go back and write your answer in the box",
                message_of(&e)
            ),
        )
    })?
    .ok_or_else(|| {
        AppError::invalid(
            "text",
            "the answer was empty; go back and write your answer in the box",
        )
    })?;
    log::answer(&state, &access, id, text).await?;
    Ok(see_other(&format!("/nurse/patients/{patient_id}#own-log")))
}

// ------------------------------------------------------------------------------------------------ nurse

/// How the patient felt per local day (the day's last entry) beside alarms raised and infusions started.
pub fn felt_days(events: &[Entry], days: u32, now: i64) -> Vec<DayFelt> {
    let tz = jiff::tz::TimeZone::system();
    let Ok(today) =
        jiff::Timestamp::from_millisecond(now).map(|t| t.to_zoned_datetime(tz.clone()).date())
    else {
        return Vec::new();
    };
    let mut by_day: BTreeMap<jiff::civil::Date, DayFelt> = BTreeMap::new();
    for back in 0..days {
        if let Ok(d) = today.checked_sub(jiff::Span::new().days(i64::from(back))) {
            by_day.insert(
                d,
                DayFelt {
                    day_label: d.strftime("%-d %b").to_string(),
                    ..DayFelt::default()
                },
            );
        }
    }
    // Oldest first, so the day's last entry is the one kept.
    for e in events.iter().rev().filter(|e| !e.teaching) {
        let day = e.occurred_at.to_zoned_datetime(tz.clone()).date();
        let Some(slot) = by_day.get_mut(&day) else {
            continue;
        };
        match e.kind.as_str() {
            "how_i_felt" => {
                if let Some(c) = e
                    .payload
                    .get("compared")
                    .and_then(Value::as_str)
                    .and_then(Compared::from_name)
                {
                    slot.felt = Some(c.name());
                }
            }
            "alarm_raised" => slot.alarms += 1,
            "infusion_started" => slot.doses += 1,
            _ => {}
        }
    }
    by_day.into_values().collect()
}

/// The nurse's section: the chart, then the patient's own entries (newest first), questions with an answer form.
pub async fn nurse_section(
    state: &AppState,
    patient_id: &str,
    now: i64,
) -> Result<NurseSection, AppError> {
    // The chart needs its 14 days of feelings, alarms and doses; the list, the patient's own entries.
    let charted = log::events_within(
        state,
        patient_id,
        &[
            record::Kind::HowIFelt,
            record::Kind::AlarmRaised,
            record::Kind::InfusionStarted,
        ],
        i64::from(CHART_DAYS) + 1,
    )
    .await?;
    let felt_svg = charts::felt_chart(
        &felt_days(&charted, CHART_DAYS, now),
        ChartConfig {
            height: 280.0,
            ..ChartConfig::default()
        },
    );
    let events = log::events(
        state,
        patient_id,
        &[
            record::Kind::HowIFelt,
            record::Kind::SiteSeen,
            record::Kind::QuestionAsked,
        ],
    )
    .await?;
    let threads = log::questions(state, patient_id).await?;
    let base = patient_base(patient_id);
    let open_questions = threads.iter().filter(|t| t.answers.is_empty()).count();
    // The newest entries, then any question still waiting for an answer that is older than those.
    let newest: Vec<&Entry> = events.iter().take(NURSE_ENTRIES_MAX).collect();
    let waiting: Vec<&Entry> = threads
        .iter()
        .filter(|t| t.answers.is_empty() && !newest.iter().any(|e| e.id == t.question.id))
        .map(|t| &t.question)
        .collect();
    let entries = newest
        .into_iter()
        .chain(waiting)
        .map(|e| {
            let mut view = own_entry_view(e, now, &base);
            if let Some(t) = threads.iter().find(|t| t.question.id == e.id) {
                view.answers = t.answers.iter().map(|a| answer_line(a, now)).collect();
                view.answer_action =
                    format!("/nurse/patients/{patient_id}/questions/{}/answer", e.id);
            }
            view
        })
        .collect();
    Ok(NurseSection {
        felt_svg,
        open_questions,
        entries,
    })
}

//! What every screen handler shares: the page frame for a signed-in person (navigation, the care team's
//! numbers, the CSRF token), reading the plan's contacts for `tel:` links, redirects after a POST, and the
//! words for the record's event kinds.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use crate::error::AppError;
use crate::services::AppState;
use crate::services::access::PatientAccess;
use crate::services::auth::{CurrentUser, Role};

use super::assets;
use super::view::{Contact, Layout, NavLink};

/// The patient screens, in navigation order: (path suffix, label).
pub const PATIENT_NAV: [(&str, &str); 6] = [
    ("today", "Today"),
    ("pump", "My pump"),
    ("check", "Something's wrong?"),
    ("log", "Log"),
    ("reminders", "Reminders"),
    ("card", "Pump corner card"),
];

pub fn patient_base(patient_id: &str) -> String {
    format!("/p/{patient_id}")
}

/// Where "home" is for this person: their own Today page, the list of the people they care for, or the
/// nurse dashboard.
pub fn home_for(user: &CurrentUser) -> String {
    if user.role.is_clinician() {
        "/nurse".into()
    } else if let [only] = user.patient_ids.as_slice() {
        format!("{}/today", patient_base(only))
    } else {
        "/".into()
    }
}

/// The frame for a page about one patient, seen by the patient, a caregiver or a clinician.
///
/// The patient and caregivers get the active-alarm banner on every page (not on "My pump", which is the alarm's
/// own page during an alarm) and a live stream on every page, so an alarm raised while they read Today, the
/// symptom check or the log reaches them there. Caregivers read the patient's name where the patient reads "my".
pub async fn patient_layout(
    state: &AppState,
    access: &PatientAccess,
    title: &str,
    current: &str,
    live: bool,
) -> Layout {
    let plan = load_plan(state, access).await;
    let user = &access.user;
    let base = patient_base(&access.patient_id);
    let mut nav: Vec<NavLink> = Vec::new();
    if user.role.is_clinician() {
        for (href, label, here) in [
            ("/nurse".to_string(), "Dashboard", false),
            (
                format!("/nurse/patients/{}", access.patient_id),
                "Patient",
                current == "nurse-patient",
            ),
            (
                format!("/nurse/patients/{}/practice", access.patient_id),
                "Practice pump",
                current == "practice",
            ),
        ] {
            nav.push(NavLink {
                href,
                label: label.into(),
                current: here,
            });
        }
    }
    let words = super::person::PersonWords::new(user, &access.display_name);
    for (suffix, label) in PATIENT_NAV {
        nav.push(NavLink {
            href: format!("{base}/{suffix}"),
            label: words.nav_label(suffix, label),
            current: current == suffix,
        });
    }
    let page_title = if user.role == Role::Patient {
        title.to_string()
    } else {
        format!("{title}: {}", access.display_name)
    };
    let contacts = plan_contacts(plan.as_ref());
    let patient_side = !user.role.is_clinician();
    let banner = if patient_side && current != "pump" {
        let back = PATIENT_NAV
            .iter()
            .find(|(suffix, _)| *suffix == current)
            .map(|(suffix, _)| format!("{base}/{suffix}"))
            .unwrap_or_else(|| format!("{base}/today"));
        super::banner::alarm_banner(state, access, &words, back)
    } else {
        None
    };
    Layout {
        title: page_title,
        home: home_for(user),
        nav,
        signed_in_as: Some(user.display_name.clone()),
        csrf: user.csrf_token.clone(),
        contacts,
        care_first: care::content().common.care_team_first.clone(),
        no_numbers: care::content().common.no_plan_numbers.clone(),
        stream: (live || patient_side)
            .then(|| format!("/api/patients/{}/stream", access.patient_id)),
        notice: None,
        body_class: "patient",
        asset_version: assets::version(),
        banner,
    }
}

/// The frame for a clinician page that is not about one patient (the dashboard).
pub fn clinic_layout(user: &CurrentUser, title: &str, live: bool) -> Layout {
    Layout {
        title: title.into(),
        home: "/nurse".into(),
        nav: vec![NavLink {
            href: "/nurse".into(),
            label: "Dashboard".into(),
            current: true,
        }],
        signed_in_as: Some(user.display_name.clone()),
        csrf: user.csrf_token.clone(),
        contacts: Vec::new(),
        care_first: care::content().common.care_team_first.clone(),
        no_numbers: String::new(),
        stream: live.then(|| "/api/dashboard/stream?initial=none".to_string()),
        notice: None,
        body_class: "nurse",
        asset_version: assets::version(),
        banner: None,
    }
}

/// The frame for pages shown before sign-in.
pub fn public_layout(title: &str, csrf: &str) -> Layout {
    Layout {
        title: title.into(),
        home: "/".into(),
        nav: Vec::new(),
        signed_in_as: None,
        csrf: csrf.into(),
        contacts: Vec::new(),
        care_first: care::content().common.care_team_first.clone(),
        no_numbers: String::new(),
        stream: None,
        notice: None,
        body_class: "public",
        asset_version: assets::version(),
        banner: None,
    }
}

/// The patient's plan as stored (JSON), or `None` when there is none or it cannot be read. A page must
/// still render without a plan: the generic guidance and "use the numbers on your written plan" remain.
pub async fn load_plan(state: &AppState, access: &PatientAccess) -> Option<Value> {
    match crate::services::plans::get(state, access).await {
        Ok(plan) => plan.map(|p| p.plan),
        Err(e) => {
            eprintln!(
                "infusafe web: could not load the plan of {}: {e}",
                access.patient_id
            );
            None
        }
    }
}

/// The label people read for a contact role name (`nurse` → "Home infusion nurse").
pub fn role_label(role: &str) -> String {
    let common = &care::content().common;
    care::Role::from_name(role)
        .and_then(|r| common.roles.get(&r).cloned())
        .unwrap_or_else(|| {
            let words = role.replace('_', " ");
            let mut chars = words.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                .unwrap_or_default()
        })
}

/// Contacts from a plan: accepts a list of `{role, name, phone}` or a table keyed by role whose values are
/// `{name, phone}` or a phone string. Entries without a phone number are left out (a `tel:` link needs one).
/// Ordered as the care content orders roles: nurse, on-call, pharmacy, device support, emergency.
pub fn plan_contacts(plan: Option<&Value>) -> Vec<Contact> {
    let Some(contacts) = plan.and_then(|p| p.get("contacts")) else {
        return Vec::new();
    };
    let mut out: Vec<(usize, Contact)> = Vec::new();
    let mut push = |role: &str, entry: &Value| {
        let (name, phone) = match entry {
            Value::String(phone) => (String::new(), phone.clone()),
            Value::Object(o) => (
                o.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                o.get("phone")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ),
            _ => return,
        };
        if phone.trim().is_empty() || super::view::tel_href(&phone).is_empty() {
            return;
        }
        let rank = care::Role::from_name(role)
            .map(|r| r as usize)
            .unwrap_or(usize::MAX);
        out.push((rank, Contact::new(role_label(role), name, phone)));
    };
    match contacts {
        Value::Array(list) => {
            for c in list {
                let role = c.get("role").and_then(Value::as_str).unwrap_or("contact");
                push(role, c);
            }
        }
        Value::Object(map) => {
            for (role, c) in map {
                match c {
                    Value::Array(list) => list.iter().for_each(|one| push(role, one)),
                    other => push(role, other),
                }
            }
        }
        _ => {}
    }
    out.sort_by_key(|(rank, _)| *rank);
    out.into_iter().map(|(_, c)| c).collect()
}

/// Contacts for a list of role names, in that order; roles without a number in the plan are left out.
pub fn contacts_for_roles(all: &[Contact], roles: &[String]) -> Vec<Contact> {
    let mut out = Vec::new();
    for role in roles {
        let label = role_label(role);
        for c in all.iter().filter(|c| c.role_label == label) {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
    }
    out
}

/// The emergency number from the plan's contacts (role `emergency`), if the plan gives one.
pub fn emergency_contact(all: &[Contact]) -> Option<Contact> {
    let label = role_label("emergency");
    all.iter().find(|c| c.role_label == label).cloned()
}

/// After a successful POST: 303 to the page to show, so reloading never repeats the action.
pub fn see_other(location: &str) -> Response {
    let mut response = Redirect::to(location).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Words for the record's event kinds, for timelines.
pub fn event_title(kind: &str, payload: &Value) -> String {
    if let Some(title) = super::log_words::title(kind, payload) {
        return title;
    }
    let alarm_title = || {
        payload
            .get("alarm")
            .and_then(Value::as_str)
            .map(alarm_title)
            .unwrap_or_else(|| "an alarm".to_string())
    };
    match kind {
        "alarm_raised" => format!("Alarm: {}", alarm_title()),
        "alarm_cleared" => format!("Alarm cleared: {}", alarm_title()),
        "alarm_acknowledged" => format!("Alarm acknowledged: {}", alarm_title()),
        "alarm_silenced" => format!("Alarm sound paused: {}", alarm_title()),
        "alarm_escalated" => {
            let rung = payload.get("rung").and_then(Value::as_str).unwrap_or("");
            match rung {
                "patient" => format!("Alarm shown on the patient's screens: {}", alarm_title()),
                "nurse" => format!("Alarm passed to the nurse: {}", alarm_title()),
                "on_call" => format!("Alarm passed to the on-call team: {}", alarm_title()),
                _ => format!("Alarm passed to the care team: {}", alarm_title()),
            }
        }
        "alarm_step_done" => format!("Alarm step done: {}", alarm_title()),
        "checklist_answered" => {
            let answer = payload.get("answer").and_then(Value::as_str).unwrap_or("");
            if answer == "problem" {
                "Checklist: problem reported".into()
            } else {
                "Checklist: item done".into()
            }
        }
        "symptom_check" => {
            let level = payload.get("level").and_then(Value::as_str).unwrap_or("");
            let level = if level.is_empty() {
                payload.get("triage").and_then(Value::as_str).unwrap_or("")
            } else {
                level
            };
            format!("Symptom check: {}", level_words(level))
        }
        "checklist_completed" => "Checklist complete".into(),
        "record_read" => "Record viewed".into(),
        "login" => "Signed in".into(),
        "plan_changed" => "Therapy plan changed".into(),
        "patient_registered" => "Patient registered".into(),
        "device_assigned" => "Pump assigned".into(),
        "practice_started" => "Practice pump started".into(),
        "practice_stopped" => "Practice pump stopped".into(),
        "practice_fault" => "Practice fault triggered".into(),
        other => {
            let words = other.replace('_', " ");
            let mut chars = words.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                .unwrap_or_default()
        }
    }
}

/// The guide's title for an alarm name, or the name in words when the guide has none.
pub fn alarm_title(name: &str) -> String {
    care::Alarm::from_name(name)
        .map(|a| care::content().alarm(a).title.clone())
        .unwrap_or_else(|| name.replace('_', " "))
}

/// Short words for a triage level name.
pub fn level_words(level: &str) -> String {
    match level {
        "emergency" => "emergency".into(),
        "call_care_team" => "call the care team".into(),
        "self_care" => "follow the steps".into(),
        other => other.replace('_', " "),
    }
}

/// A short line of detail for a timeline entry, from well-known payload fields.
pub fn event_detail(kind: &str, payload: &Value) -> String {
    if let Some(lines) = super::log_words::detail_lines(kind, payload) {
        return lines.join(" · ");
    }
    let s = |k: &str| {
        payload
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match kind {
        "checklist_answered" => s("text"),
        "alarm_acknowledged" => {
            let note = s("note");
            if note.is_empty() {
                String::new()
            } else {
                format!("Note: {note}")
            }
        }
        "alarm_step_done" => s("text"),
        "symptom_check" => s("headline"),
        "practice_fault" => s("fault").replace('_', " "),
        "alarm_raised" => payload
            .get("priority")
            .and_then(Value::as_str)
            .and_then(pump::Priority::from_name)
            .map(|p| super::view::priority_label(p).to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Who did it, for a timeline entry: a person's display name when the payload has it.
pub fn event_who(payload: &Value) -> String {
    payload
        .get("display_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Parses `key=value` pairs of a form body, keeping repeated keys (checkbox groups).
pub fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, AppError> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).map_err(|_| {
        AppError::invalid(
            "form",
            "the form could not be read; reload the page and try again",
        )
    })
}

pub fn form_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// How long one audited read covers the same person re-reading the same record (a live page refreshing
/// itself every few seconds must not bury the record in `record_read` events).
pub const READ_AUDIT_WINDOW: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// Pairs remembered at most; past that the memory starts afresh (reads are then audited again, never less).
const READ_AUDIT_REMEMBERED_MAX: usize = 10_000;

fn recent_reads()
-> &'static std::sync::Mutex<std::collections::HashMap<(String, String), std::time::Instant>> {
    static RECENT: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<(String, String), std::time::Instant>>,
    > = std::sync::OnceLock::new();
    RECENT.get_or_init(Default::default)
}

/// Access to a patient for a page that shows their record: checked every time through `crate::access`,
/// and audited as a `record_read` event at most once per `READ_AUDIT_WINDOW` per person, record and
/// session, so every reading session is in the record without one event per live refresh.
pub async fn read_access(
    state: &AppState,
    user: &CurrentUser,
    patient_id: &str,
) -> Result<PatientAccess, AppError> {
    let key = (
        format!("{}:{}", user.id, user.session_hash),
        patient_id.to_string(),
    );
    let now = std::time::Instant::now();
    let recent = {
        let map = recent_reads().lock().unwrap_or_else(|p| p.into_inner());
        map.get(&key)
            .is_some_and(|at| now.duration_since(*at) < READ_AUDIT_WINDOW)
    };
    if recent {
        return crate::services::access::patient_for_action(state, user, patient_id).await;
    }
    let access = crate::services::access::patient(state, user, patient_id).await?;
    let mut map = recent_reads().lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= READ_AUDIT_REMEMBERED_MAX {
        map.clear();
    }
    map.insert(key, now);
    Ok(access)
}

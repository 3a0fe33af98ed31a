//! The page models: one askama template struct per screen, plus the small display types they share and the
//! formatting of numbers, times and durations for people (units always shown, no raw ids or milliseconds).
//!
//! Handlers fill these from the server's live board, the record and the `care` content; templates only
//! display. Keeping the models plain strings and numbers means a template can never reach into the database.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What every page shows around its content: navigation home, the care team's numbers, the statement that
/// the care team's own instructions come first, and the CSRF token for the sign-out form.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub title: String,
    pub home: String,
    pub nav: Vec<NavLink>,
    pub signed_in_as: Option<String>,
    pub csrf: String,
    pub contacts: Vec<Contact>,
    pub care_first: String,
    pub no_numbers: String,
    /// The server-sent event stream the live script listens to, on pages that update by themselves.
    pub stream: Option<String>,
    pub notice: Option<String>,
    pub body_class: &'static str,
    pub asset_version: &'static str,
    /// The patient's most urgent active alarm, on every page the patient or a caregiver sees (never a nurse's):
    /// rendered by the server so it shows without JavaScript, refreshed live with the page's other parts.
    pub banner: Option<AlarmBanner>,
}

#[derive(Debug, Clone)]
pub struct NavLink {
    pub href: String,
    pub label: String,
    pub current: bool,
}

/// The active-alarm banner: the alarm in plain words with the pump's own word, step 1, what happens next, and
/// the two actions (open the steps, acknowledge), small enough to sit above the fold on a phone.
#[derive(Debug, Clone)]
pub struct AlarmBanner {
    pub id: String,
    pub title: String,
    /// What the pump's own screen shows ("Occlusion"); empty for an alarm the server raised.
    pub screen: String,
    pub priority: String,
    pub priority_label: String,
    pub teaching: bool,
    pub first_step: String,
    pub steps_href: String,
    /// Who was alerted, who acknowledged, and what happens next and when.
    pub status: Vec<String>,
    /// The number to call now, once the alarm was passed to the nurse and no clinician acknowledged it.
    pub call: Option<Contact>,
    pub acknowledged: bool,
    pub ack_action: String,
    /// The page to come back to after acknowledging from the banner.
    pub back: String,
    /// More active alarms besides this one.
    pub more: usize,
}

/// A phone number to call, with who answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub role_label: String,
    pub name: String,
    /// As written for people, e.g. "0161 555 0101".
    pub phone: String,
    /// For the `tel:` link: digits and a leading +.
    pub tel: String,
}

impl Contact {
    pub fn new(
        role_label: impl Into<String>,
        name: impl Into<String>,
        phone: impl Into<String>,
    ) -> Contact {
        let phone = phone.into();
        Contact {
            role_label: role_label.into(),
            name: name.into(),
            tel: tel_href(&phone),
            phone,
        }
    }
}

/// The part of a phone number a `tel:` link needs: a leading + and the digits (and `*`, `#`, `,` for
/// extensions); spaces, dashes, brackets and dots are dropped.
pub fn tel_href(phone: &str) -> String {
    let mut out = String::new();
    for (i, c) in phone.trim().chars().enumerate() {
        match c {
            '+' if i == 0 => out.push('+'),
            '0'..='9' | '*' | '#' | ',' => out.push(c),
            _ => {}
        }
    }
    out
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub layout: Layout,
    pub error: Option<String>,
    pub username: String,
    pub next: String,
}

pub struct NextInfusion {
    pub when_label: String,
    pub what: String,
    pub detail: String,
}

pub struct PhaseTab {
    pub href: String,
    pub label: String,
    pub current: bool,
    pub done: usize,
    pub total: usize,
}

pub struct ChecklistView {
    pub phase: String,
    pub title: String,
    pub intro: String,
    pub done: usize,
    pub total: usize,
    pub items: Vec<ChecklistItemView>,
}

pub struct ChecklistItemView {
    pub id: String,
    /// The element id (and URL fragment): the item id with dots replaced, so it is a plain CSS name.
    pub anchor: String,
    /// The group heading, on the first item of each group only.
    pub group_start: String,
    pub check: String,
    pub problem: String,
    /// `""` (not answered today), `"ok"` or `"problem"`.
    pub state: &'static str,
    pub answered_label: String,
    pub problem_href: String,
}

#[derive(Template)]
#[template(path = "today.html")]
pub struct TodayPage {
    pub layout: Layout,
    /// "Your" for the patient, "Alex's" for a caregiver or a clinician.
    pub whose_capital: String,
    pub next_infusion: Option<NextInfusion>,
    pub phases: Vec<PhaseTab>,
    pub checklist: Option<ChecklistView>,
    pub checklist_action: String,
    pub check_href: String,
    /// "How I felt" in the log, about the latest infusion (shown with the after-infusion checklist).
    pub felt_href: String,
}

/// What to do: the answer to a symptom check or to a checklist problem.
#[derive(Template)]
#[template(path = "result.html")]
pub struct ResultPage {
    pub layout: Layout,
    /// `emergency`, `call-now` or `self-care`: drives colour, never the only cue.
    pub level_class: &'static str,
    pub level_label: String,
    pub headline: String,
    pub about: String,
    /// On an emergency: the emergency number, first and largest.
    pub emergency: Option<Contact>,
    pub steps: Vec<String>,
    pub calls: Vec<Contact>,
    pub reasons: Vec<String>,
    pub again_href: String,
}

pub struct StepView {
    pub number: usize,
    pub text: String,
    pub done: bool,
}

pub struct AlarmGuideView {
    /// Stable for one occurrence: the alarm name and when it was raised.
    pub id: String,
    pub title: String,
    /// What the pump's own screen shows ("Occlusion"); empty for an alarm the server raised.
    pub screen: String,
    /// The care team's own notes for this alarm (general ones first): shown before the guide's steps.
    pub care_notes: Vec<String>,
    /// Who acknowledged (with their note), who was alerted, and what happens next and when.
    pub status: Vec<String>,
    pub priority: String,
    pub priority_label: String,
    pub meaning: String,
    pub raised_label: String,
    pub repeats: usize,
    pub escalation: Vec<String>,
    pub steps: Vec<StepView>,
    pub do_not: Vec<String>,
    pub call_when: Vec<String>,
    pub calls: Vec<Contact>,
    pub acknowledged: bool,
    pub teaching: bool,
    pub step_action: String,
    pub ack_action: String,
}

pub struct AlarmLine {
    pub id: String,
    pub title: String,
    pub priority: String,
    pub priority_label: String,
    pub raised_label: String,
    pub acknowledged: bool,
    pub acknowledged_by_nurse: bool,
    pub teaching: bool,
    pub status_lines: Vec<String>,
    pub ack_action: String,
}

pub struct PumpView {
    pub state_label: String,
    pub state_class: &'static str,
    pub rate: String,
    pub infused: String,
    pub remaining: String,
    pub time_left: String,
    pub battery: String,
    pub drug: String,
    pub updated_label: String,
    pub teaching: bool,
    pub stale: bool,
    pub stale_message: String,
}

#[derive(Template)]
#[template(path = "pump.html")]
pub struct PumpPage {
    pub layout: Layout,
    /// The care team's statement, shown inside the alarm (the page's own copy is left out during an alarm so the
    /// alarm starts at the top).
    pub care_first: String,
    /// "My pump", or "Alex's pump" for a caregiver or a clinician.
    pub heading: String,
    pub alarm: Option<AlarmGuideView>,
    pub other_alarms: Vec<AlarmLine>,
    pub pump: Option<PumpView>,
    pub practice: Option<PracticeButtons>,
    pub self_href: String,
    pub check_href: String,
}

pub struct CheckOption {
    pub value: String,
    pub label: String,
    pub hint: String,
    pub checked: bool,
}

pub struct CheckGroup {
    pub name: &'static str,
    pub legend: String,
    pub hint: String,
    pub options: Vec<CheckOption>,
}

#[derive(Template)]
#[template(path = "check.html")]
pub struct CheckPage {
    pub layout: Layout,
    pub emergency: Option<Contact>,
    pub errors: Vec<String>,
    pub groups: Vec<CheckGroup>,
    pub action: String,
}

pub struct SelectOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub struct EntryView {
    pub at_iso: String,
    pub at_label: String,
    pub title: String,
    pub detail: String,
    pub who: String,
    pub class: &'static str,
    pub teaching: bool,
}

#[derive(Template)]
#[template(path = "log.html")]
pub struct LogPage {
    pub layout: Layout,
    pub heading: String,
    /// Whether the practice pump's events are shown (a checkbox of the filter form).
    pub show_practice: bool,
    pub self_href: String,
    pub kinds: Vec<SelectOption>,
    pub periods: Vec<SelectOption>,
    pub volume_svg: String,
    pub alarms_svg: String,
    pub entries: Vec<EntryView>,
    pub truncated: bool,
    /// The three forms of the patient's own log, for the patient and caregivers (empty for the care team, who read).
    pub write_links: Vec<WriteLink>,
}

/// A link to one form of the patient's own log.
pub struct WriteLink {
    pub href: String,
    pub label: String,
}

pub struct ReminderView {
    pub title: String,
    pub when: String,
    pub detail: String,
    /// The reminder's note, line by line, as the calendar file's DESCRIPTION carries it.
    pub note_lines: Vec<String>,
}

/// The patient's secret calendar address: whether one works, and the address itself only right after it was made.
pub struct CalendarView {
    pub address: Option<String>,
    pub webcal: Option<String>,
    pub active: bool,
    pub made_label: String,
    pub fetched_label: String,
    pub create_action: String,
    pub revoke_action: String,
}

#[derive(Template)]
#[template(path = "reminders.html")]
pub struct RemindersPage {
    pub layout: Layout,
    pub ics_href: String,
    pub reminders: Vec<ReminderView>,
    pub calendar: CalendarView,
}

pub struct CardAlarm {
    pub title: String,
    /// What the pump's own screen shows for it.
    pub screen: String,
    pub meaning: String,
    pub first_step: String,
    /// The care team's own note for this alarm, from the plan.
    pub care_notes: Vec<String>,
}

pub struct CardList {
    pub title: String,
    pub steps: Vec<String>,
}

#[derive(Template)]
#[template(path = "card.html")]
pub struct CardPage {
    pub layout: Layout,
    pub patient_name: String,
    pub numbers: Vec<Contact>,
    /// The care team's general notes from the plan, first on the card.
    pub care_notes: Vec<String>,
    pub alarms: Vec<CardAlarm>,
    pub daily: Vec<CardList>,
    pub emergency_phone: String,
    pub emergencies: Vec<String>,
}

/// One patient on the dashboard, in the attention section (with the acknowledge forms) or in the list.
pub struct DashboardRow {
    /// The element's id: `att-{patient}` in the attention section, `row-{patient}` in the list.
    pub element_id: String,
    pub patient_id: String,
    pub href: String,
    pub name: String,
    pub urgency_class: &'static str,
    pub urgency_label: String,
    pub pump_line: String,
    /// The pump's state name (`running`, …), so the live script can tell when telemetry changed the row.
    pub state: String,
    pub alarms: Vec<AlarmLine>,
    /// In the list: the patient needs attention, and their alarms are in the section above.
    pub see_above: bool,
    /// Many patients need attention: no note fields or status lines, so the whole section stays short.
    pub compact: bool,
}

/// The attention section's live part: the count people hear and every row, most urgent first.
pub struct AttentionSection {
    pub count_label: String,
    pub rows: Vec<DashboardRow>,
}

/// A link of the pager; `href` is empty on the first and last page.
pub struct PageLink {
    pub href: String,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub layout: Layout,
    pub csrf: String,
    pub attention: AttentionSection,
    pub rows: Vec<DashboardRow>,
    /// The search as typed (trimmed), empty for none.
    pub search: String,
    /// "42 patients" or "3 patients match “ann”".
    pub matching_label: String,
    pub page_label: String,
    pub previous: PageLink,
    pub next: PageLink,
}

/// `GET /nurse/attention`: the attention section alone, for the live script.
#[derive(Template)]
#[template(path = "dashboard_attention.html")]
pub struct AttentionFragment {
    pub csrf: String,
    pub attention: AttentionSection,
}

/// `GET /nurse/rows/{patient}`: one row of the list alone, for the live script.
#[derive(Template)]
#[template(path = "dashboard_row.html")]
pub struct RowFragment {
    pub csrf: String,
    pub row: DashboardRow,
}

pub struct PlanField {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: String,
    /// `text`, `number`, `time`, `tel`, `checkbox` or `textarea`.
    pub kind: &'static str,
    pub value: String,
    pub error: String,
    pub rows: u32,
}

#[derive(Template)]
#[template(path = "nurse_patient.html")]
pub struct NursePatientPage {
    pub layout: Layout,
    pub patient_name: String,
    pub practice_href: String,
    pub log_href: String,
    pub alarms: Vec<AlarmLine>,
    pub pump: Option<PumpView>,
    pub volume_svg: String,
    pub alarms_svg: String,
    pub escalations: Vec<EntryView>,
    pub entries: Vec<EntryView>,
    pub days: u32,
    pub plan_version: String,
    pub plan_errors: Vec<String>,
    pub plan_fields: Vec<PlanField>,
    pub plan_action: String,
    /// The patient's own log: how they felt (chart), site, questions to answer.
    pub own_log: NurseSection,
}

/// One entry of the patient's own log, for people.
pub struct OwnEntryView {
    pub id: i64,
    pub title: String,
    pub at_label: String,
    pub at_iso: String,
    pub lines: Vec<String>,
    pub who: String,
    pub photo_href: Option<String>,
    pub answers: Vec<String>,
    pub is_question: bool,
    /// The form that answers a question (nurse's page), empty otherwise.
    pub answer_action: String,
}

/// The nurse's section of the patient's page (included in `nurse_patient.html`).
#[derive(Default)]
pub struct NurseSection {
    pub felt_svg: String,
    pub open_questions: usize,
    pub entries: Vec<OwnEntryView>,
}

pub struct FaultButton {
    pub value: &'static str,
    pub label: &'static str,
}

/// The practice pump's buttons on the patient's own pump page (teaching mode only).
pub struct PracticeButtons {
    pub action: String,
    pub buttons: Vec<FaultButton>,
    pub screen: Option<PumpScreen>,
}

/// The practice pump's own display, as the real pump's screen would show it: its state, the word on its screen
/// during an alarm, and what the pump needs next (a stopped pump senses no blocked line).
pub struct PumpScreen {
    pub state_label: String,
    pub state_class: &'static str,
    pub detail: String,
    pub alarm_word: String,
    pub hint: String,
}

#[derive(Template)]
#[template(path = "practice.html")]
pub struct PracticePage {
    pub layout: Layout,
    pub patient_name: String,
    pub running: bool,
    pub started_by: String,
    pub patient_pump_href: String,
    pub faults: Vec<FaultButton>,
    pub fault_action: String,
    pub fixes: Vec<FaultButton>,
    pub screen: Option<PumpScreen>,
    pub start_action: String,
    pub stop_action: String,
    pub patient_href: String,
}

/// For a caregiver linked to several people: whose screens to open.
#[derive(Template)]
#[template(path = "chooser.html")]
pub struct ChooserPage {
    pub layout: Layout,
    /// (link to their Today page, their name)
    pub people: Vec<(String, String)>,
}

/// Render a page as an HTML response that is never cached (pages carry personal data and CSRF tokens).
pub fn html<T: Template>(page: &T) -> Response {
    html_with_status(StatusCode::OK, page)
}

pub fn html_with_status<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            response
        }
        Err(e) => crate::error::AppError::internal(format!("template: {e}")).into_response(),
    }
}

// ---------------------------------------------------------------------------------------------- formatting

/// "12.5 mL/h", "0 mL/h": one decimal only when it matters.
pub fn format_ml(value: f64, unit: &str) -> String {
    if !value.is_finite() {
        return "unknown".into();
    }
    if (value - value.round()).abs() < 0.05 {
        format!("{:.0} {unit}", value.round())
    } else {
        format!("{value:.1} {unit}")
    }
}

/// "2 h 05 min", "12 min", "less than 1 min".
pub fn format_minutes(minutes: f64) -> String {
    if !minutes.is_finite() || minutes < 0.0 {
        return "unknown".into();
    }
    let total = minutes.round() as u64;
    if total == 0 {
        "less than 1 min".into()
    } else if total < 60 {
        format!("{total} min")
    } else {
        format!("{} h {:02} min", total / 60, total % 60)
    }
}

/// How long ago, for people: "just now", "3 min ago", "2 h 10 min ago".
pub fn format_ago(now_ms: i64, at_ms: i64) -> String {
    let seconds = (now_ms - at_ms).max(0) / 1000;
    if seconds < 60 {
        "just now".into()
    } else {
        format!("{} ago", format_minutes(seconds as f64 / 60.0))
    }
}

tokio::task_local! {
    /// The time zone clock times are shown in for the request being answered: the patient's plan time zone on a
    /// page about one patient (set by `web::display_zone`), otherwise the server's.
    pub static DISPLAY_ZONE: jiff::tz::TimeZone;
}

/// The time zone this request shows clock times in (see `DISPLAY_ZONE`).
pub fn display_zone() -> jiff::tz::TimeZone {
    DISPLAY_ZONE
        .try_with(Clone::clone)
        .unwrap_or_else(|_| jiff::tz::TimeZone::system())
}

/// A clock time for people, in the patient's time zone on a patient's page ("14:05", or "3 Dec 14:05" on
/// another day).
pub fn format_time(now_ms: i64, at_ms: i64) -> String {
    let tz = display_zone();
    let (Ok(at), Ok(now)) = (
        jiff::Timestamp::from_millisecond(at_ms),
        jiff::Timestamp::from_millisecond(now_ms),
    ) else {
        return "unknown time".into();
    };
    let at = at.to_zoned_datetime(tz.clone());
    let now = now.to_zoned_datetime(tz);
    if at.date() == now.date() {
        at.strftime("%H:%M").to_string()
    } else {
        at.strftime("%-d %b %H:%M").to_string()
    }
}

/// RFC 3339 for `<time datetime>`.
pub fn iso_time(at_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(at_ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub fn priority_label(priority: pump::Priority) -> &'static str {
    match priority {
        pump::Priority::High => "High priority",
        pump::Priority::Medium => "Medium priority",
        pump::Priority::Low => "Low priority",
    }
}

/// The CSS class of a priority.
pub fn priority_class(priority: pump::Priority) -> &'static str {
    priority.name()
}

/// Words for a pump state name (`pump::State::name()`), and whether it is fine, needs a look or is an alarm.
pub fn state_words(state: &str) -> (String, &'static str) {
    match state {
        "infusing" => ("Infusing".into(), "ok"),
        "kvo" => ("Keeping the line open (slow drip)".into(), "warn"),
        "complete" => ("Infusion complete".into(), "ok"),
        "paused" => ("Paused".into(), "warn"),
        "idle" => ("Not running".into(), "warn"),
        "programmed" => ("Ready to start".into(), "ok"),
        "stopped_by_alarm" | "alarm" => ("Stopped by an alarm".into(), "alarm"),
        "off" => ("Off".into(), "warn"),
        other => {
            let mut words = other.replace('_', " ");
            if let Some(first) = words.get(0..1) {
                let upper = first.to_uppercase();
                words.replace_range(0..1, &upper);
            }
            (words, "warn")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: std::fmt::Debug + PartialEq>(actual: T, expect: T) {
        assert_eq!(actual, expect);
    }

    #[test]
    fn tel_links_keep_only_what_dials() {
        check(
            tel_href("+44 (0)161 555-0101"),
            "+4401615550101".to_string(),
        );
        check(tel_href("999"), "999".to_string());
        check(
            tel_href("0800 123 456, ext 12"),
            "0800123456,12".to_string(),
        );
        check(tel_href("1+2"), "12".to_string());
        check(tel_href("javascript:alert(1)"), "1".to_string());
    }

    #[test]
    fn numbers_and_durations_read_well() {
        check(format_ml(12.0, "mL/h"), "12 mL/h".to_string());
        check(format_ml(12.46, "mL"), "12.5 mL".to_string());
        check(format_ml(f64::NAN, "mL"), "unknown".to_string());
        check(format_minutes(0.2), "less than 1 min".to_string());
        check(format_minutes(45.0), "45 min".to_string());
        check(format_minutes(125.0), "2 h 05 min".to_string());
        check(format_minutes(-1.0), "unknown".to_string());
        check(format_ago(100_000, 95_000), "just now".to_string());
        check(format_ago(10 * 60_000, 0), "10 min ago".to_string());
    }

    #[test]
    fn states_and_priorities_have_words() {
        check(state_words("infusing"), ("Infusing".to_string(), "ok"));
        check(state_words("stopped_by_alarm").1, "alarm");
        check(state_words("priming"), ("Priming".to_string(), "warn"));
        check(priority_class(pump::Priority::High), "high");
        check(priority_label(pump::Priority::Medium), "Medium priority");
    }
}

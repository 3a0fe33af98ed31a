//! The active-alarm banner every patient and caregiver page carries (not "My pump", which is the alarm's own page),
//! and the words the alarm page shares with it: what happens next and when, and who acknowledged with their note.
//! A leaf of the screens: it reads the live board and the plan, never another screen module.

use crate::domain::escalation::{self, Rung};
use crate::services::AppState;
use crate::services::access::PatientAccess;
use crate::services::alarms::AlarmView;
use crate::services::now_ms;

use super::person::PersonWords;
use super::view::{AlarmBanner, Contact, format_time, priority_class, priority_label};

/// The identity of one occurrence of an alarm on screen.
pub fn occurrence_id(alarm: &AlarmView) -> String {
    format!("{}-{}", alarm.alarm, alarm.raised_at_ms)
}

/// The banner for the patient's most urgent active alarm (real alarms rank before practice ones), or `None`.
pub fn alarm_banner(
    state: &AppState,
    access: &PatientAccess,
    words: &PersonWords,
    back: String,
) -> Option<AlarmBanner> {
    let snapshot = crate::services::alarms::snapshot(state, access);
    let a = snapshot.active_alarms.first()?;
    let now = now_ms();
    let base = format!("/p/{}", access.patient_id);
    let guide = care::Alarm::from_name(&a.alarm).map(|k| care::content().alarm(k));
    let mut status = ack_lines(a, &access.user.id, now);
    status.extend(what_happens_next(state, &access.patient_id, a, words, now));
    Some(AlarmBanner {
        id: occurrence_id(a),
        title: guide
            .map(|g| g.title.clone())
            .unwrap_or_else(|| a.alarm.replace('_', " ")),
        screen: guide.map(|g| g.screen.clone()).unwrap_or_default(),
        priority: priority_class(a.priority).to_string(),
        priority_label: priority_label(a.priority).to_string(),
        teaching: a.teaching,
        first_step: guide
            .and_then(|g| g.steps.first().cloned())
            .unwrap_or_else(|| "Look at the pump's screen and follow your pump's manual.".into()),
        steps_href: format!("{base}/pump#alarm-h"),
        status,
        call: call_now(state, &access.patient_id, a),
        acknowledged: a.is_acknowledged(),
        ack_action: format!("{base}/alarms/{}/ack", a.id),
        back,
        more: snapshot.active_alarms.len().saturating_sub(1),
    })
}

/// Once an alarm was passed to the nurse and no clinician has acknowledged it, the on-call number to call now
/// (from the plan), so the banner never leaves the person waiting for a call that may not come.
pub fn call_now(state: &AppState, patient_id: &str, a: &AlarmView) -> Option<Contact> {
    if a.teaching || a.escalation < Some(Rung::Nurse) {
        return None;
    }
    if a.acknowledgements
        .iter()
        .any(|k| k.role == "nurse" || k.role == "admin")
    {
        return None;
    }
    let plan = state.plans.get(patient_id)?;
    let contact = &plan.contacts.on_call;
    (!contact.phone.trim().is_empty()).then(|| {
        Contact::new(
            "On-call line",
            contact.name.clone().unwrap_or_default(),
            contact.phone.clone(),
        )
    })
}

/// Who was alerted and what happens next, and when, for the patient's side: "If no one acknowledges by 14:05,
/// your nurse is called." Practice alarms call nobody; alarms that do not climb the ladder (a finished dose, a
/// low-priority reminder) say so, so the page never promises an alert that will not come.
pub fn what_happens_next(
    state: &AppState,
    patient_id: &str,
    a: &AlarmView,
    words: &PersonWords,
    now: i64,
) -> Vec<String> {
    if a.teaching {
        return vec!["Practice alarm: nobody is called.".into()];
    }
    let plan = state.plans.get(patient_id);
    let timing = crate::services::plans::timing_of(&state.config, plan.as_deref());
    let at = |rung| {
        format_time(
            now,
            escalation::rung_due_at_ms(a.raised_at_ms, timing, rung),
        )
    };
    let mut lines = Vec::new();
    if a.escalation >= Some(Rung::Nurse) {
        lines.push(format!(
            "Nobody acknowledged it in time, so at {} it was passed to {} nurse. If you need help now, do not wait to be called back: call.",
            at(Rung::Nurse),
            words.whose
        ));
    }
    if a.escalation >= Some(Rung::OnCall) {
        lines.push(format!(
            "At {} it was passed to the on-call team too.",
            at(Rung::OnCall)
        ));
    }
    if a.escalating {
        match a.escalation {
            Some(Rung::Nurse) => lines.push(format!(
                "If no nurse acknowledges it by {}, the on-call team is alerted too.",
                at(Rung::OnCall)
            )),
            Some(Rung::OnCall) => {}
            _ => lines.push(format!(
                "If no one acknowledges it by {}, {} nurse is alerted.",
                at(Rung::Nurse),
                words.whose
            )),
        }
    } else if a.escalation.is_none_or(|r| r < Rung::Nurse) && !a.is_acknowledged() {
        lines.push("Nobody is called automatically for this alarm: call if you need help.".into());
    }
    lines
}

/// Who acknowledged, with the note they left, for the patient's side: "You acknowledged it at 14:02." for the
/// reader's own acknowledgement, the person's name and role otherwise.
pub fn ack_lines(a: &AlarmView, reader_id: &str, now: i64) -> Vec<String> {
    a.acknowledgements
        .iter()
        .map(|ack| {
            let when = format_time(now, ack.at_ms);
            let mut line = if ack.role == "pump" {
                format!("Acknowledged on the pump itself at {when}.")
            } else if ack.by_user_id.as_deref() == Some(reader_id) {
                format!("You acknowledged it at {when}.")
            } else {
                format!(
                    "{} ({}) acknowledged it at {when}.",
                    ack.by_name,
                    role_words(&ack.role)
                )
            };
            if let Some(note) = ack.note.as_deref().filter(|n| !n.trim().is_empty()) {
                line.push_str(&format!(" Their note: \u{201c}{note}\u{201d}"));
            }
            line
        })
        .collect()
}

fn role_words(role: &str) -> &str {
    match role {
        "nurse" => "nurse",
        "admin" => "care team",
        "caregiver" => "caregiver",
        "patient" => "patient",
        other => other,
    }
}

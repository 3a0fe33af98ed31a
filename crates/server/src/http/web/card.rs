//! The pump corner card: one printed A4 or Letter sheet with the patient's own numbers, the quick alarm
//! guide and the daily steps, for the laminated card the guide recommends keeping next to the pump.

use axum::extract::{Path, State};
use axum::response::Response;

use crate::error::AppError;
use crate::http::extract::WebUser;
use crate::services::AppState;

use super::common::{self, patient_layout};
use super::view::{CardAlarm, CardList, CardPage, html};

/// The alarms on the card: the guide's quick reference table, plus the app's own "pump silent". The
/// rest are on the phone; a card that fits one sheet is read, a longer one is not.
const CARD_ALARMS: [&str; 9] = [
    "occlusion_downstream",
    "occlusion_upstream",
    "air_in_line",
    "battery_low",
    "battery_depleted",
    "door_open",
    "infusion_complete",
    "system_error",
    "pump_silent",
];

/// The first sentence of a text, for the card's narrow columns.
fn first_sentence(text: &str) -> String {
    match text.find(". ") {
        Some(i) => text[..=i].to_string(),
        None => text.to_string(),
    }
}

/// `GET /p/{patient}/card`
pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    let layout = patient_layout(&state, &access, "Pump corner card", "card", false).await;
    let content = care::content();
    let plan = state.plans.get(&patient_id);
    // The care team's own words: their general notes head the card, and their note for an alarm goes with it.
    let care_notes: Vec<String> = plan
        .as_ref()
        .map(|p| {
            p.notes
                .iter()
                .filter(|n| n.about.is_none())
                .map(|n| n.text.clone())
                .collect()
        })
        .unwrap_or_default();
    let alarm_note = |name: &str| -> Vec<String> {
        let id = format!("alarm.{name}");
        plan.as_ref()
            .map(|p| {
                p.notes
                    .iter()
                    .filter(|n| n.about.as_deref() == Some(id.as_str()))
                    .map(|n| n.text.clone())
                    .collect()
            })
            .unwrap_or_default()
    };
    let alarms = CARD_ALARMS
        .iter()
        .filter_map(|name| care::Alarm::from_name(name))
        .map(|a| {
            let g = content.alarm(a);
            let steps: Vec<&str> = g.steps.iter().take(1).map(String::as_str).collect();
            CardAlarm {
                title: g.title.clone(),
                screen: g.screen.clone(),
                meaning: first_sentence(&g.meaning),
                first_step: steps.join(" "),
                care_notes: alarm_note(a.name()),
            }
        })
        .collect();
    // Daily steps: the before-infusion checklist's groups as short headings (the phone has every item), and
    // the guide's quick-glance tips for every day.
    let mut daily: Vec<CardList> = content
        .checklists
        .iter()
        .filter(|list| list.phase == care::Phase::Before)
        .map(|list| {
            let mut steps: Vec<String> = Vec::new();
            for item in content.items.iter().filter(|i| i.checklist == list.id) {
                if !steps.contains(&item.group) {
                    steps.push(item.group.clone());
                }
            }
            CardList {
                title: list.title.clone(),
                steps,
            }
        })
        .collect();
    daily.push(CardList {
        title: "Every day".into(),
        steps: content
            .tips
            .iter()
            .map(|t| format!("{}: {}", t.title, t.text))
            .collect(),
    });
    let emergencies = content
        .rules
        .iter()
        .filter(|r| r.level == care::Level::Emergency)
        .map(|r| r.reason.clone())
        .take(6)
        .collect();
    let emergency_phone = common::emergency_contact(&layout.contacts)
        .map(|c| c.phone)
        .unwrap_or_else(|| "your local emergency number".into());
    // The emergency number heads the list of numbers.
    let mut numbers = layout.contacts.clone();
    if let Some(e) = common::emergency_contact(&numbers) {
        numbers.retain(|c| *c != e);
        numbers.insert(0, e);
    }
    Ok(html(&CardPage {
        patient_name: access.display_name.clone(),
        numbers,
        care_notes,
        alarms,
        daily,
        emergency_phone,
        emergencies,
        layout,
    }))
}

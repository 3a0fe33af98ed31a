//! Words for the patient's own log and the calendar address in timelines (titles and detail lines): a leaf that
//! both the shared timeline words (`common`) and the log's own pages (`patient_log`) use.

use serde_json::Value;

use crate::services::patient_log::Compared;

/// The three forms' titles as this person says them: "How I felt", "What I see at my site", "A question for my
/// nurse" to the patient; "How Alex felt", "What you see at Alex's site", "A question for Alex's nurse" to others.
pub fn form_titles(words: &super::person::PersonWords) -> [String; 3] {
    if words.is_patient {
        [
            "How I felt".into(),
            "What I see at my site".into(),
            "A question for my nurse".into(),
        ]
    } else {
        [
            format!("How {} felt", words.who),
            format!("What you see at {} site", words.whose),
            format!("A question for {} nurse", words.whose),
        ]
    }
}

/// "Better", "The same", "Worse".
pub fn compared_label(c: Compared) -> &'static str {
    match c {
        Compared::Better => "Better",
        Compared::Same => "The same",
        Compared::Worse => "Worse",
    }
}

/// The triage word as people read it.
pub fn label(o: care::Observation) -> String {
    care::content().observation_label(o).to_string()
}

fn words_of(payload: &Value, key: &str) -> Vec<String> {
    payload
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|w| {
                    care::Observation::parse(w)
                        .map(label)
                        .unwrap_or_else(|_| w.replace('_', " "))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The timeline title of a kind of the patient's own log (None for other kinds).
pub fn title(kind: &str, payload: &Value) -> Option<String> {
    let s = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or_default();
    Some(match kind {
        "how_i_felt" => format!(
            "How I felt: {}",
            Compared::from_name(s("compared"))
                .map(compared_label)
                .unwrap_or("not said")
                .to_lowercase()
        ),
        "site_seen" => "What I see at my site".into(),
        "question_asked" => "A question for the nurse".into(),
        "question_answered" => "The nurse answered".into(),
        "calendar_link_created" => "Calendar address made".into(),
        "calendar_link_revoked" => "Calendar address revoked".into(),
        _ => return None,
    })
}

/// The lines under an entry of the patient's own log, for timelines (None for other kinds).
pub fn detail_lines(kind: &str, payload: &Value) -> Option<Vec<String>> {
    let s = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut lines = Vec::new();
    match kind {
        "how_i_felt" => {
            let symptoms = words_of(payload, "symptoms");
            if !symptoms.is_empty() {
                lines.push(format!("Noticed: {}", symptoms.join(", ")));
            }
        }
        "site_seen" => {
            let signs = words_of(payload, "signs");
            lines.push(if signs.is_empty() {
                "No changes at the site.".to_string()
            } else {
                format!("Seen: {}", signs.join(", "))
            });
            if payload.get("photo").is_some() {
                lines.push("A photo is kept with the record.".into());
            }
        }
        "question_asked" | "question_answered" => {}
        _ => return None,
    }
    if !s("text").is_empty() {
        lines.push(s("text").to_string());
    }
    Some(lines)
}

//! The patient's own log (the guide's "how you felt during and after the infusion" and "any changes in the
//! access site", plus a question for the nurse): each entry is an event in the record with who wrote it. Only
//! the patient and their caregivers write entries (the pump link refuses these kinds too, `domain::authority`);
//! only the care team answers questions. The words offered are care's triage words, and whether an entry
//! should lead straight to the symptom check is decided by care's triage rules, never here.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::domain::{EventDraft, Role};
use crate::error::AppError;
use crate::services::AppState;
use crate::services::access::PatientAccess;
use crate::services::now_ms;
use crate::services::records::Entry;

/// Longest text a person may write in one entry, in characters.
pub const TEXT_CHARS_MAX: usize = 1000;
/// Largest photo kept with an entry, in bytes.
pub const PHOTO_BYTES_MAX: usize = 3 * 1024 * 1024;
/// Entries of the patient's log read for one page (questions, the chart).
pub const ENTRIES_READ_MAX: usize = 2000;
/// How far back the log's own views look, in days.
pub const DAYS_BACK: i64 = 366;

/// The kinds of the patient's own log.
pub const KINDS: [record::Kind; 4] = [
    record::Kind::HowIFelt,
    record::Kind::SiteSeen,
    record::Kind::QuestionAsked,
    record::Kind::QuestionAnswered,
];

/// How the patient feels compared with before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compared {
    Better,
    Same,
    Worse,
}

impl Compared {
    pub const ALL: [Compared; 3] = [Compared::Better, Compared::Same, Compared::Worse];

    pub fn name(self) -> &'static str {
        match self {
            Compared::Better => "better",
            Compared::Same => "same",
            Compared::Worse => "worse",
        }
    }

    pub fn from_name(name: &str) -> Option<Compared> {
        Compared::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A photo as sent, before it is checked.
#[derive(Debug, Clone)]
pub struct PhotoUpload {
    pub bytes: Vec<u8>,
}

/// The image types kept, recognised by their first bytes (what the sender claims is not trusted).
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("image/png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The symptoms offered under "how I felt": the triage words of the check's groups about how a person feels
/// and copes (every group that is not about the line or the pump), in the check's order.
pub fn feeling_words() -> Vec<care::Observation> {
    let c = care::content();
    let site: Vec<care::Observation> = site_words();
    let mut words = Vec::new();
    for group in &c.check_groups {
        let about_pump = group
            .observations
            .contains(&care::Observation::PumpStoppedCannotRestart);
        if group.about_line || about_pump {
            continue;
        }
        for o in &group.observations {
            if !site.contains(o) && !words.contains(o) {
                words.push(*o);
            }
        }
    }
    words
}

/// The site signs from the guide (content's `[[signs]]`), as the triage words they report.
pub fn site_words() -> Vec<care::Observation> {
    care::content()
        .signs
        .iter()
        .map(|s| s.observation)
        .collect()
}

/// Whether care's triage would send this person to the care team or emergency services for what they wrote:
/// then the page offers the symptom check at once.
pub fn triage_level(
    plan: Option<&care::TherapyPlan>,
    observations: &[care::Observation],
) -> care::Level {
    if observations.is_empty() {
        return care::Level::SelfCare;
    }
    let input = care::TriageInput {
        plan: plan.map(care::triage::TriagePlan::from),
        observations: observations.to_vec(),
        alarms: Vec::new(),
        infusion: None,
    };
    match care::triage(&input, &care::triage::TriageConfig::default()) {
        Ok(output) => output.level,
        // Triage refuses only impossible alarm counts, which are not given here; fail towards the check.
        Err(_) => care::Level::CallCareTeam,
    }
}

fn require_patient_side(access: &PatientAccess) -> Result<(), AppError> {
    if matches!(access.user.role, Role::Patient | Role::Caregiver) {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only the patient or their caregiver writes in the patient's own log; the care team answers questions"
                .into(),
        ))
    }
}

/// A person's text: trimmed (`None` when nothing is left), at most [`TEXT_CHARS_MAX`] characters, no control
/// characters but line breaks.
pub fn clean_text(field: &str, text: &str) -> Result<Option<String>, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let chars = text.chars().count();
    if chars > TEXT_CHARS_MAX {
        return Err(AppError::invalid(
            field,
            format!("is {chars} characters long; shorten it to at most {TEXT_CHARS_MAX}"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(AppError::invalid(
            field,
            "contains a character that cannot be kept; type the text again",
        ));
    }
    Ok(Some(text.replace("\r\n", "\n")))
}

fn who(access: &PatientAccess) -> Value {
    let u = &access.user;
    json!({"by": u.id, "display_name": u.display_name, "role": u.role.name()})
}

fn with_who(mut payload: Value, access: &PatientAccess) -> Value {
    if let (Some(map), Value::Object(who)) = (payload.as_object_mut(), who(access)) {
        map.extend(who);
    }
    payload
}

async fn append(
    state: &AppState,
    access: &PatientAccess,
    kind: record::Kind,
    payload: Value,
) -> Result<i64, AppError> {
    let u = &access.user;
    Ok(state
        .journal
        .append_one(EventDraft::new(
            &access.patient_id,
            kind,
            u.role.origin(),
            Some(&u.id),
            now_ms(),
            with_who(payload, access),
        ))
        .await?)
}

/// Events of the patient's record of these kinds over the last [`DAYS_BACK`] days, newest first.
pub async fn events(
    state: &AppState,
    patient_id: &str,
    kinds: &[record::Kind],
) -> Result<Vec<Entry>, AppError> {
    events_within(state, patient_id, kinds, DAYS_BACK).await
}

/// Events of the patient's record of these kinds over the last `days` days, newest first (at most
/// [`ENTRIES_READ_MAX`]).
pub async fn events_within(
    state: &AppState,
    patient_id: &str,
    kinds: &[record::Kind],
    days: i64,
) -> Result<Vec<Entry>, AppError> {
    Ok(state
        .journal
        .timeline(
            patient_id,
            &record::Kind::names(kinds),
            ENTRIES_READ_MAX,
            days,
        )
        .await?)
}

/// One event of the patient's own log by its id.
pub async fn entry(state: &AppState, access: &PatientAccess, id: i64) -> Result<Entry, AppError> {
    events(state, &access.patient_id, &KINDS)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| AppError::not_found("this entry of the log"))
}

/// "How I felt": better, same or worse, the symptoms (from [`feeling_words`]), free text, and the infusion it
/// follows (an `infusion_started` event of this patient).
pub async fn write_felt(
    state: &AppState,
    access: &PatientAccess,
    compared: Compared,
    symptoms: &[care::Observation],
    text: Option<String>,
    infusion: Option<i64>,
) -> Result<i64, AppError> {
    require_patient_side(access)?;
    let allowed = feeling_words();
    if let Some(o) = symptoms.iter().find(|o| !allowed.contains(o)) {
        return Err(AppError::invalid(
            "symptom",
            format!(
                "`{}` is not one of the symptoms on this form; tick only the ones shown",
                o.name()
            ),
        ));
    }
    if let Some(id) = infusion {
        let started = events(state, &access.patient_id, &[record::Kind::InfusionStarted]).await?;
        if !started.iter().any(|e| e.id == id && !e.teaching) {
            return Err(AppError::invalid(
                "infusion",
                "that infusion is not in this record; open the form again from the log",
            ));
        }
    }
    let mut payload = json!({
        "compared": compared.name(),
        "symptoms": symptoms.iter().map(|o| o.name()).collect::<Vec<_>>(),
    });
    if let Some(text) = text {
        payload["text"] = json!(text);
    }
    if let Some(id) = infusion {
        payload["infusion"] = json!(id);
    }
    append(state, access, record::Kind::HowIFelt, payload).await
}

/// "What I see at my site": the signs (from [`site_words`]), free text and an optional photo, kept beside the
/// record under its SHA-256, which the event names.
pub async fn write_site(
    state: &AppState,
    access: &PatientAccess,
    signs: &[care::Observation],
    text: Option<String>,
    photo: Option<PhotoUpload>,
) -> Result<i64, AppError> {
    require_patient_side(access)?;
    let allowed = site_words();
    if let Some(o) = signs.iter().find(|o| !allowed.contains(o)) {
        return Err(AppError::invalid(
            "sign",
            format!(
                "`{}` is not one of the signs on this form; tick only the ones shown",
                o.name()
            ),
        ));
    }
    let mut payload = json!({ "signs": signs.iter().map(|o| o.name()).collect::<Vec<_>>() });
    if let Some(text) = text {
        payload["text"] = json!(text);
    }
    if let Some(photo) = photo {
        let (media_type, sha256) = check_photo(&photo.bytes)?;
        crate::store::photos::insert(
            &state.db,
            &access.patient_id,
            &sha256,
            media_type,
            &base64::engine::general_purpose::STANDARD.encode(&photo.bytes),
            now_ms(),
        )
        .await?;
        payload["photo"] =
            json!({"sha256": sha256, "media_type": media_type, "bytes": photo.bytes.len()});
    }
    append(state, access, record::Kind::SiteSeen, payload).await
}

/// The photo's type and SHA-256 (hex), or why it cannot be kept.
pub fn check_photo(bytes: &[u8]) -> Result<(&'static str, String), AppError> {
    if bytes.len() > PHOTO_BYTES_MAX {
        return Err(AppError::invalid(
            "photo",
            format!(
                "is {:.1} MB; the largest photo kept is {} MB. Take it again at a smaller size, or leave it out",
                bytes.len() as f64 / 1_048_576.0,
                PHOTO_BYTES_MAX / 1_048_576
            ),
        ));
    }
    let media_type = image_type(bytes).ok_or_else(|| {
        AppError::invalid(
            "photo",
            "is not a JPEG, PNG or WebP picture; choose a photo from your camera, or leave it out",
        )
    })?;
    Ok((media_type, hex::encode(sha2::Sha256::digest(bytes))))
}

/// A patient's photo: `(media type, bytes)`, if kept.
pub async fn photo(
    state: &AppState,
    access: &PatientAccess,
    sha256: &str,
) -> Result<Option<(String, Vec<u8>)>, AppError> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let Some((media_type, data)) =
        crate::store::photos::get(&state.db, &access.patient_id, &sha256.to_ascii_lowercase())
            .await?
    else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(AppError::internal)?;
    Ok(Some((media_type, bytes)))
}

/// A question for the nurse.
pub async fn ask(state: &AppState, access: &PatientAccess, text: String) -> Result<i64, AppError> {
    require_patient_side(access)?;
    append(
        state,
        access,
        record::Kind::QuestionAsked,
        json!({ "text": text }),
    )
    .await
}

/// The care team's answer to one of the patient's questions.
pub async fn answer(
    state: &AppState,
    access: &PatientAccess,
    question: i64,
    text: String,
) -> Result<i64, AppError> {
    crate::services::access::require_clinician(&access.user)?;
    let asked = entry(state, access, question).await?;
    if asked.kind != record::Kind::QuestionAsked.name() {
        return Err(AppError::not_found("this question"));
    }
    append(
        state,
        access,
        record::Kind::QuestionAnswered,
        json!({ "question": question, "text": text }),
    )
    .await
}

/// A question and its answers (oldest answer first).
#[derive(Debug, Clone)]
pub struct Thread {
    pub question: Entry,
    pub answers: Vec<Entry>,
}

/// The patient's questions, newest first, each with its answers.
pub async fn questions(state: &AppState, patient_id: &str) -> Result<Vec<Thread>, AppError> {
    let events = events(
        state,
        patient_id,
        &[record::Kind::QuestionAsked, record::Kind::QuestionAnswered],
    )
    .await?;
    let mut threads: Vec<Thread> = events
        .iter()
        .filter(|e| e.kind == record::Kind::QuestionAsked.name())
        .map(|q| Thread {
            question: q.clone(),
            answers: Vec::new(),
        })
        .collect();
    for a in events
        .iter()
        .rev()
        .filter(|e| e.kind == record::Kind::QuestionAnswered.name())
    {
        let to = a.payload.get("question").and_then(Value::as_i64);
        if let Some(thread) = threads.iter_mut().find(|t| Some(t.question.id) == to) {
            thread.answers.push(a.clone());
        }
    }
    Ok(threads)
}

/// The triage words an entry reported (symptoms of "how I felt", signs of "what I see at my site").
pub fn reported(entry: &Entry) -> Vec<care::Observation> {
    ["symptoms", "signs"]
        .iter()
        .filter_map(|k| entry.payload.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|name| care::Observation::parse(name).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_are_recognised_by_their_bytes() {
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0, 0]), Some("image/jpeg"));
        assert_eq!(
            image_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some("image/png")
        );
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"<svg xmlns="), None);
        assert_eq!(image_type(b"GIF89a"), None);
        assert!(check_photo(&vec![0xFF; PHOTO_BYTES_MAX + 1]).is_err());
        let (kind, sha) = check_photo(&[0xFF, 0xD8, 0xFF, 0xDB]).unwrap();
        assert_eq!((kind, sha.len()), ("image/jpeg", 64));
    }

    #[test]
    fn the_words_are_care_triage_words_and_the_two_lists_do_not_overlap() {
        let felt = feeling_words();
        let site = site_words();
        assert!(felt.contains(&care::Observation::Fever));
        assert!(felt.contains(&care::Observation::FeelingOverwhelmed));
        assert!(!felt.contains(&care::Observation::TubingKinked));
        assert!(site.contains(&care::Observation::NewRednessAtSite));
        assert!(felt.iter().all(|o| !site.contains(o)));
    }

    #[test]
    fn triage_decides_when_to_offer_the_check() {
        use care::Observation as O;
        assert_eq!(triage_level(None, &[]), care::Level::SelfCare);
        assert_eq!(
            triage_level(None, &[O::FeelingFaint]),
            care::Level::Emergency
        );
        assert_ne!(
            triage_level(None, &[O::NewRednessAtSite]),
            care::Level::SelfCare
        );
    }

    #[test]
    fn text_is_bounded_and_clean() {
        assert_eq!(clean_text("text", "  ").unwrap(), None);
        assert_eq!(
            clean_text("text", " a\r\nb ").unwrap().as_deref(),
            Some("a\nb")
        );
        assert!(clean_text("text", &"x".repeat(TEXT_CHARS_MAX + 1)).is_err());
        assert!(clean_text("text", "a\u{0}b").is_err());
    }
}

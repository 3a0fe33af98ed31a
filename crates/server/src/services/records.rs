//! The record as the screens and the API use it: append an event a person made (a checklist tick, a symptom
//! check, a step of an alarm's guide), read a patient's timeline, check that the database answers.

use crate::domain::EventDraft;
use crate::error::AppError;
pub use crate::journal::Entry;
use crate::services::AppState;

/// Append one event; returns its id in the record.
pub async fn append(state: &AppState, event: EventDraft) -> Result<i64, AppError> {
    Ok(state.journal.append_one(event).await?)
}

/// The newest `limit` events of a patient over the last `days`, newest first, optionally only some kinds.
pub async fn timeline(
    state: &AppState,
    patient_id: &str,
    kinds: &[String],
    limit: usize,
    days: i64,
) -> Result<Vec<Entry>, AppError> {
    Ok(state
        .journal
        .timeline(patient_id, kinds, limit, days)
        .await?)
}

/// Whether the database answers (for `/healthz`).
pub async fn database_answers(state: &AppState) -> bool {
    crate::store::ping(&state.db).await
}

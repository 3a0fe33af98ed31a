//! The patient's secret calendar address: an unguessable URL (`/cal/{token}.ics`) a phone calendar subscribes
//! to, so a plan change reaches the phone by itself. The patient, a caregiver or the care team can make one
//! (which revokes the one before) or revoke it; each is an event in the record with who and when. Only the
//! token's SHA-256 is stored, and a token is found by that hash, never compared as text.

use serde_json::json;

use crate::domain::{EventDraft, ServerKind};
use crate::error::AppError;
use crate::ids::{random_hex, token_hash};
use crate::services::AppState;
use crate::services::access::PatientAccess;
use crate::services::now_ms;
use crate::store::calendar as store;

/// Random bytes in a calendar token (256 bits).
pub const TOKEN_BYTES: usize = 32;

/// What a person is shown about the patient's current address (never the token: it is not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub created_at_ms: i64,
    pub created_by: String,
    pub last_fetched_at_ms: Option<i64>,
}

fn looks_like_token(token: &str) -> bool {
    token.len() == TOKEN_BYTES * 2 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn audit(
    state: &AppState,
    access: &PatientAccess,
    kind: ServerKind,
    replaced: bool,
) -> Result<(), AppError> {
    let user = &access.user;
    state
        .journal
        .append_one(EventDraft::new(
            &access.patient_id,
            kind,
            user.role.origin(),
            Some(&user.id),
            now_ms(),
            json!({
                "by": user.id, "display_name": user.display_name, "role": user.role.name(),
                "replaced_previous": replaced,
            }),
        ))
        .await?;
    Ok(())
}

/// Make a new address for the patient (revoking the one before, if any); returns the token, which exists
/// nowhere else from now on.
pub async fn create(state: &AppState, access: &PatientAccess) -> Result<String, AppError> {
    let token = random_hex(TOKEN_BYTES);
    let replaced = store::replace(
        &state.db,
        &access.patient_id,
        &token_hash(&token),
        &access.user.id,
        now_ms(),
    )
    .await?;
    audit(
        state,
        access,
        ServerKind::CalendarLinkCreated,
        replaced.is_some(),
    )
    .await?;
    Ok(token)
}

/// Revoke the patient's address; `false` when there was none (nothing is recorded then).
pub async fn revoke(state: &AppState, access: &PatientAccess) -> Result<bool, AppError> {
    let revoked = store::revoke(&state.db, &access.patient_id, &access.user.id, now_ms()).await?;
    if revoked.is_some() {
        audit(state, access, ServerKind::CalendarLinkRevoked, false).await?;
    }
    Ok(revoked.is_some())
}

/// The patient's working address, if any.
pub async fn current(
    state: &AppState,
    access: &PatientAccess,
) -> Result<Option<LinkInfo>, AppError> {
    Ok(store::current(&state.db, &access.patient_id)
        .await?
        .map(|l| LinkInfo {
            created_at_ms: l.created_at_ms,
            created_by: l.created_by,
            last_fetched_at_ms: l.last_fetched_at_ms,
        }))
}

/// Whether `token` is the patient's working address (to show it once more to whoever just made it).
pub async fn is_current(
    state: &AppState,
    access: &PatientAccess,
    token: &str,
) -> Result<bool, AppError> {
    if !looks_like_token(token) {
        return Ok(false);
    }
    Ok(store::current(&state.db, &access.patient_id)
        .await?
        .is_some_and(|l| l.token_hash == token_hash(token)))
}

/// The calendar behind a token, as iCalendar text, made from the patient's plan as it is now. A revoked or
/// unknown token, or a patient without a plan, is a 404 that says what to do.
pub async fn calendar_for_token(state: &AppState, token: &str) -> Result<String, AppError> {
    let gone = || {
        AppError::not_found(
            "this calendar address: it was replaced or revoked, or never existed. Make a new one on the Reminders page",
        )
    };
    if !looks_like_token(token) {
        return Err(gone());
    }
    let link = store::fetched(
        &state.db,
        &token_hash(&token.to_ascii_lowercase()),
        now_ms(),
    )
    .await?
    .ok_or_else(gone)?;
    let plan = state.plans.get(&link.patient_id).ok_or_else(|| {
        AppError::not_found("a therapy plan with reminders (ask your nurse to add one)")
    })?;
    Ok(care::ical::calendar(&plan, jiff::Timestamp::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_full_hex_token_is_looked_up() {
        assert!(looks_like_token(&"a".repeat(64)));
        assert!(!looks_like_token(&"a".repeat(63)));
        assert!(!looks_like_token(&format!("{}g", "a".repeat(63))));
        assert!(!looks_like_token(""));
    }
}

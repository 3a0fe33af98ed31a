//! The nurse dashboard at any clinic size: the patients who need a nurse now (a real active alarm or a silent
//! pump link), always in full and most urgent first, then one page of the clinic's patients by name, searchable
//! by name or id. The board is asked only about the patients with something to show and the page's rows; the
//! database pages and searches the directory, so a page of a 10,000-patient clinic costs about what a page of a
//! 100-patient one does.

use std::collections::HashSet;

use crate::domain::PatientSummary;
pub use crate::domain::board::needs_attention;
use crate::error::AppError;
use crate::services::AppState;
use crate::services::access::{self, PatientAccess};
use crate::services::auth::CurrentUser;
use crate::services::now_ms;
use crate::store;

/// Patients per page of "All patients" (the attention section is never paged).
pub const PAGE_PATIENTS: usize = 50;
/// The longest search accepted, in characters (a name or a patient id is far shorter).
pub const SEARCH_CHARS_MAX: usize = 100;
/// The most rows `GET /api/dashboard` returns per request when a `limit` is given.
pub const API_LIMIT_MAX: usize = 5000;
/// The largest `offset` accepted by `GET /api/dashboard` (far beyond any clinic).
pub const API_OFFSET_MAX: usize = 1_000_000;

/// A search as typed, surrounding spaces trimmed; refused (naming `q`) if it is longer than
/// `SEARCH_CHARS_MAX` as sent or holds control characters, so a strange address gets a clear answer rather
/// than a strange query.
pub fn search_text(raw: &str) -> Result<String, AppError> {
    crate::error::plain_text("q", raw)?;
    let q = raw.trim();
    if raw.chars().count() > SEARCH_CHARS_MAX {
        return Err(AppError::invalid(
            "q",
            format!("search for at most {SEARCH_CHARS_MAX} characters of a name or patient id"),
        ));
    }
    Ok(q.to_string())
}

/// What the nurse's screen shows: the attention section and one page of the clinic.
#[derive(Debug, Clone)]
pub struct DashboardPage {
    /// Every patient who needs a nurse now, most urgent first (never paged).
    pub attention: Vec<PatientSummary>,
    /// This page of the patients that match the search, by name (patients who need attention included).
    pub patients: Vec<PatientSummary>,
    /// How many patients match the search in all.
    pub matching: usize,
    /// The page shown, from 1 (a page past the end shows the last one).
    pub page: usize,
    /// How many pages the matching patients fill (at least 1).
    pub pages: usize,
}

/// The clinic's patients who need a nurse now, most urgent first (the order of `Board::dashboard`).
pub async fn attention(
    state: &AppState,
    user: &CurrentUser,
) -> Result<Vec<PatientSummary>, AppError> {
    access::require_clinician(user)?;
    let now = now_ms();
    let ids = state
        .board
        .with(|b| b.patients_needing_attention(now, &user.clinic_id));
    let named = store::directory::clinic_patient_names(&state.db, &user.clinic_id, &ids).await?;
    let now = now_ms();
    let rows = state.board.with(|b| b.dashboard(now, named));
    // The board may have moved on while the names were read: show what is true now.
    Ok(rows.into_iter().filter(needs_attention).collect())
}

/// The attention section and page `page` (from 1; past the end: the last page) of the patients whose name or
/// id contains `search` (already checked by `search_text`).
pub async fn page(
    state: &AppState,
    user: &CurrentUser,
    search: &str,
    page: usize,
) -> Result<DashboardPage, AppError> {
    let attention = attention(state, user).await?;
    let wanted = page.max(1);
    let read = |page: usize| {
        let offset = i64::try_from((page - 1).saturating_mul(PAGE_PATIENTS)).unwrap_or(i64::MAX);
        store::directory::clinic_patients_page(
            &state.db,
            &user.clinic_id,
            search,
            PAGE_PATIENTS as i64,
            offset,
        )
    };
    let (mut total, mut rows) = read(wanted).await?;
    let pages = |total: i64| {
        usize::try_from(total)
            .unwrap_or(0)
            .div_ceil(PAGE_PATIENTS)
            .max(1)
    };
    let mut shown = wanted;
    if wanted > pages(total) {
        shown = pages(total);
        (total, rows) = read(shown).await?;
    }
    let now = now_ms();
    let patients = state.board.with(|b| {
        rows.into_iter()
            .map(|(id, name)| b.summary(now, id, name))
            .collect()
    });
    Ok(DashboardPage {
        attention,
        patients,
        matching: usize::try_from(total).unwrap_or(0),
        page: shown,
        pages: pages(total),
    })
}

/// One patient's dashboard row, for a person already allowed to read the patient (the live row refresh).
pub fn row(state: &AppState, access: &PatientAccess) -> PatientSummary {
    let now = now_ms();
    state
        .board
        .with(|b| b.summary(now, access.patient_id.clone(), access.display_name.clone()))
}

/// The JSON dashboard: the clinic's patients whose name or id contains `search`, in the dashboard's order
/// (any alarm or a silent link first, most urgent first; then everyone else by name), rows `offset ..
/// offset + limit` (every row when `limit` is `None`). Only the ranked patients and the rows returned are
/// looked up on the board; the rest is the directory's list of names.
pub async fn list(
    state: &AppState,
    user: &CurrentUser,
    search: &str,
    offset: usize,
    limit: Option<usize>,
) -> Result<Vec<PatientSummary>, AppError> {
    access::require_clinician(user)?;
    let (_, matching) =
        store::directory::clinic_patients_page(&state.db, &user.clinic_id, search, i64::MAX, 0)
            .await?;
    let now = now_ms();
    let ranked: HashSet<String> = state
        .board
        .with(|b| b.ranked_patients(now, &user.clinic_id))
        .into_iter()
        .collect();
    let (ranked, mut rest): (Vec<_>, Vec<_>) = matching
        .into_iter()
        .partition(|(id, _)| ranked.contains(id));
    // The names in the order `Board::dashboard` has always used, whatever the database's collation.
    rest.sort_by(|a, b| a.1.cmp(&b.1));
    let end = limit.map_or(usize::MAX, |l| offset.saturating_add(l));
    Ok(state.board.with(|b| {
        let ranked = b.dashboard(now, ranked);
        let from_rest = offset.saturating_sub(ranked.len())..end.saturating_sub(ranked.len());
        let mut rows: Vec<PatientSummary> = ranked.into_iter().take(end).skip(offset).collect();
        rows.extend(
            rest.into_iter()
                .skip(from_rest.start)
                .take(from_rest.len())
                .map(|(id, name)| b.summary(now, id, name)),
        );
        rows
    }))
}

//! The I/O shell around the live board (`domain::board`): it reads the clock, takes the board's lock for one
//! decision at a time (never across an `.await`), and carries out the effects the board returns, in order:
//! every event to record in one transaction first (so nothing is announced that is not durable), then the live
//! messages and the clinic notifications. Pump batches, people's acknowledgements and silences, and the
//! ticker all come through here.

use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::domain::board::{BatchOutcome, EscalationNotice};
pub use crate::domain::{AlarmView, PatientSnapshot, PatientSummary};
use crate::domain::{
    Board, BoardError, Effect, EventDraft, EventKind, LiveMessage, Person, Settings,
};
use crate::error::AppError;
use crate::services::AppState;
use crate::services::access::PatientAccess;
use crate::services::auth::CurrentUser;
use crate::services::now_ms;

/// The board behind its lock, shared by every task of this process.
#[derive(Debug, Clone)]
pub struct LiveBoard {
    inner: Arc<Mutex<Board>>,
}

impl LiveBoard {
    pub fn new(settings: Settings) -> LiveBoard {
        LiveBoard {
            inner: Arc::new(Mutex::new(Board::new(settings))),
        }
    }

    /// Run one decision on the board. The lock is never held across an `.await`.
    pub fn with<R>(&self, f: impl FnOnce(&mut Board) -> R) -> R {
        let mut board = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut board)
    }
}

/// The board's settings from the server's configuration.
pub fn settings(config: &crate::ServerConfig) -> Settings {
    Settings {
        pump_silent_after_ms: i64::try_from(config.pump_silent_after.as_millis())
            .unwrap_or(i64::MAX),
        default_timing: crate::services::plans::timing_of(config, None),
    }
}

impl From<BoardError> for AppError {
    fn from(e: BoardError) -> AppError {
        match e {
            BoardError::NoSuchAlarm { .. } => AppError::not_found(e.to_string()),
            BoardError::SilenceMinutes { .. } => {
                AppError::invalid("minutes", "silence for 1 to 15 minutes")
            }
        }
    }
}

/// Carry out the board's effects: records and claims first (one transaction), then messages and notifications in
/// order; a claim's own announcements only if this process's event won it (another process that reached the same
/// decision first already announced it). Telemetry goes to the grouped writer. If the record cannot be written,
/// nothing is announced, the board undoes what it decided in these effects (`Board::not_recorded`: rungs are
/// paged again on the next tick, an acknowledgement comes off its alarm, a `pump_silent` is raised again), and
/// the error is returned.
pub async fn carry_out(state: &AppState, effects: Vec<Effect>) -> Result<(), AppError> {
    let decided: Vec<EventDraft> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Record(d) | Effect::Claim { draft: d, .. }
                if matches!(
                    d.kind,
                    EventKind::Record(
                        record::Kind::AlarmEscalated
                            | record::Kind::AlarmAcknowledged
                            | record::Kind::AlarmRaised
                    )
                ) =>
            {
                Some(d.clone())
            }
            _ => None,
        })
        .collect();
    let result = carry_out_in_order(state, effects).await;
    if result.is_err() && !decided.is_empty() {
        state.board.with(|b| b.not_recorded(&decided));
    }
    result
}

async fn carry_out_in_order(state: &AppState, effects: Vec<Effect>) -> Result<(), AppError> {
    let mut drafts = Vec::new();
    for effect in &effects {
        match effect {
            Effect::Record(d) => drafts.push(d.clone()),
            Effect::Claim { key, draft, .. } => {
                let mut d = draft.clone();
                d.device_seq = Some(crate::journal::claim_seq(key));
                drafts.push(d);
            }
            Effect::Telemetry(d) => state.telemetry.sample(d.clone()),
            Effect::Publish(_) | Effect::Notify(_) => {}
        }
    }
    let appended = if drafts.is_empty() {
        vec![]
    } else {
        state.journal.append(drafts).await?
    };
    let mut receipts = appended.iter();
    announce(state, effects, &mut receipts, None).await;
    Ok(())
}

/// The announcements, in order; a claim another process won is skipped with what follows from it. `claimed` is
/// the record event of the claim these effects follow from (it names the escalation's notification).
async fn announce(
    state: &AppState,
    effects: Vec<Effect>,
    receipts: &mut std::slice::Iter<'_, crate::journal::Appended>,
    claimed: Option<i64>,
) {
    for effect in effects {
        match effect {
            Effect::Record(_) => {
                receipts.next();
            }
            Effect::Claim { then, .. } => {
                let receipt = receipts.next();
                let won = receipt.is_some_and(|r| !r.duplicate);
                if won {
                    let claimed = receipt.map(|r| r.id);
                    Box::pin(announce(state, then, &mut [].iter(), claimed)).await;
                } else {
                    // Another process recorded the same decision first and told its own screens and the
                    // outside (webhook, PCD). This board already holds the decision, so the follower will
                    // announce nothing when the winner's event arrives: this process's screens are told now.
                    for effect in then {
                        if let Effect::Publish(message) = effect {
                            state.hub.publish(message);
                        }
                    }
                }
            }
            Effect::Telemetry(_) => {}
            Effect::Publish(message) => {
                state.pcd.observe(&message);
                state.hub.publish(message)
            }
            Effect::Notify(notice) => notify(state, &notice, claimed).await,
        }
    }
}

/// Tell the clinic's integration (webhook) about an escalation beyond the patient's screen, under the id named by
/// its record event (`services::webhook::sweep` queues the same one if this process stops before it does).
async fn notify(state: &AppState, notice: &EscalationNotice, recorded_as: Option<i64>) {
    let contact = crate::services::plans::contact_for(state, &notice.patient_id, notice.rung);
    state
        .webhooks
        .notify(crate::services::webhook::Notification {
            id: recorded_as.map(crate::services::webhook::escalation_notification_id),
            clinic_id: notice.clinic_id.clone(),
            patient_id: notice.patient_id.clone(),
            kind: "escalation".into(),
            body: crate::services::webhook::escalation_body(
                &notice.patient_id,
                &json!(notice.alarm),
                &json!(notice.priority),
                notice.rung,
                notice.unacknowledged_for_ms,
                contact,
            ),
        })
        .await;
}

/// Apply a stored pump batch to the board and carry out what follows. Returns the pump's queued commands.
pub async fn apply_batch(
    state: &AppState,
    device: &crate::domain::Device,
    events: &[crate::domain::PumpEvent],
    telemetry: Option<link::Telemetry>,
) -> Result<Vec<link::PumpCommand>, AppError> {
    let now = now_ms();
    state.telemetry.contact(device, now, telemetry.as_ref());
    let BatchOutcome { commands, effects } = state
        .board
        .with(|b| b.batch(now, device, events, telemetry));
    carry_out(state, effects).await?;
    Ok(commands)
}

/// The live pump snapshot and active alarms of a patient the caller may see.
pub fn snapshot(state: &AppState, access: &PatientAccess) -> PatientSnapshot {
    let now = now_ms();
    state.board.with(|b| b.snapshot(now, &access.patient_id))
}

/// Active alarms, highest priority first.
pub fn active_alarms(state: &AppState, access: &PatientAccess) -> Vec<AlarmView> {
    snapshot(state, access).active_alarms
}

/// The live messages that make a fresh screen correct at once (sent first on every stream).
pub fn initial_messages(state: &AppState, patient_id: &str) -> Vec<LiveMessage> {
    let now = now_ms();
    vec![state.board.with(|b| b.snapshot_message(now, patient_id))]
}

fn person(user: &CurrentUser) -> Person {
    Person {
        id: user.id.clone(),
        display_name: user.display_name.clone(),
        role: user.role,
    }
}

/// Acknowledge an active alarm for a patient. Recorded with who and when; forwarded to the pump.
pub async fn acknowledge(
    state: &AppState,
    access: &PatientAccess,
    alarm: &str,
    note: Option<&str>,
) -> Result<AlarmView, AppError> {
    let note = validate_note(note)?;
    let now = now_ms();
    let by = person(&access.user);
    let (view, effects) = state
        .board
        .with(|b| b.acknowledge(now, &access.patient_id, alarm, &by, note))?;
    carry_out(state, effects).await?;
    Ok(view)
}

/// Silence an alarm's sound on the screens (and ask the pump to pause its audio) for `minutes`. The alarm
/// stays visible and keeps escalating: silence is not acknowledgement.
pub async fn silence(
    state: &AppState,
    access: &PatientAccess,
    alarm: &str,
    minutes: u32,
) -> Result<AlarmView, AppError> {
    let now = now_ms();
    let by = person(&access.user);
    let (view, effects) = state
        .board
        .with(|b| b.silence(now, &access.patient_id, alarm, &by, minutes))?;
    carry_out(state, effects).await?;
    Ok(view)
}

fn validate_note(note: Option<&str>) -> Result<Option<String>, AppError> {
    if let Some(n) = note {
        crate::error::plain_text("note", n)?;
    }
    match note.map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) if n.chars().count() > 1000 => Err(AppError::invalid(
            "note",
            "keep the note under 1000 characters",
        )),
        Some(n) => Ok(Some(n.to_string())),
    }
}

/// Forget a practice pump's live state when the session ends (teaching alarms must not linger).
pub fn clear_teaching(state: &AppState, patient_id: &str) {
    state.board.with(|b| b.clear_teaching(patient_id));
}

/// One pass of the watchdog and the ladder for every patient. A failure is logged: the board has moved on, and
/// the next change of the same alarm is recorded as usual.
pub async fn tick(state: &AppState) {
    let now = now_ms();
    let effects = state.board.with(|b| b.tick(now));
    if let Err(e) = carry_out(state, effects).await {
        eprintln!("infusafe server: the watchdog or the ladder could not record: {e}");
    }
}

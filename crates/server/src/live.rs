//! The live picture of every patient (latest telemetry, active alarms with their acknowledgements and
//! escalation rung) and the engine that keeps it true: pump batches come in through `ingest`, people act
//! through `acknowledge` / `silence`, and `tick` runs the silence watchdog and the escalation ladder. Every
//! change is first written to the record, then published to the live streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::json;

use crate::AppState;
use crate::access::PatientAccess;
use crate::auth::{CurrentUser, Role};
use crate::db::now_ms;
use crate::error::AppError;
use crate::escalation::{self, AckBy, AlarmHistory, Rung, Timing};
use crate::hub::LiveMessage;
use crate::journal::{NewEvent, Source};
use crate::link::{BatchResponse, Device, LinkBatch, PumpCommand, Telemetry};

/// The alarm the server raises when a pump stops talking while infusing.
pub const PUMP_SILENT: &str = "pump_silent";

/// One acknowledgement.
#[derive(Debug, Clone, Serialize)]
pub struct AckView {
    pub by_user_id: Option<String>,
    pub by_name: String,
    pub role: String,
    pub at_ms: i64,
    pub note: Option<String>,
}

/// An active alarm as the screens show it.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmView {
    pub alarm: String,
    pub priority: String,
    pub raised_at_ms: i64,
    pub acknowledgements: Vec<AckView>,
    pub silenced_until_ms: Option<i64>,
    /// The highest escalation rung reached: `patient`, `nurse`, `on_call`.
    pub escalation: Option<Rung>,
    /// Whether the ladder can still go further.
    pub escalating: bool,
    /// Raised by the server (`pump_silent`) rather than by the pump.
    pub raised_by_server: bool,
    pub teaching: bool,
}

impl AlarmView {
    pub fn is_acknowledged(&self) -> bool {
        !self.acknowledgements.is_empty()
    }
}

#[derive(Debug, Clone)]
struct LiveAlarm {
    view: AlarmView,
    acks: Vec<(i64, AckBy)>,
}

#[derive(Debug, Clone, Default)]
struct PatientLive {
    clinic_id: String,
    telemetry: Option<Telemetry>,
    telemetry_at_ms: Option<i64>,
    device_id: Option<String>,
    teaching: bool,
    alarms: Vec<LiveAlarm>,
    /// Commands waiting for the pump's next batch or heartbeat.
    commands: Vec<PumpCommand>,
    /// When telemetry was last written to the record, and the state it had.
    telemetry_recorded: Option<(i64, String)>,
}

/// Telemetry goes to the record on every change of pump state and otherwise at most this often.
pub const TELEMETRY_RECORD_EVERY_MS: i64 = 60_000;

/// All patients' live state. Never held across an `.await`.
#[derive(Debug, Clone, Default)]
pub struct Board {
    inner: Arc<Mutex<HashMap<String, PatientLive>>>,
}

impl Board {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, PatientLive>) -> R) -> R {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }
}

/// A patient's live pump and alarms.
#[derive(Debug, Clone, Serialize)]
pub struct PatientSnapshot {
    pub patient_id: String,
    pub telemetry: Option<Telemetry>,
    pub telemetry_at_ms: Option<i64>,
    /// `live`, `silent` (no telemetry for longer than allowed while infusing) or `none` (never connected).
    pub link: &'static str,
    pub teaching: bool,
    /// Highest priority first, then oldest.
    pub active_alarms: Vec<AlarmView>,
}

fn priority_rank(p: &str) -> u8 {
    match p {
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    }
}

fn sorted_views(alarms: &[LiveAlarm]) -> Vec<AlarmView> {
    let mut v: Vec<AlarmView> = alarms.iter().map(|a| a.view.clone()).collect();
    v.sort_by(|a, b| {
        priority_rank(&b.priority)
            .cmp(&priority_rank(&a.priority))
            .then(a.raised_at_ms.cmp(&b.raised_at_ms))
    });
    v
}

fn snapshot_of(state: &AppState, patient_id: &str, live: Option<&PatientLive>) -> PatientSnapshot {
    let now = now_ms();
    let silent_ms = i64::try_from(state.config.pump_silent_after.as_millis()).unwrap_or(i64::MAX);
    match live {
        None => PatientSnapshot {
            patient_id: patient_id.into(),
            telemetry: None,
            telemetry_at_ms: None,
            link: "none",
            teaching: false,
            active_alarms: vec![],
        },
        Some(l) => PatientSnapshot {
            patient_id: patient_id.into(),
            telemetry: l.telemetry.clone(),
            telemetry_at_ms: l.telemetry_at_ms,
            link: match l.telemetry_at_ms {
                None => "none",
                Some(at) if now - at > silent_ms => "silent",
                Some(_) => "live",
            },
            teaching: l.teaching,
            active_alarms: sorted_views(&l.alarms),
        },
    }
}

/// The live pump snapshot and active alarms of a patient the caller may see.
pub fn snapshot(state: &AppState, access: &PatientAccess) -> PatientSnapshot {
    state
        .board
        .with(|m| snapshot_of(state, &access.patient_id, m.get(&access.patient_id)))
}

/// Active alarms, highest priority first.
pub fn active_alarms(state: &AppState, access: &PatientAccess) -> Vec<AlarmView> {
    snapshot(state, access).active_alarms
}

/// The live messages that make a fresh screen correct at once (sent first on every stream).
pub fn initial_messages(state: &AppState, patient_id: &str) -> Vec<LiveMessage> {
    let snap = state
        .board
        .with(|m| snapshot_of(state, patient_id, m.get(patient_id)));
    let clinic_id = state.board.with(|m| {
        m.get(patient_id)
            .map(|l| l.clinic_id.clone())
            .unwrap_or_default()
    });
    vec![LiveMessage {
        kind: "snapshot",
        patient_id: patient_id.into(),
        clinic_id,
        at_ms: now_ms(),
        data: serde_json::to_value(&snap).unwrap_or_default(),
    }]
}

fn publish(
    state: &AppState,
    kind: &'static str,
    patient_id: &str,
    clinic_id: &str,
    data: serde_json::Value,
) {
    state.hub.publish(LiveMessage {
        kind,
        patient_id: patient_id.into(),
        clinic_id: clinic_id.into(),
        at_ms: now_ms(),
        data,
    });
}

/// Load escalation timing for a patient from their plan (defaults when there is none).
async fn timing_for(state: &AppState, patient_id: &str) -> Timing {
    crate::plan::escalation_timing(state, patient_id).await
}

/// Store a pump's batch and update the live picture. Duplicate sequence numbers are acknowledged and ignored.
pub async fn ingest(
    state: &AppState,
    device: &Device,
    batch: LinkBatch,
) -> Result<BatchResponse, AppError> {
    let now = now_ms();
    let mut new_events = Vec::with_capacity(batch.events.len());
    for e in &batch.events {
        let mut payload = e.data.clone();
        if payload.is_null() {
            payload = json!({});
        }
        if let Some(obj) = payload.as_object_mut() {
            obj.insert("device_id".into(), json!(device.id));
            obj.insert("seq".into(), json!(e.seq));
        }
        new_events.push(NewEvent {
            patient_id: device.patient_id.clone(),
            kind: e.kind.clone(),
            source: Source::Pump,
            actor: Some(device.id.clone()),
            occurred_at_ms: e.occurred_at.as_millisecond(),
            payload,
            device_id: Some(device.id.clone()),
            device_seq: Some(e.seq),
            teaching: device.teaching,
        });
    }
    let appended = state.journal.append(new_events).await?;
    let mut response = BatchResponse {
        accepted: vec![],
        duplicates: vec![],
        commands: vec![],
    };
    let timing = timing_for(state, &device.patient_id).await;
    let mut messages: Vec<(&'static str, serde_json::Value)> = Vec::new();
    let mut follow_up: Vec<NewEvent> = Vec::new();
    state.board.with(|map| {
        let live = map.entry(device.patient_id.clone()).or_default();
        live.clinic_id = device.clinic_id.clone();
        // A practice pump never takes over the slot of the patient's own pump: its telemetry would hide the real
        // pump going silent and it could take the real pump's queued commands. Its alarms (marked teaching) still
        // show beside the real ones.
        let owns_slot = !device.teaching || live.device_id.is_none() || live.teaching;
        if owns_slot {
            live.device_id = Some(device.id.clone());
            live.teaching = device.teaching;
        }
        for (e, a) in batch.events.iter().zip(&appended) {
            if a.duplicate {
                response.duplicates.push(e.seq);
                continue;
            }
            response.accepted.push(e.seq);
            let alarm = e
                .data
                .get("alarm")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            let at = e.occurred_at.as_millisecond();
            match e.kind.as_str() {
                "alarm_raised" => {
                    let priority = e
                        .data
                        .get("priority")
                        .and_then(|v| v.as_str())
                        .unwrap_or("high")
                        .to_string();
                    if !live
                        .alarms
                        .iter()
                        .any(|x| x.view.alarm == alarm && x.view.teaching == device.teaching)
                    {
                        let view =
                            new_alarm_view(&alarm, &priority, at.min(now), false, device.teaching);
                        messages.push(("alarm", json!({"alarm": view, "detail": e.data})));
                        live.alarms.push(LiveAlarm { view, acks: vec![] });
                    }
                }
                "alarm_cleared" => {
                    // A practice pump's events never touch a real alarm of the same name, and the reverse.
                    if let Some(pos) = live
                        .alarms
                        .iter()
                        .position(|x| x.view.alarm == alarm && x.view.teaching == device.teaching)
                    {
                        live.alarms.remove(pos);
                        messages.push(("alarm_cleared", json!({"alarm": alarm})));
                    }
                }
                "alarm_acknowledged" => {
                    if let Some(x) = live
                        .alarms
                        .iter_mut()
                        .find(|x| x.view.alarm == alarm && x.view.teaching == device.teaching)
                    {
                        // A press on the pump itself is the patient side acknowledging.
                        x.acks.push((at.min(now), AckBy::PatientSide));
                        x.view.acknowledgements.push(AckView {
                            by_user_id: None,
                            by_name: "at the pump".into(),
                            role: "pump".into(),
                            at_ms: at.min(now),
                            note: None,
                        });
                        x.view.escalating = escalation::is_open(&history_of(x), timing);
                        messages.push(("acknowledged", json!({"alarm": alarm, "by": "pump"})));
                    }
                }
                _ => {}
            }
        }
        if let (true, Some(t)) = (owns_slot, batch.telemetry) {
            let resumed = live.alarms.iter().position(|x| x.view.alarm == PUMP_SILENT);
            if let Some(pos) = resumed {
                live.alarms.remove(pos);
                messages.push(("alarm_cleared", json!({"alarm": PUMP_SILENT})));
                follow_up.push(
                    server_event(
                        &device.patient_id,
                        "alarm_cleared",
                        json!({"alarm": PUMP_SILENT, "resolution": "telemetry resumed"}),
                        device.teaching,
                    )
                    .for_device(Some(&device.id)),
                );
            }
            let due = live.telemetry_recorded.as_ref().is_none_or(|(at, state)| *state != t.state || now - at >= TELEMETRY_RECORD_EVERY_MS);
            if let (true, Some(pressure), Some(mains)) = (due, t.downstream_pressure_mmhg, t.mains_present) {
                live.telemetry_recorded = Some((now, t.state.clone()));
                let mut e = server_event(
                    &device.patient_id,
                    "telemetry",
                    json!({"state": t.state, "rate_ml_per_h": t.rate_ml_per_h, "delivered_ml": t.delivered_ml, "remaining_ml": t.remaining_ml,
                           "battery_percent": t.battery_percent, "mains_present": mains, "downstream_pressure_mmhg": pressure}),
                    device.teaching,
                )
                .for_device(Some(&device.id));
                e.source = Source::Pump;
                e.actor = Some(device.id.clone());
                follow_up.push(e);
            }
            messages.push(("telemetry", serde_json::to_value(&t).unwrap_or_default()));
            live.telemetry = Some(t);
            live.telemetry_at_ms = Some(now);
        } else if owns_slot && (!batch.events.is_empty() || live.telemetry_at_ms.is_some()) {
            // Events without telemetry still prove the link is alive.
            if live.alarms.iter().any(|x| x.view.alarm == PUMP_SILENT) {
                live.alarms.retain(|x| x.view.alarm != PUMP_SILENT);
                messages.push(("alarm_cleared", json!({"alarm": PUMP_SILENT})));
                follow_up.push(
                    server_event(
                        &device.patient_id,
                        "alarm_cleared",
                        json!({"alarm": PUMP_SILENT, "resolution": "pump link resumed"}),
                        device.teaching,
                    )
                    .for_device(Some(&device.id)),
                );
            }
            live.telemetry_at_ms = Some(now);
        }
        if owns_slot {
            response.commands = std::mem::take(&mut live.commands);
        }
    });
    if !follow_up.is_empty() {
        state.journal.append(follow_up).await?;
    }
    for (kind, data) in messages {
        publish(state, kind, &device.patient_id, &device.clinic_id, data);
    }
    // Run the ladder now so the first rung (the patient's screen) is recorded without waiting for a tick.
    escalate_patient(state, &device.patient_id, timing).await;
    Ok(response)
}

fn new_alarm_view(
    alarm: &str,
    priority: &str,
    raised_at_ms: i64,
    by_server: bool,
    teaching: bool,
) -> AlarmView {
    AlarmView {
        alarm: alarm.into(),
        priority: priority.into(),
        raised_at_ms,
        acknowledgements: vec![],
        silenced_until_ms: None,
        escalation: None,
        escalating: priority == "high" && !teaching,
        raised_by_server: by_server,
        teaching,
    }
}

fn server_event(
    patient_id: &str,
    kind: &str,
    payload: serde_json::Value,
    teaching: bool,
) -> NewEvent {
    let mut e = NewEvent::now(patient_id, kind, Source::System, None, payload);
    e.teaching = teaching;
    e
}

fn history_of(a: &LiveAlarm) -> AlarmHistory {
    AlarmHistory {
        raised_at_ms: a.view.raised_at_ms,
        // Practice (teaching) alarms are rehearsals: shown on the patient's screen, never escalated.
        escalates: a.view.priority == "high" && !a.view.teaching,
        acks: a.acks.clone(),
        cleared_at_ms: None,
        reached: a.view.escalation,
    }
}

/// The active alarm of that name. When a practice (teaching) alarm and a real one share the name, the practice one
/// is chosen: acknowledging or silencing by name must never be able to stop a real alarm's escalation by mistake
/// (the real one keeps escalating until the practice session ends or it is acknowledged on its own).
fn find_alarm<'a>(live: &'a mut PatientLive, alarm: &str) -> Result<&'a mut LiveAlarm, AppError> {
    let pos = live
        .alarms
        .iter()
        .position(|x| x.view.alarm == alarm && x.view.teaching)
        .or_else(|| live.alarms.iter().position(|x| x.view.alarm == alarm))
        .ok_or_else(|| {
            AppError::not_found(format!("an active alarm {alarm:?} for this patient"))
        })?;
    Ok(&mut live.alarms[pos])
}

/// The pump an action on this alarm belongs to, for the record and for forwarding: the pump holding the live slot
/// when the alarm is of the same kind (real or practice) as that pump; otherwise none. A practice alarm shown beside
/// the patient's own pump is a rehearsal on the screen: the real pump must never receive its acknowledgement.
/// Returns the device and whether to forward the command to it.
fn alarm_pump(live: &PatientLive, alarm_teaching: bool, alarm: &str) -> (Option<String>, bool) {
    if alarm_teaching == live.teaching {
        (live.device_id.clone(), alarm != PUMP_SILENT)
    } else {
        (None, false)
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
    let user = &access.user;
    let timing = timing_for(state, &access.patient_id).await;
    let now = now_ms();
    let (view, teaching, device) = state.board.with(|map| {
        let live = map.get_mut(&access.patient_id).ok_or_else(|| {
            AppError::not_found(format!("an active alarm {alarm:?} for this patient"))
        })?;
        let a = find_alarm(live, alarm)?;
        let by = if user.role.is_clinician() {
            AckBy::Clinician
        } else {
            AckBy::PatientSide
        };
        a.acks.push((now, by));
        a.view.acknowledgements.push(AckView {
            by_user_id: Some(user.id.clone()),
            by_name: user.display_name.clone(),
            role: user.role.name().into(),
            at_ms: now,
            note: note.clone(),
        });
        a.view.escalating = escalation::is_open(&history_of(a), timing);
        let view = a.view.clone();
        let teaching = view.teaching;
        let (device, forward) = alarm_pump(live, teaching, alarm);
        if forward {
            live.commands.push(PumpCommand::Acknowledge {
                alarm: alarm.into(),
            });
        }
        Ok::<_, AppError>((view, teaching, device))
    })?;
    let mut event = NewEvent::now(
        &access.patient_id,
        "alarm_acknowledged",
        user.role.source(),
        Some(&user.id),
        json!({"alarm": alarm, "priority": view.priority, "by": user.id, "role": user.role.name(), "display_name": user.display_name, "note": note, "raised_at_ms": view.raised_at_ms}),
    )
    .for_device(device.as_deref());
    event.teaching = teaching;
    state.journal.append_one(event).await?;
    publish(
        state,
        "acknowledged",
        &access.patient_id,
        &access.clinic_id,
        json!({"alarm": alarm, "by": user.display_name, "role": user.role.name(), "alarm_view": view}),
    );
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
    if !(1..=15).contains(&minutes) {
        return Err(AppError::invalid("minutes", "silence for 1 to 15 minutes"));
    }
    let user = &access.user;
    let until = now_ms() + i64::from(minutes) * 60_000;
    let (view, teaching, device) = state.board.with(|map| {
        let live = map.get_mut(&access.patient_id).ok_or_else(|| {
            AppError::not_found(format!("an active alarm {alarm:?} for this patient"))
        })?;
        let a = find_alarm(live, alarm)?;
        a.view.silenced_until_ms = Some(until);
        let view = a.view.clone();
        let teaching = view.teaching;
        let (device, forward) = alarm_pump(live, teaching, alarm);
        if forward {
            live.commands.push(PumpCommand::Silence {
                alarm: alarm.into(),
            });
        }
        Ok::<_, AppError>((view, teaching, device))
    })?;
    let mut event = NewEvent::now(
        &access.patient_id,
        "alarm_silenced",
        user.role.source(),
        Some(&user.id),
        json!({"alarm": alarm, "by": user.id, "role": user.role.name(), "display_name": user.display_name, "until_ms": until, "silenced_for_s": minutes * 60}),
    )
    .for_device(device.as_deref());
    event.teaching = teaching;
    state.journal.append_one(event).await?;
    publish(
        state,
        "silenced",
        &access.patient_id,
        &access.clinic_id,
        json!({"alarm": alarm, "until_ms": until, "by": user.display_name}),
    );
    Ok(view)
}

fn validate_note(note: Option<&str>) -> Result<Option<String>, AppError> {
    match note.map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) if n.chars().count() > 1000 => Err(AppError::invalid(
            "note",
            "keep the note under 1000 characters",
        )),
        Some(n) => Ok(Some(n.to_string())),
    }
}

/// One row of the nurse dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct PatientSummary {
    pub patient_id: String,
    pub display_name: String,
    /// The highest active alarm priority, if any.
    pub top_priority: Option<String>,
    pub active_alarms: Vec<AlarmView>,
    pub unacknowledged: usize,
    pub link: &'static str,
    pub state: Option<String>,
    pub teaching: bool,
}

/// The clinic's patients, most urgent first: high-priority alarms (unacknowledged before acknowledged),
/// then medium, then low, then patients whose pump link is silent, then everyone else by name.
pub async fn dashboard(
    state: &AppState,
    user: &CurrentUser,
) -> Result<Vec<PatientSummary>, AppError> {
    crate::access::require_clinician(user)?;
    let patients = crate::store::clinic_patients(state, &user.clinic_id).await?;
    let mut rows: Vec<PatientSummary> = state.board.with(|map| {
        patients
            .into_iter()
            .map(|(id, name)| {
                let snap = snapshot_of(state, &id, map.get(&id));
                PatientSummary {
                    top_priority: snap.active_alarms.first().map(|a| a.priority.clone()),
                    unacknowledged: snap
                        .active_alarms
                        .iter()
                        .filter(|a| !a.is_acknowledged())
                        .count(),
                    state: snap.telemetry.as_ref().map(|t| t.state.clone()),
                    active_alarms: snap.active_alarms,
                    link: snap.link,
                    teaching: snap.teaching,
                    patient_id: id,
                    display_name: name,
                }
            })
            .collect()
    });
    rows.sort_by(|a, b| {
        let key = |r: &PatientSummary| {
            (
                std::cmp::Reverse(r.top_priority.as_deref().map(priority_rank).unwrap_or(0)),
                std::cmp::Reverse(r.unacknowledged),
                r.link != "silent",
                r.active_alarms
                    .first()
                    .map(|x| x.raised_at_ms)
                    .unwrap_or(i64::MAX),
            )
        };
        key(a)
            .cmp(&key(b))
            .then_with(|| a.display_name.cmp(&b.display_name))
    });
    Ok(rows)
}

/// Register a patient on the board (clinic known before their pump first connects).
pub fn register(state: &AppState, patient_id: &str, clinic_id: &str) {
    state.board.with(|m| {
        m.entry(patient_id.into()).or_default().clinic_id = clinic_id.into();
    });
}

/// Forget a practice pump's live state when the session ends (teaching alarms must not linger).
/// Only teaching alarms go: a real alarm on the same patient is never cleared by ending a practice session.
pub fn clear_teaching(state: &AppState, patient_id: &str) {
    state.board.with(|m| {
        if let Some(l) = m.get_mut(patient_id) {
            l.alarms.retain(|a| !a.view.teaching);
            if l.teaching {
                l.telemetry = None;
                l.telemetry_at_ms = None;
                l.device_id = None;
                l.teaching = false;
            }
        }
    });
}

/// One pass of the watchdog and the ladder for every patient. Called every `config.tick`.
pub async fn tick(state: &AppState) {
    let now = now_ms();
    // Expired sessions are removed about once a minute (they are already refused when used).
    if now % 60_000 < i64::try_from(state.config.tick.as_millis()).unwrap_or(60_000) {
        let deleted = sqlx::query("DELETE FROM srv_sessions WHERE expires_at_ms < $1")
            .bind(now)
            .execute(&state.db.pool)
            .await;
        if let Err(e) = deleted {
            eprintln!("infusafe server: could not remove expired sessions: {e}");
        }
    }
    let silent_ms = i64::try_from(state.config.pump_silent_after.as_millis()).unwrap_or(i64::MAX);
    // Raise pump_silent where a pump that was infusing has gone quiet.
    let silent: Vec<(String, String, bool, i64, Option<String>)> = state.board.with(|map| {
        let mut out = Vec::new();
        for (pid, live) in map.iter_mut() {
            let (Some(t), Some(at)) = (&live.telemetry, live.telemetry_at_ms) else {
                continue;
            };
            if t.is_infusing()
                && now - at > silent_ms
                && !live.alarms.iter().any(|a| a.view.alarm == PUMP_SILENT)
            {
                let view = new_alarm_view(PUMP_SILENT, "high", now, true, live.teaching);
                live.alarms.push(LiveAlarm { view, acks: vec![] });
                out.push((
                    pid.clone(),
                    live.clinic_id.clone(),
                    live.teaching,
                    now - at,
                    live.device_id.clone(),
                ));
            }
        }
        out
    });
    for (pid, clinic, teaching, quiet_ms, device) in silent {
        let detail = format!("no telemetry for {} s while infusing", quiet_ms / 1000);
        let event = server_event(&pid, "alarm_raised", json!({"alarm": PUMP_SILENT, "priority": "high", "detail": detail, "silent_for_ms": quiet_ms, "raised_by": "server"}), teaching)
            .for_device(device.as_deref());
        if let Err(e) = state.journal.append_one(event).await {
            eprintln!("infusafe server: could not record pump_silent for {pid}: {e}");
        }
        let view = state.board.with(|m| {
            m.get(&pid).and_then(|l| {
                l.alarms
                    .iter()
                    .find(|a| a.view.alarm == PUMP_SILENT)
                    .map(|a| a.view.clone())
            })
        });
        publish(
            state,
            "alarm",
            &pid,
            &clinic,
            json!({"alarm": view, "detail": {"silent_for_ms": quiet_ms}}),
        );
    }
    let patients: Vec<String> = state.board.with(|m| {
        m.iter()
            .filter(|(_, l)| !l.alarms.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    });
    for pid in patients {
        let timing = timing_for(state, &pid).await;
        escalate_patient(state, &pid, timing).await;
    }
}

/// (clinic, alarm, rungs due, alarm name, teaching, device)
type DueRungs = (String, AlarmView, Vec<Rung>, String, bool, Option<String>);

/// Record and announce every rung that is due for this patient's alarms.
async fn escalate_patient(state: &AppState, patient_id: &str, timing: Timing) {
    let now = now_ms();
    let due: Vec<DueRungs> = state.board.with(|map| {
        let Some(live) = map.get_mut(patient_id) else {
            return vec![];
        };
        let clinic = live.clinic_id.clone();
        let device = live.device_id.clone();
        let teaching = live.teaching;
        let mut out = Vec::new();
        for a in live.alarms.iter_mut() {
            let rungs = escalation::due_rungs(&history_of(a), timing, now);
            if let Some(last) = rungs.last() {
                a.view.escalation = Some(*last);
                a.view.escalating = escalation::is_open(&history_of(a), timing);
                out.push((
                    clinic.clone(),
                    a.view.clone(),
                    rungs,
                    a.view.alarm.clone(),
                    teaching,
                    device.clone(),
                ));
            }
        }
        out
    });
    for (clinic, view, rungs, alarm, teaching, device) in due {
        for rung in rungs {
            let unacknowledged_for_ms = now - view.raised_at_ms;
            let payload = json!({
                "alarm": alarm, "priority": view.priority, "rung": rung.name(),
                "unacknowledged_for_s": u32::try_from(unacknowledged_for_ms.max(0) / 1000).unwrap_or(u32::MAX),
                "unacknowledged_for_ms": unacknowledged_for_ms, "raised_at_ms": view.raised_at_ms,
            });
            let event = server_event(patient_id, "alarm_escalated", payload, teaching)
                .for_device(device.as_deref());
            if let Err(e) = state.journal.append_one(event).await {
                eprintln!("infusafe server: could not record an escalation for {patient_id}: {e}");
            }
            publish(
                state,
                "escalation",
                patient_id,
                &clinic,
                json!({"alarm": alarm, "rung": rung.name(), "alarm_view": view}),
            );
            // Beyond the patient's own screen, the clinic's integration (SMS, paging) is told. Teaching
            // alarms never page anyone.
            if rung != Rung::Patient && !teaching {
                state.webhooks.notify(crate::webhook::Notification {
                    clinic_id: clinic.clone(),
                    patient_id: patient_id.to_string(),
                    kind: "escalation".into(),
                    body: json!({
                        "type": "alarm_escalated", "patient_id": patient_id, "alarm": alarm, "priority": view.priority,
                        "rung": rung.name(), "unacknowledged_for_ms": unacknowledged_for_ms,
                        "contact": crate::plan::contact_for(state, patient_id, rung).await,
                    }),
                });
            }
        }
    }
}

/// Who a role acknowledges as, for display.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Patient => "patient",
        Role::Caregiver => "caregiver",
        Role::Nurse => "nurse",
        Role::Admin => "clinic admin",
    }
}

/// Rebuild the live board from the record at start, so a restarted server still shows (and keeps escalating)
/// every alarm that was raised and not cleared. Practice-pump alarms are not restored: the practice pump did
/// not survive the restart.
pub async fn restore(state: &AppState) -> Result<(), AppError> {
    let store = state.journal.store().clone();
    let teaching_devices: std::collections::HashSet<String> =
        sqlx::query("SELECT id FROM srv_devices WHERE teaching = 1")
            .fetch_all(&state.db.pool)
            .await?
            .iter()
            .filter_map(|r| sqlx::Row::try_get::<String, _>(r, "id").ok())
            .collect();
    for (patient_id, clinic_id) in crate::store::all_patients(state).await? {
        let Ok(patient) = record::PatientId::new(patient_id.clone()) else {
            continue;
        };
        let active = store
            .active_alarms(&patient)
            .await
            .map_err(AppError::internal)?;
        let active: Vec<_> = active
            .into_iter()
            .filter(|a| !teaching_devices.contains(&a.device_id))
            .collect();
        let Some(first) = active.iter().map(|a| a.raised_at).min() else {
            continue;
        };
        let query = record::TimelineQuery {
            patient: patient.clone(),
            from: Some(first),
            to: None,
            kinds: vec!["alarm_acknowledged".into(), "alarm_escalated".into()],
            limit: None,
        };
        let history = store.timeline(&query).await.map_err(AppError::internal)?;
        let mut alarms = Vec::new();
        for a in &active {
            let raised_at_ms = a.raised_at.as_millisecond();
            let mut view = new_alarm_view(
                &a.alarm,
                &a.priority,
                raised_at_ms,
                a.device_id == "server",
                false,
            );
            let mut acks = Vec::new();
            for e in history
                .iter()
                .filter(|e| e.device_id == a.device_id && e.occurred_at >= a.raised_at)
            {
                let payload: serde_json::Value =
                    serde_json::from_str(&e.payload).unwrap_or_default();
                if payload["alarm"] != a.alarm.as_str() {
                    continue;
                }
                let at = e.occurred_at.as_millisecond();
                match e.kind.as_str() {
                    "alarm_acknowledged" => {
                        let by = if e.source == record::Source::Nurse {
                            AckBy::Clinician
                        } else {
                            AckBy::PatientSide
                        };
                        acks.push((at, by));
                        view.acknowledgements.push(AckView {
                            by_user_id: Some(e.actor.clone()),
                            by_name: payload["display_name"]
                                .as_str()
                                .unwrap_or(&e.actor)
                                .to_string(),
                            role: payload["role"]
                                .as_str()
                                .unwrap_or(e.source.name())
                                .to_string(),
                            at_ms: at,
                            note: payload["note"].as_str().map(str::to_string),
                        });
                    }
                    "alarm_escalated" => {
                        let rung = match payload["rung"].as_str() {
                            Some("patient") => Some(Rung::Patient),
                            Some("nurse") => Some(Rung::Nurse),
                            Some("on_call") => Some(Rung::OnCall),
                            _ => None,
                        };
                        if rung > view.escalation {
                            view.escalation = rung;
                        }
                    }
                    _ => {}
                }
            }
            alarms.push((a.device_id.clone(), LiveAlarm { view, acks }));
        }
        state.board.with(|map| {
            let live = map.entry(patient_id.clone()).or_default();
            live.clinic_id = clinic_id.clone();
            for (device, alarm) in alarms {
                if device != "server" {
                    live.device_id = Some(device);
                }
                live.alarms.push(alarm);
            }
        });
    }
    Ok(())
}

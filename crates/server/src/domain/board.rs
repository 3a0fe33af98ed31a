//! The live board as a sans-IO state machine, in the pump core's style: every patient's latest telemetry and
//! active alarms with their acknowledgements and escalation rung. Inputs go in with the time as an argument (a
//! pump batch, an acknowledgement, a silence, a tick, a restore); what must happen outside comes back as
//! [`Effect`]s (record this event, publish this message, notify this clinic), in the order they must be carried
//! out. Pump commands wait on the board until the pump's next batch or heartbeat collects them.
//!
//! The rules: a pump's `alarm_raised` opens an alarm once per (name, practice or real); its `alarm_cleared` closes
//! it; an acknowledgement (at the pump or on a screen) is kept with who and when and may stop the ladder
//! (`escalation`); a silence mutes the screens for a while but never stops escalation; a pump that was infusing
//! and goes quiet for longer than `Settings::pump_silent_after_ms` raises the server's own `pump_silent`, which
//! clears when the pump speaks again. A practice pump never takes the live slot of the patient's own pump, and a
//! practice alarm never touches a real alarm of the same name.

use std::collections::BTreeMap;

use link::{PumpCommand, Telemetry};
use pump::Priority;
use record::Kind;
use serde::Serialize;
use serde_json::{Value, json};

use super::escalation::{self, AckBy, AlarmHistory, Rung, Timing};
use super::event::{EventDraft, Origin, Person};
use super::message::{LiveMessage, MessageKind};

/// The alarm the server raises when a pump stops talking while infusing.
pub const PUMP_SILENT: &str = "pump_silent";

/// Alarms only the server raises; a pump may not raise or clear them.
pub const SERVER_ALARMS: [&str; 1] = [PUMP_SILENT];

/// Telemetry goes to the record on every change of pump state and otherwise at most this often.
pub const TELEMETRY_RECORD_EVERY_MS: i64 = 60_000;

/// Pump commands waiting for one pump; beyond this the oldest are dropped (a pump that never collects its
/// commands is silent, and `pump_silent` says so).
pub const PUMP_COMMANDS_QUEUED_MAX: usize = 64;

/// The board's settings (from the server configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// A pump that was infusing and has sent nothing for longer than this raises `pump_silent`.
    pub pump_silent_after_ms: i64,
    /// Escalation times for a patient whose plan gave none (the companion's defaults).
    pub default_timing: Timing,
}

/// A pump, as authenticated by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub patient_id: String,
    pub clinic_id: String,
    /// A practice (teaching) pump.
    pub teaching: bool,
}

/// One pump event of a batch, already stored in the record. The board acts on the server's receipt time, never
/// on the pump's clock: a pump's clock decides nothing here.
#[derive(Debug, Clone, PartialEq)]
pub struct PumpEvent {
    /// The event's id in the record (an alarm raised by it is known by this id).
    pub record_id: i64,
    /// The record's kind name (`alarm_raised`, …); kinds the board does not act on are ignored.
    pub kind: String,
    pub data: Value,
    /// The pump's time for the event minus the server's receipt time (positive: the pump's clock is ahead).
    pub clock_skew_ms: i64,
}

/// One acknowledgement.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AckView {
    pub by_user_id: Option<String>,
    pub by_name: String,
    pub role: String,
    pub at_ms: i64,
    pub note: Option<String>,
}

/// An active alarm as the screens show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AlarmView {
    /// This occurrence of the alarm: `ev-<id of its alarm_raised event>` for a pump's alarm, `srv-<raised at,
    /// ms>` for one the server raised. Forms and the API act on an alarm by this id (or, for compatibility, by
    /// name).
    pub id: String,
    pub alarm: String,
    pub priority: Priority,
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
    fn new(
        id: String,
        alarm: &str,
        priority: Priority,
        raised_at_ms: i64,
        by_server: bool,
        teaching: bool,
    ) -> AlarmView {
        AlarmView {
            id,
            alarm: alarm.into(),
            priority,
            raised_at_ms,
            acknowledgements: vec![],
            silenced_until_ms: None,
            escalation: None,
            escalating: escalates(alarm, priority, teaching),
            raised_by_server: by_server,
            teaching,
        }
    }

    pub fn is_acknowledged(&self) -> bool {
        !self.acknowledgements.is_empty()
    }
}

/// Whether an alarm climbs the ladder beyond the patient's screen: every alarm that stops or endangers the
/// infusion, high and medium alike (an unknown name counts by its priority), but not the end of a dose, and never
/// a low-priority reminder. Practice (teaching) alarms are rehearsals: shown on the patient's screen, never
/// escalated.
fn escalates(alarm: &str, priority: Priority, teaching: bool) -> bool {
    let normal_end = alarm == pump::AlarmKind::InfusionComplete.name();
    !teaching && (priority == Priority::High || (priority == Priority::Medium && !normal_end))
}

/// An active alarm with the ladder's view of its acknowledgements.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LiveAlarm {
    view: AlarmView,
    acks: Vec<(i64, AckBy)>,
    /// The pump the alarm is about: the one that raised it (or, for `pump_silent`, the one that went quiet).
    /// Acknowledgements are recorded under it and forwarded to it, whichever pump spoke last.
    device_id: Option<String>,
}

/// The id of a server-raised alarm (`pump_silent`): the same before and after a restart, because the record keeps
/// the raise at the server's own time.
fn server_alarm_id(raised_at_ms: i64) -> String {
    format!("srv-{raised_at_ms}")
}

/// The id of a pump's alarm: its `alarm_raised` event in the record.
fn pump_alarm_id(record_id: i64) -> String {
    format!("ev-{record_id}")
}

impl LiveAlarm {
    fn history(&self) -> AlarmHistory {
        AlarmHistory {
            raised_at_ms: self.view.raised_at_ms,
            escalates: escalates(&self.view.alarm, self.view.priority, self.view.teaching),
            acks: self.acks.clone(),
            cleared_at_ms: None,
            reached: self.view.escalation,
        }
    }

    fn acknowledge(&mut self, at_ms: i64, by: AckBy, view: AckView, timing: Timing) {
        self.acks.push((at_ms, by));
        self.view.acknowledgements.push(view);
        self.view.escalating = escalation::is_open(&self.history(), timing);
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct PatientLive {
    clinic_id: String,
    telemetry: Option<Telemetry>,
    telemetry_at_ms: Option<i64>,
    device_id: Option<String>,
    teaching: bool,
    alarms: Vec<LiveAlarm>,
    /// Commands waiting for each pump's next batch or heartbeat: `(device, command)`.
    commands: Vec<(String, PumpCommand)>,
    /// When telemetry was last written to the record, and the state it had.
    telemetry_recorded: Option<(i64, String)>,
    /// The escalation times of the patient's plan, once known.
    timing: Option<Timing>,
    /// How far the live pump's clock was from the server's at its last event (positive: ahead).
    clock_skew_ms: Option<i64>,
    /// The practice pump's own latest telemetry, kept apart from the live slot (which the patient's own pump
    /// keeps): the practice screens show the practice pump's display from it.
    practice_telemetry: Option<Telemetry>,
}

impl PatientLive {
    /// The alarm of that name raised by that pump: a pump's events only ever touch its own alarms, so a second
    /// pump on the same patient can neither clear nor acknowledge the first one's, and a practice pump never a
    /// real one's.
    fn position(&self, alarm: &str, device_id: &str) -> Option<usize> {
        self.alarms.iter().position(|x| {
            x.view.alarm == alarm
                && x.device_id.as_deref() == Some(device_id)
                && !x.view.raised_by_server
        })
    }

    /// The practice alarm of that name, if any (for actions by name).
    fn practice_position(&self, alarm: &str) -> Option<usize> {
        self.alarms
            .iter()
            .position(|x| x.view.alarm == alarm && x.view.teaching)
    }

    /// The active alarm an action names: by its id (`ev-…`, `srv-…`; alarm names never contain `-`), or by
    /// name. By name, when a practice (teaching) alarm and a real one share it, the practice one is chosen:
    /// acknowledging or silencing by name must never be able to stop a real alarm's escalation by mistake.
    fn find(&self, alarm: &str) -> Option<usize> {
        if alarm.contains('-') {
            return self.alarms.iter().position(|x| x.view.id == alarm);
        }
        self.practice_position(alarm)
            .or_else(|| self.alarms.iter().position(|x| x.view.alarm == alarm))
    }

    /// Queue a command for the pump that raised the alarm; a server alarm has no pump to tell.
    fn forward(&mut self, pos: usize, command: impl FnOnce(String) -> PumpCommand) {
        let alarm = &self.alarms[pos];
        let (Some(device), false) = (alarm.device_id.clone(), alarm.view.raised_by_server) else {
            return;
        };
        if self.commands.len() >= PUMP_COMMANDS_QUEUED_MAX {
            self.commands.remove(0);
        }
        let name = alarm.view.alarm.clone();
        self.commands.push((device, command(name)));
    }

    /// The commands waiting for this pump, taken off the queue.
    fn take_commands(&mut self, device_id: &str) -> Vec<PumpCommand> {
        let (mine, others) = std::mem::take(&mut self.commands)
            .into_iter()
            .partition(|(d, _)| d == device_id);
        self.commands = others;
        mine.into_iter().map(|(_, c)| c).collect()
    }

    fn timing(&self, settings: Settings) -> Timing {
        self.timing.unwrap_or(settings.default_timing)
    }

    fn link(&self, now_ms: i64, settings: Settings) -> &'static str {
        match self.telemetry_at_ms {
            None => "none",
            Some(at) if now_ms - at > settings.pump_silent_after_ms => "silent",
            Some(_) => "live",
        }
    }

    /// Real alarms before practice ones, then highest priority first, then oldest: a rehearsal never ranks above
    /// a real alarm.
    fn sorted_views(&self) -> Vec<AlarmView> {
        let mut v: Vec<AlarmView> = self.alarms.iter().map(|a| a.view.clone()).collect();
        v.sort_by(|a, b| {
            a.teaching
                .cmp(&b.teaching)
                .then(b.priority.cmp(&a.priority))
                .then(a.raised_at_ms.cmp(&b.raised_at_ms))
        });
        v
    }
}

/// What happens outside the board, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Append this event to the patient's record.
    Record(EventDraft),
    /// A decision several server processes may reach at once (a rung of the ladder, `pump_silent` raised or
    /// cleared): append the event under the claim `key` (the same key in every process), and carry out `then`
    /// only if this process's event is the one the record kept.
    Claim {
        key: String,
        draft: EventDraft,
        then: Vec<Effect>,
    },
    /// A telemetry sample for the grouped writer: not a clinical event, written off the request path.
    Telemetry(EventDraft),
    /// Send this message to the live streams.
    Publish(LiveMessage),
    /// Tell the clinic's integration (paging, SMS) that an alarm climbed to `rung`.
    Notify(EscalationNotice),
}

/// An escalation beyond the patient's own screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationNotice {
    pub clinic_id: String,
    pub patient_id: String,
    pub alarm: String,
    pub priority: Priority,
    pub rung: Rung,
    pub unacknowledged_for_ms: i64,
}

/// What a pump batch changed: the commands for the pump, and the effects to carry out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchOutcome {
    pub commands: Vec<PumpCommand>,
    pub effects: Vec<Effect>,
}

/// Why a person's action on the board was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    #[error("an active alarm {alarm:?} for this patient")]
    NoSuchAlarm { alarm: String },
    #[error("silence for 1 to 15 minutes, not {minutes}")]
    SilenceMinutes { minutes: u32 },
}

/// A patient's live pump and alarms.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PatientSnapshot {
    pub patient_id: String,
    pub telemetry: Option<Telemetry>,
    pub telemetry_at_ms: Option<i64>,
    /// `live`, `silent` (no telemetry for longer than allowed while infusing) or `none` (never connected).
    pub link: &'static str,
    pub teaching: bool,
    /// Highest priority first, then oldest.
    pub active_alarms: Vec<AlarmView>,
    /// How far the pump's clock was from the server's at its last event, in ms (positive: ahead); the
    /// server's time is what alarms and escalation use.
    pub pump_clock_skew_ms: Option<i64>,
    /// The practice pump's latest telemetry while one runs (its display on the practice screens); not part of
    /// the API's snapshot.
    #[serde(skip)]
    pub practice_telemetry: Option<Telemetry>,
}

/// One row of the nurse dashboard.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PatientSummary {
    pub patient_id: String,
    pub display_name: String,
    /// The highest active alarm priority, if any.
    pub top_priority: Option<Priority>,
    pub active_alarms: Vec<AlarmView>,
    pub unacknowledged: usize,
    pub link: &'static str,
    pub state: Option<String>,
    pub teaching: bool,
}

/// An alarm found active in the record at start, with the acknowledgements and escalations written about it.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredAlarm {
    /// The record id of its `alarm_raised` event.
    pub raised_event: i64,
    pub alarm: String,
    pub priority: Priority,
    pub raised_at_ms: i64,
    /// The pump that raised it, or `server` for `pump_silent`.
    pub device_id: String,
    pub history: Vec<RestoredEvent>,
}

/// An `alarm_acknowledged` or `alarm_escalated` event about a restored alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredEvent {
    pub kind: String,
    pub at_ms: i64,
    /// The record's source (`nurse` means the care team).
    pub source: record::Source,
    pub actor: String,
    pub payload: Value,
}

/// An event another server process recorded (read back from the record by the follower), for
/// [`Board::follow`]. Times are the server's: `occurred_at_ms` for the server's and people's events,
/// `recorded_at_ms` (receipt) for a pump's.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub record_id: i64,
    pub patient_id: String,
    pub kind: String,
    pub source: record::Source,
    pub actor: String,
    pub device_id: String,
    pub teaching: bool,
    pub occurred_at_ms: i64,
    pub recorded_at_ms: i64,
    pub payload: Value,
}

/// A pump's last contact as another process saw it (from the shared contacts), for [`Board::contact`].
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteContact {
    pub device: Device,
    pub at_ms: i64,
    pub telemetry: Option<Telemetry>,
}

/// Every patient's live state.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    settings: Settings,
    patients: BTreeMap<String, PatientLive>,
}

fn message(
    kind: MessageKind,
    patient_id: &str,
    clinic_id: &str,
    at_ms: i64,
    data: Value,
) -> Effect {
    Effect::Publish(LiveMessage {
        kind,
        patient_id: patient_id.into(),
        clinic_id: clinic_id.into(),
        at_ms,
        data,
        routine: false,
    })
}

/// A telemetry message; routine when the pump's state is the one it had (the clinic's streams leave it out).
fn telemetry_message(
    patient_id: &str,
    clinic_id: &str,
    at_ms: i64,
    t: &Telemetry,
    previous: Option<&Telemetry>,
) -> Effect {
    Effect::Publish(LiveMessage {
        kind: MessageKind::Telemetry,
        patient_id: patient_id.into(),
        clinic_id: clinic_id.into(),
        at_ms,
        data: serde_json::to_value(t).unwrap_or_default(),
        routine: previous.is_some_and(|p| p.state == t.state),
    })
}

impl Board {
    pub fn new(settings: Settings) -> Board {
        Board {
            settings,
            patients: BTreeMap::new(),
        }
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Whether this pump's alarm of this name is open on the board (an alarm report that says again that it is
    /// there, such as IHE PCD's `present` phase, need not be recorded again).
    pub fn is_open(&self, patient_id: &str, device_id: &str, alarm: &str) -> bool {
        self.patients
            .get(patient_id)
            .is_some_and(|live| live.position(alarm, device_id).is_some())
    }

    /// The escalation times of a patient's plan (at start and whenever the plan changes).
    pub fn set_timing(&mut self, patient_id: &str, timing: Timing) {
        self.patients.entry(patient_id.into()).or_default().timing = Some(timing);
    }

    /// Know a patient (and their clinic) before their pump first connects.
    pub fn register(&mut self, patient_id: &str, clinic_id: &str) {
        self.patients
            .entry(patient_id.into())
            .or_default()
            .clinic_id = clinic_id.into();
    }

    /// The patients with at least one active alarm (the ones a tick may escalate).
    pub fn patients_with_alarms(&self) -> Vec<String> {
        self.patients
            .iter()
            .filter(|(_, l)| !l.alarms.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// A pump's batch, after its events were stored (`events` are the new ones; duplicates are left out).
    /// Updates alarms and telemetry, collects the pump's queued commands, and runs the ladder at once so the
    /// first rung (the patient's screen) is recorded without waiting for a tick.
    pub fn batch(
        &mut self,
        now_ms: i64,
        device: &Device,
        events: &[PumpEvent],
        telemetry: Option<Telemetry>,
    ) -> BatchOutcome {
        let settings = self.settings;
        let live = self.patients.entry(device.patient_id.clone()).or_default();
        let timing = live.timing(settings);
        live.clinic_id = device.clinic_id.clone();
        if device.teaching && telemetry.is_some() {
            live.practice_telemetry.clone_from(&telemetry);
        }
        // A practice pump never takes over the slot of the patient's own pump: its telemetry would hide the real
        // pump going silent and it could take the real pump's queued commands.
        let owns_slot = !device.teaching || live.device_id.is_none() || live.teaching;
        if owns_slot {
            live.device_id = Some(device.id.clone());
            live.teaching = device.teaching;
        }
        let mut effects = Vec::new();
        for event in events {
            apply_pump_event(live, now_ms, device, event, timing, &mut effects);
        }
        if let (true, Some(last)) = (owns_slot, events.last()) {
            live.clock_skew_ms = Some(last.clock_skew_ms);
        }
        if owns_slot {
            // Events without telemetry still prove the link is alive.
            let spoke = telemetry.is_some() || !events.is_empty() || live.telemetry_at_ms.is_some();
            if spoke {
                let resolution = if telemetry.is_some() {
                    "telemetry resumed"
                } else {
                    "pump link resumed"
                };
                clear_pump_silent(live, now_ms, device, resolution, &mut effects);
                live.telemetry_at_ms = Some(now_ms);
            }
            if let Some(t) = telemetry {
                record_telemetry(live, now_ms, device, &t, &mut effects);
                effects.push(telemetry_message(
                    &device.patient_id,
                    &device.clinic_id,
                    now_ms,
                    &t,
                    live.telemetry.as_ref(),
                ));
                live.telemetry = Some(t);
            }
        }
        let commands = live.take_commands(&device.id);
        effects.extend(self.escalate(now_ms, &device.patient_id));
        BatchOutcome { commands, effects }
    }

    /// A person acknowledges an active alarm: recorded with who and when, forwarded to the pump that raised it.
    pub fn acknowledge(
        &mut self,
        now_ms: i64,
        patient_id: &str,
        alarm: &str,
        person: &Person,
        note: Option<String>,
    ) -> Result<(AlarmView, Vec<Effect>), BoardError> {
        let no_such = || BoardError::NoSuchAlarm {
            alarm: alarm.into(),
        };
        let settings = self.settings;
        let live = self.patients.get_mut(patient_id).ok_or_else(no_such)?;
        let timing = live.timing(settings);
        let pos = live.find(alarm).ok_or_else(no_such)?;
        let by = if person.role.is_clinician() {
            AckBy::Clinician
        } else {
            AckBy::PatientSide
        };
        let ack = AckView {
            by_user_id: Some(person.id.clone()),
            by_name: person.display_name.clone(),
            role: person.role.name().into(),
            at_ms: now_ms,
            note: note.clone(),
        };
        live.alarms[pos].acknowledge(now_ms, by, ack, timing);
        // Not forwarded to the pump: acknowledging on a screen says someone has seen the alarm, while the pump's
        // own Acknowledge button can mean "I removed the air" and resets its detector. Only a person at the pump
        // presses that (a caregiver at work or a nurse at her desk must never reset a home pump's air detection).
        let view = live.alarms[pos].view.clone();
        let device = live.alarms[pos].device_id.clone();
        let draft = EventDraft::new(
            patient_id,
            Kind::AlarmAcknowledged,
            person.role.origin(),
            Some(&person.id),
            now_ms,
            json!({"alarm": view.alarm, "alarm_id": view.id, "priority": view.priority, "by": person.id, "role": person.role.name(), "display_name": person.display_name, "note": note, "raised_at_ms": view.raised_at_ms}),
        )
        .for_device(device.as_deref())
        .teaching(view.teaching);
        let published = message(
            MessageKind::Acknowledged,
            patient_id,
            &live.clinic_id,
            now_ms,
            json!({"alarm": view.alarm, "alarm_id": view.id, "by": person.display_name, "role": person.role.name(), "alarm_view": view}),
        );
        Ok((view, vec![Effect::Record(draft), published]))
    }

    /// Silence an alarm's sound on the screens (and ask the pump to pause its audio) for `minutes`. The alarm
    /// stays visible and keeps escalating: silence is not acknowledgement.
    pub fn silence(
        &mut self,
        now_ms: i64,
        patient_id: &str,
        alarm: &str,
        person: &Person,
        minutes: u32,
    ) -> Result<(AlarmView, Vec<Effect>), BoardError> {
        if !(1..=15).contains(&minutes) {
            return Err(BoardError::SilenceMinutes { minutes });
        }
        let no_such = || BoardError::NoSuchAlarm {
            alarm: alarm.into(),
        };
        let live = self.patients.get_mut(patient_id).ok_or_else(no_such)?;
        let pos = live.find(alarm).ok_or_else(no_such)?;
        let until = now_ms + i64::from(minutes) * 60_000;
        live.alarms[pos].view.silenced_until_ms = Some(until);
        live.forward(pos, |alarm| PumpCommand::Silence { alarm });
        let view = live.alarms[pos].view.clone();
        let device = live.alarms[pos].device_id.clone();
        let draft = EventDraft::new(
            patient_id,
            Kind::AlarmSilenced,
            person.role.origin(),
            Some(&person.id),
            now_ms,
            json!({"alarm": view.alarm, "alarm_id": view.id, "by": person.id, "role": person.role.name(), "display_name": person.display_name, "until_ms": until, "silenced_for_s": minutes * 60}),
        )
        .for_device(device.as_deref())
        .teaching(view.teaching);
        let published = message(
            MessageKind::Silenced,
            patient_id,
            &live.clinic_id,
            now_ms,
            json!({"alarm": view.alarm, "alarm_id": view.id, "until_ms": until, "by": person.display_name}),
        );
        Ok((view, vec![Effect::Record(draft), published]))
    }

    /// One pass of the silence watchdog and the ladder.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Effect> {
        let settings = self.settings;
        let mut effects = Vec::new();
        for (patient_id, live) in self.patients.iter_mut() {
            raise_pump_silent(live, patient_id, now_ms, settings, &mut effects);
        }
        for patient_id in self.patients_with_alarms() {
            effects.extend(self.escalate(now_ms, &patient_id));
        }
        effects
    }

    /// Record and announce every rung that is due for this patient's alarms.
    fn escalate(&mut self, now_ms: i64, patient_id: &str) -> Vec<Effect> {
        let settings = self.settings;
        let Some(live) = self.patients.get_mut(patient_id) else {
            return vec![];
        };
        let timing = live.timing(settings);
        let mut effects = Vec::new();
        for alarm in live.alarms.iter_mut() {
            let rungs = escalation::due_rungs(&alarm.history(), timing, now_ms);
            let Some(last) = rungs.last() else {
                continue;
            };
            alarm.view.escalation = Some(*last);
            alarm.view.escalating = escalation::is_open(&alarm.history(), timing);
            for rung in rungs {
                let notice = EscalationNotice {
                    clinic_id: live.clinic_id.clone(),
                    patient_id: patient_id.into(),
                    alarm: alarm.view.alarm.clone(),
                    priority: alarm.view.priority,
                    rung,
                    unacknowledged_for_ms: now_ms - alarm.view.raised_at_ms,
                };
                escalation_effects(
                    &notice,
                    &alarm.view,
                    alarm.device_id.as_deref(),
                    now_ms,
                    &mut effects,
                );
            }
        }
        effects
    }

    /// Rungs the board decided but the shell could not record (the database was away): forget them, so the next
    /// tick decides, records and announces them again. A page is never lost to a failed write.
    pub fn escalations_not_recorded(&mut self, drafts: &[EventDraft]) {
        let settings = self.settings;
        for d in drafts {
            let id = d.payload["alarm_id"].as_str().unwrap_or("");
            let Some(rung) = Rung::from_name(d.payload["rung"].as_str().unwrap_or("")) else {
                continue;
            };
            let Some(live) = self.patients.get_mut(&d.patient_id) else {
                continue;
            };
            let timing = live.timing(settings);
            if let Some(a) = live.alarms.iter_mut().find(|a| a.view.id == id)
                && a.view.escalation >= Some(rung)
            {
                a.view.escalation = rung.previous();
                a.view.escalating = escalation::is_open(&a.history(), timing);
            }
        }
    }

    /// Decisions the board made but the shell could not record (the database was away), undone so the board
    /// never shows what the record does not hold: an acknowledgement comes off its alarm (the alarm keeps
    /// escalating, and the person is told it failed), and a `pump_silent` the board raised is taken down so the
    /// next tick raises and records it again. Rungs: see [`Board::escalations_not_recorded`].
    pub fn not_recorded(&mut self, drafts: &[EventDraft]) {
        let settings = self.settings;
        let escalations: Vec<EventDraft> = drafts
            .iter()
            .filter(|d| d.kind == crate::domain::EventKind::Record(Kind::AlarmEscalated))
            .cloned()
            .collect();
        self.escalations_not_recorded(&escalations);
        for d in drafts {
            let Some(live) = self.patients.get_mut(&d.patient_id) else {
                continue;
            };
            let timing = live.timing(settings);
            let alarm_id = d.payload["alarm_id"].as_str().unwrap_or("");
            match d.kind {
                crate::domain::EventKind::Record(Kind::AlarmAcknowledged) => {
                    let by = d.payload["by"].as_str();
                    if let Some(a) = live.alarms.iter_mut().find(|a| a.view.id == alarm_id) {
                        let at = d.occurred_at_ms;
                        a.view
                            .acknowledgements
                            .retain(|k| !(k.at_ms == at && k.by_user_id.as_deref() == by));
                        let kind = if matches!(
                            d.origin,
                            crate::domain::Origin::Nurse | crate::domain::Origin::Admin
                        ) {
                            AckBy::Clinician
                        } else {
                            AckBy::PatientSide
                        };
                        if let Some(pos) = a.acks.iter().rposition(|x| *x == (at, kind)) {
                            a.acks.remove(pos);
                        }
                        a.view.escalating = escalation::is_open(&a.history(), timing);
                    }
                }
                crate::domain::EventKind::Record(Kind::AlarmRaised)
                    if d.payload["alarm"] == PUMP_SILENT =>
                {
                    let id = server_alarm_id(d.occurred_at_ms);
                    live.alarms.retain(|a| a.view.id != id);
                }
                _ => {}
            }
        }
    }

    /// Put back what the record says was active at the last stop. Practice alarms are never restored (the
    /// practice pump did not survive the restart; the caller leaves them out).
    pub fn restore(&mut self, patient_id: &str, clinic_id: &str, alarms: Vec<RestoredAlarm>) {
        let settings = self.settings;
        let live = self.patients.entry(patient_id.into()).or_default();
        live.clinic_id = clinic_id.into();
        let timing = live.timing(settings);
        for restored in alarms {
            if restored.device_id != "server" && live.device_id.is_none() {
                live.device_id = Some(restored.device_id.clone());
            }
            let mut alarm = restore_alarm(&restored);
            alarm.view.escalating = escalation::is_open(&alarm.history(), timing);
            live.alarms.push(alarm);
        }
    }

    /// Whether the board knows this patient (and so their clinic).
    pub fn knows(&self, patient_id: &str) -> bool {
        self.patients
            .get(patient_id)
            .is_some_and(|l| !l.clinic_id.is_empty())
    }

    /// An event from the record, in the patient's chain order: the board takes it in as the board that wrote it
    /// did, and announces it to this process's screens. Decides nothing (records nothing, pages no one): what
    /// follows from it is the deciding process's, or the duty holder's. `local`: this process wrote it (and
    /// applied it then); it is taken in again, silently, so an event another process wrote just before it (say,
    /// the raise this pump's clear was about) ends up in the record's order here too. Idempotent: an event the
    /// board already holds changes nothing, and a clear closes only an alarm raised before it.
    pub fn follow(&mut self, e: &Recorded, local: bool) -> Vec<Effect> {
        let effects = self.follow_event(e, local);
        if local { vec![] } else { effects }
    }

    fn follow_event(&mut self, e: &Recorded, local: bool) -> Vec<Effect> {
        let settings = self.settings;
        let Some(live) = self.patients.get_mut(&e.patient_id) else {
            return vec![];
        };
        let timing = live.timing(settings);
        let clinic_id = live.clinic_id.clone();
        let publish = |kind, data| message(kind, &e.patient_id, &clinic_id, e.recorded_at_ms, data);
        let alarm = e.payload["alarm"].as_str().unwrap_or("");
        let by_server = e.source == record::Source::System;
        let mut effects = Vec::new();
        match Kind::from_name(&e.kind) {
            // A pump's acknowledgement has no identity to recognise it by a second time.
            Some(Kind::AlarmAcknowledged) if e.source == record::Source::Pump && local => {}
            Some(Kind::AlarmCleared) if e.source == record::Source::Pump => {
                // Only the occurrence raised before this clear: a later one of the same name stays.
                let before = |a: &LiveAlarm| {
                    a.view
                        .id
                        .strip_prefix("ev-")
                        .and_then(|n| n.parse::<i64>().ok())
                        .is_some_and(|raised| raised < e.record_id)
                };
                if let Some(pos) = live.position(alarm, &e.device_id)
                    && before(&live.alarms[pos])
                {
                    live.alarms.remove(pos);
                    effects.push(publish(MessageKind::AlarmCleared, json!({"alarm": alarm})));
                }
            }
            Some(Kind::AlarmRaised | Kind::AlarmAcknowledged)
                if e.source == record::Source::Pump =>
            {
                let device = Device {
                    id: e.device_id.clone(),
                    patient_id: e.patient_id.clone(),
                    clinic_id: clinic_id.clone(),
                    teaching: e.teaching,
                };
                if live.device_id.is_none() || (!e.teaching && live.teaching) {
                    live.device_id = Some(e.device_id.clone());
                    live.teaching = e.teaching;
                }
                let event = PumpEvent {
                    record_id: e.record_id,
                    kind: e.kind.clone(),
                    data: e.payload.clone(),
                    clock_skew_ms: 0,
                };
                apply_pump_event(
                    live,
                    e.recorded_at_ms,
                    &device,
                    &event,
                    timing,
                    &mut effects,
                );
            }
            Some(Kind::AlarmRaised) if by_server && alarm == PUMP_SILENT => {
                let id = server_alarm_id(e.occurred_at_ms);
                if let Some(open) = live.alarms.iter_mut().find(|a| a.view.alarm == PUMP_SILENT) {
                    // Another process noticed the same silence first: its alarm is the one in the record.
                    open.view.id = id;
                    open.view.raised_at_ms = e.occurred_at_ms;
                } else {
                    let mut view = AlarmView::new(
                        id,
                        PUMP_SILENT,
                        Priority::High,
                        e.occurred_at_ms,
                        true,
                        e.teaching,
                    );
                    view.escalating = escalates(PUMP_SILENT, Priority::High, e.teaching);
                    live.alarms.push(LiveAlarm {
                        view: view.clone(),
                        acks: vec![],
                        device_id: (e.device_id != "server").then(|| e.device_id.clone()),
                    });
                    effects.push(publish(
                        MessageKind::Alarm,
                        json!({"alarm": view, "detail": {"silent_for_ms": e.payload["silent_for_ms"]}}),
                    ));
                }
            }
            Some(Kind::AlarmCleared) if by_server && alarm == PUMP_SILENT => {
                if let Some(pos) = live.alarms.iter().position(|a| {
                    a.view.alarm == PUMP_SILENT && a.view.raised_at_ms <= e.occurred_at_ms
                }) {
                    live.alarms.remove(pos);
                    effects.push(publish(
                        MessageKind::AlarmCleared,
                        json!({"alarm": PUMP_SILENT}),
                    ));
                }
            }
            Some(Kind::AlarmAcknowledged) => {
                let Some(pos) = followed_alarm(live, &e.payload) else {
                    return effects;
                };
                let at = e.occurred_at_ms;
                let by_user = Some(e.actor.clone());
                let known = live.alarms[pos]
                    .view
                    .acknowledgements
                    .iter()
                    .any(|a| a.at_ms == at && a.by_user_id == by_user);
                if known {
                    return effects;
                }
                let by = if e.source == record::Source::Nurse {
                    AckBy::Clinician
                } else {
                    AckBy::PatientSide
                };
                let text = |k: &str| e.payload[k].as_str().map(str::to_string);
                let ack = AckView {
                    by_user_id: by_user,
                    by_name: text("display_name").unwrap_or_else(|| e.actor.clone()),
                    role: text("role").unwrap_or_else(|| e.source.name().to_string()),
                    at_ms: at,
                    note: text("note"),
                };
                live.alarms[pos].acknowledge(at, by, ack.clone(), timing);
                let view = live.alarms[pos].view.clone();
                effects.push(publish(
                    MessageKind::Acknowledged,
                    json!({"alarm": view.alarm, "alarm_id": view.id, "by": ack.by_name, "role": ack.role, "alarm_view": view}),
                ));
            }
            Some(Kind::AlarmSilenced) => {
                let (Some(pos), Some(until)) = (
                    followed_alarm(live, &e.payload),
                    e.payload["until_ms"].as_i64(),
                ) else {
                    return effects;
                };
                let view = &mut live.alarms[pos].view;
                if view.silenced_until_ms != Some(until) {
                    view.silenced_until_ms = Some(until);
                    effects.push(publish(
                        MessageKind::Silenced,
                        json!({"alarm": view.alarm, "alarm_id": view.id, "until_ms": until, "by": e.payload["display_name"]}),
                    ));
                }
            }
            // Only the server's own record of a rung counts (as at a restore).
            Some(Kind::AlarmEscalated) if by_server => {
                let (Some(pos), Some(rung)) = (
                    followed_alarm(live, &e.payload),
                    Rung::from_name(e.payload["rung"].as_str().unwrap_or("")),
                ) else {
                    return effects;
                };
                let alarm = &mut live.alarms[pos];
                if alarm.view.escalation < Some(rung) {
                    alarm.view.escalation = Some(rung);
                    alarm.view.escalating = escalation::is_open(&alarm.history(), timing);
                    effects.push(publish(
                        MessageKind::Escalation,
                        json!({"alarm": alarm.view.alarm, "rung": rung.name(), "alarm_view": alarm.view}),
                    ));
                }
            }
            _ => {}
        }
        effects
    }

    /// A pump's contact that another process received: the live slot takes it if it is newer than what this
    /// board has (so the silence watchdog and the screens see pumps talking to any process).
    pub fn contact(&mut self, c: &RemoteContact) -> Vec<Effect> {
        let Some(live) = self.patients.get_mut(&c.device.patient_id) else {
            return vec![];
        };
        if c.device.teaching && c.telemetry.is_some() {
            live.practice_telemetry.clone_from(&c.telemetry);
        }
        let owns_slot = !c.device.teaching || live.device_id.is_none() || live.teaching;
        if !owns_slot || live.telemetry_at_ms.is_some_and(|at| at >= c.at_ms) {
            return vec![];
        }
        live.device_id = Some(c.device.id.clone());
        live.teaching = c.device.teaching;
        live.telemetry_at_ms = Some(c.at_ms);
        let Some(t) = c.telemetry.clone() else {
            return vec![];
        };
        if live.telemetry.as_ref() == Some(&t) {
            return vec![];
        }
        let message = telemetry_message(
            &c.device.patient_id,
            &live.clinic_id,
            c.at_ms,
            &t,
            live.telemetry.as_ref(),
        );
        live.telemetry = Some(t);
        vec![message]
    }

    /// Forget a practice pump's live state when the session ends. Only teaching alarms go: a real alarm on the
    /// same patient is never cleared by ending a practice session.
    pub fn clear_teaching(&mut self, patient_id: &str) {
        if let Some(l) = self.patients.get_mut(patient_id) {
            l.alarms.retain(|a| !a.view.teaching);
            l.practice_telemetry = None;
            if l.teaching {
                l.telemetry = None;
                l.telemetry_at_ms = None;
                l.device_id = None;
                l.teaching = false;
            }
        }
    }

    /// A patient's live pump and alarms, highest priority first.
    pub fn snapshot(&self, now_ms: i64, patient_id: &str) -> PatientSnapshot {
        let settings = self.settings;
        match self.patients.get(patient_id) {
            None => PatientSnapshot {
                patient_id: patient_id.into(),
                telemetry: None,
                telemetry_at_ms: None,
                link: "none",
                teaching: false,
                active_alarms: vec![],
                pump_clock_skew_ms: None,
                practice_telemetry: None,
            },
            Some(l) => PatientSnapshot {
                patient_id: patient_id.into(),
                telemetry: l.telemetry.clone(),
                telemetry_at_ms: l.telemetry_at_ms,
                link: l.link(now_ms, settings),
                teaching: l.teaching,
                active_alarms: l.sorted_views(),
                pump_clock_skew_ms: l.clock_skew_ms,
                practice_telemetry: l.practice_telemetry.clone(),
            },
        }
    }

    /// The message that makes a fresh screen correct at once (sent first on every stream).
    pub fn snapshot_message(&self, now_ms: i64, patient_id: &str) -> LiveMessage {
        let snap = self.snapshot(now_ms, patient_id);
        LiveMessage {
            kind: MessageKind::Snapshot,
            patient_id: patient_id.into(),
            clinic_id: self
                .patients
                .get(patient_id)
                .map(|l| l.clinic_id.clone())
                .unwrap_or_default(),
            at_ms: now_ms,
            data: serde_json::to_value(&snap).unwrap_or_default(),
            routine: false,
        }
    }

    /// The clinic's patients (`(id, name)`), most urgent first: high-priority alarms (unacknowledged before
    /// acknowledged), then medium, then low, then patients whose pump link is silent, then everyone else by name.
    pub fn dashboard(&self, now_ms: i64, patients: Vec<(String, String)>) -> Vec<PatientSummary> {
        let mut rows: Vec<PatientSummary> = patients
            .into_iter()
            .map(|(id, name)| self.summary(now_ms, id, name))
            .collect();
        rows.sort_by(|a, b| {
            dashboard_key(a)
                .cmp(&dashboard_key(b))
                .then_with(|| a.display_name.cmp(&b.display_name))
        });
        rows
    }
}

impl Board {
    /// One patient's dashboard row (`id`, `name`) as the board sees it now.
    pub fn summary(&self, now_ms: i64, id: String, name: String) -> PatientSummary {
        let snap = self.snapshot(now_ms, &id);
        PatientSummary {
            top_priority: snap.active_alarms.first().map(|a| a.priority),
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
    }

    /// The ids of a clinic's patients that rank above "everyone else by name" on the dashboard: any active
    /// alarm (practice ones too) or a silent pump link. Nothing is cloned or sorted for the others, so the cost
    /// beyond one pass over the board grows with the patients that have something to show.
    pub fn ranked_patients(&self, now_ms: i64, clinic_id: &str) -> Vec<String> {
        let settings = self.settings;
        self.clinic_patients_where(clinic_id, |l| {
            !l.alarms.is_empty() || l.link(now_ms, settings) == "silent"
        })
    }

    /// The ids of a clinic's patients that need a nurse: a real (not practice) active alarm, or the patient's
    /// own pump gone silent while infusing (the rows `needs_attention` accepts).
    pub fn patients_needing_attention(&self, now_ms: i64, clinic_id: &str) -> Vec<String> {
        let settings = self.settings;
        self.clinic_patients_where(clinic_id, |l| {
            l.alarms.iter().any(|a| !a.view.teaching)
                || (!l.teaching
                    && l.link(now_ms, settings) == "silent"
                    && l.telemetry.as_ref().is_some_and(Telemetry::is_infusing))
        })
    }

    fn clinic_patients_where(
        &self,
        clinic_id: &str,
        wanted: impl Fn(&PatientLive) -> bool,
    ) -> Vec<String> {
        self.patients
            .iter()
            .filter(|(_, l)| l.clinic_id == clinic_id && wanted(l))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Whether a dashboard row needs a nurse: a real (not practice) active alarm or the patient's own pump gone
/// silent while it was infusing (a practice pump that stops talking is a lesson, not a risk; a pump switched off
/// after its dose, or paused, is not a risk either: the same rule as `pump_silent`). The rows
/// `Board::patients_needing_attention` finds are exactly these.
pub fn needs_attention(r: &PatientSummary) -> bool {
    let infusing = matches!(r.state.as_deref(), Some("infusing" | "kvo"));
    (r.link == "silent" && !r.teaching && infusing) || r.active_alarms.iter().any(|a| !a.teaching)
}

/// The dashboard's order: real alarms by priority (unacknowledged first), then silent pumps, then patients with
/// only practice alarms, then oldest real alarm first. Practice alarms never rank above a real one.
fn dashboard_key(
    r: &PatientSummary,
) -> (
    std::cmp::Reverse<Option<Priority>>,
    std::cmp::Reverse<usize>,
    bool,
    bool,
    i64,
) {
    let real = || r.active_alarms.iter().filter(|a| !a.teaching);
    (
        std::cmp::Reverse(real().map(|a| a.priority).max()),
        std::cmp::Reverse(real().filter(|a| !a.is_acknowledged()).count()),
        r.link != "silent",
        !r.active_alarms.iter().any(|a| a.teaching),
        real().map(|x| x.raised_at_ms).min().unwrap_or(i64::MAX),
    )
}

/// The active alarm a followed event is about: by its id, else by name (and the device, for a pump's alarm).
fn followed_alarm(live: &PatientLive, payload: &Value) -> Option<usize> {
    if let Some(id) = payload["alarm_id"].as_str()
        && let Some(pos) = live.alarms.iter().position(|a| a.view.id == id)
    {
        return Some(pos);
    }
    let alarm = payload["alarm"].as_str()?;
    live.alarms.iter().position(|a| a.view.alarm == alarm)
}

/// One stored pump event's effect on the alarms.
fn apply_pump_event(
    live: &mut PatientLive,
    now_ms: i64,
    device: &Device,
    event: &PumpEvent,
    timing: Timing,
    effects: &mut Vec<Effect>,
) {
    let alarm = event
        .data
        .get("alarm")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    // Escalation runs on the server's receipt time: a wrong pump clock can neither page the nurse at once (a
    // time in the past) nor hold the ladder back (a time in the future).
    let at = now_ms;
    let publish = |kind, data| message(kind, &device.patient_id, &device.clinic_id, now_ms, data);
    match Kind::from_name(&event.kind) {
        Some(Kind::AlarmRaised) if live.position(alarm, &device.id).is_none() => {
            let priority = event
                .data
                .get("priority")
                .and_then(|v| v.as_str())
                .and_then(Priority::from_name)
                .unwrap_or(Priority::High);
            let id = pump_alarm_id(event.record_id);
            let view = AlarmView::new(id, alarm, priority, at, false, device.teaching);
            effects.push(publish(
                MessageKind::Alarm,
                json!({"alarm": view, "detail": event.data}),
            ));
            live.alarms.push(LiveAlarm {
                view,
                acks: vec![],
                device_id: Some(device.id.clone()),
            });
        }
        Some(Kind::AlarmCleared) => {
            if let Some(pos) = live.position(alarm, &device.id) {
                live.alarms.remove(pos);
                effects.push(publish(MessageKind::AlarmCleared, json!({"alarm": alarm})));
            }
        }
        Some(Kind::AlarmAcknowledged) => {
            if let Some(pos) = live.position(alarm, &device.id) {
                // A press on the pump itself is the patient side acknowledging.
                let ack = AckView {
                    by_user_id: None,
                    by_name: "at the pump".into(),
                    role: "pump".into(),
                    at_ms: at,
                    note: None,
                };
                live.alarms[pos].acknowledge(at, AckBy::PatientSide, ack, timing);
                effects.push(publish(
                    MessageKind::Acknowledged,
                    json!({"alarm": alarm, "by": "pump"}),
                ));
            }
        }
        _ => {}
    }
}

/// Telemetry goes to the record on every change of pump state and otherwise at most once a
/// `TELEMETRY_RECORD_EVERY_MS`, when it carries the fields the record's telemetry needs.
fn record_telemetry(
    live: &mut PatientLive,
    now_ms: i64,
    device: &Device,
    t: &Telemetry,
    effects: &mut Vec<Effect>,
) {
    let due = live
        .telemetry_recorded
        .as_ref()
        .is_none_or(|(at, state)| *state != t.state || now_ms - at >= TELEMETRY_RECORD_EVERY_MS);
    let (true, Some(pressure), Some(mains)) = (due, t.downstream_pressure_mmhg, t.mains_present)
    else {
        return;
    };
    live.telemetry_recorded = Some((now_ms, t.state.clone()));
    let draft = EventDraft::new(
        &device.patient_id,
        Kind::Telemetry,
        Origin::Pump,
        Some(&device.id),
        now_ms,
        json!({"state": t.state, "rate_ml_per_h": t.rate_ml_per_h, "delivered_ml": t.delivered_ml, "remaining_ml": t.remaining_ml,
               "battery_percent": t.battery_percent, "mains_present": mains, "downstream_pressure_mmhg": pressure}),
    )
    .for_device(Some(&device.id))
    .teaching(device.teaching);
    effects.push(Effect::Telemetry(draft));
}

/// The pump spoke again: a `pump_silent` alarm clears.
fn clear_pump_silent(
    live: &mut PatientLive,
    now_ms: i64,
    device: &Device,
    resolution: &str,
    effects: &mut Vec<Effect>,
) {
    let Some(pos) = live.alarms.iter().position(|x| x.view.alarm == PUMP_SILENT) else {
        return;
    };
    let cleared = live.alarms.remove(pos);
    let draft = EventDraft::system(
        &device.patient_id,
        Kind::AlarmCleared,
        now_ms,
        json!({"alarm": PUMP_SILENT, "alarm_id": cleared.view.id, "resolution": resolution}),
    )
    .for_device(Some(&device.id))
    .teaching(device.teaching);
    effects.push(Effect::Claim {
        key: format!("cleared/{}/{}", device.patient_id, cleared.view.id),
        draft,
        then: vec![message(
            MessageKind::AlarmCleared,
            &device.patient_id,
            &device.clinic_id,
            now_ms,
            json!({"alarm": PUMP_SILENT, "alarm_id": cleared.view.id}),
        )],
    });
}

/// Raise `pump_silent` where a pump that was infusing has gone quiet for too long.
fn raise_pump_silent(
    live: &mut PatientLive,
    patient_id: &str,
    now_ms: i64,
    settings: Settings,
    effects: &mut Vec<Effect>,
) {
    let (Some(t), Some(at)) = (&live.telemetry, live.telemetry_at_ms) else {
        return;
    };
    let quiet_ms = now_ms - at;
    if !t.is_infusing()
        || quiet_ms <= settings.pump_silent_after_ms
        || live.alarms.iter().any(|a| a.view.alarm == PUMP_SILENT)
    {
        return;
    }
    // Raised as of the moment the silence passed the allowance (a tick or a hand-over later at most): every
    // process that notices the same silence names the same alarm, and the ladder counts from then.
    let raised_at = at.saturating_add(settings.pump_silent_after_ms);
    let view = AlarmView::new(
        server_alarm_id(raised_at),
        PUMP_SILENT,
        Priority::High,
        raised_at,
        true,
        live.teaching,
    );
    live.alarms.push(LiveAlarm {
        view: view.clone(),
        acks: vec![],
        device_id: live.device_id.clone(),
    });
    let detail = format!("no telemetry for {} s while infusing", quiet_ms / 1000);
    let draft = EventDraft::system(
        patient_id,
        Kind::AlarmRaised,
        raised_at,
        json!({"alarm": PUMP_SILENT, "priority": "high", "detail": detail, "silent_for_ms": quiet_ms, "raised_by": "server", "noticed_at_ms": now_ms}),
    )
    .for_device(live.device_id.as_deref())
    .teaching(live.teaching);
    effects.push(Effect::Claim {
        // The same silence (the same last contact) is one alarm, whichever process noticed it.
        key: format!("{PUMP_SILENT}/{patient_id}/{at}"),
        draft,
        then: vec![message(
            MessageKind::Alarm,
            patient_id,
            &live.clinic_id,
            now_ms,
            json!({"alarm": view, "detail": {"silent_for_ms": quiet_ms}}),
        )],
    });
}

/// The record event, the live message and (beyond the patient's own screen, never for practice) the clinic
/// notification for one rung.
fn escalation_effects(
    notice: &EscalationNotice,
    view: &AlarmView,
    device_id: Option<&str>,
    now_ms: i64,
    effects: &mut Vec<Effect>,
) {
    let teaching = view.teaching;
    let unacknowledged_for_ms = notice.unacknowledged_for_ms;
    let payload = json!({
        "alarm": notice.alarm, "priority": notice.priority, "rung": notice.rung.name(),
        "unacknowledged_for_s": u32::try_from(unacknowledged_for_ms.max(0) / 1000).unwrap_or(u32::MAX),
        "unacknowledged_for_ms": unacknowledged_for_ms, "raised_at_ms": view.raised_at_ms, "alarm_id": view.id,
    });
    let draft = EventDraft::system(&notice.patient_id, Kind::AlarmEscalated, now_ms, payload)
        .for_device(device_id)
        .teaching(teaching);
    let mut then = vec![message(
        MessageKind::Escalation,
        &notice.patient_id,
        &notice.clinic_id,
        now_ms,
        json!({"alarm": notice.alarm, "rung": notice.rung.name(), "alarm_view": view}),
    )];
    if notice.rung != Rung::Patient && !teaching {
        then.push(Effect::Notify(notice.clone()));
    }
    // Each rung of each alarm once, whichever process reached it first: one page, one webhook.
    effects.push(Effect::Claim {
        key: escalation_claim(&notice.patient_id, &view.id, notice.rung),
        draft,
        then,
    });
}

/// The claim key of one rung of one alarm.
pub fn escalation_claim(patient_id: &str, alarm_id: &str, rung: Rung) -> String {
    format!("escalated/{patient_id}/{alarm_id}/{}", rung.name())
}

/// Rebuild one alarm's acknowledgements and highest rung from the events written about it.
fn restore_alarm(restored: &RestoredAlarm) -> LiveAlarm {
    let by_server = SERVER_ALARMS.contains(&restored.alarm.as_str());
    let id = if by_server {
        server_alarm_id(restored.raised_at_ms)
    } else {
        pump_alarm_id(restored.raised_event)
    };
    let mut alarm = LiveAlarm {
        view: AlarmView::new(
            id,
            &restored.alarm,
            restored.priority,
            restored.raised_at_ms,
            by_server,
            false,
        ),
        acks: vec![],
        device_id: (restored.device_id != "server").then(|| restored.device_id.clone()),
    };
    for e in &restored.history {
        if e.payload["alarm"] != restored.alarm.as_str() || e.at_ms < restored.raised_at_ms {
            continue;
        }
        match Kind::from_name(&e.kind) {
            Some(Kind::AlarmAcknowledged) => {
                let by = if e.source == record::Source::Nurse {
                    AckBy::Clinician
                } else {
                    AckBy::PatientSide
                };
                alarm.acks.push((e.at_ms, by));
                alarm.view.acknowledgements.push(AckView {
                    by_user_id: Some(e.actor.clone()),
                    by_name: e.payload["display_name"]
                        .as_str()
                        .unwrap_or(&e.actor)
                        .to_string(),
                    role: e.payload["role"]
                        .as_str()
                        .unwrap_or(e.source.name())
                        .to_string(),
                    at_ms: e.at_ms,
                    note: e.payload["note"].as_str().map(str::to_string),
                });
            }
            // Only the server's own record of a rung counts: a pump's `alarm_escalated` (its own reminder, or a
            // forged one) never tells the ladder that the nurse was paged.
            Some(Kind::AlarmEscalated) if e.source == record::Source::System => {
                let rung = Rung::from_name(e.payload["rung"].as_str().unwrap_or(""));
                if rung > alarm.view.escalation {
                    alarm.view.escalation = rung;
                }
            }
            _ => {}
        }
    }
    alarm
}

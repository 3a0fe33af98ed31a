//! The follower: with several server processes on one PostgreSQL, each process's live board follows the record
//! and the shared pump contacts, so every nurse sees every alarm whichever process the pump and the nurse are on.
//!
//! - The record notifies on commit (`record::APPEND_CHANNEL`); on a notification (however many arrived
//!   together) the follower reads every event appended since the last one it read, by id
//!   (`Store::events_after_id`), with the ids it saw skipped (drawn before commit, committed after:
//!   [`Skipped`]), and hands each, in its patient's chain order, to `Board::follow` (an event that is not next
//!   in its chain sends it to read that patient's chain, `Store::chain_after`). The board takes it in and
//!   announces it to this process's screens, deciding nothing (its own events, already applied when written,
//!   are taken in again silently when another process's event for the patient came in between, so the board
//!   ends in the record's order).
//! - A patient this process is writing for at that moment is held back with the events read ([`HeldPatient`])
//!   and taken in once the writing is done; the follower never waits for an append.
//! - A notification can be missed (the listening connection dropped, the process was busy): every
//!   `CATCH_UP_EVERY` the follower asks which chains grew among the events up to the last one it read
//!   (`chains_grown_since`, from a watermark kept a minute behind, since ids are drawn before commit) and reads
//!   any it is behind on.
//! - Pump contacts (last contact and telemetry, written in groups by `services::telemetry`) are read every
//!   `CATCH_UP_EVERY` by a task of their own and handed to `Board::contact`, so the silence watchdog (run by one process) sees pumps
//!   talking to any process.
//!
//! On SQLite there is one process and nothing to follow.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::domain::board::{Recorded, RemoteContact};
use crate::domain::{Device, Effect};
use crate::services::AppState;
use crate::services::now_ms;

/// How often the follower catches up from the record and reads the shared contacts.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(1);
/// Catch-up passes (one a second) the id watermark stays behind: a transaction that drew its ids up to a minute
/// before it committed is still seen.
const WATERMARK_PASSES_BEHIND: usize = 60;
/// Contacts are read again from this long before the last read (processes' clocks and flushes differ a little).
const CONTACTS_OVERLAP_MS: i64 = 3_000;
/// Events read per query.
const EVENTS_PER_READ: u32 = 500;

/// Where the follower starts: each chain's end and the highest event id, read before the board is restored
/// (what is appended in between is followed, and following is idempotent).
#[derive(Debug, Clone, Default)]
pub struct Positions {
    chains: HashMap<String, i64>,
    top_id: i64,
    /// Patients for whom the follower took in another process's event since it last took in one of this
    /// process's own (see [`take_in`]).
    remote_since_local: std::collections::HashSet<String>,
}

/// Read the starting positions (PostgreSQL only; `None` on SQLite).
pub async fn positions(state: &AppState) -> Result<Option<Positions>, crate::error::AppError> {
    if state.db.backend != crate::store::Backend::Postgres {
        return Ok(None);
    }
    let (heads, top_id) = state
        .journal
        .store()
        .chain_positions()
        .await
        .map_err(|e| crate::error::AppError::from(crate::journal::JournalError::Record(e)))?;
    Ok(Some(Positions {
        chains: heads.into_iter().collect(),
        top_id,
        remote_since_local: Default::default(),
    }))
}

/// Follow until the runtime stops. Notifications only say "something was appended": however many arrive
/// together, one pass reads every new event in id order (`Store::events_after_id`) and takes each in. The
/// contacts are read by a task of their own.
pub async fn run(state: AppState, mut positions: Positions) {
    tokio::spawn(follow_contacts(state.clone()));
    // The first catch-ups look back some ids below the start: an append that drew its ids before the start and
    // committed after it is below `top_id`, so neither the tail nor a watermark at `top_id` would see it.
    let mut watermarks: VecDeque<i64> =
        VecDeque::from([positions.top_id.saturating_sub(STARTUP_LOOKBACK_IDS).max(0)]);
    let mut top = positions.top_id;
    let mut skipped = Skipped::default();
    let mut held = Held::new();
    let mut listener = None;
    let mut interval = tokio::time::interval(CATCH_UP_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if listener.is_none() {
            listener = listen(&state).await;
        }
        let holding = !held.is_empty();
        let wake = match listener.as_mut() {
            Some(l) => tokio::select! {
                n = l.recv() => Wake::Notified(n.map(|_| l.drain())),
                _ = interval.tick() => Wake::Tick,
                _ = tokio::time::sleep(HELD_RETRY), if holding => Wake::Held,
            },
            None => tokio::select! {
                _ = interval.tick() => Wake::Tick,
                _ = tokio::time::sleep(HELD_RETRY), if holding => Wake::Held,
            },
        };
        match wake {
            Wake::Notified(Ok(_)) => {
                tail(&state, &mut positions, &mut top, &mut skipped, &mut held).await;
            }
            Wake::Notified(Err(e)) => {
                eprintln!(
                    "infusafe server: lost the record's notifications ({e}); catching up from the record"
                );
                listener = None;
            }
            Wake::Held => release(&state, &mut positions, &mut held).await,
            Wake::Tick => {
                let tail_ok = tail(&state, &mut positions, &mut top, &mut skipped, &mut held).await;
                // The catch-up looks only at what the tail read past; while the tail cannot read (a row it
                // cannot decode, say), it looks at everything, so the other patients' events still come.
                let up_to = if tail_ok { top } else { i64::MAX };
                catch_up(&state, &mut positions, &mut watermarks, up_to, &mut held).await;
            }
        }
    }
}

/// What woke the follower.
enum Wake {
    /// The record's notifications (how many came together), or the listening connection failed.
    Notified(Result<usize, crate::store::DbError>),
    /// The catch-up's period.
    Tick,
    /// Time to look whether the patients held back are free.
    Held,
}

/// How often the follower looks whether a patient it held back (this process was writing for them) is free.
const HELD_RETRY: Duration = Duration::from_millis(10);
/// How long a patient is held back at most; then the follower waits its turn for the patient's locks (and every
/// other patient waits with it, so this is well above a slow append under load: the pump link's POST reached
/// 650 ms at the two-process benchmark's worst).
const HELD_WAIT_MAX: Duration = Duration::from_secs(2);
/// Ids below the start's newest that the first catch-ups look at (appends that drew ids before the start and
/// committed after it).
const STARTUP_LOOKBACK_IDS: i64 = 10_000;
/// Events kept for one held patient; past it, the patient's chain is read again when they are free.
const HELD_EVENTS_MAX: usize = EVENTS_PER_READ as usize;

/// Patients this process was writing for when the follower read their new events (the pump link appending and
/// applying a pump's batch, or any append): held back, with the events read, until the writing is done, so
/// their own events are known as this process's. The follower does not wait for them: other patients' events go
/// on being taken in, and every `HELD_RETRY` it takes in the events of those now free. (It used to wait in each
/// pass, which held every other patient's alarms for as long as the slowest append.)
#[derive(Debug)]
struct HeldPatient {
    /// When the patient was first held: past `HELD_WAIT_MAX` the follower queues for the patient's locks
    /// instead (a lock handed from writer to writer never looks free to a poll).
    since: std::time::Instant,
    events: Vec<record::StoredEvent>,
    /// Events were left out (more than `HELD_EVENTS_MAX`, or the catch-up found the chain ahead): read the
    /// patient's chain when free.
    read_chain: bool,
}

impl Default for HeldPatient {
    fn default() -> HeldPatient {
        HeldPatient {
            since: std::time::Instant::now(),
            events: Vec::new(),
            read_chain: false,
        }
    }
}

type Held = std::collections::BTreeMap<String, HeldPatient>;

/// Whether this process is appending a batch or applying a pump's batch for the patient right now.
fn writing(state: &AppState, patient_id: &str) -> bool {
    state.journal.appending_for(patient_id) || state.journal.applying_for(patient_id)
}

/// Read every event appended since `top` (by id), and any of the `skipped` ids now committed, and take each in,
/// in its patient's chain order. An event that is not next in its chain (an earlier one committed later) sends
/// the follower to read that patient's chain from where it was, under the patient's lock. A patient this
/// process is writing for is held back ([`HeldPatient`]).
async fn tail(
    state: &AppState,
    positions: &mut Positions,
    top: &mut i64,
    skipped: &mut Skipped,
    held: &mut Held,
) -> bool {
    let mut ok = true;
    loop {
        let asked = skipped.waiting(monotonic_ms());
        let events = match state
            .journal
            .store()
            .events_after_id(*top, &asked, EVENTS_PER_READ)
            .await
        {
            Ok(e) => e,
            Err(e) => {
                eprintln!("infusafe server: cannot read the record's new events: {e}");
                ok = false;
                break;
            }
        };
        let read = events.len();
        let above: Vec<i64> = events
            .iter()
            .map(|e| e.id.0)
            .filter(|id| *id > *top)
            .collect();
        skipped.note(*top, &above, monotonic_ms());
        for e in events {
            skipped.found(e.id.0);
            *top = (*top).max(e.id.0);
            let patient_id = e.patient.as_str().to_string();
            if let Some(h) = held.get_mut(&patient_id) {
                hold(h, e);
                continue;
            }
            let at = positions.chains.get(&patient_id).copied().unwrap_or(0);
            if e.chain_seq <= at {
                continue;
            }
            if !register(state, &patient_id).await {
                // Not known here yet (the lookup failed): left for the catch-up, which reads the chain again.
                continue;
            }
            if writing(state, &patient_id) {
                hold(held.entry(patient_id).or_default(), e);
            } else if e.chain_seq == at + 1 {
                take_in(state, positions, &patient_id, &e);
            } else {
                follow_patient(state, positions, &patient_id).await;
            }
        }
        if read < EVENTS_PER_READ as usize {
            break;
        }
    }
    release(state, positions, held).await;
    ok
}

fn hold(h: &mut HeldPatient, e: record::StoredEvent) {
    if h.events.len() < HELD_EVENTS_MAX {
        h.events.push(e);
    } else {
        h.read_chain = true;
    }
}

/// Take in the held events of every patient this process is no longer writing for, in chain order (reading
/// the chain where one is missing or some were left out). A patient held longer than `HELD_WAIT_MAX` (writers
/// one after another) has their chain read after waiting in the locks' queue like any writer.
async fn release(state: &AppState, positions: &mut Positions, held: &mut Held) {
    let due: Vec<(String, bool)> = held
        .iter()
        .map(|(p, h)| (p, h, writing(state, p)))
        .filter(|(_, h, busy)| !busy || h.since.elapsed() >= HELD_WAIT_MAX)
        .map(|(p, _, busy)| (p.clone(), busy))
        .collect();
    for (patient_id, busy) in due {
        let Some(h) = held.remove(&patient_id) else {
            continue;
        };
        if busy {
            // Held too long: queue for the locks (`follow_patient`), then read the chain.
            follow_patient(state, positions, &patient_id).await;
            continue;
        }
        let mut read_chain = h.read_chain;
        for e in h.events {
            let at = positions.chains.get(&patient_id).copied().unwrap_or(0);
            if e.chain_seq <= at {
                continue;
            }
            if e.chain_seq != at + 1 {
                read_chain = true;
                break;
            }
            take_in(state, positions, &patient_id, &e);
        }
        if read_chain {
            follow_patient(state, positions, &patient_id).await;
        }
    }
}

/// Milliseconds on a clock that never steps back (since the first call), for how long ids stay skipped.
fn monotonic_ms() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// How long an id seen skipped is asked for again: as long as the catch-up's watermark stays behind (a
/// transaction that drew its ids up to a minute before it committed). An id never committed (its append failed
/// or was refused) is given up after it.
const SKIPPED_WAIT_MS: i64 = WATERMARK_PASSES_BEHIND as i64 * 1_000;

/// The ids the follower saw skipped: ids are drawn before commit, so when it reads id 101 the append that drew
/// 100 may still be committing. Without this, that event (an alarm, say) waited for its patient's next event or
/// the catch-up a second later; two processes on PostgreSQL saw alarms reach the other process's screens up to
/// 2.5 s late (`scripts/bench-load two`). Each pass asks again for the skipped ids, with the new ones, in one
/// read. Bounded: a wider hole (a big batch that failed) is left to the catch-up.
#[derive(Debug, Default)]
pub(crate) struct Skipped {
    /// Skipped id, and when it was first seen skipped (ms).
    ids: std::collections::BTreeMap<i64, i64>,
}

impl Skipped {
    /// After a read above `from` returned `above` (ascending ids above `from`): every id between them that was
    /// not returned is skipped, as of `now_ms`.
    pub(crate) fn note(&mut self, from: i64, above: &[i64], now_ms: i64) {
        let mut previous = from;
        for &id in above {
            let mut missing = previous.saturating_add(1);
            while missing < id && self.ids.len() < record::IDS_LISTED_MAX {
                self.ids.entry(missing).or_insert(now_ms);
                missing += 1;
            }
            previous = previous.max(id);
        }
    }

    /// `id` came.
    pub(crate) fn found(&mut self, id: i64) {
        self.ids.remove(&id);
    }

    /// The ids still worth asking for at `now_ms` (those skipped longer than `SKIPPED_WAIT_MS` are given up).
    pub(crate) fn waiting(&mut self, now_ms: i64) -> Vec<i64> {
        self.ids
            .retain(|_, since| now_ms - *since < SKIPPED_WAIT_MS);
        self.ids.keys().copied().collect()
    }
}

/// A patient created on another process since this one started: know their clinic first. False when the
/// patient cannot be known now (the caller leaves their events for a later pass rather than lose them).
async fn register(state: &AppState, patient_id: &str) -> bool {
    if state.board.with(|b| b.knows(patient_id)) {
        return true;
    }
    match crate::store::directory::patient(&state.db, patient_id).await {
        Ok(Some((clinic, _))) => {
            state.board.with(|b| b.register(patient_id, &clinic));
            true
        }
        Ok(None) => false,
        Err(e) => {
            eprintln!("infusafe server: cannot look up patient {patient_id}: {e}");
            false
        }
    }
}

/// Take the next event of a patient's chain: the follower's position moves to it, and it goes to the board,
/// its announcements to this process's screens. This process's own event (the board applied and announced it
/// when it was written) is taken in again, silently, only if another process's
/// event was taken in for the patient since the last of its own: then the board may have applied them out of
/// the record's order (a clear written here before the raise written elsewhere reached this board), and taking
/// it in again puts the record's order back. Otherwise it is left alone: taking an old event in again could undo
/// what the board did since (practice ended, say).
fn take_in(state: &AppState, positions: &mut Positions, patient_id: &str, e: &record::StoredEvent) {
    positions.chains.insert(patient_id.to_string(), e.chain_seq);
    let local = state.journal.take_local(e.id.0);
    if local {
        if !positions.remote_since_local.remove(patient_id) {
            return;
        }
    } else {
        positions.remote_since_local.insert(patient_id.to_string());
    }
    let recorded = Recorded {
        record_id: e.id.0,
        patient_id: patient_id.to_string(),
        kind: e.kind.clone(),
        source: e.source,
        actor: e.actor.clone(),
        device_id: e.device_id.clone(),
        teaching: e.teaching,
        occurred_at_ms: e.occurred_at.as_millisecond(),
        recorded_at_ms: e.recorded_at.as_millisecond(),
        payload: serde_json::from_str(&e.payload).unwrap_or_default(),
    };
    let effects = state.board.with(|b| b.follow(&recorded, local));
    publish(state, effects);
}

/// Read the shared contacts every `CATCH_UP_EVERY` until the runtime stops.
async fn follow_contacts(state: AppState) {
    let mut since = crate::store::cluster::database_now_ms(&state.db)
        .await
        .unwrap_or_else(|_| now_ms())
        - CONTACTS_OVERLAP_MS;
    let mut interval = tokio::time::interval(CATCH_UP_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        since = read_contacts(&state, since).await;
    }
}

async fn listen(state: &AppState) -> Option<crate::store::cluster::RecordListener> {
    match crate::store::cluster::RecordListener::connect(&state.config.database_url).await {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("infusafe server: cannot listen for the record's notifications: {e}");
            None
        }
    }
}

/// Which chains grew since the watermark, among the events up to `top` (the tail's: what came after it is the
/// next pass's), and read those this process is behind on. Bounded by `top` so the catch-up chases only events
/// the tail read past: without the bound, every chain that grew while the catch-up's query ran looked behind,
/// and reading each one's chain held the follower (found by `scripts/bench-load two`: every second or so a
/// pause of up to 2.6 s, now and then, in which no alarm reached the other process's screens).
async fn catch_up(
    state: &AppState,
    positions: &mut Positions,
    watermarks: &mut VecDeque<i64>,
    top: i64,
    held: &mut Held,
) {
    let from = watermarks.front().copied().unwrap_or(0);
    let (grown, top) = match state.journal.store().chains_grown_since(from, top).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("infusafe server: cannot catch up from the record: {e}");
            return;
        }
    };
    for (patient, head) in grown {
        if positions.chains.get(&patient).copied().unwrap_or(0) >= head {
            continue;
        }
        if held.contains_key(&patient) || writing(state, &patient) {
            // Read when this process is done writing for them.
            held.entry(patient).or_default().read_chain = true;
        } else {
            follow_patient(state, positions, &patient).await;
        }
    }
    watermarks.push_back(top);
    while watermarks.len() > WATERMARK_PASSES_BEHIND {
        watermarks.pop_front();
    }
}

/// Read one patient's chain from where this process was, and take in what others wrote.
async fn follow_patient(state: &AppState, positions: &mut Positions, patient_id: &str) {
    let Ok(patient) = record::PatientId::new(patient_id) else {
        return;
    };
    if !register(state, patient_id).await {
        return;
    }
    // A pump's events this process is appending or applying are left to the pump link's path, which announces
    // them; then this process's own appends for the patient wait while its chain is read, so each of its events
    // is known as its own before the follower sees it.
    let _applied = state.journal.applying(patient_id).await;
    let _held = state.journal.lock_patient(patient_id).await;
    loop {
        let after = positions.chains.get(patient_id).copied().unwrap_or(0);
        let events = match state
            .journal
            .store()
            .chain_after(&patient, after, EVENTS_PER_READ)
            .await
        {
            Ok(e) => e,
            Err(e) => {
                eprintln!("infusafe server: cannot read patient {patient_id}'s new events: {e}");
                return;
            }
        };
        let read = events.len();
        for e in events {
            take_in(state, positions, patient_id, &e);
        }
        if read < EVENTS_PER_READ as usize {
            return;
        }
    }
}

/// The contacts other processes wrote since `since_ms` (with an overlap; this process's own are on its board
/// already); returns where the next read starts. Both times are
/// the database's clock, the one the writers stamp with, so a host whose clock is off neither hides its pumps
/// from the others nor misses theirs.
async fn read_contacts(state: &AppState, since_ms: i64) -> i64 {
    let started = match crate::store::cluster::database_now_ms(&state.db).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("infusafe server: cannot read the pumps' contacts: {e}");
            return since_ms;
        }
    };
    let others = Some(state.journal.instance());
    let contacts =
        match crate::store::cluster::contacts_written_since(&state.db, since_ms, others).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("infusafe server: cannot read the pumps' contacts: {e}");
                return since_ms;
            }
        };
    for c in contacts {
        let contact = remote_contact(c, |at| at);
        let effects = state.board.with(|b| b.contact(&contact));
        publish(state, effects);
    }
    started - CONTACTS_OVERLAP_MS
}

/// A shared contact as the board takes it, its time passed through `at` (the clinic is the board's own).
fn remote_contact(c: crate::store::cluster::Contact, at: impl FnOnce(i64) -> i64) -> RemoteContact {
    RemoteContact {
        telemetry: c
            .telemetry
            .as_deref()
            .and_then(|t| serde_json::from_str::<link::Telemetry>(t).ok()),
        device: Device {
            id: c.device_id,
            patient_id: c.patient_id,
            clinic_id: String::new(),
            teaching: c.teaching,
        },
        at_ms: at(c.at_ms),
    }
}

/// A followed event's announcements go to this process's screens only: the process that decided already sent
/// what leaves the building (webhooks, PCD alarm reports).
fn publish(state: &AppState, effects: Vec<Effect>) {
    for effect in effects {
        if let Effect::Publish(m) = effect {
            state.hub.publish(m);
        }
    }
}

/// Put the pumps' last contacts on a fresh board (at start, on either database), so a restarted process knows
/// which pumps were talking. A contact older than this start counts from the start: a pump gets the whole
/// silence allowance to speak again before `pump_silent`, as after any restart.
pub async fn restore_contacts(state: &AppState) -> Result<(), crate::error::AppError> {
    let now = now_ms();
    let since = now - 24 * 60 * 60_000;
    let contacts = crate::store::cluster::contacts_written_since(&state.db, since, None)
        .await
        .map_err(|e| crate::error::AppError::Internal(e.to_string()))?;
    for c in contacts {
        let contact = remote_contact(c, |at| at.max(now));
        // A practice pump did not survive the restart.
        if !contact.device.teaching {
            state.board.with(|b| b.contact(&contact));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_read_past_is_asked_for_again_until_it_comes() {
        let mut skipped = Skipped::default();
        // Read above 10: 11, 13 and 16 came; 12, 14 and 15 were drawn by appends still committing.
        skipped.note(10, &[11, 13, 16], 0);
        assert_eq!(skipped.waiting(1), vec![12, 14, 15]);
        // The next read (above 16, with the skipped ids) brings 14 and 17.
        skipped.found(14);
        skipped.note(16, &[17], 5);
        assert_eq!(skipped.waiting(10), vec![12, 15]);
        skipped.found(12);
        skipped.found(15);
        assert!(skipped.waiting(20).is_empty());
    }

    #[test]
    fn an_id_never_committed_is_given_up_after_the_wait() {
        let mut skipped = Skipped::default();
        skipped.note(0, &[2], 1_000);
        skipped.note(2, &[4], 30_000);
        assert_eq!(skipped.waiting(1_000 + SKIPPED_WAIT_MS - 1), vec![1, 3]);
        assert_eq!(skipped.waiting(1_000 + SKIPPED_WAIT_MS), vec![3]);
        assert!(skipped.waiting(30_000 + SKIPPED_WAIT_MS).is_empty());
    }

    #[test]
    fn a_wide_hole_is_bounded_and_a_first_sighting_keeps_its_time() {
        let mut skipped = Skipped::default();
        skipped.note(0, &[1_000_000], 0);
        assert_eq!(skipped.waiting(1).len(), record::IDS_LISTED_MAX);
        // Seeing the same ids skipped again does not restart their wait.
        let mut small = Skipped::default();
        small.note(0, &[3], 0);
        small.note(0, &[3], SKIPPED_WAIT_MS - 1);
        assert!(small.waiting(SKIPPED_WAIT_MS).is_empty());
        // Nothing is skipped when the ids come in a row, or when nothing came.
        let mut none = Skipped::default();
        none.note(5, &[6, 7, 8], 0);
        none.note(8, &[], 0);
        assert!(none.waiting(0).is_empty());
    }
}

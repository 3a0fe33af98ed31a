//! Exhaustive breadth-first check of the alarm engine: latch, acknowledge, silence, escalation.
//!
//! The model is the real core, bounded: no program, three alarms driven by a small world
//! (mains on/off; battery minutes 600 / 25 / 8 / 2 → `mains_lost` LOW, `battery_low` LOW turning
//! MEDIUM, `battery_depleted` HIGH), and abstract time that moves in whole minutes (the audio pause
//! is 2 min, escalation 3 min). Every action (change the world, acknowledge any alarm, silence,
//! let a minute pass) is tried from every reachable abstract state until no new state appears, and
//! the engine's properties are checked on every transition.

use std::collections::{HashSet, VecDeque};

use pump::{
    ActiveAlarm, AlarmKind, AudioState, Command, Config, DrugLibrary, Event, Input, Priority, Pump,
    SelfTest, SensorFrame,
};

const MINUTE_MS: u64 = 60_000;
const KINDS: [AlarmKind; 3] = [
    AlarmKind::MainsLost,
    AlarmKind::BatteryLow,
    AlarmKind::BatteryDepleted,
];
const BATTERY_MINUTES: [f64; 4] = [600.0, 25.0, 8.0, 2.0];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Action {
    Mains(bool),
    Battery(usize),
    Acknowledge(usize),
    Silence,
    MinutePasses,
}

const ACTIONS: [Action; 11] = [
    Action::Mains(true),
    Action::Mains(false),
    Action::Battery(0),
    Action::Battery(1),
    Action::Battery(2),
    Action::Battery(3),
    Action::Acknowledge(0),
    Action::Acknowledge(1),
    Action::Acknowledge(2),
    Action::Silence,
    Action::MinutePasses,
];

#[derive(Debug, Clone)]
struct World {
    mains: bool,
    battery: usize,
    mains_seen: bool,
}

impl World {
    fn frame(&self) -> SensorFrame {
        SensorFrame {
            downstream_pressure_mmhg: 0.0,
            upstream_pressure_mmhg: 0.0,
            air_ul_since_last_frame: 0.0,
            door_closed: true,
            battery_percent: 50.0,
            battery_minutes_left: BATTERY_MINUTES[self.battery],
            mains_present: self.mains,
            motor_volume_ul_total: 0.0,
            commanded_volume_ul_total: 0.0,
            mechanism_temperature_c: 30.0,
            self_test: SelfTest::Passed,
        }
    }

    /// Whether each modelled alarm's condition holds (the specification, written independently).
    fn condition(&self, kind: AlarmKind) -> bool {
        let minutes = BATTERY_MINUTES[self.battery];
        match kind {
            AlarmKind::MainsLost => !self.mains && self.mains_seen,
            AlarmKind::BatteryLow => !self.mains && minutes < 30.0,
            AlarmKind::BatteryDepleted => !self.mains && minutes < 3.0,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    pump: Pump,
    world: World,
    /// Raise time of each alarm for which `AlarmEscalated` was seen (to check "at most once").
    escalated_raise_ms: Vec<(AlarmKind, u64)>,
}

/// The abstract state: everything that decides future behaviour, with time made relative.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    mains: bool,
    battery: usize,
    mains_seen: bool,
    alarms: Vec<Option<AlarmKey>>,
}

/// One alarm, abstracted: acknowledged, condition present, priority, age in whole minutes (capped),
/// audio pause left in whole minutes, escalated.
type AlarmKey = (bool, bool, Priority, u64, u64, bool);

fn key(node: &Node) -> Key {
    let now = node.pump.now_ms();
    let alarms = KINDS
        .iter()
        .map(|k| {
            node.pump.alarm(*k).map(|a| {
                let age_min = ((now - a.raised_at_ms) / MINUTE_MS).min(4);
                let paused_min = a
                    .audio_paused_until_ms
                    .map_or(0, |u| u.saturating_sub(now).div_ceil(MINUTE_MS));
                (
                    a.acknowledged,
                    a.condition_present,
                    a.priority,
                    age_min,
                    paused_min,
                    a.escalated,
                )
            })
        })
        .collect();
    Key {
        mains: node.world.mains,
        battery: node.world.battery,
        mains_seen: node.world.mains_seen,
        alarms,
    }
}

/// Moves the clock to `to_ms`, honouring every deadline on the way (as a driver must).
fn advance(pump: &mut Pump, to_ms: u64) {
    while let Some(d) = pump.next_deadline_ms() {
        if d > to_ms {
            break;
        }
        pump.handle_timeout(d);
    }
    pump.handle_timeout(to_ms);
}

fn apply(node: &Node, action: Action) -> (Node, Vec<Event>) {
    let mut next = node.clone();
    let now = next.pump.now_ms();
    match action {
        Action::Mains(on) => {
            next.world.mains = on;
            next.world.mains_seen |= on;
            next.pump
                .handle(now, Input::Sensors(next.world.frame()))
                .expect("frames are accepted");
        }
        Action::Battery(level) => {
            next.world.battery = level;
            next.pump
                .handle(now, Input::Sensors(next.world.frame()))
                .expect("frames are accepted");
        }
        Action::Acknowledge(i) => {
            let _ = next
                .pump
                .handle(now, Input::Command(Command::Acknowledge(KINDS[i])));
        }
        Action::Silence => {
            let _ = next.pump.handle(now, Input::Command(Command::SilenceAudio));
        }
        Action::MinutePasses => {
            advance(&mut next.pump, now + MINUTE_MS);
            next.pump
                .handle(now + MINUTE_MS, Input::Sensors(next.world.frame()))
                .expect("frame");
        }
    }
    let events: Vec<Event> = std::iter::from_fn(|| next.pump.poll_event())
        .map(|e| e.event)
        .collect();
    (next, events)
}

fn audible(a: &ActiveAlarm, now: u64) -> bool {
    !a.acknowledged && a.audio_paused_until_ms.is_none_or(|u| u <= now)
}

/// The engine's properties on one transition `before --action--> after`.
fn check(before: &Node, action: Action, after: &mut Node, events: &[Event]) -> Result<(), String> {
    let p0 = &before.pump;
    let p1 = &after.pump;
    let now = p1.now_ms();
    for kind in KINDS {
        let was = p0.alarm(kind);
        let is = p1.alarm(kind);
        let condition = after.world.condition(kind);
        // A present condition is always on the list.
        if condition && is.is_none() {
            return Err(format!("{kind:?}: condition present but not active"));
        }
        if let Some(a) = is
            && a.condition_present != condition
        {
            return Err(format!(
                "{kind:?}: condition_present {} but world says {condition}",
                a.condition_present
            ));
        }
        // Latching: it leaves the list only when acknowledged and its condition is gone.
        if was.is_some() && is.is_none() {
            let acknowledged = was.is_some_and(|a| a.acknowledged)
                || events
                    .iter()
                    .any(|e| matches!(e, Event::AlarmAcknowledged { alarm } if *alarm == kind));
            if !acknowledged || condition {
                return Err(format!(
                    "{kind:?} cleared (acknowledged {acknowledged}, condition {condition})"
                ));
            }
            if !events
                .iter()
                .any(|e| matches!(e, Event::AlarmCleared { alarm } if *alarm == kind))
            {
                return Err(format!("{kind:?} cleared without an AlarmCleared event"));
            }
        }
        // Escalation: an unacknowledged HIGH alarm escalates once it is 3 min old, exactly once.
        if let Some(a) = is {
            let age = now - a.raised_at_ms;
            let owed = a.priority == Priority::High && !a.acknowledged && age >= 3 * MINUTE_MS;
            if owed && !a.escalated {
                return Err(format!(
                    "{kind:?} unacknowledged HIGH for {age} ms, not escalated"
                ));
            }
            if a.escalated && a.priority != Priority::High {
                return Err(format!("{kind:?} escalated at priority {:?}", a.priority));
            }
            if let Some(until) = a.audio_paused_until_ms
                && until > now + Config::default().audio_pause_ms
            {
                return Err(format!("{kind:?} audio paused beyond 2 min"));
            }
        }
    }
    for e in events {
        if let Event::AlarmEscalated { alarm, .. } = e {
            let raised = p1
                .alarm(*alarm)
                .map(|a| a.raised_at_ms)
                .ok_or("escalated alarm not active")?;
            if after.escalated_raise_ms.contains(&(*alarm, raised)) {
                return Err(format!("{alarm:?} escalated twice"));
            }
            after.escalated_raise_ms.push((*alarm, raised));
        }
        if let Event::AlarmSilenced { alarm, .. } = e
            && p1.alarm(*alarm).is_none()
        {
            return Err(format!("silenced {alarm:?} is not on the list"));
        }
    }
    // Annunciation: nothing hidden, the top audible alarm sounds.
    let ann = p1.annunciation();
    let listed: Vec<AlarmKind> = p1.active_alarms().map(|a| a.kind).collect();
    if ann.active.len() != listed.len()
        || !listed
            .iter()
            .all(|k| ann.active.iter().any(|a| a.kind == *k))
    {
        return Err("annunciation hides an alarm".into());
    }
    let best = p1
        .active_alarms()
        .filter(|a| audible(a, now))
        .min_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.raised_at_ms.cmp(&b.raised_at_ms))
                .then(a.kind.cmp(&b.kind))
        });
    match (ann.sounding, best) {
        (None, None) => {}
        (Some(s), Some(b)) if s.kind == b.kind => {}
        (s, b) => {
            return Err(format!(
                "sounding {:?}, expected {:?}",
                s.map(|a| a.kind),
                b.map(|a| a.kind)
            ));
        }
    }
    let any_paused = p1
        .active_alarms()
        .any(|a| !a.acknowledged && !audible(a, now));
    match ann.audio {
        AudioState::Sounding if ann.sounding.is_none() => {
            return Err("sounding with nothing to sound".into());
        }
        AudioState::Paused { .. } if ann.sounding.is_some() || !any_paused => {
            return Err("audio paused state inconsistent".into());
        }
        AudioState::Quiet if any_paused || ann.sounding.is_some() => {
            return Err("quiet while alarms need sound".into());
        }
        _ => {}
    }
    let _ = action;
    Ok(())
}

#[test]
fn alarm_engine_properties_hold_in_every_reachable_state() {
    let mut pump = Pump::new(Config::default(), DrugLibrary::default(), 0);
    let world = World {
        mains: true,
        battery: 0,
        mains_seen: true,
    };
    pump.handle(0, Input::Sensors(world.frame()))
        .expect("first frame");
    while pump.poll_event().is_some() {}
    let start = Node {
        pump,
        world,
        escalated_raise_ms: Vec::new(),
    };

    let mut seen: HashSet<Key> = HashSet::new();
    let mut queue = VecDeque::new();
    seen.insert(key(&start));
    queue.push_back(start);
    let mut transitions = 0u64;
    let mut saw_sounding_after_pause = false;
    let mut saw_escalation = false;
    while let Some(node) = queue.pop_front() {
        for action in ACTIONS {
            let (mut next, events) = apply(&node, action);
            transitions += 1;
            if let Err(violation) = check(&node, action, &mut next, &events) {
                panic!(
                    "{violation}\n  action {action:?}\n  before {:?}\n  after {:?}",
                    key(&node),
                    key(&next)
                );
            }
            saw_escalation |= events
                .iter()
                .any(|e| matches!(e, Event::AlarmEscalated { .. }));
            let was_paused = matches!(node.pump.annunciation().audio, AudioState::Paused { .. });
            saw_sounding_after_pause |= was_paused
                && action == Action::MinutePasses
                && next.pump.annunciation().sounding.is_some();
            if seen.insert(key(&next)) {
                queue.push_back(next);
            }
        }
    }
    // The search must have explored a real space, including pauses ending and escalation.
    assert!(seen.len() > 200, "only {} states reached", seen.len());
    assert!(saw_escalation, "no escalation in the reachable space");
    assert!(saw_sounding_after_pause, "no audio pause ever ended");
    eprintln!(
        "model check: {} abstract states, {transitions} transitions",
        seen.len()
    );
}

//! One simulated pump: the plant and the real core, driven tick by tick exactly as a device driver
//! drives a device, with scheduled and live actions, an alarm history, a readable journal and an
//! optional trace for plots.

use pump::{
    AlarmKind, AudioState, Command, CommandError, DrugLibrary, Event, Input, MotorCommand,
    Priority, Pump, State, TimedEvent,
};
use serde::Serialize;

use crate::action::{Action, Target};
use crate::duration::format_duration_ms;
use crate::plant::{Plant, PlantConfig, PlantReadings};
use crate::scenario::{ProgramSpec, Scenario, ScheduledAction};

/// Most journal lines kept for one run; a run that produces more (a days-long campaign run with
/// repeated faults) keeps the first ones and counts the rest, so memory stays bounded.
pub const JOURNAL_LINES_MAX: usize = 20_000;
/// Most trace samples kept for a plot; the sampling interval is chosen to stay under it.
pub const TRACE_SAMPLES_MAX: usize = 20_000;

/// One alarm from raise to clear.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmRecord {
    #[serde(with = "crate::names::alarm")]
    pub kind: AlarmKind,
    #[serde(serialize_with = "priority_name")]
    pub priority: Priority,
    pub raised_at_ms: u64,
    /// `None` while still active.
    pub cleared_at_ms: Option<u64>,
}

fn priority_name<S: serde::Serializer>(p: &Priority, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

/// A line of the readable timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JournalEntry {
    pub at_ms: u64,
    pub text: String,
}

/// One sample for plots.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TraceSample {
    pub at_ms: u64,
    /// What the pressure sensor reported.
    pub downstream_pressure_mmhg: f64,
    pub delivered_to_patient_ml: f64,
    pub motor_rate_ml_per_h: f64,
}

/// An active alarm in a telemetry snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TelemetryAlarm {
    #[serde(with = "crate::names::alarm")]
    pub kind: AlarmKind,
    #[serde(serialize_with = "priority_name")]
    pub priority: Priority,
    pub raised_at_ms: u64,
    pub acknowledged: bool,
    pub condition_present: bool,
}

/// What a live simulated pump reports to screens and the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Telemetry {
    pub at_ms: u64,
    #[serde(with = "crate::names::state")]
    pub state: State,
    /// Rate the motor is commanded to run at; 0 when stopped.
    pub rate_ml_per_h: f64,
    /// Delivered under the current program, as the core counts it (encoder), mL.
    pub delivered_ml: f64,
    /// VTBI minus delivered, mL.
    pub remaining_ml: f64,
    pub battery_percent: f64,
    pub battery_minutes_left: f64,
    pub mains_present: bool,
    /// What the pressure sensor reported last.
    pub downstream_pressure_mmhg: f64,
    pub reservoir_ml: f64,
    /// Highest priority first, then oldest.
    pub active_alarms: Vec<TelemetryAlarm>,
    /// The alarm sounding now, if any.
    #[serde(with = "crate::names::option_alarm")]
    pub sounding: Option<AlarmKind>,
    pub audio_paused: bool,
}

/// A simulated pump: plant + core + driver loop.
#[derive(Debug, Clone)]
pub struct Simulation {
    pump: Pump,
    plant: Plant,
    now_ms: u64,
    tick_ms: u64,
    motor: MotorCommand,
    schedule: Vec<ScheduledAction>,
    next_scheduled: usize,
    outbox: Vec<TimedEvent>,
    alarms: Vec<AlarmRecord>,
    journal: Vec<JournalEntry>,
    journal_dropped: u64,
    trace: Option<Trace>,
    last_sensor_pressure_mmhg: f64,
}

#[derive(Debug, Clone)]
struct Trace {
    every_ms: u64,
    next_at_ms: u64,
    samples: Vec<TraceSample>,
}

impl Simulation {
    /// A simulation of `scenario`: power-on at 0, the program (if any) entered at 0, the events
    /// scheduled. Expectations are checked by [`crate::run_scenario`], not here.
    pub fn new(scenario: &Scenario) -> Simulation {
        Simulation::with_library(scenario, DrugLibrary::default())
    }

    /// The same as [`Simulation::new`], scheduled actions included, with a pump that holds this drug
    /// library (a therapy plan's limits), so a program naming the plan's drug runs under its limits.
    pub fn with_library(scenario: &Scenario, library: DrugLibrary) -> Simulation {
        let mut sim = Simulation::with_program(
            scenario.program.as_ref(),
            scenario.plant.clone(),
            scenario.pump.clone(),
            library,
            scenario.seed,
        );
        sim.schedule = scenario.events.clone();
        sim.schedule.sort_by_key(|e| e.at_ms);
        sim
    }

    /// A simulation without scheduled events (live pumps, the practice pump, the campaign): power-on
    /// at 0 and, if given, the program entered at 0. Drive it with [`Simulation::apply`].
    pub fn with_program(
        program: Option<&ProgramSpec>,
        plant: PlantConfig,
        config: pump::Config,
        library: DrugLibrary,
        seed: u64,
    ) -> Simulation {
        let tick_ms = config.sensor_period_ms.max(1);
        let pump = Pump::new(config, library, 0);
        let mut sim = Simulation {
            pump,
            plant: Plant::new(plant.clone(), seed),
            now_ms: 0,
            tick_ms,
            motor: MotorCommand::Stopped,
            schedule: Vec::new(),
            next_scheduled: 0,
            outbox: Vec::new(),
            alarms: Vec::new(),
            journal: Vec::new(),
            journal_dropped: 0,
            trace: None,
            last_sensor_pressure_mmhg: 0.0,
        };
        // The driver reads the sensors once at power-on so the core starts with a picture of the world.
        let frame = sim.plant.read_sensors();
        sim.last_sensor_pressure_mmhg = frame.downstream_pressure_mmhg;
        let _ = sim.pump.handle(0, Input::Sensors(frame));
        if let Some(p) = program {
            let result = sim
                .pump
                .handle(0, Input::Command(Command::Program(p.request(&plant))));
            if let Err(e) = result {
                sim.note(0, format!("program refused: {e:?}"));
            }
        }
        sim.after_core_call();
        sim
    }

    /// Records samples for plots every `every_ms` from now on.
    pub fn record_trace(&mut self, every_ms: u64) {
        self.trace = Some(Trace {
            every_ms: every_ms.max(self.tick_ms),
            next_at_ms: self.now_ms,
            samples: Vec::new(),
        });
    }

    pub fn trace(&self) -> &[TraceSample] {
        self.trace.as_ref().map_or(&[], |t| &t.samples)
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The simulation tick, equal to the core's `Config::sensor_period_ms`.
    pub fn tick_ms(&self) -> u64 {
        self.tick_ms
    }

    /// The core under test.
    pub fn pump(&self) -> &Pump {
        &self.pump
    }

    /// The physical truth.
    pub fn plant(&self) -> PlantReadings {
        self.plant.readings()
    }

    /// The plant itself, for checkers that need more than the readings.
    pub fn plant_model(&self) -> &Plant {
        &self.plant
    }

    /// The motor command in force (what the motor does until the next call into the core).
    pub fn motor(&self) -> MotorCommand {
        self.motor
    }

    /// Every alarm raised so far, in order, with its clear time.
    pub fn alarm_history(&self) -> &[AlarmRecord] {
        &self.alarms
    }

    pub fn journal(&self) -> &[JournalEntry] {
        &self.journal
    }

    /// Journal lines dropped beyond [`JOURNAL_LINES_MAX`].
    pub fn journal_dropped(&self) -> u64 {
        self.journal_dropped
    }

    /// Takes the core's events since the previous call. Events are kept until drained.
    pub fn drain_events(&mut self) -> Vec<TimedEvent> {
        std::mem::take(&mut self.outbox)
    }

    /// Forgets the core's events instead of keeping them for [`Simulation::drain_events`]: long
    /// runs that only need the alarm history (campaign, benchmarks) call this after each step.
    pub fn discard_events(&mut self) {
        self.outbox.clear();
    }

    /// Applies an action now: a button goes to the core, anything else to the plant. A refused
    /// button press is returned (and journaled), never a panic.
    pub fn apply(&mut self, action: Action) -> Result<(), CommandError> {
        let now = self.now_ms;
        let result = match action.target() {
            Target::Core(command) => self.pump.handle(now, Input::Command(command)),
            Target::AcknowledgeAll => {
                let kinds: Vec<AlarmKind> = self
                    .pump
                    .active_alarms()
                    .filter(|a| !a.acknowledged)
                    .map(|a| a.kind)
                    .collect();
                let mut result = Ok(());
                for kind in kinds {
                    if let Err(e) = self
                        .pump
                        .handle(now, Input::Command(Command::Acknowledge(kind)))
                    {
                        result = Err(e);
                    }
                }
                result
            }
            Target::Plant(event) => {
                self.plant.apply(event);
                Ok(())
            }
        };
        match &result {
            Ok(()) => self.note(now, format!("action {}", describe(&action))),
            Err(e) => self.note(now, format!("action {} refused: {e:?}", describe(&action))),
        }
        self.after_core_call();
        result
    }

    /// One tick: scheduled actions due now, physics over one sensor period with the motor command
    /// in force, then the driver's loop: read sensors → `handle(Sensors)` → apply the motor command
    /// → drain events → `handle_timeout` when the core's deadline has passed. A deadline that falls
    /// inside the tick is honoured at its own time, as a driver sleeping on a timer would.
    pub fn step(&mut self) {
        while let Some(&next) = self.schedule.get(self.next_scheduled) {
            if next.at_ms > self.now_ms {
                break;
            }
            self.next_scheduled += 1;
            let _ = self.apply(next.action);
        }
        let tick_end = self.now_ms + self.tick_ms;
        while let Some(deadline) = self.pump.next_deadline_ms() {
            if deadline >= tick_end {
                break;
            }
            if deadline > self.now_ms {
                self.plant.advance(self.motor, deadline - self.now_ms);
                self.now_ms = deadline;
            }
            self.pump.handle_timeout(self.now_ms);
            self.after_core_call();
            if self.pump.next_deadline_ms() == Some(deadline) {
                break; // the core did not move its deadline: do not spin
            }
        }
        self.plant.advance(self.motor, tick_end - self.now_ms);
        self.now_ms = tick_end;
        let frame = self.plant.read_sensors();
        self.last_sensor_pressure_mmhg = frame.downstream_pressure_mmhg;
        let _ = self.pump.handle(self.now_ms, Input::Sensors(frame));
        if self
            .pump
            .next_deadline_ms()
            .is_some_and(|d| d <= self.now_ms)
        {
            self.pump.handle_timeout(self.now_ms);
        }
        self.after_core_call();
        if let Some(trace) = &mut self.trace
            && self.now_ms >= trace.next_at_ms
        {
            trace.next_at_ms = self.now_ms + trace.every_ms;
            if trace.samples.len() < TRACE_SAMPLES_MAX {
                trace.samples.push(TraceSample {
                    at_ms: self.now_ms,
                    downstream_pressure_mmhg: self.last_sensor_pressure_mmhg,
                    delivered_to_patient_ml: self.plant.delivered_ul() / 1000.0,
                    motor_rate_ml_per_h: rate_of(self.motor),
                });
            }
        }
    }

    /// Steps until `t_ms` (the tick that reaches or passes it).
    pub fn run_until(&mut self, t_ms: u64) {
        while self.now_ms < t_ms {
            self.step();
        }
    }

    /// A snapshot for screens and telemetry.
    pub fn telemetry(&self) -> Telemetry {
        let status = self.pump.status();
        let annunciation = self.pump.annunciation();
        Telemetry {
            at_ms: self.now_ms,
            state: status.state,
            rate_ml_per_h: rate_of(self.motor),
            delivered_ml: status.delivered_ml,
            remaining_ml: status.remaining_ml,
            battery_percent: status.battery_percent,
            battery_minutes_left: status.battery_minutes_left,
            mains_present: status.mains_present,
            downstream_pressure_mmhg: status.downstream_pressure_mmhg,
            reservoir_ml: self.plant.readings().reservoir_ml,
            active_alarms: annunciation
                .active
                .iter()
                .map(|a| TelemetryAlarm {
                    kind: a.kind,
                    priority: a.priority,
                    raised_at_ms: a.raised_at_ms,
                    acknowledged: a.acknowledged,
                    condition_present: a.condition_present,
                })
                .collect(),
            sounding: annunciation.sounding.map(|a| a.kind),
            audio_paused: matches!(annunciation.audio, AudioState::Paused { .. }),
        }
    }

    /// After every call into the core: take the motor command and the events.
    fn after_core_call(&mut self) {
        self.motor = self.pump.motor_command();
        while let Some(event) = self.pump.poll_event() {
            self.record(&event);
            self.outbox.push(event);
        }
    }

    fn record(&mut self, e: &TimedEvent) {
        let at = e.at_ms;
        match &e.event {
            Event::AlarmRaised {
                alarm, priority, ..
            } => {
                self.alarms.push(AlarmRecord {
                    kind: *alarm,
                    priority: *priority,
                    raised_at_ms: at,
                    cleared_at_ms: None,
                });
                self.note(
                    at,
                    format!("ALARM {} ({}) raised", alarm.name(), priority.name()),
                );
            }
            Event::AlarmCleared { alarm } => {
                if let Some(r) = self
                    .alarms
                    .iter_mut()
                    .rev()
                    .find(|r| r.kind == *alarm && r.cleared_at_ms.is_none())
                {
                    r.cleared_at_ms = Some(at);
                }
                self.note(at, format!("alarm {} cleared", alarm.name()));
            }
            Event::StateChanged { from, to } => {
                self.note(at, format!("state {} -> {}", from.name(), to.name()))
            }
            Event::AlarmAcknowledged { alarm } => {
                self.note(at, format!("alarm {} acknowledged", alarm.name()))
            }
            Event::AlarmSilenced { alarm, until_ms } => self.note(
                at,
                format!(
                    "alarm {} silenced for {}",
                    alarm.name(),
                    format_duration_ms(until_ms.saturating_sub(at))
                ),
            ),
            Event::AlarmEscalated {
                alarm,
                unacknowledged_for_ms,
            } => self.note(
                at,
                format!(
                    "alarm {} escalated (unacknowledged for {})",
                    alarm.name(),
                    format_duration_ms(*unacknowledged_for_ms)
                ),
            ),
            Event::ProgramAccepted { program } => self.note(
                at,
                format!(
                    "program accepted: {} mL/h, VTBI {} mL",
                    program.rate_ml_per_h(),
                    program.vtbi_ml()
                ),
            ),
            Event::ProgramRejected { error } => {
                self.note(at, format!("program rejected: {error:?}"))
            }
            Event::Completed { delivered_ml } => self.note(
                at,
                format!("infusion complete, {delivered_ml:.2} mL delivered"),
            ),
            Event::KvoStarted { rate_ml_per_h } => {
                self.note(at, format!("keep vein open at {rate_ml_per_h} mL/h"))
            }
            Event::BolusGiven { volume_ml } => {
                self.note(at, format!("bolus given: {volume_ml} mL"))
            }
            Event::BolusDenied { reason } => self.note(at, format!("bolus denied: {reason}")),
            // Started/Paused/Resumed/Stopped also appear as state changes; the rest are rare and
            // shown by their debug form so nothing the core says is hidden.
            Event::Started | Event::Paused | Event::Resumed | Event::Stopped => {}
            other => self.note(at, format!("{other:?}")),
        }
    }

    fn note(&mut self, at_ms: u64, text: String) {
        if self.journal.len() < JOURNAL_LINES_MAX {
            self.journal.push(JournalEntry { at_ms, text });
        } else {
            self.journal_dropped += 1;
        }
    }
}

fn rate_of(motor: MotorCommand) -> f64 {
    match motor {
        MotorCommand::Run { rate_ml_per_h } => rate_ml_per_h,
        MotorCommand::Stopped | MotorCommand::Reverse { .. } => 0.0,
    }
}

/// An action with its parameters, for the journal.
fn describe(action: &Action) -> String {
    match *action {
        Action::Acknowledge { alarm: Some(a) } => format!("acknowledge {}", a.name()),
        Action::Kink { severity } if severity < 1.0 => format!("kink (severity {severity})"),
        Action::AirBubble { volume_ul } => format!("air_bubble {volume_ul} µL"),
        Action::NewContainer { volume_ml } => format!("new_container {volume_ml} mL"),
        Action::SetBatteryPercent { percent } => format!("set_battery_percent {percent} %"),
        Action::SelfTestFail { code } => format!("self_test_fail code {code}"),
        Action::BendArm { duration_ms } => {
            format!("bend_arm for {}", format_duration_ms(duration_ms))
        }
        Action::MovePump { height_cm } => format!("move_pump to {height_cm} cm"),
        Action::MotorSpeedError { factor } => format!("motor_speed_error ×{factor}"),
        _ => action.name().to_string(),
    }
}

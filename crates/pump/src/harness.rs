//! A deterministic test driver for the core and the checks of its safety invariants, shared by the
//! property tests, the fuzz target (`fuzz/fuzz_targets/pump_inputs.rs`) and any other checker.
//!
//! Not device code: a device has its own driver. It lives in the crate (not under `tests/`) so that
//! the fuzz target and the crate's ordinary tests run exactly the same decoding and the same checks,
//! and CI exercises them on stable without a fuzzer.
//!
//! The driver models an ideal mechanism (the encoder moves exactly as commanded), reads sensors every
//! `Config::sensor_period_ms` and honours every deadline the core announces, as a correct device
//! driver would. Everything else — commands, sensor values including NaN and absurd numbers, frames
//! that stop arriving — comes from the test input.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::alarm::{AlarmKind, MotorEffect, SensorField};
use crate::config::Config;
use crate::engine::Pump;
use crate::library::{Concentration, DrugEntry, DrugLibrary, LibraryError, Limits};
use crate::program::{BolusProgram, EndAction, ProgramRequest};
use crate::types::{
    Command, CommandError, Event, Input, MotorCommand, SelfTest, SensorFrame, State,
};

/// Longest stretch of time one step may cover, so a run stays bounded in ticks.
pub const STEP_MS_MAX: u64 = 10 * 60_000;

/// One step of a test run.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// An operator command at the current time.
    Command(Command),
    /// Change what the sensors will report from now on.
    Sensors(SensorChange),
    /// Let time pass with a sensor frame every period (deadlines honoured in between).
    Run { ms: u64 },
    /// Let time pass without sensor frames (deadlines still honoured): a stalled sensor bus.
    NoFrames { ms: u64 },
    /// A broken driver: time jumps `ms` ahead without the deadlines in between being honoured
    /// (the motor keeps its last command meanwhile), then the driver calls `handle_timeout`.
    LateCall { ms: u64 },
    /// A broken driver: `handle_timeout` with a time `ms` before the last one.
    ClockBack { ms: u64 },
    /// Acknowledge every active alarm, as an operator clearing the screen does.
    AcknowledgeAll,
    /// Hand in one frame of the plant's values with one reading replaced (NaN, negative, absurd).
    OddReading { sensor: SensorField, value: f64 },
}

/// A change of the simulated world.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SensorChange {
    Door {
        closed: bool,
    },
    DownstreamPressure {
        mmhg: f64,
    },
    UpstreamPressure {
        mmhg: f64,
    },
    /// Air passing the detector in the next frame only.
    Bubble {
        ul: f64,
    },
    Battery {
        percent: f64,
        minutes_left: f64,
    },
    Mains {
        present: bool,
    },
    Temperature {
        celsius: f64,
    },
    SelfTest(SelfTest),
    /// The encoder moves this fraction of what the motor controller was commanded (1.0 = healthy).
    EncoderFactor {
        factor: f64,
    },
    /// The whole mechanism (controller and encoder agreeing) moves this fraction of what the core
    /// commanded: a runaway (> 1) or dragging (< 1) motor, or free flow.
    MechanismFactor {
        factor: f64,
    },
    /// The mechanism moves as its controller counts, but the encoder reports only this fraction of
    /// the motion (0 = a blind encoder, > 1 = an encoder over-reading). The core counts delivery as
    /// the larger of the two counts, so the volume invariants still hold.
    EncoderReading {
        factor: f64,
    },
    /// Unplugged, running on a battery with this much left.
    OnBattery {
        percent: f64,
        minutes_left: f64,
    },
    /// The downstream reading answers the strokes like a real line: `jump_mmhg` per stroke (50 µL
    /// at the default stroke volume), keeping `keep` of the excess over `base_mmhg` per frame
    /// (1.0: a blocked line; about 0.77 a line in a vein, 0.5 a line open to the room). Relief
    /// lowers it in proportion to the volume drawn back. `DownstreamPressure` ends it.
    Line {
        base_mmhg: f64,
        jump_mmhg: f64,
        keep: f64,
    },
    /// A line in a vein (`LINE_IN_VEIN`) that comes apart after this many strokes (`LINE_OPEN`).
    LineComesApart {
        after_strokes: u32,
    },
    /// Everything back to healthy values (the operator fixed whatever was wrong).
    AllNormal,
}

impl SensorChange {
    /// A line in a vein at 8 mmHg, 1.3 µL/mmHg, pulses halving in about 0.27 s.
    pub const LINE_IN_VEIN: SensorChange = SensorChange::Line {
        base_mmhg: 8.0,
        jump_mmhg: 38.0,
        keep: 0.77,
    };
    /// The same line fallen open to the room: 0 mmHg, pulses draining twice as fast.
    pub const LINE_OPEN: SensorChange = SensorChange::Line {
        base_mmhg: 0.0,
        jump_mmhg: 38.0,
        keep: 0.5,
    };
    /// The same line blocked: every pulse stays.
    pub const LINE_BLOCKED: SensorChange = SensorChange::Line {
        base_mmhg: 8.0,
        jump_mmhg: 38.0,
        keep: 1.0,
    };
}

/// The simulated world around the core.
#[derive(Debug, Clone)]
struct Plant {
    door_closed: bool,
    downstream_mmhg: f64,
    upstream_mmhg: f64,
    pending_air_ul: f64,
    battery_percent: f64,
    battery_minutes_left: f64,
    mains_present: bool,
    temperature_c: f64,
    self_test: SelfTest,
    encoder_factor: f64,
    mechanism_factor: f64,
    encoder_reading_factor: f64,
    controller_ul_total: f64,
    encoder_ul_total: f64,
    /// `SensorChange::Line`: (base, jump per stroke, kept per frame) and the excess now.
    line: Option<(f64, f64, f64)>,
    line_excess_mmhg: f64,
    /// Strokes until the line comes apart (`SensorChange::LineComesApart`).
    line_apart_in: Option<u32>,
}

impl Plant {
    fn new() -> Plant {
        Plant {
            door_closed: true,
            downstream_mmhg: 40.0,
            upstream_mmhg: -5.0,
            pending_air_ul: 0.0,
            battery_percent: 100.0,
            battery_minutes_left: 600.0,
            mains_present: true,
            temperature_c: 30.0,
            self_test: SelfTest::Passed,
            encoder_factor: 1.0,
            mechanism_factor: 1.0,
            encoder_reading_factor: 1.0,
            controller_ul_total: 0.0,
            encoder_ul_total: 0.0,
            line: None,
            line_excess_mmhg: 0.0,
            line_apart_in: None,
        }
    }

    fn frame(&mut self) -> SensorFrame {
        let air = core::mem::take(&mut self.pending_air_ul);
        if let Some((base, _, keep)) = self.line {
            self.downstream_mmhg = base + self.line_excess_mmhg;
            self.line_excess_mmhg *= keep;
        }
        SensorFrame {
            downstream_pressure_mmhg: self.downstream_mmhg,
            upstream_pressure_mmhg: self.upstream_mmhg,
            air_ul_since_last_frame: air,
            door_closed: self.door_closed,
            battery_percent: self.battery_percent,
            battery_minutes_left: self.battery_minutes_left,
            mains_present: self.mains_present,
            motor_volume_ul_total: self.encoder_ul_total,
            commanded_volume_ul_total: self.controller_ul_total,
            mechanism_temperature_c: self.temperature_c,
            self_test: self.self_test,
        }
    }
}

/// The driver: a core, a plant, a clock, and the bookkeeping the invariants need.
#[derive(Debug, Clone)]
pub struct Harness {
    pump: Pump,
    plant: Plant,
    now_ms: u64,
    next_frame_ms: u64,
    /// Volume the plant delivered under the current program while the core was not in KVO.
    delivered_at_rate_ul: f64,
    /// Volume the plant delivered under the current program, KVO included.
    delivered_total_ul: f64,
    vtbi_ul: Option<f64>,
    reservoir_ul: Option<f64>,
    /// The sensor values the core was last shown (the invariants judge the motor against them).
    last_frame: Option<SensorFrame>,
    was_fault: bool,
    /// The state as told by the `StateChanged` events so far.
    recorded_state: State,
    /// Which alarms are active according to `AlarmRaised` / `AlarmCleared` so far.
    recorded_alarms: [bool; AlarmKind::ALL.len()],
    /// A violation found while powering on, reported by the first step.
    startup_error: Option<String>,
    /// The mechanism moved exactly as commanded throughout the current program, so the plant's
    /// volume is what the core could know.
    honest: bool,
    events: Vec<Event>,
    /// Sensor frames handed in so far (a measure of how much a run exercised).
    pub frames: u64,
    /// The answer to the last command step.
    pub last_result: Option<Result<(), CommandError>>,
}

impl Harness {
    pub fn new(config: Config) -> Harness {
        let pump = Pump::new(config, test_library(), 0);
        let mut h = Harness {
            pump,
            plant: Plant::new(),
            now_ms: 0,
            next_frame_ms: 0,
            delivered_at_rate_ul: 0.0,
            delivered_total_ul: 0.0,
            vtbi_ul: None,
            reservoir_ul: None,
            last_frame: None,
            was_fault: false,
            recorded_state: State::Idle,
            startup_error: None,
            recorded_alarms: [false; AlarmKind::ALL.len()],
            honest: true,
            events: Vec::new(),
            frames: 0,
            last_result: None,
        };
        h.startup_error = h.drain().err();
        h
    }

    pub fn pump(&self) -> &Pump {
        &self.pump
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Volume the plant really delivered under the current program (KVO included), whatever the
    /// encoder reported.
    pub fn plant_delivered_ul(&self) -> f64 {
        self.delivered_total_ul
    }

    /// Every event seen so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Applies one step and checks every invariant after every call into the core.
    pub fn step(&mut self, step: &Step) -> Result<(), String> {
        if let Some(error) = self.startup_error.take() {
            return Err(error);
        }
        match step {
            Step::Command(command) => {
                // Refusals are fine; panics and broken invariants are not.
                let result = self
                    .pump
                    .handle(self.now_ms, Input::Command(command.clone()));
                self.last_result = Some(result.clone());
                // Acknowledging air_in_line means the operator removed the air (documented), so
                // the last frame's bubble no longer counts against the motor.
                if result.is_ok()
                    && *command == Command::Acknowledge(AlarmKind::AirInLine)
                    && let Some(f) = &mut self.last_frame
                {
                    f.air_ul_since_last_frame = 0.0;
                }
                self.after_call()?;
            }
            Step::Sensors(change) => self.change(*change),
            Step::AcknowledgeAll => {
                let kinds: Vec<AlarmKind> = self.pump.active_alarms().map(|a| a.kind).collect();
                for kind in kinds {
                    self.step(&Step::Command(Command::Acknowledge(kind)))?;
                }
            }
            Step::Run { ms } => self.run_for((*ms).min(STEP_MS_MAX), true)?,
            Step::NoFrames { ms } => self.run_for((*ms).min(STEP_MS_MAX), false)?,
            Step::LateCall { ms } => {
                let to = self.now_ms.saturating_add((*ms).min(STEP_MS_MAX));
                if matches!(self.pump.motor_command(), MotorCommand::Run { .. }) {
                    // The plant delivered on an old command nobody corrected: the volume bound is
                    // the driver's broken promise, not the core's.
                    self.honest = false;
                }
                self.move_plant(to);
                self.pump.handle_timeout(to);
                self.after_call()?;
            }
            Step::ClockBack { ms } => {
                self.pump.handle_timeout(self.now_ms.saturating_sub(*ms));
                self.after_call()?;
            }
            Step::OddReading { sensor, value } => {
                let mut frame = self.plant.frame();
                let v = *value;
                match sensor {
                    SensorField::DownstreamPressure => frame.downstream_pressure_mmhg = v,
                    SensorField::UpstreamPressure => frame.upstream_pressure_mmhg = v,
                    SensorField::Air => frame.air_ul_since_last_frame = v,
                    SensorField::BatteryPercent => frame.battery_percent = v,
                    SensorField::BatteryMinutesLeft => frame.battery_minutes_left = v,
                    SensorField::MotorVolume => frame.motor_volume_ul_total = v,
                    SensorField::CommandedVolume => frame.commanded_volume_ul_total = v,
                    SensorField::MechanismTemperature => frame.mechanism_temperature_c = v,
                }
                self.last_frame = Some(frame.clone());
                let _ = self.pump.handle(self.now_ms, Input::Sensors(frame));
                self.frames += 1;
                self.after_call()?;
            }
        }
        Ok(())
    }

    fn change(&mut self, change: SensorChange) {
        if let SensorChange::EncoderFactor { factor } | SensorChange::MechanismFactor { factor } =
            change
            && factor != 1.0
        {
            self.honest = false;
        }
        let p = &mut self.plant;
        match change {
            SensorChange::Door { closed } => p.door_closed = closed,
            SensorChange::DownstreamPressure { mmhg } => {
                p.downstream_mmhg = mmhg;
                p.line = None;
                p.line_apart_in = None;
            }
            SensorChange::Line {
                base_mmhg,
                jump_mmhg,
                keep,
            } => {
                p.line = Some((base_mmhg, jump_mmhg, keep));
                p.line_apart_in = None;
            }
            SensorChange::LineComesApart { after_strokes } => {
                if let SensorChange::Line {
                    base_mmhg,
                    jump_mmhg,
                    keep,
                } = SensorChange::LINE_IN_VEIN
                {
                    p.line = Some((base_mmhg, jump_mmhg, keep));
                }
                p.line_apart_in = Some(after_strokes);
            }
            SensorChange::UpstreamPressure { mmhg } => p.upstream_mmhg = mmhg,
            SensorChange::Bubble { ul } => p.pending_air_ul += ul,
            SensorChange::Battery {
                percent,
                minutes_left,
            } => {
                p.battery_percent = percent;
                p.battery_minutes_left = minutes_left;
            }
            SensorChange::Mains { present } => p.mains_present = present,
            SensorChange::Temperature { celsius } => p.temperature_c = celsius,
            SensorChange::SelfTest(result) => p.self_test = result,
            SensorChange::EncoderFactor { factor } => p.encoder_factor = factor,
            SensorChange::MechanismFactor { factor } => p.mechanism_factor = factor,
            SensorChange::EncoderReading { factor } => p.encoder_reading_factor = factor,
            SensorChange::OnBattery {
                percent,
                minutes_left,
            } => {
                p.mains_present = false;
                p.battery_percent = percent;
                p.battery_minutes_left = minutes_left;
            }
            SensorChange::AllNormal => {
                let totals = (p.controller_ul_total, p.encoder_ul_total);
                *p = Plant::new();
                (p.controller_ul_total, p.encoder_ul_total) = totals;
            }
        }
    }

    /// Lets `ms` pass: frames every sensor period (if `frames`), deadlines honoured exactly.
    fn run_for(&mut self, ms: u64, frames: bool) -> Result<(), String> {
        let end = self.now_ms.saturating_add(ms);
        let period = self.pump.config().sensor_period_ms.max(1);
        if self.next_frame_ms < self.now_ms {
            self.next_frame_ms = self.now_ms;
        }
        loop {
            let deadline = self.pump.next_deadline_ms().unwrap_or(u64::MAX);
            let frame_at = if frames { self.next_frame_ms } else { u64::MAX };
            let t = end.min(deadline).min(frame_at);
            if t > end || (t == end && t != deadline && t != frame_at) {
                self.move_plant(end);
                return Ok(());
            }
            self.move_plant(t);
            if t == frame_at {
                let frame = self.plant.frame();
                self.last_frame = Some(frame.clone());
                let _ = self.pump.handle(t, Input::Sensors(frame));
                self.frames += 1;
                self.next_frame_ms = t + period;
            } else {
                self.pump.handle_timeout(t);
            }
            self.after_call()?;
            if t >= end {
                return Ok(());
            }
        }
    }

    /// The mechanism moves at the commanded rate from `now_ms` to `t`.
    fn move_plant(&mut self, t: u64) {
        let elapsed_ms = t.saturating_sub(self.now_ms) as f64;
        if let MotorCommand::Reverse { rate_ml_per_h } = self.pump.motor_command() {
            // Relief: the mechanism runs backwards exactly as commanded (net totals go down).
            let back = rate_ml_per_h / 3600.0 * elapsed_ms;
            if let Some((_, jump, _)) = self.plant.line {
                let stroke = self.pump.config().stroke_volume_ul.max(1e-9);
                self.plant.line_excess_mmhg -= back / stroke * jump;
            }
            self.plant.controller_ul_total = (self.plant.controller_ul_total - back).max(0.0);
            self.plant.encoder_ul_total = (self.plant.encoder_ul_total - back).max(0.0);
            self.delivered_total_ul -= back;
            if self.pump.state() != State::Kvo {
                self.delivered_at_rate_ul -= back;
            }
        }
        if let MotorCommand::Run { rate_ml_per_h } = self.pump.motor_command() {
            let sane = |f: f64| if f.is_finite() && f >= 0.0 { f } else { 1.0 };
            let commanded = rate_ml_per_h / 3600.0 * elapsed_ms * sane(self.plant.mechanism_factor);
            let moved = commanded * sane(self.plant.encoder_factor);
            self.plant.controller_ul_total += commanded;
            let before = self.plant.encoder_ul_total;
            self.plant.encoder_ul_total += moved * sane(self.plant.encoder_reading_factor);
            if let Some((_, jump, _)) = self.plant.line {
                let stroke = self.pump.config().stroke_volume_ul.max(1e-9);
                let strokes = whole_strokes(self.plant.encoder_ul_total / stroke)
                    - whole_strokes(before / stroke);
                if strokes.is_finite() {
                    let strokes = strokes.clamp(0.0, 1.0e6);
                    self.plant.line_excess_mmhg += jump * strokes;
                    if let Some(left) = self.plant.line_apart_in {
                        let left = left.saturating_sub(strokes as u32);
                        self.plant.line_apart_in = Some(left);
                        if left == 0
                            && let SensorChange::Line {
                                base_mmhg,
                                jump_mmhg,
                                keep,
                            } = SensorChange::LINE_OPEN
                        {
                            self.plant.line = Some((base_mmhg, jump_mmhg, keep));
                            self.plant.line_apart_in = None;
                        }
                    }
                }
            }
            self.delivered_total_ul += moved;
            if self.pump.state() != State::Kvo {
                self.delivered_at_rate_ul += moved;
            }
        }
        self.now_ms = self.now_ms.max(t);
    }

    /// Drains events; the `StateChanged` events must chain from the last known state to the
    /// current one (no state change is silent, none is invented).
    fn drain(&mut self) -> Result<(), String> {
        let mut chain_error = None;
        while let Some(e) = self.pump.poll_event() {
            if let Event::StateChanged { from, to } = &e.event {
                if *from != self.recorded_state && chain_error.is_none() {
                    chain_error = Some(format!(
                        "StateChanged from {from:?} but the record was at {:?}",
                        self.recorded_state
                    ));
                }
                self.recorded_state = *to;
            }
            match &e.event {
                Event::AlarmRaised { alarm, .. } => {
                    let slot = &mut self.recorded_alarms[alarm_index(*alarm)];
                    if *slot && chain_error.is_none() {
                        chain_error = Some(format!("{alarm:?} raised twice without a clear"));
                    }
                    *slot = true;
                }
                Event::AlarmCleared { alarm } => {
                    let slot = &mut self.recorded_alarms[alarm_index(*alarm)];
                    if !*slot && chain_error.is_none() {
                        chain_error = Some(format!("{alarm:?} cleared but never raised"));
                    }
                    *slot = false;
                }
                _ => {}
            }
            if let Event::ProgramAccepted { program } = &e.event {
                self.delivered_at_rate_ul = 0.0;
                self.delivered_total_ul = 0.0;
                self.honest =
                    self.plant.encoder_factor == 1.0 && self.plant.mechanism_factor == 1.0;
                self.vtbi_ul = Some(program.vtbi_ml() * 1000.0);
                self.reservoir_ul = program.reservoir_ml().map(|r| r * 1000.0);
            }
            self.events.push(e.event);
        }
        if let Some(error) = chain_error {
            return Err(error);
        }
        for kind in AlarmKind::ALL {
            let listed = self.pump.alarm(kind).is_some();
            if listed != self.recorded_alarms[alarm_index(kind)] {
                return Err(format!(
                    "{kind:?} is {} but the record says otherwise: a silent alarm change",
                    if listed { "active" } else { "not active" }
                ));
            }
        }
        if self.recorded_state != self.pump.state() {
            return Err(format!(
                "state is {:?} but the record says {:?}: a silent state change",
                self.pump.state(),
                self.recorded_state
            ));
        }
        Ok(())
    }

    fn after_call(&mut self) -> Result<(), String> {
        self.drain()?;
        let result = self.check_invariants();
        self.was_fault |= self.pump.state() == State::Fault;
        result
    }

    /// Every safety invariant of the core, checked against the outputs it gives now.
    pub fn check_invariants(&self) -> Result<(), String> {
        let pump = &self.pump;
        let c = pump.config();
        let motor = pump.motor_command();
        let state = pump.state();

        if self.was_fault && state != State::Fault {
            return Err(format!(
                "left Fault for {state:?}: a system fault must refuse restart"
            ));
        }
        if (state == State::Fault) != pump.alarm(AlarmKind::SystemError).is_some() {
            return Err(format!(
                "state {state:?} disagrees with the system_error alarm"
            ));
        }
        if let Some(d) = pump.next_deadline_ms()
            && d <= self.now_ms
        {
            return Err(format!("deadline {d} not after now {}", self.now_ms));
        }

        if let MotorCommand::Run { rate_ml_per_h } = motor {
            if !state.motor_should_run() {
                return Err(format!("motor runs in state {state:?}"));
            }
            if !(rate_ml_per_h.is_finite() && rate_ml_per_h > 0.0) {
                return Err(format!(
                    "motor rate {rate_ml_per_h} is not a positive number"
                ));
            }
            if let Some(a) = pump
                .active_alarms()
                .find(|a| a.kind.motor_effect() == MotorEffect::Stop)
            {
                return Err(format!("motor runs with {:?} active", a.kind));
            }
            let Some(f) = &self.last_frame else {
                return Err(String::from("motor runs before any sensor frame"));
            };
            if !f.door_closed {
                return Err(String::from("motor runs with the door open"));
            }
            if f.downstream_pressure_mmhg > c.occlusion_downstream_mmhg {
                return Err(String::from("motor runs with a downstream occlusion"));
            }
            if f.upstream_pressure_mmhg < c.occlusion_upstream_mmhg {
                return Err(String::from("motor runs with an upstream occlusion"));
            }
            if f.air_ul_since_last_frame > c.air_single_bubble_ul {
                return Err(String::from("motor runs with air in line"));
            }
            if !f.mains_present && f.battery_minutes_left < c.battery_depleted_minutes {
                return Err(String::from("motor runs on a depleted battery"));
            }
            // The container volume entered is its label volume, which it delivers at least: a
            // container of at least the dose is followed to the end of the dose (then, in KVO, to
            // its reserve); a shorter one stops at its reserve.
            if let Some(reservoir) = self.reservoir_ul
                && self.honest
            {
                let holds_the_dose =
                    self.vtbi_ul.is_some_and(|v| reservoir >= v) && state != State::Kvo;
                let empty = if holds_the_dose {
                    reservoir + c.stroke_volume_ul - self.delivered_total_ul < 0.0
                } else {
                    reservoir - self.delivered_total_ul < c.reservoir_empty_ml * 1000.0 - 1e-6
                };
                if empty {
                    return Err(String::from("motor runs with the reservoir empty"));
                }
            }
            let Some(p) = pump.program() else {
                return Err(String::from("motor runs without a program"));
            };
            let ceiling = match state {
                State::Kvo => p.kvo_ml_per_h().unwrap_or(0.0),
                _ if pump.status().bolus_running => p.rate_ml_per_h().max(c.bolus_rate_ml_per_h),
                _ => p.rate_ml_per_h(),
            };
            if rate_ml_per_h > ceiling {
                return Err(format!(
                    "commanded {rate_ml_per_h} mL/h above the allowed {ceiling} mL/h"
                ));
            }
        }

        // Relief (the motor backwards) only after a downstream occlusion stopped the pump, with the
        // door closed, no system fault, a battery that is not depleted, at the relief rate.
        if let MotorCommand::Reverse { rate_ml_per_h } = motor {
            if state != State::StoppedByAlarm {
                return Err(format!("motor reverses in state {state:?}"));
            }
            if pump.alarm(AlarmKind::OcclusionDownstream).is_none() {
                return Err(String::from(
                    "motor reverses without an occlusion_downstream alarm",
                ));
            }
            if pump.alarm(AlarmKind::SystemError).is_some() {
                return Err(String::from("motor reverses with a system error"));
            }
            if !(rate_ml_per_h.is_finite()
                && rate_ml_per_h > 0.0
                && rate_ml_per_h <= c.relief_rate_ml_per_h)
            {
                return Err(format!(
                    "reverse rate {rate_ml_per_h} mL/h is not within (0, {}]",
                    c.relief_rate_ml_per_h
                ));
            }
            let Some(f) = &self.last_frame else {
                return Err(String::from("motor reverses before any sensor frame"));
            };
            if !f.door_closed {
                return Err(String::from("motor reverses with the door open"));
            }
            if !f.mains_present && f.battery_minutes_left < c.battery_depleted_minutes {
                return Err(String::from("motor reverses on a depleted battery"));
            }
        }

        // Never more than VTBI plus one stroke at the programmed (or bolus) rate. Only meaningful
        // while the encoder tells the truth (a slipping encoder is itself an alarm).
        if let Some(vtbi) = self.vtbi_ul
            && self.honest
            && self.delivered_at_rate_ul > vtbi + c.stroke_volume_ul + 1e-6
        {
            return Err(format!(
                "delivered {} µL for a VTBI of {vtbi} µL (one stroke is {} µL)",
                self.delivered_at_rate_ul, c.stroke_volume_ul
            ));
        }

        // Annunciation: the sounding alarm is the top audible one; silencing hides nothing.
        let ann = pump.annunciation();
        let listed = pump.active_alarms().count();
        if ann.active.len() != listed {
            return Err(String::from("annunciation hides an active alarm"));
        }
        let audible: Vec<_> = ann
            .active
            .iter()
            .filter(|a| {
                !a.acknowledged && a.audio_paused_until_ms.is_none_or(|u| u <= pump.now_ms())
            })
            .collect();
        match (&ann.sounding, audible.first()) {
            (None, None) => {}
            (Some(s), Some(top)) if s.kind == top.kind => {
                if audible.iter().any(|a| a.priority > s.priority) {
                    return Err(String::from(
                        "a higher-priority alarm is not the one sounding",
                    ));
                }
            }
            (s, top) => return Err(format!("sounding {s:?} but top audible is {top:?}")),
        }
        Ok(())
    }
}

fn alarm_index(kind: AlarmKind) -> usize {
    AlarmKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

/// A small library used by the harness: one drug with all five limits and a bolus, one without.
pub fn test_library() -> DrugLibrary {
    build_test_library().unwrap_or_default()
}

fn build_test_library() -> Result<DrugLibrary, LibraryError> {
    let limits = Limits::new;
    DrugLibrary::new(alloc::vec![
        DrugEntry {
            id: String::from("morphine-1"),
            name: String::from("Morphine 1 mg/mL"),
            concentration: Concentration {
                amount: 1.0,
                unit: String::from("mg"),
                per_ml: 1.0
            },
            rate_ml_per_h: limits(0.1, 0.5, 1.0, 5.0, 10.0)?,
            vtbi_ml: limits(1.0, 5.0, 50.0, 100.0, 250.0)?,
            bolus_ml: Some(limits(0.1, 0.5, 1.0, 2.0, 5.0)?),
        },
        DrugEntry {
            id: String::from("saline"),
            name: String::from("Sodium chloride 0.9 %"),
            concentration: Concentration {
                amount: 9.0,
                unit: String::from("mg"),
                per_ml: 1.0
            },
            rate_ml_per_h: limits(1.0, 5.0, 100.0, 500.0, 999.0)?,
            vtbi_ml: limits(1.0, 10.0, 1000.0, 3000.0, 9999.0)?,
            bolus_ml: None,
        },
    ])
}

/// Reads bytes as a sequence of steps. Every byte string decodes to something (fuzzers need that);
/// values come from small tables that include the edges and the impossible.
pub fn decode(bytes: &[u8]) -> Vec<Step> {
    let mut r = Reader { bytes, at: 0 };
    let mut steps = Vec::new();
    while let Some(op) = r.next() {
        let step = match op % 32 {
            0..=7 => Step::Run {
                ms: r.pick(&[100, 250, 1_000, 5_000, 30_000, 60_000, 180_000, 600_000]),
            },
            8 => match r.next().unwrap_or(0) % 8 {
                0 => Step::LateCall {
                    ms: r.pick(&[300, 2_000, 60_000]),
                },
                1 => Step::ClockBack {
                    ms: r.pick(&[1, 1_000]),
                },
                _ => Step::NoFrames {
                    ms: r.pick(&[150, 400, 600, 2_000, 120_000]),
                },
            },
            9..=11 => Step::Command(Command::Program(r.program())),
            12..=14 => Step::Command(Command::Start),
            15..=17 => Step::Command(r.pick_command()),
            18 => Step::Command(Command::Acknowledge(r.pick(&AlarmKind::ALL))),
            19 => Step::AcknowledgeAll,
            20..=21 => Step::Command(Command::PatientBolus),
            22 => Step::Sensors(SensorChange::Door { closed: r.flag() }),
            23 => match r.next().unwrap_or(0) % 3 {
                0 => Step::Sensors(r.pick(&[
                    SensorChange::LINE_IN_VEIN,
                    SensorChange::LINE_OPEN,
                    SensorChange::LINE_BLOCKED,
                    SensorChange::LineComesApart { after_strokes: 8 },
                ])),
                _ => Step::Sensors(SensorChange::DownstreamPressure {
                    mmhg: r.pick(&[0.0, 40.0, 300.0, 516.0, 600.0, 1200.0]),
                }),
            },
            24 => Step::Sensors(SensorChange::UpstreamPressure {
                mmhg: r.pick(&[0.0, -10.0, -60.0, -200.0]),
            }),
            25 => Step::Sensors(SensorChange::Bubble {
                ul: r.pick(&[5.0, 50.0, 99.0, 150.0, 600.0]),
            }),
            26..=27 => Step::Sensors(r.power()),
            28 => Step::Sensors(r.mechanism()),
            29 => Step::Command(Command::Resume),
            30 => Step::Sensors(SensorChange::AllNormal),
            _ => r.odd_reading(),
        };
        steps.push(step);
    }
    steps
}

/// Decodes `bytes`, runs the steps from power-on with the default config, and checks the
/// invariants after every call into the core. The fuzz target and the tests call this.
pub fn run_bytes(bytes: &[u8]) -> Result<(), String> {
    let mut harness = Harness::new(Config::default());
    for (index, step) in decode(bytes).iter().enumerate() {
        harness
            .step(step)
            .map_err(|e| format!("step {index} ({step:?}): {e}"))?;
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    /// One bit of input, as a yes/no.
    fn flag(&mut self) -> bool {
        self.next().unwrap_or(0) & 1 == 0
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.bytes.get(self.at).copied();
        self.at += 1;
        b
    }

    fn pick<T: Copy>(&mut self, table: &[T]) -> T {
        let b = self.next().unwrap_or(0) as usize;
        table[b % table.len()]
    }

    fn pick_command(&mut self) -> Command {
        self.pick(&[0u8, 1, 2, 3, 4, 5]).into_command()
    }

    fn program(&mut self) -> ProgramRequest {
        let rate = self.pick(&[
            0.1,
            1.0,
            2.0,
            36.0,
            120.0,
            600.0,
            999.0,
            0.05,
            1200.0,
            f64::NAN,
        ]);
        let vtbi = self.pick(&[0.1, 0.5, 2.0, 10.0, 50.0, 300.0, 0.05, f64::INFINITY]);
        let end_action = match self.next().unwrap_or(0) % 4 {
            0 => EndAction::Stop,
            1 => EndAction::Kvo { rate_ml_per_h: 0.1 },
            2 => EndAction::Kvo { rate_ml_per_h: 5.0 },
            _ => EndAction::Kvo {
                rate_ml_per_h: 30.0,
            },
        };
        let bolus = match self.next().unwrap_or(0) % 4 {
            0 | 1 => None,
            2 => Some(BolusProgram {
                volume_ml: 1.0,
                lockout_min: 5.0,
                max_ml_per_h: 10.0,
            }),
            _ => Some(BolusProgram {
                volume_ml: self.pick(&[0.5, 2.0, 60.0]),
                lockout_min: self.pick(&[1.0, 10.0, 30.0]),
                max_ml_per_h: self.pick(&[3.0, 8.0, 40.0]),
            }),
        };
        let drug_id = match self.next().unwrap_or(0) % 4 {
            0 | 1 => None,
            2 => Some(String::from("morphine-1")),
            _ => Some(String::from(if self.flag() { "saline" } else { "unknown" })),
        };
        let reservoir_ml = match self.next().unwrap_or(0) % 3 {
            0 => None,
            _ => Some(self.pick(&[0.4, 1.5, 5.0, 100.0])),
        };
        ProgramRequest {
            drug_id,
            rate_ml_per_h: rate,
            vtbi_ml: vtbi,
            end_action,
            bolus,
            reservoir_ml,
        }
    }

    fn power(&mut self) -> SensorChange {
        match self.next().unwrap_or(0) % 4 {
            0 | 1 => SensorChange::Mains {
                present: self.flag(),
            },
            _ => SensorChange::Battery {
                percent: self.pick(&[100.0, 80.0, 50.0, 10.0, 2.0, 0.0]),
                minutes_left: self.pick(&[600.0, 300.0, 45.0, 25.0, 8.0, 2.0, 0.0]),
            },
        }
    }

    fn mechanism(&mut self) -> SensorChange {
        match self.next().unwrap_or(0) % 5 {
            0 => SensorChange::Temperature {
                celsius: self.pick(&[30.0, 50.0, 60.0]),
            },
            1 => SensorChange::SelfTest(if self.next().unwrap_or(0) & 3 == 0 {
                SelfTest::Failed { code: 7 }
            } else {
                SelfTest::Passed
            }),
            2 => SensorChange::EncoderFactor {
                factor: self.pick(&[1.0, 1.0, 1.0, 0.0, 0.5, 0.95, 1.05, 2.0]),
            },
            3 => SensorChange::MechanismFactor {
                factor: self.pick(&[1.0, 1.0, 0.2, 0.8, 1.2, 3.0]),
            },
            _ => SensorChange::EncoderReading {
                factor: self.pick(&[1.0, 0.0, 0.5, 0.9, 1.1, 2.0]),
            },
        }
    }

    fn odd_reading(&mut self) -> Step {
        let value = self.pick(&[
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            0.0,
            1.0e9,
            25.0,
        ]);
        let sensor = self.pick(&[
            SensorField::DownstreamPressure,
            SensorField::UpstreamPressure,
            SensorField::Air,
            SensorField::BatteryPercent,
            SensorField::BatteryMinutesLeft,
            SensorField::MotorVolume,
            SensorField::CommandedVolume,
            SensorField::MechanismTemperature,
        ]);
        Step::OddReading { sensor, value }
    }
}

trait IntoCommand {
    fn into_command(self) -> Command;
}

impl IntoCommand for u8 {
    fn into_command(self) -> Command {
        match self {
            0 => Command::Pause,
            1 => Command::Resume,
            2 => Command::Stop,
            3 => Command::SilenceAudio,
            4 => Command::ConfirmOverride,
            _ => Command::CancelOverride,
        }
    }
}

/// Whole strokes in a non-negative stroke count (`f64::floor` is not in `core`: the crate is
/// `no_std`, and the fuzz target builds it without `std`).
fn whole_strokes(count: f64) -> f64 {
    if count.is_finite() && (0.0..9.0e15).contains(&count) {
        (count as u64) as f64
    } else {
        0.0
    }
}

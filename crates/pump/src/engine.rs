//! The pump state machine and alarm engine: the one place that turns time, commands and sensor
//! frames into a state, a set of active alarms, a motor command, events and the next deadline.
//!
//! Shape of every call (`handle`, `handle_timeout`): `advance_time` (watchdogs, volume estimate),
//! then the input, then `settle` (timers, alarms, their effects on the state, and last of all the
//! motor command and the deadline, computed from the state and the active alarms only). The
//! sensor-frame path does not allocate: every table has a fixed size and the event queue is
//! preallocated to `EVENTS_MAX`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::alarm::{ActiveAlarm, AlarmDetail, AlarmKind, Annunciation, AudioState, MotorEffect};
use crate::alarm::{Priority, SensorField};
use crate::config::Config;
use crate::library::DrugLibrary;
use crate::program::{self, EndAction, LimitBreach, Program, ProgramRequest};
use crate::stroke::StrokeWatch;
use crate::types::{
    BolusDenial, Command, CommandError, Event, Input, MotorCommand, SelfTest, SensorFrame, State,
    Status, TimedEvent,
};

/// Capacity of the event queue. Preallocated, so queueing never allocates.
pub const EVENTS_MAX: usize = 1024;
/// When fewer than this many free slots are left, the driver is not draining events: the core
/// raises `system_error` (motor off) while there is still room to record why. Events that find the
/// queue completely full are counted and reported as `Event::EventsLost` once there is room.
pub const EVENTS_RESERVE: usize = 64;
/// Buckets of the rolling air accumulator (current bucket + 90 full ones of `air_window_ms / 90`).
pub const AIR_BUCKETS_MAX: usize = 91;
/// Buckets of the rolling hourly volume (current bucket + 60 full one-minute buckets).
pub const HOURLY_BUCKETS_MAX: usize = 61;
/// Stops remembered per alarm kind for `repeated_alarm`; `Config::repeated_alarm_count` ≤ this.
pub const REPEAT_HISTORY_MAX: usize = 8;

const ALARM_KINDS: usize = AlarmKind::ALL.len();

/// What a working sensor can report; anything outside (or NaN, or infinite) is a failing sensor or
/// a corrupted frame, and the pump stops with `system_error` rather than act on it. Pressures: about
/// a vacuum to about 100 psi (five times ECRI's highest occlusion limit). Air: at most 1 L per
/// frame. Battery: a percentage; a week of minutes is already absurd, 10⁶ is a hard bound. Volumes:
/// totals since power-on, 10¹² µL (a million litres) bounds any real life time. Temperature: the
/// range of electronic parts.
const PLAUSIBLE: [(SensorField, f64, f64); 8] = [
    (SensorField::DownstreamPressure, -800.0, 5000.0),
    (SensorField::UpstreamPressure, -800.0, 5000.0),
    (SensorField::Air, 0.0, 1.0e6),
    (SensorField::BatteryPercent, 0.0, 100.0),
    (SensorField::BatteryMinutesLeft, 0.0, 1.0e6),
    (SensorField::MotorVolume, 0.0, 1.0e12),
    (SensorField::CommandedVolume, 0.0, 1.0e12),
    (SensorField::MechanismTemperature, -50.0, 200.0),
];

/// mL/h → µL/ms: 1 mL/h = 1000 µL / 3 600 000 ms.
fn ul_per_ms(rate_ml_per_h: f64) -> f64 {
    rate_ml_per_h / 3600.0
}

/// Milliseconds to move `volume_ul` at `rate_ml_per_h`, rounded up, at least 1 (so a deadline is
/// always in the future), saturating instead of overflowing.
fn ms_to_deliver(volume_ul: f64, rate_ml_per_h: f64) -> u64 {
    let ms = volume_ul / ul_per_ms(rate_ml_per_h);
    if !(ms.is_finite()) || ms >= 1.0e15 {
        return u64::MAX / 4;
    }
    // `as` saturates and truncates; add one to round up without needing `ceil` (not in core).
    let whole = ms as u64;
    let up = if (whole as f64) < ms {
        whole + 1
    } else {
        whole
    };
    up.max(1)
}

/// A sum over a rolling window, kept in fixed buckets so it never allocates and never grows.
#[derive(Debug, Clone)]
struct Rolling<const N: usize> {
    bucket_ms: u64,
    buckets: [f64; N],
    head: usize,
    head_start_ms: u64,
    sum: f64,
}

impl<const N: usize> Rolling<N> {
    fn new(window_ms: u64, now_ms: u64) -> Self {
        Rolling {
            bucket_ms: window_ms.div_ceil(N as u64 - 1).max(1),
            buckets: [0.0; N],
            head: 0,
            head_start_ms: now_ms,
            sum: 0.0,
        }
    }

    fn advance(&mut self, now_ms: u64) {
        if now_ms < self.head_start_ms.saturating_add(self.bucket_ms) {
            return;
        }
        let steps = (now_ms - self.head_start_ms) / self.bucket_ms;
        if steps >= N as u64 {
            self.buckets = [0.0; N];
        } else {
            for _ in 0..steps {
                self.head = (self.head + 1) % N;
                self.buckets[self.head] = 0.0;
            }
        }
        self.head_start_ms = self
            .head_start_ms
            .saturating_add(steps.saturating_mul(self.bucket_ms));
        // Re-sum at each rotation so floating-point drift cannot accumulate.
        self.sum = self.buckets.iter().sum();
    }

    fn add(&mut self, now_ms: u64, value: f64) {
        self.advance(now_ms);
        self.buckets[self.head] += value;
        self.sum += value;
    }

    /// Sum over at least the window (up to one bucket more: conservative).
    fn total(&self) -> f64 {
        self.sum.max(0.0)
    }

    fn clear(&mut self) {
        self.buckets = [0.0; N];
        self.sum = 0.0;
    }
}

/// The thresholds `check_flow` needs, copied out of `Config` (cheaper than cloning it all).
#[derive(Debug, Clone, Copy)]
struct FlowLimits {
    motor_encoder_mismatch_ul: f64,
    motor_encoder_mismatch_fraction: f64,
    motor_encoder_window_ul: f64,
    flow_error_ul_min: f64,
    stroke_volume_ul: f64,
    over_infusion_immediate_ul: f64,
    flow_window_ms: u64,
    flow_error_immediate_fraction: f64,
    flow_error_sustained_fraction: f64,
    flow_error_sustained_ms: u64,
}

impl FlowLimits {
    fn of(c: &Config) -> FlowLimits {
        FlowLimits {
            motor_encoder_mismatch_ul: c.motor_encoder_mismatch_ul,
            motor_encoder_mismatch_fraction: c.motor_encoder_mismatch_fraction,
            motor_encoder_window_ul: c.motor_encoder_window_ul,
            flow_error_ul_min: c.flow_error_ul_min,
            stroke_volume_ul: c.stroke_volume_ul,
            over_infusion_immediate_ul: c.over_infusion_immediate_ul,
            flow_window_ms: c.flow_window_ms,
            flow_error_immediate_fraction: c.flow_error_immediate_fraction,
            flow_error_sustained_fraction: c.flow_error_sustained_fraction,
            flow_error_sustained_ms: c.flow_error_sustained_ms,
        }
    }
}

/// Times of the last few motor stops caused by one alarm kind.
#[derive(Debug, Clone, Copy, Default)]
struct StopHistory {
    times_ms: [u64; REPEAT_HISTORY_MAX],
    len: usize,
    next: usize,
}

impl StopHistory {
    fn record(&mut self, now_ms: u64) {
        self.times_ms[self.next] = now_ms;
        self.next = (self.next + 1) % REPEAT_HISTORY_MAX;
        self.len = (self.len + 1).min(REPEAT_HISTORY_MAX);
    }

    fn count_since(&self, since_ms: u64) -> usize {
        self.times_ms[..self.len]
            .iter()
            .filter(|t| **t >= since_ms)
            .count()
    }
}

/// The last plausible sensor values.
#[derive(Debug, Clone, Copy)]
struct Sensors {
    downstream_pressure_mmhg: f64,
    upstream_pressure_mmhg: f64,
    door_closed: bool,
    battery_percent: f64,
    battery_minutes_left: f64,
    mains_present: bool,
    mechanism_temperature_c: f64,
}

/// Flow accounting over one window: what the core commanded, what the encoder measured and what
/// the motor controller counted.
#[derive(Debug, Clone, Copy, Default)]
struct FlowWindow {
    start_ms: u64,
    expected_ul: f64,
    measured_ul: f64,
    controller_ul: f64,
}

/// Motor controller and encoder compared cumulatively: leaky sums that forget in proportion to the
/// volume the controller commands (`Config::motor_encoder_window_ul`), never with time and never
/// at a flow-window boundary, so a slow fault builds up evidence as surely as a fast one.
#[derive(Debug, Clone, Copy, Default)]
struct MotorCheck {
    /// Leaky sum of what the controller counted.
    controller_ul: f64,
    /// Leaky sum of what the encoder measured.
    measured_ul: f64,
}

impl MotorCheck {
    /// Add one frame's counts and say whether they now disagree beyond the tolerance
    /// (`floor + fraction × compared volume`).
    fn add(&mut self, controller_ul: f64, measured_ul: f64, c: &FlowLimits) -> bool {
        // Linear leak (no `exp` in core): exact enough while one frame's volume is small against
        // the window, and a frame larger than the window simply starts afresh.
        let keep = (1.0 - controller_ul.max(0.0) / c.motor_encoder_window_ul).max(0.0);
        self.controller_ul = self.controller_ul * keep + controller_ul;
        self.measured_ul = self.measured_ul * keep + measured_ul;
        let compared_ul = self.controller_ul.max(self.measured_ul);
        let tolerance_ul =
            c.motor_encoder_mismatch_ul + c.motor_encoder_mismatch_fraction * compared_ul;
        (self.measured_ul - self.controller_ul).abs() > tolerance_ul
    }
}

/// The air bubble passing the detector now: air of consecutive frames, until liquid passes.
#[derive(Debug, Clone, Copy, Default)]
struct BubbleRun {
    /// Air in the bubble so far.
    air_ul: f64,
    /// Liquid moved since the last frame with more than trace air.
    liquid_since_air_ul: f64,
}

#[derive(Debug, Clone, Copy)]
struct BolusRun {
    start_delivered_ul: f64,
    volume_ul: f64,
}

/// Pressure relief in progress after a downstream occlusion.
#[derive(Debug, Clone, Copy)]
struct Relief {
    /// Stop when the smoothed line pressure is at or below this.
    target_mmhg: f64,
    /// Volume the relief may still draw back.
    left_ul: f64,
}

/// A program waiting for soft-limit confirmation, and the state to return to if it is cancelled.
#[derive(Debug, Clone)]
struct Pending {
    program: Program,
    breaches: Vec<LimitBreach>,
    return_to: State,
}

/// The pump control core. See the crate docs for how it is driven.
#[derive(Debug, Clone)]
pub struct Pump {
    config: Config,
    library: DrugLibrary,
    now_ms: u64,
    state: State,
    program: Option<Program>,
    pending: Option<Pending>,

    sensors: Option<Sensors>,
    last_frame_ms: Option<u64>,
    encoder_ul_last: Option<f64>,
    controller_ul_last: Option<f64>,
    mains_seen: bool,
    /// The running bubble's air if it is above the single-bubble limit, else 0.
    bubble_ul: f64,
    bubble_run: BubbleRun,
    air: Rolling<AIR_BUCKETS_MAX>,

    /// Volume counted as delivered under the program, for everything that limits delivery (VTBI,
    /// hourly limit, near end, reservoir, bolus): at each frame the LARGER of the encoder's and the
    /// motor controller's counts (a blind encoder or a controller counting short cannot hide
    /// delivery), integrated from the motor command between frames.
    counted_ul: f64,
    /// The encoder's count under the program at the last frame.
    delivered_measured_ul: f64,
    /// The motor controller's count under the program at the last frame.
    delivered_controller_ul: f64,
    /// The encoder's figure for the record and the status: the encoder's count at each frame,
    /// integrated from the motor command between frames.
    delivered_record_ul: f64,
    hourly: Rolling<HOURLY_BUCKETS_MAX>,
    hourly_limited: bool,
    /// A bolus was refused for the hourly limit and a full bolus is still not available.
    hourly_denied: bool,
    bolus: Option<BolusRun>,
    last_bolus_start_ms: Option<u64>,
    lockout_until_ms: u64,

    flow: FlowWindow,
    motor_check: MotorCheck,
    over: Option<AlarmDetail>,
    under: Option<AlarmDetail>,
    over_slight_since_ms: Option<u64>,
    under_slight_since_ms: Option<u64>,
    /// When `over_infusion` was last raised (kept across acknowledgements and programs: it is the
    /// mechanism's history, and only a power cycle forgets it).
    over_raised_ms: Option<u64>,

    /// The first system fault; never cleared (power cycle or service only).
    fault: Option<AlarmDetail>,
    /// The per-stroke line monitor (occlusion and disconnection verdicts).
    watch: StrokeWatch,
    /// Pressure relief in progress.
    relief: Option<Relief>,
    /// Smoothed line pressure when the pump last started running (relief target of last resort).
    run_start_level: Option<f64>,
    /// The backstop's spell at the limit: since when the downstream pressure has been above
    /// `occlusion_downstream_mmhg` at least once in every stroke the pump pushed.
    limit_since_ms: Option<u64>,
    /// Encoder total at the last frame of the spell above the release level.
    limit_above_at_ul: f64,
    /// Volume commanded backwards since the last frame: the encoder and controller totals may go
    /// down by this much.
    reverse_allowance_ul: f64,
    /// When the pump entered `Paused` or `Programmed` (for `paused_too_long`).
    waiting_since_ms: u64,
    stops: [StopHistory; ALARM_KINDS],
    /// `repeated_alarm` raised and not yet acknowledged.
    repeated: Option<AlarmDetail>,

    alarms: [Option<ActiveAlarm>; ALARM_KINDS],
    /// How many entries of `alarms` are `Some` (lets the hot path skip the table when empty).
    active_count: usize,
    events: VecDeque<TimedEvent>,
    events_lost: u64,
    motor: MotorCommand,
    deadline_ms: Option<u64>,
}

impl Pump {
    /// Power-on at `now_ms`. An invalid `config` (see `Config::validate`) starts the pump in `Fault`.
    pub fn new(config: Config, library: DrugLibrary, now_ms: u64) -> Pump {
        let valid = config.validate().is_ok();
        let air = Rolling::new(config.air_window_ms.max(1), now_ms);
        let hourly = Rolling::new(60 * 60_000, now_ms);
        let mut pump = Pump {
            config,
            library,
            now_ms,
            state: State::Idle,
            program: None,
            pending: None,
            sensors: None,
            last_frame_ms: None,
            encoder_ul_last: None,
            controller_ul_last: None,
            mains_seen: false,
            bubble_ul: 0.0,
            bubble_run: BubbleRun::default(),
            air,
            counted_ul: 0.0,
            delivered_measured_ul: 0.0,
            delivered_controller_ul: 0.0,
            delivered_record_ul: 0.0,
            hourly,
            hourly_limited: false,
            hourly_denied: false,
            bolus: None,
            last_bolus_start_ms: None,
            lockout_until_ms: 0,
            flow: FlowWindow {
                start_ms: now_ms,
                ..FlowWindow::default()
            },
            motor_check: MotorCheck::default(),
            over: None,
            under: None,
            over_slight_since_ms: None,
            under_slight_since_ms: None,
            over_raised_ms: None,
            fault: None,
            watch: StrokeWatch::default(),
            relief: None,
            run_start_level: None,
            limit_since_ms: None,
            limit_above_at_ul: 0.0,
            reverse_allowance_ul: 0.0,
            waiting_since_ms: now_ms,
            stops: [StopHistory::default(); ALARM_KINDS],
            repeated: None,
            alarms: [None; ALARM_KINDS],
            active_count: 0,
            events: VecDeque::with_capacity(EVENTS_MAX),
            events_lost: 0,
            motor: MotorCommand::Stopped,
            deadline_ms: None,
        };
        if !valid {
            pump.raise_fault(AlarmDetail::InvalidConfig);
        }
        pump.settle();
        pump
    }

    /// Power-on after a power loss, with the program that was running (kept in non-volatile memory
    /// by the device; the reference asks for ≥ 96 h) and the volume it had delivered. The pump never
    /// resumes by itself: it starts `Stopped` with that program, so `Start` continues the remaining
    /// VTBI once someone has checked the line. The program is checked again against this config and
    /// library; if it no longer passes (or `delivered_ml` is not a sane number) the pump starts
    /// `Idle` and records `ProgramRejected` or nothing to restore.
    pub fn after_power_loss(
        config: Config,
        library: DrugLibrary,
        now_ms: u64,
        program: &ProgramRequest,
        delivered_ml: f64,
    ) -> Pump {
        let mut pump = Pump::new(config, library, now_ms);
        if pump.state == State::Fault || !(delivered_ml.is_finite() && delivered_ml >= 0.0) {
            return pump;
        }
        match program::check(program, &pump.config, &pump.library) {
            Ok(checked) => {
                let mut restored = checked.program;
                // Breaches of soft limits were confirmed when the program was first entered.
                restored.overrides_confirmed = !checked.breaches.is_empty();
                pump.accept_program(restored);
                pump.counted_ul = delivered_ml * 1000.0;
                pump.delivered_measured_ul = pump.counted_ul;
                pump.delivered_controller_ul = pump.counted_ul;
                pump.delivered_record_ul = pump.counted_ul;
                pump.set_state(State::Stopped);
            }
            Err(error) => pump.emit(Event::ProgramRejected { error }),
        }
        pump.settle();
        pump
    }

    /// Handle one input at `now_ms` (monotonic). Refused commands change nothing but may be recorded
    /// (`ProgramRejected`, `BolusDenied`).
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Result<(), CommandError> {
        self.advance_time(now_ms);
        let result = match input {
            Input::Command(command) => self.command(command),
            Input::Sensors(frame) => {
                self.sensor_frame(&frame);
                Ok(())
            }
        };
        self.settle();
        result
    }

    /// Run the timers due at `now_ms`. Call it at (or just after) `next_deadline_ms`.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.advance_time(now_ms);
        self.settle();
    }

    /// When the core next needs to run even if no input arrives. Calling later than this plus
    /// `Config::deadline_tolerance_ms` raises `system_error` (watchdog).
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.deadline_ms
    }

    /// The oldest event not yet polled.
    pub fn poll_event(&mut self) -> Option<TimedEvent> {
        let event = self.events.pop_front();
        if self.events_lost > 0 && self.events.len() < EVENTS_MAX {
            let count = core::mem::take(&mut self.events_lost);
            self.events.push_back(TimedEvent {
                at_ms: self.now_ms,
                event: Event::EventsLost { count },
            });
        }
        event
    }

    /// What the motor must do now. Computed once per call by `compute_motor`.
    pub fn motor_command(&self) -> MotorCommand {
        self.motor
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn library(&self) -> &DrugLibrary {
        &self.library
    }

    /// The active program, if any.
    pub fn program(&self) -> Option<&Program> {
        self.program.as_ref()
    }

    /// The time of the last call into the core.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Volume delivered under the current program in µL as the encoder measured it (estimated
    /// between frames): the figure for the record and the status.
    pub fn delivered_ul(&self) -> f64 {
        self.delivered_record_ul
    }

    /// Volume counted as delivered under the current program in µL for the VTBI, the hourly limit,
    /// near end, the reservoir and a bolus: the larger of the encoder's and the motor controller's
    /// counts (estimated between frames). Equal to `delivered_ul` while the two agree.
    pub fn delivered_counted_ul(&self) -> f64 {
        self.counted_ul
    }

    /// Whether the per-stroke monitor can tell a disconnected line now: it has learned the line
    /// (baseline and how fast each pulse drains) and the pulses keep settling between strokes.
    /// Not at rates where the strokes come faster than the line drains (docs/pump-core.md).
    pub fn line_monitor_armed(&self) -> bool {
        self.watch.disconnection_armed(&self.config)
    }

    /// One active alarm, if it is active.
    pub fn alarm(&self, kind: AlarmKind) -> Option<&ActiveAlarm> {
        self.alarms[kind.index()].as_ref()
    }

    /// Every active alarm, in `AlarmKind::ALL` order (no allocation).
    pub fn active_alarms(&self) -> impl Iterator<Item = &ActiveAlarm> {
        self.alarms.iter().flatten()
    }

    /// What the screen and speaker must show now.
    pub fn annunciation(&self) -> Annunciation {
        let mut active: Vec<ActiveAlarm> = self.active_alarms().copied().collect();
        active.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.raised_at_ms.cmp(&b.raised_at_ms))
                .then(a.kind.cmp(&b.kind))
        });
        let now = self.now_ms;
        let audible =
            |a: &ActiveAlarm| !a.acknowledged && a.audio_paused_until_ms.is_none_or(|u| u <= now);
        let sounding = active.iter().find(|a| audible(a)).copied();
        let audio = if sounding.is_some() {
            AudioState::Sounding
        } else {
            active
                .iter()
                .filter(|a| !a.acknowledged)
                .filter_map(|a| a.audio_paused_until_ms.filter(|u| *u > now))
                .min()
                .map_or(AudioState::Quiet, |until_ms| AudioState::Paused {
                    until_ms,
                })
        };
        Annunciation {
            sounding,
            audio,
            active,
        }
    }

    pub fn status(&self) -> Status {
        let (remaining_ml, minutes_left) = match &self.program {
            Some(p) => {
                let remaining = (p.vtbi_ml() - self.counted_ul / 1000.0).max(0.0);
                let minutes = matches!(self.state, State::Infusing | State::Paused)
                    .then(|| remaining / p.rate_ml_per_h() * 60.0);
                (remaining, minutes)
            }
            None => (0.0, None),
        };
        let top_alarm = self
            .active_alarms()
            .max_by(|a, b| {
                a.priority
                    .cmp(&b.priority)
                    .then(b.raised_at_ms.cmp(&a.raised_at_ms))
            })
            .map(|a| (a.kind, a.priority));
        let s = self.sensors;
        Status {
            state: self.state,
            program: self.program.clone(),
            motor: self.motor,
            delivered_ml: self.delivered_record_ul / 1000.0,
            remaining_ml,
            minutes_left,
            battery_percent: s.map_or(0.0, |s| s.battery_percent),
            battery_minutes_left: s.map_or(0.0, |s| s.battery_minutes_left),
            mains_present: s.is_some_and(|s| s.mains_present),
            downstream_pressure_mmhg: s.map_or(0.0, |s| s.downstream_pressure_mmhg),
            top_alarm,
            delivered_ml_last_hour: self.hourly.total() / 1000.0,
            air_ul_rolling_15min: self.air.total(),
            bolus_running: self.bolus.is_some(),
            last_sensor_frame_ms: self.last_frame_ms,
            mechanism_temperature_c: s.map_or(0.0, |s| s.mechanism_temperature_c),
        }
    }

    // ---------------------------------------------------------------- time

    /// Moves the clock: integrates the volume the current motor command moved, and checks the
    /// watchdogs (clock going backwards, call later than the announced deadline).
    fn advance_time(&mut self, now_ms: u64) {
        let previous = self.now_ms;
        if now_ms < previous {
            self.raise_fault(AlarmDetail::ClockWentBackwards {
                by_ms: previous - now_ms,
            });
            return;
        }
        let elapsed_ms = (now_ms - previous) as f64;
        match self.motor {
            MotorCommand::Run { rate_ml_per_h } => {
                let moved = ul_per_ms(rate_ml_per_h) * elapsed_ms;
                self.flow.expected_ul += moved;
                if self.program.is_some() {
                    self.counted_ul += moved;
                    self.delivered_record_ul += moved;
                }
            }
            MotorCommand::Reverse { rate_ml_per_h } => {
                // Relief draws fluid back from the line: it was counted when it was pushed, and it
                // will be counted again when it is pushed again.
                let moved = ul_per_ms(rate_ml_per_h) * elapsed_ms;
                self.flow.expected_ul -= moved;
                self.reverse_allowance_ul += moved;
                if let Some(r) = &mut self.relief {
                    r.left_ul -= moved;
                }
                if self.program.is_some() {
                    self.counted_ul -= moved;
                    self.delivered_record_ul -= moved;
                }
            }
            MotorCommand::Stopped => {}
        }
        self.now_ms = now_ms;
        if let Some(deadline) = self.deadline_ms
            && now_ms > deadline.saturating_add(self.config.deadline_tolerance_ms)
        {
            self.raise_fault(AlarmDetail::Watchdog {
                late_by_ms: now_ms - deadline,
            });
        }
    }

    // ---------------------------------------------------------------- sensors

    fn sensor_frame(&mut self, f: &SensorFrame) {
        let now = self.now_ms;
        self.last_frame_ms = Some(now);
        if let Some((sensor, value)) = self.implausible(f) {
            self.raise_fault(AlarmDetail::ImplausibleReading { sensor, value });
            // The switches are still believable; the numbers are not. Keep the last good numbers
            // and take the door and mains state, which only make the core more careful.
            if let Some(s) = &mut self.sensors {
                s.door_closed = f.door_closed;
                s.mains_present = f.mains_present;
            }
            return;
        }
        self.sensors = Some(Sensors {
            downstream_pressure_mmhg: f.downstream_pressure_mmhg,
            upstream_pressure_mmhg: f.upstream_pressure_mmhg,
            door_closed: f.door_closed,
            battery_percent: f.battery_percent,
            battery_minutes_left: f.battery_minutes_left,
            mains_present: f.mains_present,
            mechanism_temperature_c: f.mechanism_temperature_c,
        });
        self.mains_seen |= f.mains_present;

        // Volume: totals since power-on, so a lost frame loses nothing.
        let moved_ul = self
            .encoder_ul_last
            .map_or(0.0, |last| f.motor_volume_ul_total - last);
        let controller_ul = self
            .controller_ul_last
            .map_or(0.0, |last| f.commanded_volume_ul_total - last);
        self.encoder_ul_last = Some(f.motor_volume_ul_total);
        self.controller_ul_last = Some(f.commanded_volume_ul_total);
        // Delivery is counted as the larger of the two counts (conservative when they disagree: a
        // blind encoder must not let the pump run past the VTBI until the mismatch check trips).
        // Both are totals under the program, so a stroke the encoder reports late is no excess.
        let counted_ul = if self.program.is_some() {
            let before_ul = self.delivered_measured_ul.max(self.delivered_controller_ul);
            self.delivered_measured_ul += moved_ul;
            // Negative only during relief, within what the core commanded backwards (checked in
            // `implausible`).
            self.delivered_controller_ul += controller_ul;
            let after_ul = self.delivered_measured_ul.max(self.delivered_controller_ul);
            self.counted_ul = after_ul;
            self.delivered_record_ul = self.delivered_measured_ul;
            (after_ul - before_ul).max(0.0)
        } else {
            moved_ul.max(controller_ul)
        };
        self.hourly.add(now, counted_ul);
        self.update_hourly_limit();

        // Air: single bubble, and accumulated over the rolling window.
        let air_ul = f.air_ul_since_last_frame;
        self.air.add(now, air_ul);
        self.track_bubble(air_ul, moved_ul);

        // Mechanism health.
        if let SelfTest::Failed { code } = f.self_test {
            self.raise_fault(AlarmDetail::SelfTestFailed { code });
        }
        if f.mechanism_temperature_c > self.config.overheat_c {
            self.raise_fault(AlarmDetail::Overheating {
                temperature_c: f.mechanism_temperature_c,
            });
        }
        self.flow.measured_ul += moved_ul;
        self.flow.controller_ul += controller_ul.max(0.0);
        if self.motor_check.add(
            controller_ul.max(0.0),
            moved_ul.max(0.0),
            &FlowLimits::of(&self.config),
        ) {
            self.raise_fault(AlarmDetail::MotorEncoderMismatch {
                commanded_ul: self.motor_check.controller_ul,
                measured_ul: self.motor_check.measured_ul,
            });
        }
        self.check_flow();
        self.reverse_allowance_ul = 0.0;

        // The line's response to each stroke, and the relief after an occlusion. The experiment
        // goes on while the pressure interlock holds the motor (the reading is above the limit and
        // nothing else stops the pump): a blocked line keeps its pulses, an open one drains.
        let held_at_limit = matches!(self.motor, MotorCommand::Stopped)
            && self.state.motor_should_run()
            && self.top_stop_alarm().is_none()
            && self.limit_since_ms.is_some();
        let forward =
            (matches!(self.motor, MotorCommand::Run { .. }) || held_at_limit) && moved_ul >= 0.0;
        self.track_limit(f.downstream_pressure_mmhg, f.motor_volume_ul_total);
        self.watch.frame(
            now,
            f.downstream_pressure_mmhg,
            f.motor_volume_ul_total,
            forward,
            &self.config,
        );
        self.watch.update_disconnected(forward, &self.config);
        self.update_relief();
    }

    /// The backstop's spell at the limit: starts at the first frame above the limit, and ends once
    /// the pump has carried a whole stroke with the reading at or below
    /// `occlusion_limit_release_fraction` of it (the line drains again), or the reading is below
    /// that while the pump is not meant to run.
    fn track_limit(&mut self, pressure_mmhg: f64, encoder_total_ul: f64) {
        let c = &self.config;
        let release = c.occlusion_downstream_mmhg * c.occlusion_limit_release_fraction;
        if pressure_mmhg > c.occlusion_downstream_mmhg {
            self.limit_since_ms.get_or_insert(self.now_ms);
            self.limit_above_at_ul = encoder_total_ul;
        } else if self.limit_since_ms.is_some() {
            if pressure_mmhg > release {
                self.limit_above_at_ul = encoder_total_ul;
            } else if encoder_total_ul - self.limit_above_at_ul >= c.stroke_volume_ul
                || !self.state.motor_should_run()
            {
                self.limit_since_ms = None;
            }
        }
    }

    /// The backstop's verdict: the pressure has stayed at the limit for
    /// `occlusion_limit_persist_ms` (with zero: it is above the limit now).
    fn limit_exceeded(&self) -> bool {
        let c = &self.config;
        let Some(s) = self.sensors else { return false };
        if c.occlusion_limit_persist_ms == 0 {
            return s.downstream_pressure_mmhg > c.occlusion_downstream_mmhg;
        }
        self.limit_since_ms
            .is_some_and(|t| self.now_ms.saturating_sub(t) >= c.occlusion_limit_persist_ms)
    }

    /// Where relief brings the line back to: the venous baseline the stroke monitor learned, else
    /// the level before the held pulses or where the line was last seen draining, else the level
    /// when the pump last started; plus `relief_margin_mmhg`.
    fn relief_target(&self) -> f64 {
        let base = self
            .watch
            .venous_baseline()
            .or(self.watch.baseline())
            .or(self.run_start_level)
            .unwrap_or(0.0);
        base + self.config.relief_margin_mmhg
    }

    /// Ends the relief once the line is back near its baseline (or the volume cap is used), and
    /// clears the per-stroke occlusion verdict once the line has relaxed.
    fn update_relief(&mut self) {
        let Some(level) = self.watch.level() else {
            return;
        };
        if let Some(r) = self.relief
            && (level <= r.target_mmhg || r.left_ul <= 0.0)
        {
            self.relief = None;
        }
        if self.watch.occluded.is_some()
            && self.relief.is_none()
            && !self.state.motor_should_run()
            && level <= self.relief_target()
        {
            self.watch.occluded = None;
        }
    }

    /// Relief may run now: after `occlusion_downstream` stopped the pump, door closed, no fault,
    /// battery not depleted, volume left.
    fn relief_allowed(&self) -> bool {
        let Some(r) = self.relief else { return false };
        let Some(s) = self.sensors else { return false };
        r.left_ul > 0.0
            && self.state == State::StoppedByAlarm
            && self.fault.is_none()
            && self.alarm(AlarmKind::OcclusionDownstream).is_some()
            && s.door_closed
            && (s.mains_present || s.battery_minutes_left >= self.config.battery_depleted_minutes)
    }

    /// One bubble is the air of consecutive frames until `air_bubble_gap_ul` of liquid has passed
    /// with no more than trace air: the detector reports air stroke by stroke, so a bubble larger
    /// than a stroke is spread over several frames (and, at low rates, over frames that show no air
    /// because nothing moved). Alarms as soon as the running bubble exceeds the limit.
    fn track_bubble(&mut self, air_ul: f64, moved_ul: f64) {
        let c = &self.config;
        let run = &mut self.bubble_run;
        if air_ul > c.air_trace_ul {
            run.air_ul += air_ul;
            run.liquid_since_air_ul = 0.0;
        } else {
            run.liquid_since_air_ul += (moved_ul - air_ul).max(0.0);
            if run.liquid_since_air_ul >= c.air_bubble_gap_ul {
                run.air_ul = 0.0;
            } else {
                run.air_ul += air_ul;
            }
        }
        self.bubble_ul = if run.air_ul > c.air_single_bubble_ul {
            run.air_ul
        } else {
            0.0
        };
    }

    /// A reading that cannot be real. Totals must not go backwards (beyond rounding).
    fn implausible(&self, f: &SensorFrame) -> Option<(SensorField, f64)> {
        for (field, min, max) in PLAUSIBLE {
            let value = match field {
                SensorField::DownstreamPressure => f.downstream_pressure_mmhg,
                SensorField::UpstreamPressure => f.upstream_pressure_mmhg,
                SensorField::Air => f.air_ul_since_last_frame,
                SensorField::BatteryPercent => f.battery_percent,
                SensorField::BatteryMinutesLeft => f.battery_minutes_left,
                SensorField::MotorVolume => f.motor_volume_ul_total,
                SensorField::CommandedVolume => f.commanded_volume_ul_total,
                SensorField::MechanismTemperature => f.mechanism_temperature_c,
            };
            if !(value.is_finite() && value >= min && value <= max) {
                return Some((field, value));
            }
        }
        const ROUNDING_UL: f64 = 0.001;
        // Relief runs the mechanism backwards: the totals may go down by what was commanded.
        let allowed_ul = ROUNDING_UL + self.reverse_allowance_ul * 1.001;
        if let Some(last) = self.encoder_ul_last
            && f.motor_volume_ul_total < last - allowed_ul
        {
            return Some((SensorField::MotorVolume, f.motor_volume_ul_total));
        }
        if let Some(last) = self.controller_ul_last
            && f.commanded_volume_ul_total < last - allowed_ul
        {
            return Some((SensorField::CommandedVolume, f.commanded_volume_ul_total));
        }
        None
    }

    /// Over/under infusion with GPCA's two thresholds:
    /// far off in one window alarms at once, slightly off must last `flow_error_sustained_ms`.
    fn check_flow(&mut self) {
        let c = FlowLimits::of(&self.config);
        let w = self.flow;
        let now = self.now_ms;
        // A stroke finishing after a command change is not over-infusion.
        let over_floor_ul = c.flow_error_ul_min.max(c.stroke_volume_ul);
        let excess_ul = w.measured_ul - w.expected_ul;
        let flow_detail = AlarmDetail::Flow {
            measured_ml: w.measured_ul / 1000.0,
            expected_ml: w.expected_ul / 1000.0,
        };
        // The same excess in the motor controller's own count means the controller itself ran more
        // than the core commanded (a hardware runaway), not an encoder reading high.
        let controller_excess_ul = w.controller_ul - w.expected_ul;
        let immediate_ul = c.over_infusion_immediate_ul.max(over_floor_ul);
        if excess_ul > immediate_ul {
            self.over_infusion_found(flow_detail, controller_excess_ul > immediate_ul);
        }
        if now.saturating_sub(w.start_ms) < c.flow_window_ms {
            return;
        }
        // End of a window: classify it.
        let expected = w.expected_ul;
        let far_ul = (c.flow_error_immediate_fraction * expected).max(over_floor_ul);
        let slight_ul = (c.flow_error_sustained_fraction * expected).max(over_floor_ul);
        let far_over = excess_ul > far_ul;
        let slight_over = excess_ul > slight_ul;
        let shortfall_ul = -excess_ul;
        let running = matches!(self.motor, MotorCommand::Run { .. });
        let far_under = running
            && shortfall_ul > (c.flow_error_immediate_fraction * expected).max(c.flow_error_ul_min);
        let slight_under = running
            && shortfall_ul > (c.flow_error_sustained_fraction * expected).max(c.flow_error_ul_min);
        if far_over {
            self.over_infusion_found(flow_detail, controller_excess_ul > far_ul);
        }
        if slight_over {
            let since = *self.over_slight_since_ms.get_or_insert(w.start_ms);
            if now - since >= c.flow_error_sustained_ms {
                self.over_infusion_found(flow_detail, controller_excess_ul > slight_ul);
            }
        } else {
            self.over_slight_since_ms = None;
            // A window within limits is evidence the mechanism is back in hand (this matters while
            // the motor is stopped, when no command change would reset the verdict).
            if !far_over {
                self.over = None;
            }
        }
        if far_under {
            self.under = Some(flow_detail);
        }
        if slight_under {
            let since = *self.under_slight_since_ms.get_or_insert(w.start_ms);
            if now - since >= c.flow_error_sustained_ms {
                self.under = Some(flow_detail);
            }
        } else {
            self.under_slight_since_ms = None;
            self.under = None;
        }
        self.flow = FlowWindow {
            start_ms: now,
            ..FlowWindow::default()
        };
    }

    /// A verdict of over-infusion (the alarm is raised in this call's `settle`). Over-infusion from
    /// the mechanism latches like a fault when it is clearly hardware: the motor controller's own
    /// count also exceeds what the core commanded (`controller_over`: a runaway controller, which
    /// the motor/encoder comparison cannot see because both counts agree), or the alarm comes back
    /// within `repeated_alarm_window_ms` of the last one (it was acknowledged and the pump restarted,
    /// and the mechanism over-infused again).
    fn over_infusion_found(&mut self, detail: AlarmDetail, controller_over: bool) {
        let new_alarm =
            self.over.is_none() && self.alarms[AlarmKind::OverInfusion.index()].is_none();
        self.over = Some(detail);
        let now = self.now_ms;
        if controller_over {
            self.raise_fault(AlarmDetail::MotorRunaway {
                commanded_ul: self.flow.expected_ul,
                controller_ul: self.flow.controller_ul,
                measured_ul: self.flow.measured_ul,
            });
        }
        if new_alarm {
            if let Some(last_ms) = self.over_raised_ms
                && now.saturating_sub(last_ms) <= self.config.repeated_alarm_window_ms
            {
                self.raise_fault(AlarmDetail::OverInfusionRecurred {
                    after_ms: now.saturating_sub(last_ms),
                });
            }
            self.over_raised_ms = Some(now);
        }
    }

    fn update_hourly_limit(&mut self) {
        let Some(bolus) = self.program.as_ref().and_then(Program::bolus) else {
            self.hourly_limited = false;
            self.hourly_denied = false;
            return;
        };
        let limit_ul = bolus.max_ml_per_h * 1000.0;
        let total = self.hourly.total();
        if total + bolus.volume_ml * 1000.0 <= limit_ul {
            self.hourly_denied = false;
        }
        if total >= limit_ul {
            self.hourly_limited = true;
        } else if total <= limit_ul * self.config.hourly_resume_fraction {
            self.hourly_limited = false;
        }
    }

    // ---------------------------------------------------------------- commands

    /// Dispatch only: each command's decision and state change live in its own function below.
    fn command(&mut self, command: Command) -> Result<(), CommandError> {
        let name = command.name();
        match command {
            Command::Program(request) => self.program_command(name, &request),
            Command::ConfirmOverride => self.confirm_override(),
            Command::CancelOverride => self.cancel_override(),
            Command::Start => self.start_command(name),
            Command::Pause => self.pause_command(name),
            Command::Resume => self.resume_command(name),
            Command::Stop => self.stop_command(name),
            Command::SilenceAudio => self.silence_audio(),
            Command::Acknowledge(kind) => self.acknowledge(kind),
            Command::PatientBolus => self.patient_bolus(),
        }
    }

    fn program_command(
        &mut self,
        name: &'static str,
        request: &ProgramRequest,
    ) -> Result<(), CommandError> {
        match self.state {
            State::Idle
            | State::AwaitingConfirmation
            | State::Programmed
            | State::Stopped
            | State::Complete
            | State::StoppedByAlarm => self.program_request(request),
            State::Infusing | State::Paused | State::Kvo | State::Fault => {
                Err(not_allowed(name, self.state))
            }
        }
    }

    fn confirm_override(&mut self) -> Result<(), CommandError> {
        if self.state == State::Fault {
            return Err(CommandError::SystemFault);
        }
        let Some(pending) = self.pending.take() else {
            return Err(CommandError::NothingToConfirm);
        };
        for b in &pending.breaches {
            self.emit(Event::LimitOverrideConfirmed {
                field: b.field,
                value: b.value,
                zone: b.zone,
                limit: b.limit,
            });
        }
        let mut program = pending.program;
        program.overrides_confirmed = true;
        self.accept_program(program);
        Ok(())
    }

    fn cancel_override(&mut self) -> Result<(), CommandError> {
        if self.state == State::Fault {
            return Err(CommandError::SystemFault);
        }
        let Some(pending) = self.pending.take() else {
            return Err(CommandError::NothingToConfirm);
        };
        self.emit(Event::OverrideCancelled);
        self.set_state(pending.return_to);
        Ok(())
    }

    fn start_command(&mut self, name: &'static str) -> Result<(), CommandError> {
        match self.state {
            State::Programmed | State::Stopped => {
                self.may_run()?;
                if self.vtbi_reached() {
                    return Err(CommandError::ProgramComplete);
                }
                self.emit(Event::Started);
                self.set_state(State::Infusing);
                Ok(())
            }
            State::Idle
            | State::AwaitingConfirmation
            | State::Infusing
            | State::Paused
            | State::StoppedByAlarm
            | State::Complete
            | State::Kvo
            | State::Fault => Err(not_allowed(name, self.state)),
        }
    }

    fn pause_command(&mut self, name: &'static str) -> Result<(), CommandError> {
        match self.state {
            State::Infusing => {
                self.emit(Event::Paused);
                self.set_state(State::Paused);
                Ok(())
            }
            State::Idle
            | State::AwaitingConfirmation
            | State::Programmed
            | State::Paused
            | State::StoppedByAlarm
            | State::Complete
            | State::Kvo
            | State::Stopped
            | State::Fault => Err(not_allowed(name, self.state)),
        }
    }

    fn resume_command(&mut self, name: &'static str) -> Result<(), CommandError> {
        match self.state {
            State::Paused | State::StoppedByAlarm => {
                self.may_run()?;
                let to = self.running_state_for_program();
                self.emit(Event::Resumed);
                self.set_state(to);
                Ok(())
            }
            State::Idle
            | State::AwaitingConfirmation
            | State::Programmed
            | State::Infusing
            | State::Complete
            | State::Kvo
            | State::Stopped
            | State::Fault => Err(not_allowed(name, self.state)),
        }
    }

    fn stop_command(&mut self, name: &'static str) -> Result<(), CommandError> {
        match self.state {
            State::Programmed
            | State::Infusing
            | State::Paused
            | State::StoppedByAlarm
            | State::Complete
            | State::Kvo => {
                self.emit(Event::Stopped);
                self.set_state(State::Stopped);
                Ok(())
            }
            State::Idle | State::AwaitingConfirmation | State::Stopped | State::Fault => {
                Err(not_allowed(name, self.state))
            }
        }
    }

    fn silence_audio(&mut self) -> Result<(), CommandError> {
        let until_ms = self.now_ms.saturating_add(self.config.audio_pause_ms);
        let mut any = false;
        for kind in AlarmKind::ALL {
            let Some(alarm) = &mut self.alarms[kind.index()] else {
                continue;
            };
            if alarm.acknowledged {
                continue;
            }
            alarm.audio_paused_until_ms = Some(until_ms);
            any = true;
            self.emit(Event::AlarmSilenced {
                alarm: kind,
                until_ms,
            });
        }
        if any {
            Ok(())
        } else {
            Err(CommandError::NothingToSilence)
        }
    }

    fn acknowledge(&mut self, kind: AlarmKind) -> Result<(), CommandError> {
        let Some(alarm) = &mut self.alarms[kind.index()] else {
            return Err(CommandError::NoSuchAlarm { alarm: kind });
        };
        if alarm.acknowledged {
            return Ok(());
        }
        alarm.acknowledged = true;
        self.emit(Event::AlarmAcknowledged { alarm: kind });
        match kind {
            // The operator has seen the pattern: count afresh.
            AlarmKind::RepeatedAlarm => {
                if let Some(AlarmDetail::Repeated { alarm, .. }) = self.repeated.take() {
                    self.stops[alarm.index()] = StopHistory::default();
                }
            }
            // Acknowledging air means the operator removed it (primed the line).
            AlarmKind::AirInLine => {
                self.air.clear();
                self.bubble_ul = 0.0;
                self.bubble_run = BubbleRun::default();
            }
            _ => {}
        }
        Ok(())
    }

    fn program_request(&mut self, request: &ProgramRequest) -> Result<(), CommandError> {
        let checked = match program::check(request, &self.config, &self.library) {
            Ok(checked) => checked,
            Err(error) => {
                self.emit(Event::ProgramRejected {
                    error: error.clone(),
                });
                return Err(CommandError::Program(error));
            }
        };
        if checked.breaches.is_empty() {
            self.pending = None;
            self.accept_program(checked.program);
            return Ok(());
        }
        for b in &checked.breaches {
            self.emit(Event::ConfirmationRequired {
                field: b.field,
                value: b.value,
                zone: b.zone,
                limit: b.limit,
            });
        }
        let return_to = match &self.pending {
            Some(p) => p.return_to,
            None => self.state,
        };
        self.pending = Some(Pending {
            program: checked.program,
            breaches: checked.breaches,
            return_to,
        });
        self.set_state(State::AwaitingConfirmation);
        Ok(())
    }

    fn accept_program(&mut self, program: Program) {
        self.emit(Event::ProgramAccepted {
            program: program.clone(),
        });
        self.program = Some(program);
        self.counted_ul = 0.0;
        self.delivered_measured_ul = 0.0;
        self.delivered_controller_ul = 0.0;
        self.delivered_record_ul = 0.0;
        self.bolus = None;
        self.last_bolus_start_ms = None;
        self.lockout_until_ms = 0;
        self.over = None;
        self.under = None;
        self.over_slight_since_ms = None;
        self.under_slight_since_ms = None;
        self.flow = FlowWindow {
            start_ms: self.now_ms,
            ..FlowWindow::default()
        };
        // The rolling hourly volume is the patient's, not the program's: it is kept.
        self.update_hourly_limit();
        // A replaced program restarts the "programmed but not started" timer.
        self.waiting_since_ms = self.now_ms;
        self.set_state(State::Programmed);
    }

    fn patient_bolus(&mut self) -> Result<(), CommandError> {
        if self.state == State::Fault {
            return Err(CommandError::SystemFault);
        }
        let denial = match (self.program.as_ref().and_then(Program::bolus), self.state) {
            (None, _) => Some(BolusDenial::NoBolusProgram),
            (Some(_), s) if s != State::Infusing => Some(BolusDenial::NotInfusing),
            (Some(_), _) if self.bolus.is_some() => Some(BolusDenial::AlreadyRunning),
            (Some(_), _) if self.now_ms < self.lockout_until_ms => Some(BolusDenial::LockedOut {
                remaining_ms: self.lockout_until_ms - self.now_ms,
            }),
            (Some(b), _)
                if self.hourly_limited
                    || self.hourly.total() + b.volume_ml * 1000.0 > b.max_ml_per_h * 1000.0 =>
            {
                Some(BolusDenial::HourlyLimit {
                    delivered_ml_last_hour: self.hourly.total() / 1000.0,
                    limit_ml: b.max_ml_per_h,
                })
            }
            (Some(_), _) => None,
        };
        if let Some(denial) = denial {
            self.emit(Event::BolusDenied {
                reason: alloc::format!("{denial}"),
            });
            match denial {
                BolusDenial::LockedOut { .. } => {
                    self.raise(AlarmKind::BolusLockedOut, AlarmDetail::None)
                }
                BolusDenial::HourlyLimit { .. } => {
                    self.hourly_denied = true;
                    self.raise(AlarmKind::HourlyLimitReached, AlarmDetail::None);
                }
                BolusDenial::NoBolusProgram
                | BolusDenial::NotInfusing
                | BolusDenial::AlreadyRunning => {}
            }
            return Err(CommandError::BolusDenied(denial));
        }
        let Some(b) = self.program.as_ref().and_then(Program::bolus) else {
            return Err(CommandError::BolusDenied(BolusDenial::NoBolusProgram));
        };
        self.bolus = Some(BolusRun {
            start_delivered_ul: self.counted_ul,
            volume_ul: b.volume_ml * 1000.0,
        });
        self.last_bolus_start_ms = Some(self.now_ms);
        self.lockout_until_ms = self.now_ms.saturating_add(minutes_to_ms(b.lockout_min));
        self.emit(Event::BolusGiven {
            volume_ml: b.volume_ml,
        });
        Ok(())
    }

    /// Refuses to run the motor while a fault, a motor-stopping alarm or its condition is present.
    fn may_run(&self) -> Result<(), CommandError> {
        if self.fault.is_some() {
            return Err(CommandError::SystemFault);
        }
        // Sensors must be fresh too: starting on stale readings would trip the frame watchdog
        // (a fault) in the same call.
        let stale = self
            .last_frame_ms
            .is_none_or(|t| self.now_ms.saturating_sub(t) > self.config.sensor_timeout_ms);
        if self.sensors.is_none() || stale {
            return Err(CommandError::NoSensorData);
        }
        if let Some(alarm) = self.top_stop_alarm() {
            return Err(CommandError::BlockedByAlarm { alarm });
        }
        if let Some(alarm) = self.stop_condition() {
            return Err(CommandError::BlockedByCondition { alarm });
        }
        Ok(())
    }

    fn vtbi_reached(&self) -> bool {
        self.program
            .as_ref()
            .is_some_and(|p| self.counted_ul >= p.vtbi_ml() * 1000.0)
    }

    /// Where `Resume` goes: back to infusing, or to KVO if the VTBI is already delivered.
    fn running_state_for_program(&self) -> State {
        match self.program.as_ref().map(Program::end_action) {
            Some(EndAction::Kvo { .. }) if self.vtbi_reached() => State::Kvo,
            Some(EndAction::Stop) if self.vtbi_reached() => State::Complete,
            _ => State::Infusing,
        }
    }

    // ---------------------------------------------------------------- settling

    /// Everything that follows from time and inputs, in a fixed order. Idempotent.
    fn settle(&mut self) {
        if self.events.len() >= EVENTS_MAX - EVENTS_RESERVE && self.fault.is_none() {
            self.raise_fault(AlarmDetail::EventQueueFull {
                queued: self.events.len() as u32,
            });
        }
        let now = self.now_ms;
        // Sensor watchdog: the motor should run but frames stopped.
        if self.state.motor_should_run() || matches!(self.motor, MotorCommand::Reverse { .. }) {
            let last = self.last_frame_ms.unwrap_or(0);
            if now.saturating_sub(last) > self.config.sensor_timeout_ms {
                let late_by_ms = now - last - self.config.sensor_timeout_ms;
                self.raise_fault(AlarmDetail::Watchdog { late_by_ms });
            }
        }
        self.air.advance(now);
        self.hourly.advance(now);
        self.update_hourly_limit();
        if self.state != State::Infusing || self.hourly_limited {
            self.end_bolus();
        }
        if let Some(b) = self.bolus
            && self.counted_ul >= b.start_delivered_ul + b.volume_ul
        {
            self.bolus = None;
        }
        if self.state == State::Infusing && self.vtbi_reached() {
            self.complete();
        }
        if !self.state.motor_should_run() {
            // No flow, no flow verdicts.
            self.under = None;
            self.under_slight_since_ms = None;
        }

        self.evaluate_alarms();
        let state_before = self.state;
        self.apply_alarm_effects();
        if self.state != state_before {
            // Gates and state-based conditions changed with the state.
            self.evaluate_alarms();
        }
        self.escalate();

        let motor = self.compute_motor();
        if motor != self.motor {
            self.motor = motor;
            // Flow is judged per steady command; a change starts a new window and the old verdict
            // of over-infusion (which stopped the motor) is no longer evidence.
            self.flow = FlowWindow {
                start_ms: now,
                ..FlowWindow::default()
            };
            self.over = None;
            self.over_slight_since_ms = None;
            self.under_slight_since_ms = None;
        }
        self.deadline_ms = self.compute_deadline();
    }

    fn complete(&mut self) {
        self.end_bolus();
        self.emit(Event::Completed {
            delivered_ml: self.delivered_record_ul / 1000.0,
        });
        match self.program.as_ref().map(Program::end_action) {
            Some(EndAction::Kvo { rate_ml_per_h }) => {
                self.emit(Event::KvoStarted { rate_ml_per_h });
                self.set_state(State::Kvo);
            }
            Some(EndAction::Stop) | None => self.set_state(State::Complete),
        }
    }

    fn end_bolus(&mut self) {
        if let Some(b) = self.bolus.take() {
            let delivered = (self.counted_ul - b.start_delivered_ul).max(0.0);
            if delivered < b.volume_ul {
                self.emit(Event::BolusInterrupted {
                    delivered_ml: delivered / 1000.0,
                    volume_ml: b.volume_ul / 1000.0,
                });
            }
        }
    }

    /// The condition of every alarm from the latest values; raises, updates and clears.
    fn evaluate_alarms(&mut self) {
        // Fast path for the common case (nothing wrong, nothing listed): one pass of cheap checks
        // instead of seventeen detailed evaluations. Debug builds (every test) confirm it agrees.
        debug_assert_eq!(self.active_count, self.alarms.iter().flatten().count());
        if self.active_count == 0 && !self.any_condition() {
            debug_assert!(
                AlarmKind::ALL.iter().all(|k| !self.alarm_condition(*k).0),
                "any_condition disagrees with alarm_condition"
            );
            return;
        }
        for kind in AlarmKind::ALL {
            let (condition, may_raise, detail) = self.alarm_condition(kind);
            let index = kind.index();
            match &mut self.alarms[index] {
                Some(alarm) => {
                    alarm.condition_present = condition;
                    if condition && kind == AlarmKind::BatteryLow {
                        self.battery_priority();
                    }
                    let alarm = self.alarms[index].as_ref();
                    if alarm.is_some_and(|a| a.acknowledged && !a.condition_present) {
                        self.alarms[index] = None;
                        self.active_count -= 1;
                        self.emit(Event::AlarmCleared { alarm: kind });
                    }
                }
                None => {
                    if condition && may_raise {
                        self.raise(kind, detail);
                    }
                }
            }
        }
    }

    /// Whether any alarm's condition holds: the same tests as `alarm_condition`, without details.
    fn any_condition(&self) -> bool {
        let c = &self.config;
        if self.fault.is_some()
            || self.over.is_some()
            || self.under.is_some()
            || self.repeated.is_some()
            || self.hourly_limited
            || self.hourly_denied
            || self.bubble_ul > 0.0
            || self.watch.occluded.is_some()
            || self.watch.disconnected.is_some()
            || self.now_ms < self.lockout_until_ms
            || self.air.total() > c.air_accumulated_ul_max
            || matches!(self.state, State::Complete | State::Kvo)
        {
            return true;
        }
        if matches!(self.state, State::Paused | State::Programmed)
            && self.now_ms.saturating_sub(self.waiting_since_ms) >= c.paused_too_long_ms
        {
            return true;
        }
        if self
            .reservoir_left_ul()
            .is_some_and(|left| left < c.reservoir_empty_ml * 1000.0)
        {
            return true;
        }
        if self.state == State::Infusing && self.near_end() {
            return true;
        }
        match self.sensors {
            Some(s) => {
                self.limit_exceeded()
                    || s.upstream_pressure_mmhg < c.occlusion_upstream_mmhg
                    || !s.door_closed
                    || (!s.mains_present
                        && (self.mains_seen || s.battery_minutes_left < c.battery_low_minutes))
            }
            None => false,
        }
    }

    /// (condition present now, may it be raised now, detail) for one alarm kind.
    fn alarm_condition(&self, kind: AlarmKind) -> (bool, bool, AlarmDetail) {
        let c = &self.config;
        let running = self.state.motor_should_run();
        let s = self.sensors;
        let none = AlarmDetail::None;
        match kind {
            AlarmKind::OcclusionDownstream => match (s, self.watch.occluded) {
                (Some(s), _) if self.limit_exceeded() => (
                    true,
                    running,
                    AlarmDetail::Pressure {
                        pressure_mmhg: s.downstream_pressure_mmhg,
                        limit_mmhg: c.occlusion_downstream_mmhg,
                    },
                ),
                (_, Some(detail)) => (true, running, detail),
                _ => (false, false, none),
            },
            AlarmKind::LineDisconnected => match self.watch.disconnected {
                Some(detail) => (true, running, detail),
                None => (false, false, none),
            },
            AlarmKind::OcclusionUpstream => match s {
                Some(s) if s.upstream_pressure_mmhg < c.occlusion_upstream_mmhg => (
                    true,
                    running,
                    AlarmDetail::Pressure {
                        pressure_mmhg: s.upstream_pressure_mmhg,
                        limit_mmhg: c.occlusion_upstream_mmhg,
                    },
                ),
                _ => (false, false, none),
            },
            AlarmKind::AirInLine => {
                if self.bubble_ul > 0.0 {
                    (
                        true,
                        running,
                        AlarmDetail::AirSingleBubble {
                            volume_ul: self.bubble_ul,
                        },
                    )
                } else if self.air.total() > c.air_accumulated_ul_max {
                    let detail = AlarmDetail::AirAccumulated {
                        volume_ul_rolling_15min: self.air.total(),
                    };
                    (true, running, detail)
                } else {
                    (false, false, none)
                }
            }
            AlarmKind::ReservoirEmpty => {
                let empty = self
                    .reservoir_left_ul()
                    .is_some_and(|left| left < c.reservoir_empty_ml * 1000.0);
                (empty, running, none)
            }
            AlarmKind::InfusionNearEnd => {
                let near = self.state == State::Infusing && self.near_end();
                (near, near, none)
            }
            AlarmKind::InfusionComplete => {
                let done = matches!(self.state, State::Complete | State::Kvo);
                (done, done, none)
            }
            AlarmKind::DoorOpen => {
                let open = s.is_some_and(|s| !s.door_closed);
                (open, running, none)
            }
            AlarmKind::BatteryLow => match s {
                Some(s) if !s.mains_present && s.battery_minutes_left < c.battery_low_minutes => {
                    let detail = AlarmDetail::Battery {
                        percent: s.battery_percent,
                        minutes_left: s.battery_minutes_left,
                    };
                    (true, true, detail)
                }
                _ => (false, false, none),
            },
            AlarmKind::BatteryDepleted => match s {
                Some(s)
                    if !s.mains_present && s.battery_minutes_left < c.battery_depleted_minutes =>
                {
                    let detail = AlarmDetail::Battery {
                        percent: s.battery_percent,
                        minutes_left: s.battery_minutes_left,
                    };
                    (true, true, detail)
                }
                _ => (false, false, none),
            },
            AlarmKind::MainsLost => {
                let lost = self.mains_seen && s.is_some_and(|s| !s.mains_present);
                (lost, lost, none)
            }
            AlarmKind::SystemError => match self.fault {
                Some(detail) => (true, true, detail),
                None => (false, false, none),
            },
            AlarmKind::OverInfusion => match self.over {
                Some(detail) => (true, true, detail),
                None => (false, false, none),
            },
            AlarmKind::UnderInfusion => match self.under {
                Some(detail) => (true, running, detail),
                None => (false, false, none),
            },
            AlarmKind::PausedTooLong => {
                let waiting = matches!(self.state, State::Paused | State::Programmed)
                    && self.now_ms.saturating_sub(self.waiting_since_ms) >= c.paused_too_long_ms;
                (waiting, waiting, none)
            }
            AlarmKind::RepeatedAlarm => match self.repeated {
                Some(detail) => (true, true, detail),
                None => (false, false, none),
            },
            // Raised by the bolus button; present while the lockout runs.
            AlarmKind::BolusLockedOut => (self.now_ms < self.lockout_until_ms, false, none),
            // Present while the basal is held at KVO, or while a refused bolus is still unavailable.
            AlarmKind::HourlyLimitReached => (
                self.hourly_limited || self.hourly_denied,
                self.hourly_limited && running,
                none,
            ),
        }
    }

    /// `battery_low` goes from LOW to MEDIUM as the battery drains, and sounds again.
    fn battery_priority(&mut self) {
        let Some(s) = self.sensors else { return };
        let medium = s.battery_minutes_left < self.config.battery_low_medium_minutes;
        let Some(alarm) = &mut self.alarms[AlarmKind::BatteryLow.index()] else {
            return;
        };
        if medium && alarm.priority < Priority::Medium {
            alarm.priority = Priority::Medium;
            alarm.acknowledged = false;
            alarm.audio_paused_until_ms = None;
            self.emit(Event::AlarmPriorityRaised {
                alarm: AlarmKind::BatteryLow,
                priority: Priority::Medium,
            });
        }
    }

    fn raise(&mut self, kind: AlarmKind, detail: AlarmDetail) {
        let index = kind.index();
        if let Some(alarm) = &mut self.alarms[index] {
            alarm.condition_present = true;
            return;
        }
        let mut priority = kind.priority();
        if kind == AlarmKind::BatteryLow
            && self
                .sensors
                .is_some_and(|s| s.battery_minutes_left < self.config.battery_low_medium_minutes)
        {
            priority = Priority::Medium;
        }
        self.active_count += 1;
        self.alarms[index] = Some(ActiveAlarm {
            kind,
            priority,
            detail,
            raised_at_ms: self.now_ms,
            acknowledged: false,
            condition_present: true,
            audio_paused_until_ms: None,
            escalated: false,
        });
        self.emit(Event::AlarmRaised {
            alarm: kind,
            priority,
            detail,
        });
        if kind == AlarmKind::OcclusionDownstream {
            // Back the mechanism off until the line is near its baseline again, so the bolus
            // stored in the line is not released into the patient when the line opens.
            self.relief = Some(Relief {
                target_mmhg: self.relief_target(),
                // Never more than this program has pushed into the line.
                left_ul: self.config.relief_max_ul.min(self.counted_ul.max(0.0)),
            });
        }
    }

    fn raise_fault(&mut self, detail: AlarmDetail) {
        if self.fault.is_none() {
            self.fault = Some(detail);
        }
        self.raise(AlarmKind::SystemError, detail);
    }

    /// State changes that alarms force: a system fault → `Fault`; a motor-stopping alarm while the
    /// motor should run → `StoppedByAlarm`, counting stops for `repeated_alarm`.
    fn apply_alarm_effects(&mut self) {
        if self.fault.is_some() {
            if self.state != State::Fault {
                self.pending = None;
                self.set_state(State::Fault);
            }
            return;
        }
        if !self.state.motor_should_run() {
            return;
        }
        let Some(cause) = self.top_stop_alarm() else {
            return;
        };
        self.set_state(State::StoppedByAlarm);
        if cause == AlarmKind::RepeatedAlarm {
            return;
        }
        let now = self.now_ms;
        let history = &mut self.stops[cause.index()];
        history.record(now);
        let since = now.saturating_sub(self.config.repeated_alarm_window_ms);
        let times = history.count_since(since);
        if times >= usize::from(self.config.repeated_alarm_count) && self.repeated.is_none() {
            let detail = AlarmDetail::Repeated {
                alarm: cause,
                times: times as u8,
            };
            self.repeated = Some(detail);
            self.raise(AlarmKind::RepeatedAlarm, detail);
        }
    }

    /// The highest-priority, then oldest, active alarm that stops the motor.
    fn top_stop_alarm(&self) -> Option<AlarmKind> {
        if self.active_count == 0 {
            return None;
        }
        self.active_alarms()
            .filter(|a| a.kind.motor_effect() == MotorEffect::Stop)
            .max_by(|a, b| {
                a.priority
                    .cmp(&b.priority)
                    .then(b.raised_at_ms.cmp(&a.raised_at_ms))
            })
            .map(|a| a.kind)
    }

    /// A condition present now that forbids running the motor, alarm raised or not.
    fn stop_condition(&self) -> Option<AlarmKind> {
        if self.fault.is_some() {
            return Some(AlarmKind::SystemError);
        }
        let Some(s) = self.sensors else {
            return Some(AlarmKind::SystemError);
        };
        let c = &self.config;
        if !s.door_closed {
            return Some(AlarmKind::DoorOpen);
        }
        if s.downstream_pressure_mmhg > c.occlusion_downstream_mmhg {
            return Some(AlarmKind::OcclusionDownstream);
        }
        if s.upstream_pressure_mmhg < c.occlusion_upstream_mmhg {
            return Some(AlarmKind::OcclusionUpstream);
        }
        if self.bubble_ul > 0.0 || self.air.total() > c.air_accumulated_ul_max {
            return Some(AlarmKind::AirInLine);
        }
        if !s.mains_present && s.battery_minutes_left < c.battery_depleted_minutes {
            return Some(AlarmKind::BatteryDepleted);
        }
        if self
            .reservoir_left_ul()
            .is_some_and(|left| left < c.reservoir_empty_ml * 1000.0)
        {
            return Some(AlarmKind::ReservoirEmpty);
        }
        if self.over.is_some() {
            return Some(AlarmKind::OverInfusion);
        }
        None
    }

    /// What is left in the container, when the container (not the VTBI) limits the infusion: it
    /// holds less than the dose, or the dose is delivered and KVO keeps drawing from it. The volume
    /// entered is the label volume, which a container delivers at least (bags carry overfill for
    /// their dead space), so a container of exactly the dose ends with `infusion_complete`, not
    /// with `reservoir_empty` half a millilitre earlier.
    fn reservoir_left_ul(&self) -> Option<f64> {
        let p = self.program.as_ref()?;
        let reservoir_ml = p.reservoir_ml()?;
        if reservoir_ml >= p.vtbi_ml() && self.state != State::Kvo {
            return None;
        }
        Some(reservoir_ml * 1000.0 - self.counted_ul)
    }

    /// The container is about to run out before the dose is complete (a new container is needed).
    /// The end of the dose itself is announced by `infusion_complete` alone.
    fn near_end(&self) -> bool {
        let Some(p) = &self.program else { return false };
        let c = &self.config;
        let Some(reservoir_left) = self.reservoir_left_ul() else {
            return false;
        };
        let left_ul = reservoir_left - c.reservoir_empty_ml * 1000.0;
        left_ul <= c.near_end_ml * 1000.0
            || left_ul <= ul_per_ms(p.rate_ml_per_h()) * c.near_end_ms as f64
    }

    /// THE place that decides what the motor does, from the state and the active alarms (and the
    /// raw stop conditions, so a missing alarm can never let the motor run). Rate arbitration
    /// (Open PCA): stop > KVO (hourly limit) > patient bolus > basal.
    fn compute_motor(&self) -> MotorCommand {
        if self.relief_allowed() {
            let rate = self.config.relief_rate_ml_per_h;
            if rate.is_finite() && rate > 0.0 {
                return MotorCommand::Reverse {
                    rate_ml_per_h: rate,
                };
            }
        }
        if !self.state.motor_should_run()
            || self.top_stop_alarm().is_some()
            || self.stop_condition().is_some()
        {
            return MotorCommand::Stopped;
        }
        let Some(p) = &self.program else {
            return MotorCommand::Stopped;
        };
        let rate = match self.state {
            State::Kvo => match p.kvo_ml_per_h() {
                Some(kvo) => kvo.min(p.rate_ml_per_h()),
                None => return MotorCommand::Stopped,
            },
            State::Infusing if self.hourly_limited => {
                self.config.limit_kvo_ml_per_h.min(p.rate_ml_per_h())
            }
            State::Infusing if self.bolus.is_some() => {
                self.config.bolus_rate_ml_per_h.max(p.rate_ml_per_h())
            }
            State::Infusing => p.rate_ml_per_h(),
            _ => return MotorCommand::Stopped,
        };
        if rate.is_finite() && rate > 0.0 {
            MotorCommand::Run {
                rate_ml_per_h: rate,
            }
        } else {
            MotorCommand::Stopped
        }
    }

    /// The earliest time something must happen without an input.
    fn compute_deadline(&self) -> Option<u64> {
        let now = self.now_ms;
        let c = &self.config;
        let mut deadline: Option<u64> = None;
        let mut at = |t: u64| {
            let t = t.max(now.saturating_add(1));
            deadline = Some(deadline.map_or(t, |d| d.min(t)));
        };
        if let (MotorCommand::Reverse { rate_ml_per_h }, Some(r)) = (self.motor, self.relief) {
            at(now.saturating_add(ms_to_deliver(r.left_ul, rate_ml_per_h)));
        }
        if (self.state.motor_should_run() || matches!(self.motor, MotorCommand::Reverse { .. }))
            && self.fault.is_none()
        {
            at(self
                .last_frame_ms
                .unwrap_or(now)
                .saturating_add(c.sensor_timeout_ms.saturating_add(1)));
        }
        if let (State::Infusing, MotorCommand::Run { rate_ml_per_h }, Some(p)) =
            (self.state, self.motor, &self.program)
        {
            let left_ul = p.vtbi_ml() * 1000.0 - self.counted_ul;
            at(now.saturating_add(ms_to_deliver(left_ul, rate_ml_per_h)));
            if let Some(b) = self.bolus {
                let left_ul = b.start_delivered_ul + b.volume_ul - self.counted_ul;
                at(now.saturating_add(ms_to_deliver(left_ul, rate_ml_per_h)));
            }
        }
        if matches!(self.state, State::Paused | State::Programmed)
            && self.alarm(AlarmKind::PausedTooLong).is_none()
        {
            at(self.waiting_since_ms.saturating_add(c.paused_too_long_ms));
        }
        let alarms = if self.active_count == 0 {
            &[][..]
        } else {
            &self.alarms[..]
        };
        for alarm in alarms.iter().flatten() {
            if alarm.priority == Priority::High && !alarm.acknowledged && !alarm.escalated {
                at(alarm.raised_at_ms.saturating_add(c.escalation_after_ms));
            }
            if let Some(until) = alarm.audio_paused_until_ms
                && until > now
                && !alarm.acknowledged
            {
                at(until);
            }
        }
        if self.alarm(AlarmKind::BolusLockedOut).is_some() && self.lockout_until_ms > now {
            at(self.lockout_until_ms);
        }
        deadline
    }

    // ---------------------------------------------------------------- plumbing

    fn set_state(&mut self, to: State) {
        let from = self.state;
        if from == to {
            return;
        }
        if from == State::Infusing {
            self.end_bolus();
        }
        self.state = to;
        if to.motor_should_run() && !from.motor_should_run() {
            self.run_start_level = self.watch.level();
        }
        if to != State::StoppedByAlarm {
            self.relief = None;
        }
        if matches!(to, State::Paused | State::Programmed) {
            self.waiting_since_ms = self.now_ms;
        }
        self.emit(Event::StateChanged { from, to });
    }

    /// Queue an event. Never drops silently: a full queue counts what it could not take and
    /// `poll_event` reports the count as `EventsLost`.
    fn emit(&mut self, event: Event) {
        if self.events.len() >= EVENTS_MAX {
            self.events_lost = self.events_lost.saturating_add(1);
            return;
        }
        self.events.push_back(TimedEvent {
            at_ms: self.now_ms,
            event,
        });
    }

    /// An unacknowledged HIGH alarm escalates once after `escalation_after_ms` (silencing does not
    /// count as a response).
    fn escalate(&mut self) {
        if self.active_count == 0 {
            return;
        }
        let now = self.now_ms;
        let after = self.config.escalation_after_ms;
        for kind in AlarmKind::ALL {
            let Some(alarm) = &mut self.alarms[kind.index()] else {
                continue;
            };
            if alarm.priority == Priority::High
                && !alarm.acknowledged
                && !alarm.escalated
                && now.saturating_sub(alarm.raised_at_ms) >= after
            {
                alarm.escalated = true;
                let unacknowledged_for_ms = now - alarm.raised_at_ms;
                self.emit(Event::AlarmEscalated {
                    alarm: kind,
                    unacknowledged_for_ms,
                });
            }
        }
    }
}

/// The refusal of `command` in `state`: a fault outranks "not allowed here".
fn not_allowed(command: &'static str, state: State) -> CommandError {
    if state == State::Fault {
        CommandError::SystemFault
    } else {
        CommandError::NotAllowed { command, state }
    }
}

fn minutes_to_ms(minutes: f64) -> u64 {
    let ms = minutes * 60_000.0;
    if ms.is_finite() && ms > 0.0 {
        ms as u64
    } else {
        0
    }
}

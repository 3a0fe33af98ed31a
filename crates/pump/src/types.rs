//! The values that cross the core's boundary: inputs (operator commands, sensor frames) and outputs
//! (motor command, events, status). Everything here is plain data; the behaviour lives in `engine`.

use alloc::string::String;

use crate::alarm::{AlarmDetail, AlarmKind, Priority};
use crate::library::LimitZone;
use crate::program::{Field, Program, ProgramError, ProgramRequest};

/// Everything the core can be told. Time is passed alongside, never read.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Input {
    /// A button press or a remote command from the operator (patient, caregiver, nurse).
    Command(Command),
    /// One reading of every sensor, taken by the driver at a fixed period (see `Config::sensor_period_ms`).
    Sensors(SensorFrame),
}

/// Operator commands. The core does not know who pressed the button; the layer above records the actor.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Command {
    /// Enter a new program. Checked against the pump's hard limits and the drug library.
    Program(ProgramRequest),
    /// Confirm a program whose values are outside a drug-library soft limit.
    ConfirmOverride,
    /// Throw away a program waiting for soft-limit confirmation.
    CancelOverride,
    Start,
    Pause,
    Resume,
    Stop,
    /// Pause the audio of the alarms active now for `Config::audio_pause_ms`. Never hides an alarm.
    SilenceAudio,
    /// Acknowledge one active alarm.
    Acknowledge(AlarmKind),
    /// The patient pressed the bolus button (patient-controlled analgesia).
    PatientBolus,
}

impl Command {
    /// The command's name, as in the record and in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Program(_) => "program",
            Command::ConfirmOverride => "confirm_override",
            Command::CancelOverride => "cancel_override",
            Command::Start => "start",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Stop => "stop",
            Command::SilenceAudio => "silence_audio",
            Command::Acknowledge(_) => "acknowledge",
            Command::PatientBolus => "patient_bolus",
        }
    }
}

/// Why a command was refused (the core's one error type at its boundary). Refusals are values,
/// never panics, and each message says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum CommandError {
    /// The program itself is impossible or outside a hard limit.
    #[error("program refused: {0}")]
    Program(ProgramError),
    /// The command makes no sense in this state (for example `Resume` while idle).
    #[error("{command} is not possible while the pump is {state}: {hint}", hint = state.hint())]
    NotAllowed { command: &'static str, state: State },
    /// An alarm that stops the motor is active and must be dealt with first.
    #[error("the {alarm} alarm is active: remove its cause and acknowledge it first")]
    BlockedByAlarm { alarm: AlarmKind },
    /// The condition behind a motor-stopping alarm is present now (for example the door is open),
    /// so the motor may not start.
    #[error(
        "cannot run the motor: {alarm} condition present now (remove the cause, then try again)"
    )]
    BlockedByCondition { alarm: AlarmKind },
    /// No recent sensor frame (none yet, or none within `Config::sensor_timeout_ms`), so the pump
    /// cannot know it is safe to run.
    #[error("no recent sensor reading: wait for the pump's self-test and sensors, then try again")]
    NoSensorData,
    /// A system fault was detected: the pump refuses to infuse until serviced.
    #[error("system fault: the pump refuses to infuse; power it off and call service")]
    SystemFault,
    /// `Acknowledge` named an alarm that is not active.
    #[error("the {alarm} alarm is not active, nothing to acknowledge")]
    NoSuchAlarm { alarm: AlarmKind },
    /// `SilenceAudio` while no unacknowledged alarm needs sound.
    #[error("no alarm is sounding, nothing to silence")]
    NothingToSilence,
    /// `ConfirmOverride` or `CancelOverride` without a program waiting for confirmation.
    #[error("no program is waiting for a soft-limit confirmation")]
    NothingToConfirm,
    /// `Start` on a program whose VTBI is already delivered.
    #[error("this program's volume has been delivered: enter a new program")]
    ProgramComplete,
    /// The patient bolus was refused (also recorded as `Event::BolusDenied`).
    #[error("bolus denied: {0}")]
    BolusDenied(BolusDenial),
}

/// Why a patient bolus was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum BolusDenial {
    #[error("the program has no patient bolus")]
    NoBolusProgram,
    #[error("a bolus is only given while infusing")]
    NotInfusing,
    #[error("a bolus is already running")]
    AlreadyRunning,
    #[error("lockout: next bolus possible in {remaining_ms} ms")]
    LockedOut { remaining_ms: u64 },
    #[error(
        "the bolus would exceed the hourly limit ({delivered_ml_last_hour:.2} mL given in the last hour, limit {limit_ml:.2} mL)"
    )]
    HourlyLimit {
        delivered_ml_last_hour: f64,
        limit_ml: f64,
    },
}

/// One reading of every sensor. Quantities that accumulate are totals since power-on, so a lost frame
/// loses no volume from the accounting.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SensorFrame {
    /// Pressure in the line between pump and patient, mmHg above ambient.
    pub downstream_pressure_mmhg: f64,
    /// Pressure between container and pump, mmHg above ambient; a closed upstream clamp or an empty
    /// collapsible bag shows as suction (negative).
    pub upstream_pressure_mmhg: f64,
    /// Air that passed the ultrasonic air detector since the previous frame, in µL.
    pub air_ul_since_last_frame: f64,
    /// Door (or cassette / syringe clamp) closed and latched.
    pub door_closed: bool,
    /// Battery state of charge, 0–100.
    pub battery_percent: f64,
    /// The battery gauge's estimate of minutes left at the present load.
    pub battery_minutes_left: f64,
    /// Mains power connected.
    pub mains_present: bool,
    /// Volume moved by the pumping mechanism since power-on, from the motor encoder, in µL.
    pub motor_volume_ul_total: f64,
    /// Volume the motor was commanded to move since power-on, in µL, as counted by the motor
    /// controller; a stalled motor or slipping mechanism shows as a gap to `motor_volume_ul_total`.
    pub commanded_volume_ul_total: f64,
    /// Temperature of the pumping mechanism, °C.
    pub mechanism_temperature_c: f64,
    /// Result of the latest self-test (power-on and periodic).
    pub self_test: SelfTest,
}

/// Outcome of the pump's own self-test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum SelfTest {
    Passed,
    /// Failed with a device-specific code, shown to the user for the support line.
    Failed {
        code: u16,
    },
}

/// What the motor must do now. The driver applies it after every call into the core.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum MotorCommand {
    Stopped,
    Run {
        rate_ml_per_h: f64,
    },
    /// Pressure relief: the mechanism runs backwards at this rate, drawing fluid from the blocked
    /// downstream line back towards the container. Only after `occlusion_downstream` stopped the
    /// pump, with the door closed, no system fault and a battery that is not depleted, and only
    /// until the line pressure is back near its baseline (see docs/pump-core.md, "Pressure relief").
    Reverse {
        rate_ml_per_h: f64,
    },
}

/// The documented states of the pump. See `docs/pump-core.md` for the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum State {
    /// No program.
    Idle,
    /// A program is waiting for the operator to confirm a soft-limit breach.
    AwaitingConfirmation,
    /// A program is accepted and the pump is ready to start.
    Programmed,
    /// Delivering the programmed rate (or a patient bolus on top of it).
    Infusing,
    /// Paused by the operator.
    Paused,
    /// Stopped by an alarm; needs the cause removed, an acknowledgement, then `Resume`.
    StoppedByAlarm,
    /// The VTBI was delivered and the program ends with a stop.
    Complete,
    /// The VTBI was delivered and the pump keeps the vein open at the KVO rate.
    Kvo,
    /// The operator stopped the infusion; a new program (or `Start` to restart this one) follows.
    Stopped,
    /// A system fault: motor off, restart refused, only service can clear it.
    Fault,
}

impl State {
    /// The state's name as used in the record and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::AwaitingConfirmation => "awaiting_confirmation",
            State::Programmed => "programmed",
            State::Infusing => "infusing",
            State::Paused => "paused",
            State::StoppedByAlarm => "stopped_by_alarm",
            State::Complete => "complete",
            State::Kvo => "kvo",
            State::Stopped => "stopped",
            State::Fault => "fault",
        }
    }

    /// Every state, for exhaustive tests and parsers.
    pub const ALL: [State; 10] = [
        State::Idle,
        State::AwaitingConfirmation,
        State::Programmed,
        State::Infusing,
        State::Paused,
        State::StoppedByAlarm,
        State::Complete,
        State::Kvo,
        State::Stopped,
        State::Fault,
    ];

    pub fn from_name(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == name)
    }

    /// What the operator can do next, for refusal messages.
    pub fn hint(self) -> &'static str {
        match self {
            State::Idle => "enter a program first",
            State::AwaitingConfirmation => "confirm or cancel the soft-limit override first",
            State::Programmed => "start the program, or enter a new one",
            State::Infusing => "pause or stop first",
            State::Paused => "resume or stop first",
            State::StoppedByAlarm => "clear and acknowledge the alarm, then resume (or stop)",
            State::Complete => "enter a new program",
            State::Kvo => "stop first",
            State::Stopped => "start again, or enter a new program",
            State::Fault => "the pump needs service",
        }
    }

    /// Whether the motor is meant to run in this state (alarms may still hold it).
    pub fn motor_should_run(self) -> bool {
        matches!(self, State::Infusing | State::Kvo)
    }
}

impl core::fmt::Display for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Something that happened, for the record. Every change of state, every alarm transition and every
/// operator decision is an event; nothing the core does is silent.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Event {
    ProgramAccepted {
        program: Program,
    },
    /// A program breached a soft limit and waits for confirmation (one event per breached field).
    ConfirmationRequired {
        field: Field,
        value: f64,
        zone: LimitZone,
        limit: f64,
    },
    LimitOverrideConfirmed {
        field: Field,
        value: f64,
        zone: LimitZone,
        limit: f64,
    },
    /// The operator threw away a program waiting for confirmation.
    OverrideCancelled,
    ProgramRejected {
        error: ProgramError,
    },
    Started,
    Paused,
    Resumed,
    /// Stopped by the operator.
    Stopped,
    /// The VTBI was delivered.
    Completed {
        delivered_ml: f64,
    },
    KvoStarted {
        rate_ml_per_h: f64,
    },
    StateChanged {
        from: State,
        to: State,
    },
    AlarmRaised {
        alarm: AlarmKind,
        priority: Priority,
        detail: AlarmDetail,
    },
    AlarmAcknowledged {
        alarm: AlarmKind,
    },
    /// Audio paused for the alarms listed in the annunciation; they stay visible.
    AlarmSilenced {
        alarm: AlarmKind,
        until_ms: u64,
    },
    AlarmCleared {
        alarm: AlarmKind,
    },
    /// A high-priority alarm stayed unacknowledged for `Config::escalation_after_ms`.
    AlarmEscalated {
        alarm: AlarmKind,
        unacknowledged_for_ms: u64,
    },
    /// A battery alarm's priority went up (LOW → MEDIUM); it sounds again even if acknowledged.
    AlarmPriorityRaised {
        alarm: AlarmKind,
        priority: Priority,
    },
    /// A patient bolus was granted and starts now.
    BolusGiven {
        volume_ml: f64,
    },
    /// A patient bolus was refused; `reason` is the `BolusDenial` message.
    BolusDenied {
        reason: String,
    },
    /// A bolus stopped before its volume was delivered (pause, stop, alarm, hourly limit, VTBI end);
    /// the rest is not given later.
    BolusInterrupted {
        delivered_ml: f64,
        volume_ml: f64,
    },
    /// The driver let the event queue fill up and this many events could not be queued. Emitted as
    /// soon as there is room again. See `EVENTS_MAX`.
    EventsLost {
        count: u64,
    },
}

/// An event with the time the core saw it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TimedEvent {
    pub at_ms: u64,
    pub event: Event,
}

/// A snapshot for screens and telemetry.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Status {
    pub state: State,
    pub program: Option<Program>,
    pub motor: MotorCommand,
    /// Volume delivered under the current program, by the encoder, in mL.
    pub delivered_ml: f64,
    /// VTBI minus delivered, never negative; zero without a program.
    pub remaining_ml: f64,
    /// Minutes to the end of the VTBI at the programmed rate, if infusing or paused.
    pub minutes_left: Option<f64>,
    pub battery_percent: f64,
    pub battery_minutes_left: f64,
    pub mains_present: bool,
    pub downstream_pressure_mmhg: f64,
    /// The highest-priority active alarm, if any.
    pub top_alarm: Option<(AlarmKind, Priority)>,
    /// Volume delivered in the rolling last hour (basal and boluses), in mL.
    pub delivered_ml_last_hour: f64,
    /// Air counted in the rolling 15-minute window, in µL.
    pub air_ul_rolling_15min: f64,
    /// A patient bolus is running now.
    pub bolus_running: bool,
    /// Time of the last sensor frame, if any.
    pub last_sensor_frame_ms: Option<u64>,
    pub mechanism_temperature_c: f64,
}

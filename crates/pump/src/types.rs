//! The values that cross the core's boundary: inputs (operator commands, sensor frames) and outputs
//! (motor command, events, status). Everything here is plain data; the behaviour lives in `engine`.

use alloc::string::String;

use crate::alarm::{AlarmDetail, AlarmKind, Priority};
use crate::library::LimitZone;
use crate::program::{Program, ProgramError, ProgramRequest};

/// Everything the core can be told. Time is passed alongside, never read.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A button press or a remote command from the operator (patient, caregiver, nurse).
    Command(Command),
    /// One reading of every sensor, taken by the driver at a fixed period (see `Config::sensor_period_ms`).
    Sensors(SensorFrame),
}

/// Operator commands. The core does not know who pressed the button; the layer above records the actor.
#[derive(Debug, Clone, PartialEq)]
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

/// Why a command was refused. Refusals are values, never panics, and each says what to do.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandError {
    /// The program itself is impossible or outside a hard limit.
    Program(ProgramError),
    /// The command makes no sense in this state (for example `Resume` while idle).
    NotAllowed { command: &'static str, state: State },
    /// An alarm that stops the motor is active and must be dealt with first.
    BlockedByAlarm { alarm: AlarmKind },
    /// A system fault was detected: the pump refuses to infuse until serviced.
    SystemFault,
    /// `Acknowledge` named an alarm that is not active.
    NoSuchAlarm { alarm: AlarmKind },
    /// `ConfirmOverride` or `CancelOverride` without a program waiting for confirmation.
    NothingToConfirm,
}

/// One reading of every sensor. Quantities that accumulate are totals since power-on, so a lost frame
/// loses no volume from the accounting.
#[derive(Debug, Clone, PartialEq)]
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
pub enum SelfTest {
    Passed,
    /// Failed with a device-specific code, shown to the user for the support line.
    Failed { code: u16 },
}

/// What the motor must do now. The driver applies it after every call into the core.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MotorCommand {
    Stopped,
    Run { rate_ml_per_h: f64 },
}

/// The documented states of the pump. See `docs/pump-states.md` for the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
}

/// Something that happened, for the record. Every change of state, every alarm transition and every
/// operator decision is an event; nothing the core does is silent.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ProgramAccepted { program: Program },
    /// A program breached a soft limit and waits for confirmation.
    ConfirmationRequired { field: &'static str, value: f64, zone: LimitZone, limit: f64 },
    LimitOverrideConfirmed { field: &'static str, value: f64, zone: LimitZone, limit: f64 },
    ProgramRejected { error: ProgramError },
    Started,
    Paused,
    Resumed,
    /// Stopped by the operator.
    Stopped,
    /// The VTBI was delivered.
    Completed { delivered_ml: f64 },
    KvoStarted { rate_ml_per_h: f64 },
    StateChanged { from: State, to: State },
    AlarmRaised { alarm: AlarmKind, priority: Priority, detail: AlarmDetail },
    AlarmAcknowledged { alarm: AlarmKind },
    /// Audio paused for the alarms listed in the annunciation; they stay visible.
    AlarmSilenced { alarm: AlarmKind, until_ms: u64 },
    AlarmCleared { alarm: AlarmKind },
    /// A high-priority alarm stayed unacknowledged for `Config::escalation_after_ms`.
    AlarmEscalated { alarm: AlarmKind, unacknowledged_for_ms: u64 },
    BolusGiven { volume_ml: f64 },
    BolusDenied { reason: String },
}

/// An event with the time the core saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedEvent {
    pub at_ms: u64,
    pub event: Event,
}

/// A snapshot for screens and telemetry.
#[derive(Debug, Clone, PartialEq)]
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
}

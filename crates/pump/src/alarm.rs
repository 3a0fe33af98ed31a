//! The alarm catalogue (names, priorities, details) and what the screen and speaker must show.
//! The serialized names are a public contract shared with the companion, the record and the server.

use alloc::vec::Vec;

/// Alarm priority per IEC 60601-1-8. Ordered: `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Low,
    Medium,
    High,
}

impl Priority {
    pub fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }

    pub fn from_name(name: &str) -> Option<Priority> {
        [Priority::Low, Priority::Medium, Priority::High]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// Every alarm the core can raise. `name()` gives the public, serialized name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlarmKind {
    OcclusionDownstream,
    OcclusionUpstream,
    AirInLine,
    ReservoirEmpty,
    InfusionNearEnd,
    InfusionComplete,
    DoorOpen,
    BatteryLow,
    BatteryDepleted,
    MainsLost,
    SystemError,
    OverInfusion,
    UnderInfusion,
    PausedTooLong,
    RepeatedAlarm,
    BolusLockedOut,
    HourlyLimitReached,
}

impl AlarmKind {
    /// Every alarm kind, in declaration order.
    pub const ALL: [AlarmKind; 17] = [
        AlarmKind::OcclusionDownstream,
        AlarmKind::OcclusionUpstream,
        AlarmKind::AirInLine,
        AlarmKind::ReservoirEmpty,
        AlarmKind::InfusionNearEnd,
        AlarmKind::InfusionComplete,
        AlarmKind::DoorOpen,
        AlarmKind::BatteryLow,
        AlarmKind::BatteryDepleted,
        AlarmKind::MainsLost,
        AlarmKind::SystemError,
        AlarmKind::OverInfusion,
        AlarmKind::UnderInfusion,
        AlarmKind::PausedTooLong,
        AlarmKind::RepeatedAlarm,
        AlarmKind::BolusLockedOut,
        AlarmKind::HourlyLimitReached,
    ];

    /// The public, serialized name (a contract: never rename).
    pub fn name(self) -> &'static str {
        match self {
            AlarmKind::OcclusionDownstream => "occlusion_downstream",
            AlarmKind::OcclusionUpstream => "occlusion_upstream",
            AlarmKind::AirInLine => "air_in_line",
            AlarmKind::ReservoirEmpty => "reservoir_empty",
            AlarmKind::InfusionNearEnd => "infusion_near_end",
            AlarmKind::InfusionComplete => "infusion_complete",
            AlarmKind::DoorOpen => "door_open",
            AlarmKind::BatteryLow => "battery_low",
            AlarmKind::BatteryDepleted => "battery_depleted",
            AlarmKind::MainsLost => "mains_lost",
            AlarmKind::SystemError => "system_error",
            AlarmKind::OverInfusion => "over_infusion",
            AlarmKind::UnderInfusion => "under_infusion",
            AlarmKind::PausedTooLong => "paused_too_long",
            AlarmKind::RepeatedAlarm => "repeated_alarm",
            AlarmKind::BolusLockedOut => "bolus_locked_out",
            AlarmKind::HourlyLimitReached => "hourly_limit_reached",
        }
    }

    pub fn from_name(name: &str) -> Option<AlarmKind> {
        AlarmKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Which of several causes raised an alarm, where the kind alone does not say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AlarmDetail {
    None,
    /// `air_in_line`: one bubble larger than `Config::air_single_bubble_ul`.
    AirSingleBubble { volume_ul: f64 },
    /// `air_in_line`: the air passed in the last 15 minutes exceeded `Config::air_accumulated_ul_max`.
    AirAccumulated { volume_ul_rolling_15min: f64 },
    /// `system_error`: the self-test failed with this code.
    SelfTestFailed { code: u16 },
    /// `system_error`: the encoder disagrees with what the motor was commanded to move.
    MotorEncoderMismatch { commanded_ul: f64, measured_ul: f64 },
    /// `system_error`: the mechanism is too hot.
    Overheating { temperature_c: f64 },
    /// `system_error`: the core was not run by its deadline, or sensor frames stopped arriving.
    Watchdog { late_by_ms: u64 },
    /// `battery_low` / `battery_depleted`: the gauge's estimate when raised.
    Battery { percent: f64, minutes_left: f64 },
    /// Occlusions: the pressure that tripped the alarm.
    Pressure { pressure_mmhg: f64, limit_mmhg: f64 },
    /// Over / under infusion: the measured and expected volumes over the check window.
    Flow { measured_ml: f64, expected_ml: f64 },
    /// `repeated_alarm`: which alarm repeated, and how many times in the window.
    Repeated { alarm: AlarmKind, times: u8 },
}

/// One alarm on the list: raised, maybe acknowledged, maybe still present.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActiveAlarm {
    pub kind: AlarmKind,
    pub priority: Priority,
    pub detail: AlarmDetail,
    pub raised_at_ms: u64,
    pub acknowledged: bool,
    /// Whether the condition that raised it is still there.
    pub condition_present: bool,
}

/// Whether the speaker is sounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioState {
    /// No alarm needs sound.
    Quiet,
    Sounding,
    /// Audio paused by the operator until this time; the alarm stays on screen.
    Paused { until_ms: u64 },
}

/// What the screen and speaker must show right now.
#[derive(Debug, Clone, PartialEq)]
pub struct Annunciation {
    /// The one alarm that sounds: highest priority, then oldest.
    pub sounding: Option<ActiveAlarm>,
    pub audio: AudioState,
    /// Every active alarm, highest priority first, then oldest.
    pub active: Vec<ActiveAlarm>,
}

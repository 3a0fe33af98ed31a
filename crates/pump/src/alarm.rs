//! The alarm catalogue (names, priorities, details) and what the screen and speaker must show.
//! The serialized names are a public contract shared with the companion, the record and the server.

use alloc::vec::Vec;

/// Alarm priority per IEC 60601-1-8. Ordered: `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
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
    LineDisconnected,
}

impl AlarmKind {
    /// Every alarm kind, in declaration order.
    pub const ALL: [AlarmKind; 18] = [
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
        AlarmKind::LineDisconnected,
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
            AlarmKind::LineDisconnected => "line_disconnected",
        }
    }

    pub fn from_name(name: &str) -> Option<AlarmKind> {
        AlarmKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The IEC 60601-1-8 priority (harm × onset matrix, see `docs/pump-core.md`). `battery_low`
    /// starts LOW and is raised to MEDIUM as the battery drains.
    pub fn priority(self) -> Priority {
        match self {
            // Death or irreversible harm, immediate or prompt onset.
            AlarmKind::OcclusionDownstream
            | AlarmKind::AirInLine
            | AlarmKind::DoorOpen
            | AlarmKind::BatteryDepleted
            | AlarmKind::SystemError
            | AlarmKind::OverInfusion
            | AlarmKind::LineDisconnected => Priority::High,
            // Reversible harm, prompt onset (therapy interrupted or about to be).
            AlarmKind::OcclusionUpstream
            | AlarmKind::ReservoirEmpty
            | AlarmKind::InfusionComplete
            | AlarmKind::PausedTooLong
            | AlarmKind::RepeatedAlarm => Priority::Medium,
            // Minor harm or delayed onset.
            AlarmKind::InfusionNearEnd
            | AlarmKind::BatteryLow
            | AlarmKind::MainsLost
            | AlarmKind::UnderInfusion
            | AlarmKind::BolusLockedOut
            | AlarmKind::HourlyLimitReached => Priority::Low,
        }
    }

    /// What the alarm does to the motor while it is active.
    pub fn motor_effect(self) -> MotorEffect {
        match self {
            AlarmKind::OcclusionDownstream
            | AlarmKind::OcclusionUpstream
            | AlarmKind::AirInLine
            | AlarmKind::ReservoirEmpty
            | AlarmKind::DoorOpen
            | AlarmKind::BatteryDepleted
            | AlarmKind::SystemError
            | AlarmKind::OverInfusion
            | AlarmKind::RepeatedAlarm
            | AlarmKind::LineDisconnected => MotorEffect::Stop,
            AlarmKind::HourlyLimitReached => MotorEffect::Kvo,
            AlarmKind::InfusionNearEnd
            | AlarmKind::InfusionComplete
            | AlarmKind::BatteryLow
            | AlarmKind::MainsLost
            | AlarmKind::UnderInfusion
            | AlarmKind::PausedTooLong
            | AlarmKind::BolusLockedOut => MotorEffect::None,
        }
    }

    /// Position in `ALL`, for fixed-size per-alarm tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::fmt::Display for Priority {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// What an active alarm does to the motor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum MotorEffect {
    /// Infusion continues; the alarm informs.
    None,
    /// Motor stopped at once, and it stays stopped until the alarm is cleared and the operator resumes.
    Stop,
    /// Motor held at the KVO rate while the condition lasts (rate arbitration: KVO beats bolus and basal).
    Kvo,
}

/// Which of several causes raised an alarm, where the kind alone does not say.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum AlarmDetail {
    None,
    /// `air_in_line`: one bubble larger than `Config::air_single_bubble_ul`.
    AirSingleBubble {
        volume_ul: f64,
    },
    /// `air_in_line`: the air passed in the last 15 minutes exceeded `Config::air_accumulated_ul_max`.
    AirAccumulated {
        volume_ul_rolling_15min: f64,
    },
    /// `system_error`: the self-test failed with this code.
    SelfTestFailed {
        code: u16,
    },
    /// `system_error`: the encoder disagrees with what the motor was commanded to move.
    MotorEncoderMismatch {
        commanded_ul: f64,
        measured_ul: f64,
    },
    /// `system_error`: the mechanism is too hot.
    Overheating {
        temperature_c: f64,
    },
    /// `system_error`: the core was not run by its deadline, or sensor frames stopped arriving.
    Watchdog {
        late_by_ms: u64,
    },
    /// `battery_low` / `battery_depleted`: the gauge's estimate when raised.
    Battery {
        percent: f64,
        minutes_left: f64,
    },
    /// Occlusions: the pressure that tripped the alarm.
    Pressure {
        pressure_mmhg: f64,
        limit_mmhg: f64,
    },
    /// `occlusion_downstream` from the per-stroke detector: the stroke pulses stayed in the line
    /// (`rise_mmhg` above the level before the first held stroke, `lost_mmhg` leaked away since)
    /// for `held_ms` over `strokes` strokes.
    HeldPulses {
        rise_mmhg: f64,
        lost_mmhg: f64,
        strokes: u32,
        held_ms: u64,
    },
    /// `line_disconnected`: the baseline fell `drop_mmhg` below the learned venous baseline and the
    /// stroke pulses decay with `half_life_ms` instead of the learned `reference_half_life_ms`.
    LineOpen {
        drop_mmhg: f64,
        half_life_ms: f64,
        reference_half_life_ms: f64,
    },
    /// Over / under infusion: the measured and expected volumes over the check window.
    Flow {
        measured_ml: f64,
        expected_ml: f64,
    },
    /// `repeated_alarm`: which alarm repeated, and how many times in the window.
    Repeated {
        alarm: AlarmKind,
        times: u8,
    },
    /// `system_error`: a sensor reported a value that cannot be real (NaN, infinite, out of range,
    /// a total going backwards). The sensor is not trusted, so the pump stops.
    ImplausibleReading {
        sensor: SensorField,
        value: f64,
    },
    /// `system_error`: the caller's clock went backwards by this much.
    ClockWentBackwards {
        by_ms: u64,
    },
    /// `system_error`: the driver did not drain events and the queue reached its safety reserve.
    EventQueueFull {
        queued: u32,
    },
    /// `system_error`: the `Config` handed to `Pump::new` is invalid (`Config::validate` says why).
    InvalidConfig,
    /// `system_error`: over-infusion where the motor controller's own count also exceeds what the
    /// core commanded (volumes over the flow window): the controller runs away, so the pump must
    /// not be restarted.
    MotorRunaway {
        commanded_ul: f64,
        controller_ul: f64,
        measured_ul: f64,
    },
    /// `system_error`: `over_infusion` came back this long after the previous one (within
    /// `Config::repeated_alarm_window_ms`), after it was acknowledged and the pump restarted.
    OverInfusionRecurred {
        after_ms: u64,
    },
}

/// A short sentence for screens and the record ("pressure 600 mmHg above the limit of 517 mmHg").
impl core::fmt::Display for AlarmDetail {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            AlarmDetail::None => Ok(()),
            AlarmDetail::AirSingleBubble { volume_ul } => {
                write!(f, "air bubble of {volume_ul:.0} µL")
            }
            AlarmDetail::AirAccumulated {
                volume_ul_rolling_15min,
            } => {
                write!(
                    f,
                    "{volume_ul_rolling_15min:.0} µL of air in the last 15 minutes"
                )
            }
            AlarmDetail::SelfTestFailed { code } => write!(f, "self-test failed with code {code}"),
            AlarmDetail::MotorEncoderMismatch {
                commanded_ul,
                measured_ul,
            } => write!(
                f,
                "motor commanded {commanded_ul:.0} µL but the encoder measured {measured_ul:.0} µL"
            ),
            AlarmDetail::Overheating { temperature_c } => {
                write!(f, "mechanism at {temperature_c:.1} °C")
            }
            AlarmDetail::Watchdog { late_by_ms } => {
                write!(f, "control loop late by {late_by_ms} ms")
            }
            AlarmDetail::Battery {
                percent,
                minutes_left,
            } => {
                write!(
                    f,
                    "battery {percent:.0} %, about {minutes_left:.0} min left"
                )
            }
            AlarmDetail::Pressure {
                pressure_mmhg,
                limit_mmhg,
            } => {
                write!(
                    f,
                    "pressure {pressure_mmhg:.0} mmHg beyond the limit of {limit_mmhg:.0} mmHg"
                )
            }
            AlarmDetail::HeldPulses {
                rise_mmhg,
                lost_mmhg,
                strokes,
                held_ms,
            } => write!(
                f,
                "{strokes} pump strokes stayed in the line for {} s: pressure up {rise_mmhg:.0} mmHg, \
                 only {lost_mmhg:.0} mmHg drained away",
                held_ms / 1000
            ),
            AlarmDetail::LineOpen {
                drop_mmhg,
                half_life_ms,
                reference_half_life_ms,
            } => write!(
                f,
                "line pressure {drop_mmhg:.0} mmHg below the vein's and each stroke drains in \
                 {half_life_ms:.0} ms instead of {reference_half_life_ms:.0} ms: the line no longer \
                 ends in a vein"
            ),
            AlarmDetail::Flow {
                measured_ml,
                expected_ml,
            } => {
                write!(
                    f,
                    "{measured_ml:.3} mL moved where {expected_ml:.3} mL was expected"
                )
            }
            AlarmDetail::Repeated { alarm, times } => {
                write!(f, "{alarm} stopped the pump {times} times in 10 minutes")
            }
            AlarmDetail::ImplausibleReading { sensor, value } => {
                write!(
                    f,
                    "sensor {} reported an impossible value ({value})",
                    sensor.name()
                )
            }
            AlarmDetail::ClockWentBackwards { by_ms } => {
                write!(f, "clock went backwards by {by_ms} ms")
            }
            AlarmDetail::EventQueueFull { queued } => {
                write!(f, "event record not drained ({queued} events waiting)")
            }
            AlarmDetail::InvalidConfig => f.write_str("invalid pump configuration"),
            AlarmDetail::MotorRunaway {
                commanded_ul,
                controller_ul,
                measured_ul,
            } => write!(
                f,
                "motor runaway: commanded {commanded_ul:.0} µL but the motor controller counted \
                 {controller_ul:.0} µL and the encoder measured {measured_ul:.0} µL; do not restart, \
                 the pump needs service"
            ),
            AlarmDetail::OverInfusionRecurred { after_ms } => write!(
                f,
                "over-infusion again {} s after the last one: the mechanism is faulty; do not \
                 restart, the pump needs service",
                after_ms / 1000
            ),
        }
    }
}

/// Which sensor reading was implausible (for `AlarmDetail::ImplausibleReading`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum SensorField {
    DownstreamPressure,
    UpstreamPressure,
    Air,
    BatteryPercent,
    BatteryMinutesLeft,
    MotorVolume,
    CommandedVolume,
    MechanismTemperature,
}

impl SensorField {
    pub fn name(self) -> &'static str {
        match self {
            SensorField::DownstreamPressure => "downstream_pressure_mmhg",
            SensorField::UpstreamPressure => "upstream_pressure_mmhg",
            SensorField::Air => "air_ul_since_last_frame",
            SensorField::BatteryPercent => "battery_percent",
            SensorField::BatteryMinutesLeft => "battery_minutes_left",
            SensorField::MotorVolume => "motor_volume_ul_total",
            SensorField::CommandedVolume => "commanded_volume_ul_total",
            SensorField::MechanismTemperature => "mechanism_temperature_c",
        }
    }
}

/// One alarm on the list: raised, maybe acknowledged, maybe still present.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ActiveAlarm {
    pub kind: AlarmKind,
    pub priority: Priority,
    pub detail: AlarmDetail,
    pub raised_at_ms: u64,
    pub acknowledged: bool,
    /// Whether the condition that raised it is still there.
    pub condition_present: bool,
    /// Audio paused for this alarm until then (it stays on the list and on screen).
    pub audio_paused_until_ms: Option<u64>,
    /// `AlarmEscalated` was emitted for it.
    pub escalated: bool,
}

/// Whether the speaker is sounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum AudioState {
    /// No alarm needs sound.
    Quiet,
    Sounding,
    /// Audio paused by the operator until this time; the alarm stays on screen.
    Paused {
        until_ms: u64,
    },
}

/// What the screen and speaker must show right now.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Annunciation {
    /// The one alarm that sounds: the unacknowledged alarm whose audio is not paused with the highest
    /// priority, then the oldest. `None` while every unacknowledged alarm has its audio paused
    /// (`audio` then says until when) or when nothing needs sound.
    pub sounding: Option<ActiveAlarm>,
    pub audio: AudioState,
    /// Every active alarm, highest priority first, then oldest.
    pub active: Vec<ActiveAlarm>,
}

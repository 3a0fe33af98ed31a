//! What can happen to a simulated pump: the operator's buttons and the physical world's faults,
//! fixes and movements. The snake_case names are the public contract of scenario files.

use pump::{AlarmKind, Command};
use serde::{Deserialize, Serialize};

use crate::plant::PlantEvent;

/// One thing that happens to the pump at a moment. Buttons go to the core; everything else to the
/// plant. Serialized with `"action"` as the tag, e.g. `{"action": "air_bubble", "volume_ul": 200.0}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    // Buttons.
    Start,
    Pause,
    Resume,
    Stop,
    /// Audio pause of the alarms active now.
    Silence,
    /// Acknowledge one alarm, or every active alarm when `alarm` is absent.
    Acknowledge {
        #[serde(default, with = "crate::names::option_alarm")]
        alarm: Option<AlarmKind>,
    },
    /// The patient's bolus button.
    Bolus,
    /// Confirm a soft-limit override the core asked for.
    ConfirmOverride,
    // Occlusions.
    /// Kinked tubing; `severity` 1.0 (default) blocks completely, less is a partial occlusion.
    Kink {
        #[serde(default = "one")]
        severity: f64,
    },
    Unkink,
    CloseDownstreamClamp,
    OpenDownstreamClamp,
    CloseUpstreamClamp,
    OpenUpstreamClamp,
    BlockCatheter,
    UnblockCatheter,
    // Air.
    AirBubble {
        volume_ul: f64,
    },
    LoosenConnection,
    TightenConnection,
    /// Prime the line: flush out the air waiting above the detector (what the guide's "clear air
    /// from the system" means).
    PrimeLine,
    /// Hang a fresh container with this volume.
    NewContainer {
        volume_ml: f64,
    },
    // Door and power.
    OpenDoor,
    CloseDoor,
    UnplugMains,
    PlugMains,
    SetBatteryPercent {
        percent: f64,
    },
    // Device faults.
    /// Motor stall: commanded, does not move.
    MotorFault,
    /// The encoder stops counting while the motor moves.
    EncoderFault,
    /// The motor runs at twice the commanded speed.
    MotorRunaway,
    /// The controller runs (and counts) `factor` times the commanded rate.
    MotorSpeedError {
        factor: f64,
    },
    PressureSensorStuck,
    Overheat,
    SelfTestFail {
        code: u16,
    },
    // The line and the patient.
    DisconnectLine,
    ReconnectLine,
    Cough,
    /// A bent arm partially occludes the line for `duration_ms` (default 30 s).
    BendArm {
        #[serde(default = "thirty_seconds")]
        duration_ms: u64,
    },
    /// The pump is moved to `height_cm` above (negative: below) the catheter.
    MovePump {
        height_cm: f64,
    },
}

fn one() -> f64 {
    1.0
}

fn thirty_seconds() -> u64 {
    30_000
}

/// Every action name, for error messages and documentation.
pub const ACTION_NAMES: [&str; 38] = [
    "start",
    "pause",
    "resume",
    "stop",
    "silence",
    "acknowledge",
    "bolus",
    "confirm_override",
    "kink",
    "unkink",
    "close_downstream_clamp",
    "open_downstream_clamp",
    "close_upstream_clamp",
    "open_upstream_clamp",
    "block_catheter",
    "unblock_catheter",
    "air_bubble",
    "loosen_connection",
    "tighten_connection",
    "prime_line",
    "new_container",
    "open_door",
    "close_door",
    "unplug_mains",
    "plug_mains",
    "set_battery_percent",
    "motor_fault",
    "encoder_fault",
    "motor_runaway",
    "motor_speed_error",
    "pressure_sensor_stuck",
    "overheat",
    "self_test_fail",
    "disconnect_line",
    "reconnect_line",
    "cough",
    "bend_arm",
    "move_pump",
];

/// Where an action goes.
pub enum Target {
    /// A button press for the core. `Acknowledge` without an alarm is expanded by the simulation.
    Core(Command),
    /// Acknowledge every active alarm.
    AcknowledgeAll,
    Plant(PlantEvent),
}

impl Action {
    /// The public name, as written in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Stop => "stop",
            Action::Silence => "silence",
            Action::Acknowledge { .. } => "acknowledge",
            Action::Bolus => "bolus",
            Action::ConfirmOverride => "confirm_override",
            Action::Kink { .. } => "kink",
            Action::Unkink => "unkink",
            Action::CloseDownstreamClamp => "close_downstream_clamp",
            Action::OpenDownstreamClamp => "open_downstream_clamp",
            Action::CloseUpstreamClamp => "close_upstream_clamp",
            Action::OpenUpstreamClamp => "open_upstream_clamp",
            Action::BlockCatheter => "block_catheter",
            Action::UnblockCatheter => "unblock_catheter",
            Action::AirBubble { .. } => "air_bubble",
            Action::LoosenConnection => "loosen_connection",
            Action::TightenConnection => "tighten_connection",
            Action::PrimeLine => "prime_line",
            Action::NewContainer { .. } => "new_container",
            Action::OpenDoor => "open_door",
            Action::CloseDoor => "close_door",
            Action::UnplugMains => "unplug_mains",
            Action::PlugMains => "plug_mains",
            Action::SetBatteryPercent { .. } => "set_battery_percent",
            Action::MotorFault => "motor_fault",
            Action::EncoderFault => "encoder_fault",
            Action::MotorRunaway => "motor_runaway",
            Action::MotorSpeedError { .. } => "motor_speed_error",
            Action::PressureSensorStuck => "pressure_sensor_stuck",
            Action::Overheat => "overheat",
            Action::SelfTestFail { .. } => "self_test_fail",
            Action::DisconnectLine => "disconnect_line",
            Action::ReconnectLine => "reconnect_line",
            Action::Cough => "cough",
            Action::BendArm { .. } => "bend_arm",
            Action::MovePump { .. } => "move_pump",
        }
    }

    /// Where the action goes.
    pub fn target(&self) -> Target {
        use PlantEvent as P;
        match *self {
            Action::Start => Target::Core(Command::Start),
            Action::Pause => Target::Core(Command::Pause),
            Action::Resume => Target::Core(Command::Resume),
            Action::Stop => Target::Core(Command::Stop),
            Action::Silence => Target::Core(Command::SilenceAudio),
            Action::Acknowledge { alarm: Some(a) } => Target::Core(Command::Acknowledge(a)),
            Action::Acknowledge { alarm: None } => Target::AcknowledgeAll,
            Action::Bolus => Target::Core(Command::PatientBolus),
            Action::ConfirmOverride => Target::Core(Command::ConfirmOverride),
            Action::Kink { severity } => Target::Plant(P::Kink { severity }),
            Action::Unkink => Target::Plant(P::Unkink),
            Action::CloseDownstreamClamp => Target::Plant(P::CloseDownstreamClamp),
            Action::OpenDownstreamClamp => Target::Plant(P::OpenDownstreamClamp),
            Action::CloseUpstreamClamp => Target::Plant(P::CloseUpstreamClamp),
            Action::OpenUpstreamClamp => Target::Plant(P::OpenUpstreamClamp),
            Action::BlockCatheter => Target::Plant(P::BlockCatheter),
            Action::UnblockCatheter => Target::Plant(P::UnblockCatheter),
            Action::AirBubble { volume_ul } => Target::Plant(P::AirBubble { volume_ul }),
            Action::LoosenConnection => Target::Plant(P::LoosenConnection),
            Action::TightenConnection => Target::Plant(P::TightenConnection),
            Action::PrimeLine => Target::Plant(P::PrimeLine),
            Action::NewContainer { volume_ml } => Target::Plant(P::NewContainer { volume_ml }),
            Action::OpenDoor => Target::Plant(P::OpenDoor),
            Action::CloseDoor => Target::Plant(P::CloseDoor),
            Action::UnplugMains => Target::Plant(P::UnplugMains),
            Action::PlugMains => Target::Plant(P::PlugMains),
            Action::SetBatteryPercent { percent } => {
                Target::Plant(P::SetBatteryPercent { percent })
            }
            Action::MotorFault => Target::Plant(P::MotorFault),
            Action::EncoderFault => Target::Plant(P::EncoderFault),
            Action::MotorRunaway => Target::Plant(P::MotorRunaway),
            Action::MotorSpeedError { factor } => Target::Plant(P::MotorSpeedError { factor }),
            Action::PressureSensorStuck => Target::Plant(P::PressureSensorStuck),
            Action::Overheat => Target::Plant(P::Overheat),
            Action::SelfTestFail { code } => Target::Plant(P::SelfTestFail { code }),
            Action::DisconnectLine => Target::Plant(P::DisconnectLine),
            Action::ReconnectLine => Target::Plant(P::ReconnectLine),
            Action::Cough => Target::Plant(P::Cough),
            Action::BendArm { duration_ms } => Target::Plant(P::BendArm { duration_ms }),
            Action::MovePump { height_cm } => Target::Plant(P::MovePump { height_cm }),
        }
    }
}

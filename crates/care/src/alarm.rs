//! The alarms the companion has guides for: every alarm of the pump core, plus `pump_silent`, which only the
//! server can raise (a pump that should be infusing stopped sending telemetry).

use std::fmt;

use pump::AlarmKind;

/// An alarm the patient may see: one raised by the pump core, or the server's `pump_silent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Alarm {
    /// Raised by the pump core.
    Core(AlarmKind),
    /// Raised by the server: the pump stopped sending telemetry while it should be infusing.
    PumpSilent,
}

impl Alarm {
    /// The serialized name of `pump_silent`.
    pub const PUMP_SILENT: &'static str = "pump_silent";

    /// Every alarm: the core's in its declaration order, then `pump_silent`.
    pub fn all() -> impl Iterator<Item = Alarm> {
        AlarmKind::ALL
            .into_iter()
            .map(Alarm::Core)
            .chain([Alarm::PumpSilent])
    }

    /// The public name: the core's `AlarmKind::name()`, or `pump_silent`.
    pub fn name(self) -> &'static str {
        match self {
            Alarm::Core(kind) => kind.name(),
            Alarm::PumpSilent => Self::PUMP_SILENT,
        }
    }

    /// The alarm with this name, if any.
    pub fn from_name(name: &str) -> Option<Alarm> {
        if name == Self::PUMP_SILENT {
            return Some(Alarm::PumpSilent);
        }
        AlarmKind::from_name(name).map(Alarm::Core)
    }

    /// Parses a name, or explains which names are valid.
    pub fn parse(name: &str) -> Result<Alarm, String> {
        let names: Vec<&str> = Alarm::all().map(Alarm::name).collect();
        Alarm::from_name(name)
            .ok_or_else(|| crate::words::unknown_word(name, "alarm", names.into_iter()))
    }

    /// Whether this is one of the occlusion alarms (a blocked line).
    pub fn is_occlusion(self) -> bool {
        matches!(
            self,
            Alarm::Core(AlarmKind::OcclusionDownstream | AlarmKind::OcclusionUpstream)
        )
    }
}

impl fmt::Display for Alarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Alarm {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Alarm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        Alarm::parse(&text).map_err(serde::de::Error::custom)
    }
}

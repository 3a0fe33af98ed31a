//! Serde helpers that write the core's types by their public `name()`, so JSON and TOML use the
//! same snake_case names as the record and the server, whatever the core's own serde derives do.

/// `Option<AlarmKind>` as its public name or absent.
pub mod option_alarm {
    use pump::AlarmKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<AlarmKind>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(kind) => s.serialize_some(kind.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AlarmKind>, D::Error> {
        let name: Option<String> = Option::deserialize(d)?;
        match name {
            None => Ok(None),
            Some(n) => AlarmKind::from_name(&n)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown alarm `{n}`"))),
        }
    }
}

/// `AlarmKind` as its public name.
pub mod alarm {
    use pump::AlarmKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &AlarmKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AlarmKind, D::Error> {
        let n = String::deserialize(d)?;
        AlarmKind::from_name(&n)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown alarm `{n}`")))
    }
}

/// `State` as its public name.
pub mod state {
    use pump::State;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &State, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        let n = String::deserialize(d)?;
        State::from_name(&n).ok_or_else(|| serde::de::Error::custom(format!("unknown state `{n}`")))
    }
}

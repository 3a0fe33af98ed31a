//! The codes Infusafe reads and writes, with where each number comes from. A number appears here only if it was
//! seen in a public source (named in `Source`); an alarm without a public MDC number travels under Infusafe's
//! local code system `99INFUSAFE` (HL7 reserves coding-system names starting with 99 for local use) whose codes
//! are the alarm names of the pump core (`pump::AlarmKind::name`) and `pump_silent`. Every alarm condition is
//! sent as a CWE with the MDC code first (when there is one) and the local code as the alternate, so a receiver
//! that knows either can read it. docs/api.md has this table for people.

/// Infusafe's local coding system (HL7 table 0396: `99zzz` is for local use).
pub const LOCAL: &str = "99INFUSAFE";
/// IEEE 11073-10101 nomenclature.
pub const MDC: &str = "MDC";

/// Where a code's number was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// IHE PCD public samples, as collected in the project's `shared/reference/interop.md`.
    IhePcdSamples,
    /// A public simulator replaying captured B. Braun SpacePlus PCD-01/PCD-04/PCD-15 traffic (found through a code
    /// search of public GitHub repositories; its codes are copied from real captures).
    BBraunCaptures,
    /// No public number found: Infusafe's local code only.
    Local,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::IhePcdSamples => "IHE PCD ACM public samples (shared/reference/interop.md)",
            Source::BBraunCaptures => {
                "public B. Braun SpacePlus PCD capture replays (GitHub code search)"
            }
            Source::Local => "none public: local code 99INFUSAFE only",
        }
    }
}

/// An MDC code: its number, reference id and where the number was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mdc {
    pub code: &'static str,
    pub name: &'static str,
    pub source: Source,
}

const fn mdc(code: &'static str, name: &'static str, source: Source) -> Mdc {
    Mdc { code, name, source }
}

// The alarm report (PCD-04).
pub const EVT_ALARM: Mdc = mdc("196616", "MDC_EVT_ALARM", Source::IhePcdSamples);
pub const ATTR_ALERT_SOURCE: Mdc = mdc("68480", "MDC_ATTR_ALERT_SOURCE", Source::IhePcdSamples);
pub const ATTR_EVENT_PHASE: Mdc = mdc("68481", "MDC_ATTR_EVENT_PHASE", Source::IhePcdSamples);
pub const ATTR_ALARM_STATE: Mdc = mdc("68482", "MDC_ATTR_ALARM_STATE", Source::IhePcdSamples);
pub const ATTR_ALARM_INACTIVATION_STATE: Mdc = mdc(
    "68483",
    "MDC_ATTR_ALARM_INACTIVATION_STATE",
    Source::IhePcdSamples,
);
pub const ATTR_ALARM_PRIORITY: Mdc = mdc("68484", "MDC_ATTR_ALARM_PRIORITY", Source::IhePcdSamples);
pub const ATTR_ALERT_TYPE: Mdc = mdc("68485", "MDC_ATTR_ALERT_TYPE", Source::IhePcdSamples);
pub const ATTR_ALERT_TEXT: Mdc = mdc("68546", "MDC_ATTR_ALERT_TEXT", Source::IhePcdSamples);
pub const DEV_PUMP_INFUS_MDS: Mdc = mdc("69985", "MDC_DEV_PUMP_INFUS_MDS", Source::IhePcdSamples);

// Device observations (PCD-01).
pub const PUMP_INFUSING_STATUS: Mdc =
    mdc("184519", "MDC_PUMP_INFUSING_STATUS", Source::BBraunCaptures);
pub const FLOW_FLUID_PUMP_CURRENT: Mdc = mdc(
    "158014",
    "MDC_FLOW_FLUID_PUMP_CURRENT",
    Source::BBraunCaptures,
);
pub const VOL_FLUID_TBI: Mdc = mdc("157884", "MDC_VOL_FLUID_TBI", Source::BBraunCaptures);
pub const VOL_FLUID_TBI_REMAIN: Mdc =
    mdc("157872", "MDC_VOL_FLUID_TBI_REMAIN", Source::BBraunCaptures);
pub const VOL_FLUID_DELIV_TOTAL: Mdc = mdc(
    "157993",
    "MDC_VOL_FLUID_DELIV_TOTAL",
    Source::BBraunCaptures,
);
pub const TIME_PD_REMAIN: Mdc = mdc("157916", "MDC_TIME_PD_REMAIN", Source::BBraunCaptures);
pub const ATTR_TIME_BATT_REMAIN: Mdc =
    mdc("67976", "MDC_ATTR_TIME_BATT_REMAIN", Source::BBraunCaptures);
pub const ATTR_VAL_BATT_CHARGE: Mdc =
    mdc("67996", "MDC_ATTR_VAL_BATT_CHARGE", Source::BBraunCaptures);
pub const ATTR_POWER_STAT: Mdc = mdc("67925", "MDC_ATTR_POWER_STAT", Source::BBraunCaptures);

// Units (MDC code, MDC name, UCUM).
pub const DIM_ML_PER_H: (&str, &str, &str) = ("265266", "MDC_DIM_MILLI_L_PER_HR", "mL/h");
pub const DIM_ML: (&str, &str, &str) = ("263762", "MDC_DIM_MILLI_L", "mL");
pub const DIM_MIN: (&str, &str, &str) = ("264352", "MDC_DIM_MIN", "min");
pub const DIM_SEC: (&str, &str, &str) = ("264320", "MDC_DIM_X_SEC", "s");
pub const DIM_PERCENT: (&str, &str, &str) = ("262688", "MDC_DIM_PERCENT", "%");
/// Pressure travels in UCUM only (no MDC unit number seen in a public source).
pub const UCUM_MMHG: &str = "mm[Hg]";

/// Infusafe's local observation codes (no public MDC number found).
pub const LOCAL_PUMP_STATE: &str = "pump_state";
pub const LOCAL_DOWNSTREAM_PRESSURE: &str = "downstream_pressure_mmhg";

/// An alarm of ours and the MDC event code for it, where a public source gives one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmCode {
    /// Our alarm name (the public contract: `pump::AlarmKind::name`, or `pump_silent`).
    pub alarm: &'static str,
    pub mdc: Option<Mdc>,
}

/// The server's own alarm (a pump that stopped talking), sent out but never accepted from a device.
pub const PUMP_SILENT: &str = "pump_silent";

/// Every alarm Infusafe raises, with its MDC code where a public source gives one.
pub const ALARMS: [AlarmCode; 19] = [
    AlarmCode {
        alarm: "occlusion_downstream",
        mdc: Some(mdc(
            "196940",
            "MDC_EVT_FLUID_LINE_OCCL",
            Source::IhePcdSamples,
        )),
    },
    AlarmCode {
        alarm: "occlusion_upstream",
        mdc: None,
    },
    AlarmCode {
        alarm: "air_in_line",
        mdc: None,
    },
    AlarmCode {
        alarm: "reservoir_empty",
        mdc: None,
    },
    AlarmCode {
        alarm: "infusion_near_end",
        mdc: Some(mdc(
            "197334",
            "MDC_EVT_VOL_INFUS_NEAR_COMP",
            Source::BBraunCaptures,
        )),
    },
    AlarmCode {
        alarm: "infusion_complete",
        mdc: Some(mdc(
            "197292",
            "MDC_EVT_PUMP_DELIV_COMP",
            Source::BBraunCaptures,
        )),
    },
    AlarmCode {
        alarm: "door_open",
        mdc: None,
    },
    AlarmCode {
        alarm: "battery_low",
        mdc: None,
    },
    AlarmCode {
        alarm: "battery_depleted",
        mdc: None,
    },
    AlarmCode {
        alarm: "mains_lost",
        mdc: None,
    },
    AlarmCode {
        alarm: "system_error",
        mdc: None,
    },
    AlarmCode {
        alarm: "over_infusion",
        mdc: None,
    },
    AlarmCode {
        alarm: "under_infusion",
        mdc: None,
    },
    AlarmCode {
        alarm: "paused_too_long",
        mdc: None,
    },
    AlarmCode {
        alarm: "repeated_alarm",
        mdc: None,
    },
    AlarmCode {
        alarm: "bolus_locked_out",
        mdc: None,
    },
    AlarmCode {
        alarm: "hourly_limit_reached",
        mdc: None,
    },
    AlarmCode {
        alarm: "line_disconnected",
        mdc: None,
    },
    AlarmCode {
        alarm: PUMP_SILENT,
        mdc: None,
    },
];

/// The code of one of our alarms.
pub fn alarm_code(alarm: &str) -> Option<AlarmCode> {
    ALARMS.iter().copied().find(|a| a.alarm == alarm)
}

/// Our alarm for a coded alarm condition: by the local code (`alarm^…^99INFUSAFE` in either triplet), else by the
/// MDC number or reference id.
pub fn alarm_for(triplets: &[(String, String, String)]) -> Option<&'static str> {
    for (code, _, system) in triplets {
        if system == LOCAL
            && let Some(a) = ALARMS.iter().find(|a| a.alarm == code)
        {
            return Some(a.alarm);
        }
    }
    for (code, name, system) in triplets {
        if (system == MDC || system.is_empty())
            && let Some(a) = ALARMS.iter().find(|a| {
                a.mdc
                    .is_some_and(|m| (!code.is_empty() && m.code == code) || m.name == name)
            })
        {
            return Some(a.alarm);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pump_alarm_and_pump_silent_has_a_code_and_mdc_numbers_are_unique() {
        for kind in pump::AlarmKind::ALL {
            assert!(alarm_code(kind.name()).is_some(), "{}", kind.name());
        }
        assert!(alarm_code(PUMP_SILENT).is_some());
        assert_eq!(ALARMS.len(), pump::AlarmKind::ALL.len() + 1);
        let numbers: Vec<_> = ALARMS
            .iter()
            .filter_map(|a| a.mdc)
            .map(|m| m.code)
            .collect();
        let mut unique = numbers.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(numbers.len(), unique.len());
    }

    #[test]
    fn an_alarm_is_found_by_local_code_by_mdc_number_or_by_mdc_name() {
        let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(
            alarm_for(&[t("196940", "MDC_EVT_FLUID_LINE_OCCL", "MDC")]),
            Some("occlusion_downstream")
        );
        assert_eq!(
            alarm_for(&[t("", "MDC_EVT_FLUID_LINE_OCCL", "MDC")]),
            Some("occlusion_downstream")
        );
        assert_eq!(
            alarm_for(&[t("1", "x", "MDC"), t("air_in_line", "", LOCAL)]),
            Some("air_in_line")
        );
        assert_eq!(alarm_for(&[t("999999", "MDC_EVT_UNKNOWN", "MDC")]), None);
        assert_eq!(alarm_for(&[t("nonsense", "", LOCAL)]), None);
    }
}

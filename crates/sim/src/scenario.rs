//! Scenario files: the public TOML contract for "this therapy, these things happen, expect this".
//!
//! Parsing is two steps. serde with `deny_unknown_fields` reads the shape (an unknown key is an
//! error with its line from toml's spans); then every value is checked (durations, action names,
//! parameters that belong to another action, ranges) and each error names the key and its line.

use std::path::Path;

use pump::{AlarmKind, BolusProgram, EndAction, ProgramRequest, State};
use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;
use toml::Spanned;

use crate::action::{ACTION_NAMES, Action};
use crate::duration::parse_duration_ms;
use crate::plant::PlantConfig;

/// Largest scenario file we read: scenarios are hand-written; 1 MiB is far beyond any.
pub const SCENARIO_BYTES_MAX: u64 = 1 << 20;
/// Longest simulated time of one scenario: a month bounds the work of one `sim run` (about 3 s).
pub const SCENARIO_DURATION_MS_MAX: u64 = 31 * 24 * 3_600_000;
/// Most events in one scenario (a bound on the work and memory of one run).
pub const SCENARIO_EVENTS_MAX: usize = 10_000;

/// Why a scenario file cannot be used. Each variant says where (file, line) and what to do.
#[derive(Debug, Error)]
pub enum ScenarioError {
    #[error("{origin}: cannot read the scenario file: {source}")]
    Read {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{origin}: the file is larger than {SCENARIO_BYTES_MAX} bytes; a scenario is a short hand-written file"
    )]
    TooLarge { origin: String },
    /// The TOML is malformed or has an unknown key or a value of the wrong type.
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A key's value is not acceptable.
    #[error("{origin}:{line}: `{key}`: {message}")]
    Invalid {
        origin: String,
        line: usize,
        key: String,
        message: String,
    },
}

/// A validated scenario. `Serialize`/`Deserialize` give it a JSON form (times in ms) for the server;
/// the TOML file form is read with [`Scenario::from_toml_str`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Simulated time limit.
    pub duration_ms: u64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub program: Option<ProgramSpec>,
    #[serde(default)]
    pub plant: PlantConfig,
    /// Overrides of the core's configuration (`[pump]` in the file), e.g. the occlusion limit.
    #[serde(default)]
    pub pump: pump::Config,
    /// Sorted by time; events at the same time keep the file's order.
    #[serde(default)]
    pub events: Vec<ScheduledAction>,
    #[serde(default)]
    pub expectations: Vec<Expectation>,
}

/// The program entered at time 0 (before any event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    pub rate_ml_per_h: f64,
    pub vtbi_ml: f64,
    /// Keep-vein-open rate after the VTBI; absent: stop at the end.
    #[serde(default)]
    pub kvo_ml_per_h: Option<f64>,
    /// Patient bolus volume; with `lockout_min` and `max_ml_per_h` enables the bolus button.
    #[serde(default)]
    pub bolus_ml: Option<f64>,
    #[serde(default)]
    pub lockout_min: Option<f64>,
    #[serde(default)]
    pub max_ml_per_h: Option<f64>,
    /// Volume entered for the container; absent: the plant's `reservoir_ml` (the nurse reads the bag).
    #[serde(default)]
    pub reservoir_ml: Option<f64>,
    /// Drug library entry (the simulator runs with an empty library unless a caller gives one).
    #[serde(default)]
    pub drug_id: Option<String>,
}

impl ProgramSpec {
    /// The request handed to the core.
    pub fn request(&self, plant: &PlantConfig) -> ProgramRequest {
        ProgramRequest {
            drug_id: self.drug_id.clone(),
            rate_ml_per_h: self.rate_ml_per_h,
            vtbi_ml: self.vtbi_ml,
            end_action: match self.kvo_ml_per_h {
                Some(rate_ml_per_h) => EndAction::Kvo { rate_ml_per_h },
                None => EndAction::Stop,
            },
            bolus: self.bolus_ml.map(|volume_ml| BolusProgram {
                volume_ml,
                lockout_min: self.lockout_min.unwrap_or(15.0),
                max_ml_per_h: self
                    .max_ml_per_h
                    .unwrap_or(volume_ml * 4.0 + self.rate_ml_per_h),
            }),
            reservoir_ml: Some(self.reservoir_ml.unwrap_or(plant.reservoir_ml)),
        }
    }
}

/// An action at a simulated time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScheduledAction {
    pub at_ms: u64,
    #[serde(flatten)]
    pub action: Action,
}

/// A check on the outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "expect", rename_all = "snake_case")]
pub enum Expectation {
    /// The alarm was raised at or before `by_ms`.
    Alarm {
        #[serde(with = "crate::names::alarm")]
        alarm: AlarmKind,
        by_ms: u64,
    },
    /// The alarm was never raised (`None`: no alarm at all).
    NoAlarm {
        #[serde(with = "crate::names::option_alarm")]
        alarm: Option<AlarmKind>,
    },
    /// Volume that reached the patient, in mL, within these bounds.
    Delivered {
        min_ml: Option<f64>,
        max_ml: Option<f64>,
    },
    FinalState {
        #[serde(with = "crate::names::state")]
        state: State,
    },
}

impl Expectation {
    /// A readable sentence for reports.
    pub fn description(&self) -> String {
        use crate::duration::format_duration_ms as d;
        match *self {
            Expectation::Alarm { alarm, by_ms } => {
                format!("alarm {} raised by {}", alarm.name(), d(by_ms))
            }
            Expectation::NoAlarm { alarm: Some(a) } => format!("alarm {} never raised", a.name()),
            Expectation::NoAlarm { alarm: None } => "no alarm at all".to_string(),
            Expectation::Delivered { min_ml, max_ml } => match (min_ml, max_ml) {
                (Some(lo), Some(hi)) => format!("delivered between {lo} and {hi} mL"),
                (Some(lo), None) => format!("delivered at least {lo} mL"),
                (None, Some(hi)) => format!("delivered at most {hi} mL"),
                (None, None) => "delivered (no bound)".to_string(),
            },
            Expectation::FinalState { state } => format!("final state {}", state.name()),
        }
    }
}

/// A number written as an integer or a float (`volume_ul = 200` and `volume_ul = 200.0` both work).
#[derive(Debug, Clone, Copy)]
struct Num(f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: Option<String>,
    duration: Spanned<String>,
    #[serde(default)]
    seed: Option<Spanned<i64>>,
    #[serde(default)]
    program: Option<RawProgram>,
    #[serde(default)]
    plant: Option<Spanned<PlantConfig>>,
    /// Read as a table first: `pump::Config` ignores unknown keys, and a typo in a safety limit
    /// must be an error, not a silently ignored line.
    #[serde(default)]
    pump: Option<Spanned<toml::Table>>,
    #[serde(default)]
    event: Vec<RawEvent>,
    #[serde(default)]
    expect: Vec<RawExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgram {
    rate_ml_per_h: Spanned<Num>,
    vtbi_ml: Spanned<Num>,
    #[serde(default)]
    kvo_ml_per_h: Option<Spanned<Num>>,
    #[serde(default)]
    bolus_ml: Option<Spanned<Num>>,
    #[serde(default)]
    lockout_min: Option<Spanned<Num>>,
    #[serde(default)]
    max_ml_per_h: Option<Spanned<Num>>,
    #[serde(default)]
    reservoir_ml: Option<Spanned<Num>>,
    #[serde(default)]
    drug_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: Spanned<String>,
    action: Spanned<String>,
    #[serde(default)]
    alarm: Option<Spanned<String>>,
    #[serde(default)]
    severity: Option<Spanned<Num>>,
    #[serde(default)]
    volume_ul: Option<Spanned<Num>>,
    #[serde(default)]
    volume_ml: Option<Spanned<Num>>,
    #[serde(default)]
    percent: Option<Spanned<Num>>,
    #[serde(default)]
    code: Option<Spanned<i64>>,
    #[serde(default)]
    duration: Option<Spanned<String>>,
    #[serde(default)]
    height_cm: Option<Spanned<Num>>,
    #[serde(default)]
    factor: Option<Spanned<Num>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    alarm: Option<Spanned<String>>,
    #[serde(default)]
    by: Option<Spanned<String>>,
    #[serde(default)]
    no_alarm: Option<Spanned<String>>,
    #[serde(default)]
    delivered_ml_min: Option<Spanned<Num>>,
    #[serde(default)]
    delivered_ml_max: Option<Spanned<Num>>,
    #[serde(default)]
    final_state: Option<Spanned<String>>,
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, column)
}

struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Ctx<'_> {
    fn invalid(&self, offset: usize, key: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            origin: self.origin.to_string(),
            line: line_column(self.text, offset).0,
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn duration(&self, key: &str, value: &Spanned<String>) -> Result<u64, ScenarioError> {
        parse_duration_ms(value.get_ref())
            .map_err(|e| self.invalid(value.span().start, key, e.to_string()))
    }

    fn number(
        &self,
        key: &str,
        value: &Spanned<Num>,
        min: f64,
        max: f64,
    ) -> Result<f64, ScenarioError> {
        let v = value.get_ref().0;
        if !v.is_finite() || v < min || v > max {
            return Err(self.invalid(
                value.span().start,
                key,
                format!("{v} is out of range; allowed {min} to {max}"),
            ));
        }
        Ok(v)
    }

    fn alarm(&self, key: &str, value: &Spanned<String>) -> Result<AlarmKind, ScenarioError> {
        AlarmKind::from_name(value.get_ref()).ok_or_else(|| {
            let names: Vec<&str> = AlarmKind::ALL.iter().map(|k| k.name()).collect();
            self.invalid(
                value.span().start,
                key,
                format!(
                    "unknown alarm `{}`; known alarms: {}",
                    value.get_ref(),
                    names.join(", ")
                ),
            )
        })
    }

    /// Line of `key = ...` inside the byte range of a table, for errors found after deserializing it.
    /// toml's span of a table may cover only its header, so the search runs from the table's start
    /// to the next table header.
    fn key_offset(&self, within: std::ops::Range<usize>, key: &str) -> usize {
        let start = within.start.min(self.text.len());
        let mut offset = start;
        for (i, line) in self.text[start..].split_inclusive('\n').enumerate() {
            let t = line.trim_start();
            if i > 0 && t.starts_with('[') {
                break;
            }
            if let Some(rest) = t.strip_prefix(key)
                && rest.trim_start().starts_with('=')
            {
                return offset + (line.len() - t.len());
            }
            offset += line.len();
        }
        within.start
    }
}

impl Scenario {
    /// Reads and validates a scenario file; `origin` (the file name) prefixes every error.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let cx = Ctx { text, origin };
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_column(text, s.start));
            ScenarioError::Syntax {
                origin: origin.to_string(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        let duration_ms = cx.duration("duration", &raw.duration)?;
        if duration_ms == 0 || duration_ms > SCENARIO_DURATION_MS_MAX {
            return Err(cx.invalid(
                raw.duration.span().start,
                "duration",
                "must be longer than 0s and at most 31d (split longer studies into a campaign)",
            ));
        }
        let seed = match &raw.seed {
            None => 0,
            Some(s) if *s.get_ref() < 0 => {
                return Err(cx.invalid(s.span().start, "seed", "must be 0 or a positive integer"));
            }
            Some(s) => *s.get_ref() as u64,
        };
        let plant = match raw.plant {
            None => PlantConfig::default(),
            Some(p) => {
                let span = p.span();
                let cfg = p.into_inner();
                if let Err(e) = cfg.validate() {
                    let at = cx.key_offset(span, e.field);
                    return Err(cx.invalid(
                        at,
                        &format!("plant.{}", e.field),
                        format!(
                            "{} is out of range; allowed {} to {}",
                            e.value, e.min, e.max
                        ),
                    ));
                }
                cfg
            }
        };
        let pump_config = match raw.pump {
            None => pump::Config::default(),
            Some(p) => {
                let span = p.span();
                let table = p.into_inner();
                let known = toml::Table::try_from(pump::Config::default()).unwrap_or_default();
                if let Some(key) = table.keys().find(|k| !known.contains_key(*k)) {
                    let names: Vec<&str> = known.keys().map(String::as_str).collect();
                    return Err(cx.invalid(
                        cx.key_offset(span, key),
                        &format!("pump.{key}"),
                        format!("unknown pump setting; known settings: {}", names.join(", ")),
                    ));
                }
                let cfg: pump::Config =
                    toml::Value::Table(table)
                        .try_into()
                        .map_err(|e: toml::de::Error| {
                            cx.invalid(span.start, "pump", e.message().trim().to_string())
                        })?;
                if let Err(pump::ConfigError::Invalid { field, value, why }) = cfg.validate() {
                    return Err(cx.invalid(
                        cx.key_offset(span.clone(), field),
                        &format!("pump.{field}"),
                        format!("{value} is invalid: {why}"),
                    ));
                }
                check_pump_config(&cfg).map_err(|(field, msg)| {
                    cx.invalid(cx.key_offset(span, field), &format!("pump.{field}"), msg)
                })?;
                cfg
            }
        };
        let program = match raw.program {
            None => None,
            Some(p) => Some(ProgramSpec {
                // Program values are the core's to judge (a scenario may test a rejected program);
                // here we only refuse what is not a number at all.
                rate_ml_per_h: cx.number(
                    "program.rate_ml_per_h",
                    &p.rate_ml_per_h,
                    f64::MIN,
                    f64::MAX,
                )?,
                vtbi_ml: cx.number("program.vtbi_ml", &p.vtbi_ml, f64::MIN, f64::MAX)?,
                kvo_ml_per_h: p
                    .kvo_ml_per_h
                    .as_ref()
                    .map(|v| cx.number("program.kvo_ml_per_h", v, f64::MIN, f64::MAX))
                    .transpose()?,
                bolus_ml: p
                    .bolus_ml
                    .as_ref()
                    .map(|v| cx.number("program.bolus_ml", v, f64::MIN, f64::MAX))
                    .transpose()?,
                lockout_min: p
                    .lockout_min
                    .as_ref()
                    .map(|v| cx.number("program.lockout_min", v, f64::MIN, f64::MAX))
                    .transpose()?,
                max_ml_per_h: p
                    .max_ml_per_h
                    .as_ref()
                    .map(|v| cx.number("program.max_ml_per_h", v, f64::MIN, f64::MAX))
                    .transpose()?,
                reservoir_ml: p
                    .reservoir_ml
                    .as_ref()
                    .map(|v| cx.number("program.reservoir_ml", v, 0.0, 10_000.0))
                    .transpose()?,
                drug_id: p.drug_id,
            }),
        };
        if raw.event.len() > SCENARIO_EVENTS_MAX {
            return Err(cx.invalid(
                0,
                "event",
                format!("more than {SCENARIO_EVENTS_MAX} events"),
            ));
        }
        let mut events = Vec::with_capacity(raw.event.len());
        for e in &raw.event {
            events.push(parse_event(&cx, e)?);
        }
        events.sort_by_key(|e| e.at_ms);
        let mut expectations = Vec::with_capacity(raw.expect.len());
        for x in &raw.expect {
            expectations.push(parse_expect(&cx, x, duration_ms)?);
        }
        Ok(Scenario {
            name: raw.name,
            description: raw.description,
            duration_ms,
            seed,
            program,
            plant,
            pump: pump_config,
            events,
            expectations,
        })
    }

    /// Reads a scenario file from disk.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let origin = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| ScenarioError::Read {
            origin: origin.clone(),
            source,
        })?;
        if meta.len() > SCENARIO_BYTES_MAX {
            return Err(ScenarioError::TooLarge { origin });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            origin: origin.clone(),
            source,
        })?;
        Scenario::from_toml_str(&text, &origin)
    }
}

/// The few core settings whose nonsense values would make a run meaningless rather than merely a
/// different pump: the sensor period drives the simulation tick.
fn check_pump_config(cfg: &pump::Config) -> Result<(), (&'static str, String)> {
    if !(10..=1_000).contains(&cfg.sensor_period_ms) {
        return Err((
            "sensor_period_ms",
            format!(
                "{} is out of range; allowed 10 to 1000",
                cfg.sensor_period_ms
            ),
        ));
    }
    if !cfg.stroke_volume_ul.is_finite() || cfg.stroke_volume_ul <= 0.0 {
        return Err((
            "stroke_volume_ul",
            format!("{} must be a positive number", cfg.stroke_volume_ul),
        ));
    }
    Ok(())
}

fn parse_event(cx: &Ctx, e: &RawEvent) -> Result<ScheduledAction, ScenarioError> {
    let at_ms = cx.duration("at", &e.at)?;
    let name = e.action.get_ref().as_str();
    let at_action = e.action.span().start;
    // Which parameters this action takes; any other present parameter is an error naming it.
    let allowed: &[&str] = match name {
        "acknowledge" => &["alarm"],
        "kink" => &["severity"],
        "air_bubble" => &["volume_ul"],
        "new_container" => &["volume_ml"],
        "set_battery_percent" => &["percent"],
        "self_test_fail" => &["code"],
        "bend_arm" => &["duration"],
        "move_pump" => &["height_cm"],
        "motor_speed_error" => &["factor"],
        _ => &[],
    };
    let present: [(&str, Option<usize>); 9] = [
        ("alarm", e.alarm.as_ref().map(|v| v.span().start)),
        ("severity", e.severity.as_ref().map(|v| v.span().start)),
        ("volume_ul", e.volume_ul.as_ref().map(|v| v.span().start)),
        ("volume_ml", e.volume_ml.as_ref().map(|v| v.span().start)),
        ("percent", e.percent.as_ref().map(|v| v.span().start)),
        ("code", e.code.as_ref().map(|v| v.span().start)),
        ("duration", e.duration.as_ref().map(|v| v.span().start)),
        ("height_cm", e.height_cm.as_ref().map(|v| v.span().start)),
        ("factor", e.factor.as_ref().map(|v| v.span().start)),
    ];
    if !ACTION_NAMES.contains(&name) {
        return Err(cx.invalid(
            at_action,
            "action",
            format!(
                "unknown action `{name}`; known actions: {}",
                ACTION_NAMES.join(", ")
            ),
        ));
    }
    for (key, offset) in present {
        if let Some(offset) = offset
            && !allowed.contains(&key)
        {
            return Err(cx.invalid(offset, key, format!("action `{name}` takes no `{key}`")));
        }
    }
    let required = |key: &str| cx.invalid(at_action, key, format!("action `{name}` needs `{key}`"));
    let action = match name {
        "start" => Action::Start,
        "pause" => Action::Pause,
        "resume" => Action::Resume,
        "stop" => Action::Stop,
        "silence" => Action::Silence,
        "acknowledge" => Action::Acknowledge {
            alarm: e.alarm.as_ref().map(|a| cx.alarm("alarm", a)).transpose()?,
        },
        "bolus" => Action::Bolus,
        "confirm_override" => Action::ConfirmOverride,
        "kink" => Action::Kink {
            severity: e
                .severity
                .as_ref()
                .map(|v| cx.number("severity", v, 0.0, 1.0))
                .transpose()?
                .unwrap_or(1.0),
        },
        "unkink" => Action::Unkink,
        "close_downstream_clamp" => Action::CloseDownstreamClamp,
        "open_downstream_clamp" => Action::OpenDownstreamClamp,
        "close_upstream_clamp" => Action::CloseUpstreamClamp,
        "open_upstream_clamp" => Action::OpenUpstreamClamp,
        "block_catheter" => Action::BlockCatheter,
        "unblock_catheter" => Action::UnblockCatheter,
        "air_bubble" => Action::AirBubble {
            volume_ul: cx.number(
                "volume_ul",
                e.volume_ul.as_ref().ok_or_else(|| required("volume_ul"))?,
                0.0,
                100_000.0,
            )?,
        },
        "loosen_connection" => Action::LoosenConnection,
        "tighten_connection" => Action::TightenConnection,
        "prime_line" => Action::PrimeLine,
        "new_container" => Action::NewContainer {
            volume_ml: cx.number(
                "volume_ml",
                e.volume_ml.as_ref().ok_or_else(|| required("volume_ml"))?,
                0.0,
                10_000.0,
            )?,
        },
        "open_door" => Action::OpenDoor,
        "close_door" => Action::CloseDoor,
        "unplug_mains" => Action::UnplugMains,
        "plug_mains" => Action::PlugMains,
        "set_battery_percent" => Action::SetBatteryPercent {
            percent: cx.number(
                "percent",
                e.percent.as_ref().ok_or_else(|| required("percent"))?,
                0.0,
                100.0,
            )?,
        },
        "motor_fault" => Action::MotorFault,
        "encoder_fault" => Action::EncoderFault,
        "motor_runaway" => Action::MotorRunaway,
        "motor_speed_error" => Action::MotorSpeedError {
            factor: cx.number(
                "factor",
                e.factor.as_ref().ok_or_else(|| required("factor"))?,
                0.0,
                5.0,
            )?,
        },
        "pressure_sensor_stuck" => Action::PressureSensorStuck,
        "overheat" => Action::Overheat,
        "self_test_fail" => {
            let c = e.code.as_ref().ok_or_else(|| required("code"))?;
            let code = u16::try_from(*c.get_ref()).map_err(|_| {
                cx.invalid(
                    c.span().start,
                    "code",
                    format!("{} is out of range; allowed 0 to 65535", c.get_ref()),
                )
            })?;
            Action::SelfTestFail { code }
        }
        "disconnect_line" => Action::DisconnectLine,
        "reconnect_line" => Action::ReconnectLine,
        "cough" => Action::Cough,
        "bend_arm" => Action::BendArm {
            duration_ms: e
                .duration
                .as_ref()
                .map(|d| cx.duration("duration", d))
                .transpose()?
                .unwrap_or(30_000),
        },
        "move_pump" => Action::MovePump {
            height_cm: cx.number(
                "height_cm",
                e.height_cm.as_ref().ok_or_else(|| required("height_cm"))?,
                -200.0,
                200.0,
            )?,
        },
        other => unreachable!("`{other}` is in ACTION_NAMES but not matched"),
    };
    debug_assert_eq!(action.name(), name);
    Ok(ScheduledAction { at_ms, action })
}

fn parse_expect(cx: &Ctx, x: &RawExpect, duration_ms: u64) -> Result<Expectation, ScenarioError> {
    let kinds = [
        x.alarm.as_ref().map(|v| v.span().start),
        x.no_alarm.as_ref().map(|v| v.span().start),
        x.delivered_ml_min
            .as_ref()
            .or(x.delivered_ml_max.as_ref())
            .map(|v| v.span().start),
        x.final_state.as_ref().map(|v| v.span().start),
    ];
    let given: Vec<usize> = kinds.iter().flatten().copied().collect();
    let only_one = "each [[expect]] holds one check: `alarm` (with optional `by`), `no_alarm`, \
                    `delivered_ml_min`/`delivered_ml_max`, or `final_state`";
    match given.len() {
        0 => {
            let at = x.by.as_ref().map_or(0, |b| b.span().start);
            return Err(cx.invalid(at, "expect", only_one));
        }
        1 => {}
        _ => return Err(cx.invalid(given[1], "expect", only_one)),
    }
    if let Some(by) = &x.by
        && x.alarm.is_none()
    {
        return Err(cx.invalid(by.span().start, "by", "`by` goes with `alarm` only"));
    }
    if let Some(a) = &x.alarm {
        let by_ms = match &x.by {
            Some(b) => {
                let ms = cx.duration("by", b)?;
                if ms > duration_ms {
                    return Err(cx.invalid(
                        b.span().start,
                        "by",
                        "is after the scenario's `duration`; it could never be checked",
                    ));
                }
                ms
            }
            None => duration_ms,
        };
        return Ok(Expectation::Alarm {
            alarm: cx.alarm("alarm", a)?,
            by_ms,
        });
    }
    if let Some(a) = &x.no_alarm {
        let alarm = if a.get_ref() == "any" {
            None
        } else {
            Some(cx.alarm("no_alarm", a)?)
        };
        return Ok(Expectation::NoAlarm { alarm });
    }
    if let Some(s) = &x.final_state {
        let state = State::from_name(s.get_ref()).ok_or_else(|| {
            let names: Vec<&str> = State::ALL.iter().map(|s| s.name()).collect();
            cx.invalid(
                s.span().start,
                "final_state",
                format!(
                    "unknown state `{}`; known states: {}",
                    s.get_ref(),
                    names.join(", ")
                ),
            )
        })?;
        return Ok(Expectation::FinalState { state });
    }
    let min_ml = x
        .delivered_ml_min
        .as_ref()
        .map(|v| cx.number("delivered_ml_min", v, 0.0, 100_000.0))
        .transpose()?;
    let max_ml = x
        .delivered_ml_max
        .as_ref()
        .map(|v| cx.number("delivered_ml_max", v, 0.0, 100_000.0))
        .transpose()?;
    if let (Some(lo), Some(hi), Some(at)) = (min_ml, max_ml, x.delivered_ml_max.as_ref())
        && lo > hi
    {
        return Err(cx.invalid(
            at.span().start,
            "delivered_ml_max",
            format!("{hi} is below delivered_ml_min {lo}"),
        ));
    }
    Ok(Expectation::Delivered { min_ml, max_ml })
}

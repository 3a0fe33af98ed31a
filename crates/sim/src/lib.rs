//! The pump simulator: the physical pump at home (container, mechanism, line, patient, power, faults)
//! driving the real pump core exactly as a device driver would, plus scenario files, the
//! IEC 60601-2-24 test methods and a Monte Carlo safety campaign.
//!
//! Entry points: [`Scenario::from_toml_str`] → [`Simulation::new`] → [`Simulation::step`] /
//! [`Simulation::run_until`]; [`run_scenario`] runs a file with its expectations; [`trumpet`],
//! [`occlusion`] and [`campaign()`] are the standard test methods and the safety campaign.
//! Everything is deterministic: the same scenario and seed give identical output.
//!
//! Code map:
//! - `plant`: the physics and its documented defaults ([`PlantConfig`]); read as a `SensorFrame`.
//! - `simulation`: the driver loop (one tick = one sensor period), live actions, telemetry.
//! - `action`: the public action names of scenario files and the practice pump.
//! - `scenario`, `duration`: the TOML contract and its errors (file, line, key).
//! - `run`, `cli`: a scenario run to its end, its report, timeline and exit code.
//! - `methods`: trumpet curve and occlusion test; `campaign`: faults, patient, checkers, threads.
//! - `svg`: hand-written plots; `rng`: the seeded generator (no `rand`, so seeds replay forever).
//!
//! The simulator never changes the core's decisions: it only hands in what sensors would read and
//! buttons would press, and reads back what the core commands.

pub mod action;
pub mod duration;
mod names;
pub mod plant;
pub mod rng;
pub mod scenario;

pub use action::Action;
pub use duration::{DurationError, format_duration_ms, parse_duration_ms};
pub use plant::{ContainerKind, Plant, PlantConfig, PlantEvent, PlantReadings};
pub use rng::Rng;
pub use scenario::{Expectation, ProgramSpec, Scenario, ScenarioError, ScheduledAction};
pub mod run;
pub mod simulation;

pub use run::{RunConfig, RunOutcome, RunReport, run_scenario};
pub use simulation::{
    AlarmRecord, JournalEntry, Simulation, Telemetry, TelemetryAlarm, TraceSample,
};
pub mod methods;

pub use methods::{MethodConfig, MethodError, OcclusionResult, TrumpetResult, occlusion, trumpet};
pub mod campaign;

pub use campaign::{
    CampaignConfig, CampaignReport, FalseAlarm, FaultKind, FaultMix, Violation, campaign,
    replay_day,
};
pub mod cli;
pub mod svg;

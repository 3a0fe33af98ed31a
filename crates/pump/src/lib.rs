//! The pump control core: the code that would run on a home infusion pump, as a deterministic,
//! sans-IO state machine.
//!
//! The core never reads a clock, touches a file, socket or thread, or draws a random number. Time is
//! an argument (`now_ms`, monotonic milliseconds chosen by the caller), inputs are handed in with
//! [`Pump::handle`], outputs are read back ([`Pump::motor_command`], [`Pump::annunciation`]) or polled
//! ([`Pump::poll_event`]), and the core says when it next needs to run ([`Pump::next_deadline_ms`]).
//! The simulator, the tests and a device driver drive exactly this code.
//!
//! The crate is `no_std` (with `alloc`), so it cannot import `std::time`, `std::fs`, `std::net` or
//! `std::thread` even by accident; `tests/sans_io.rs` also checks the sources and the manifest.
//!
//! Code map: `types` (inputs, outputs, states, events), `alarm` (the alarm catalogue: names,
//! priorities, motor effects; the annunciation), `program` and `library` (program validation against
//! the pump's limits and the drug library), `config` (every threshold with its source), `engine`
//! (the state machine and alarm engine; `compute_motor` is the one place that decides the motor),
//! `stroke` (the per-stroke line monitor: held pulses, a line no longer in a vein),
//! `harness` (a test driver and the invariant checks shared by the tests and the fuzz target).
//! The full design — transition table, alarm table, defaults and their sources, invariants, how a
//! driver runs the loop — is in `docs/pump-core.md`.

#![no_std]

extern crate alloc;

mod alarm;
mod config;
mod engine;
pub mod harness;
mod library;
mod program;
mod stroke;
mod types;

pub use alarm::{
    ActiveAlarm, AlarmDetail, AlarmKind, Annunciation, AudioState, MotorEffect, Priority,
    SensorField,
};
pub use config::{Config, ConfigError};
pub use engine::{
    AIR_BUCKETS_MAX, EVENTS_MAX, EVENTS_RESERVE, HOURLY_BUCKETS_MAX, Pump, REPEAT_HISTORY_MAX,
};
pub use library::{Concentration, DrugEntry, DrugLibrary, LibraryError, LimitZone, Limits};
pub use program::{
    BolusProgram, EndAction, Field, LimitBreach, Program, ProgramError, ProgramRequest,
};
pub use types::{
    BolusDenial, Command, CommandError, Event, Input, MotorCommand, SelfTest, SensorFrame, State,
    Status, TimedEvent,
};

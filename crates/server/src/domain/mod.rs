//! The server's rules with no I/O: the live board (`board`), the escalation ladder (`escalation`), and the values
//! they speak in (`event`: events to record, people and their roles; `message`: live updates). Time is always an
//! argument; nothing here reads a clock, touches a socket or a database, or spawns a task
//! (`tests/server/sans_io.rs` checks the sources). The services layer drives it and carries out its effects.

pub mod authority;
pub mod board;
pub mod escalation;
pub mod event;
pub mod message;

pub use board::{
    AckView, AlarmView, Board, BoardError, Device, Effect, PatientSnapshot, PatientSummary,
    PumpEvent, Settings,
};
pub use escalation::{AckBy, AlarmHistory, Rung, Timing};
pub use event::{EventDraft, EventKind, Origin, Person, Role, ServerKind};
pub use message::{LiveMessage, MessageKind};

#[cfg(test)]
mod tests;

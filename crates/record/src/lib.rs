//! The infusion record: every event of a patient's home infusion, append-only and hash-chained, on
//! SQLite (embedded default) or PostgreSQL, with the queries the screens need and CSV / FHIR exports.
//!
//! - [`event`]: the envelope ([`NewEvent`], [`StoredEvent`]) and the typed kinds ([`Body`]).
//! - [`Store`]: open with a [`Config`], [`Store::append`] batches, [`Store::verify`] the chains, query.
//! - [`checkpoint`]: signed chain heads, kept elsewhere, that detect the newest events being removed.
//! - [`views`]: active alarms, alarm counts per day, infusions with expected vs delivered volume.
//! - [`export`]: CSV (RFC 4180) and an HL7 FHIR R4 `Bundle`.
//! - [`restate`]: a pump's identical reports of its state after the first, counted per pump instead of chained.
//! - [`telemetry`]: pump telemetry in its own compact table (not hash-chained), downsampled after a
//!   retention period; [`Store::telemetry_series`] reads it together with legacy `telemetry` events.
//!
//! Nothing here updates or deletes an event: a correction is a new event ([`Body::Correction`]).

mod append;
pub mod chain;
pub mod checkpoint;
mod error;
pub mod event;
pub mod export;
pub mod restate;
mod schema;
mod store;
pub mod telemetry;
mod telemetry_block;
pub mod views;

pub use checkpoint::{Checkpoint, CheckpointKey, CheckpointReport, MissingEvents};
pub use error::{RecordError, database_unavailable};
pub use event::{
    Body, EscalationPriority, EventId, KNOWN_KINDS, Kind, NewEvent, PatientId, Photo, Source,
    StoredEvent,
};
/// Re-exported so callers name times with the same version of jiff.
pub use jiff;
pub use restate::{RESTATABLE_KINDS, Restatement};
pub use store::{
    APPEND_CHANNEL, BATCH_EVENTS_MAX, Backend, BrokenLink, CLAIM_SEQ_BASE, ChainHead, Config,
    IDS_LISTED_MAX, Receipt, Store, TimelineQuery, VerifyReport, default_database_url,
};
pub use telemetry::{CompactReport, TELEMETRY_BATCH_MAX, TelemetryRetention, TelemetrySample};

//! The I/O shell: everything that reads the clock, talks to the database (through `store`) and the record (through
//! `journal`), runs tasks, and carries out what the rules in `domain` decide. One module per duty: `ingest` (pump
//! batches), `alarms` (the live board's shell: acknowledge, silence, snapshots, the tick), `restore` (the board
//! from the record at start), `ticker` (timed duties), `plans` (plans kept parsed, invalidated on change),
//! `directory` (clinics, patients, pumps), `access`, `auth`, `hub` (live fan-out), `webhook`, `practice`, `pcd` (IHE PCD in and out), `telemetry` (contacts and samples written in groups), `follow`
//! (several processes on one PostgreSQL: each board follows the record and the shared contacts).

pub mod access;
pub mod alarms;
pub mod auth;
pub mod calendar;
pub mod dashboard;
pub mod directory;
pub mod follow;
pub mod hub;
pub mod ingest;
pub mod patient_log;
pub mod pcd;
pub mod plans;
pub mod practice;
pub mod records;
pub mod restore;
pub mod telemetry;
pub mod ticker;
pub mod webhook;

use std::sync::Arc;

use crate::config::ServerConfig;

/// Everything a handler needs; cheap to clone (all shared handles).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ServerConfig>,
    pub db: crate::store::Db,
    pub journal: crate::journal::Journal,
    pub hub: hub::Hub,
    pub board: alarms::LiveBoard,
    /// Every patient's plan, parsed.
    pub plans: plans::PlanCache,
    pub limiter: auth::LoginLimiter,
    pub webhooks: webhook::Webhooks,
    /// The grouped writer for pump contacts and telemetry samples.
    pub telemetry: telemetry::TelemetryWriter,
    /// Running practice pumps.
    pub practice: practice::Practice,
    /// IHE PCD: recent control ids in, the alarm reports out.
    pub pcd: pcd::Pcd,
    /// `http://ADDR` of this server once it listens (the practice pump talks to it over the link).
    pub self_url: Arc<std::sync::OnceLock<String>>,
}

/// Milliseconds since the Unix epoch, UTC: the one wall clock the server's decisions are given.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

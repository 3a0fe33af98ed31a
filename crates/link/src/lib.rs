//! The pump side of the pump link, on its own so a pump (or the gateway in front of real pumps) needs none of the
//! server: the wire types and their limits (`wire`), their validation, the small HTTP client and the pump's outbox
//! (`client`), the same link over IHE PCD (HL7 v2 over MLLP, `pcdlink`), and the simulated pump that runs the real core through the simulator on the link (`simpump`).
//!
//! `infusafe pump` depends on this crate; the server depends on it for the same wire types, so both ends of the
//! link are checked by one set of rules.

pub mod client;
pub mod pcdlink;
pub mod simpump;
pub mod wire;

pub use client::{ClientError, HttpClient, LinkClient};
pub use simpump::{SimPumpConfig, SimPumpError};
pub use wire::{
    BatchResponse, Bounds, Heartbeat, LINK_BATCH_EVENTS_MAX, LinkBatch, LinkError, LinkEvent,
    PUMP_SEQ_MAX, PumpCommand, TELEMETRY_ALARMS_MAX, Telemetry, valid_name, validate_batch,
};

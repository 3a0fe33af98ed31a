//! The pump state machine and alarm engine.

/// The pump control core. See the crate docs for how it is driven.
#[derive(Debug, Clone)]
pub struct Pump {}

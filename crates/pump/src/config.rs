//! Every threshold and timer of the core, with its default and where the number comes from.

/// Pump configuration. `Config::default()` documents each default and its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {}

//! placeholder: crate under construction.

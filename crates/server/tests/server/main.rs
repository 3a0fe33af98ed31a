//! The server's integration tests, one binary (as ripgrep's `tests/tests.rs`): the real server on port 0 with a
//! fresh database per test, driven over HTTP and its event streams through the typed helpers in `support`.

#[macro_use]
mod support;

mod access_matrix;
mod dashboard;
mod demo;
mod follower;
mod hostile_inputs;
mod layers;
mod live_alarms;
mod outbox;
mod patient_log;
mod pcd;
mod sim_pump;
mod telemetry;
mod trust;
mod web_pages;

//! What `infusafe sim run` prints and which exit code it returns, as a library function so the
//! tests check the contract (0 all expectations hold, 1 one failed, 2 invalid file) without
//! spawning the binary.

use std::path::Path;

use crate::run::{RunConfig, run_scenario};
use crate::scenario::Scenario;

/// Exit code: every expectation holds.
pub const EXIT_PASSED: u8 = 0;
/// Exit code: an expectation failed (or a campaign checker found a violation).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the input is invalid (unreadable or malformed scenario, bad argument).
pub const EXIT_INVALID: u8 = 2;

/// The output of `infusafe sim run`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCommandOutput {
    pub stdout: String,
    pub stderr: String,
    /// The SVG to write when `--svg` was given.
    pub svg: Option<String>,
    pub exit_code: u8,
}

/// Runs `infusafe sim run FILE [--json] [--svg]`: reads and runs the file, renders the timeline or
/// the JSON report, and chooses the exit code.
pub fn run_command(path: &Path, json: bool, svg: bool) -> RunCommandOutput {
    let scenario = match Scenario::from_file(path) {
        Ok(s) => s,
        Err(e) => {
            return RunCommandOutput {
                stdout: String::new(),
                stderr: format!("error: {e}\n"),
                svg: None,
                exit_code: EXIT_INVALID,
            };
        }
    };
    let outcome = run_scenario(&scenario, RunConfig { trace: svg });
    let stdout = if json {
        let mut s = serde_json::to_string_pretty(&outcome.report)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    } else {
        outcome.timeline()
    };
    RunCommandOutput {
        stdout,
        stderr: String::new(),
        svg: svg.then(|| crate::svg::run_svg(&outcome)),
        exit_code: if outcome.report.passed {
            EXIT_PASSED
        } else {
            EXIT_FAILED
        },
    }
}

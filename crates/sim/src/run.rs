//! Running a scenario file to its end and judging its expectations: the `infusafe sim run` report.

use serde::Serialize;

use crate::duration::format_duration_ms;
use crate::scenario::{Expectation, Scenario};
use crate::simulation::{AlarmRecord, JournalEntry, Simulation, TraceSample};

/// One alarm in the JSON report (times in seconds, as the contract says).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportAlarm {
    pub kind: String,
    pub priority: String,
    pub raised_at_s: f64,
    /// `null` for an alarm still active at the end.
    pub cleared_at_s: Option<f64>,
}

/// One expectation and whether it held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectationResult {
    pub description: String,
    pub passed: bool,
    /// What was observed, for a failing check's message.
    pub observed: String,
}

/// The `--json` report of `infusafe sim run`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    pub name: String,
    pub passed: bool,
    pub final_state: String,
    /// Volume that reached the patient (the gravimetric truth), mL.
    pub delivered_ml: f64,
    /// Volume the core counted from its encoder, mL.
    pub pump_delivered_ml: f64,
    pub seed: u64,
    pub duration_s: f64,
    pub alarms: Vec<ReportAlarm>,
    pub expectations: Vec<ExpectationResult>,
}

/// A finished run: the report, the readable journal, and the trace if one was asked for.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub report: RunReport,
    pub journal: Vec<JournalEntry>,
    pub journal_dropped: u64,
    pub trace: Vec<TraceSample>,
    pub alarms: Vec<AlarmRecord>,
}

/// Options of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunConfig {
    /// Record a trace for plots (`--svg`).
    pub trace: bool,
}

/// Runs a scenario to its `duration` and checks its expectations.
pub fn run_scenario(scenario: &Scenario, config: RunConfig) -> RunOutcome {
    let mut sim = Simulation::new(scenario);
    if config.trace {
        // About 2000 points across the run: enough for a smooth plot, small for the file.
        sim.record_trace((scenario.duration_ms / 2_000).max(1));
    }
    while sim.now_ms() < scenario.duration_ms {
        sim.step();
        sim.discard_events();
    }
    let alarms = sim.alarm_history().to_vec();
    let delivered_ml = sim.plant().delivered_to_patient_ml;
    let final_state = sim.pump().state();
    let expectations: Vec<ExpectationResult> = scenario
        .expectations
        .iter()
        .map(|x| {
            let (passed, observed) = judge(x, &alarms, delivered_ml, final_state);
            ExpectationResult {
                description: x.description(),
                passed,
                observed,
            }
        })
        .collect();
    let report = RunReport {
        name: scenario.name.clone(),
        passed: expectations.iter().all(|x| x.passed),
        final_state: final_state.name().to_string(),
        delivered_ml: round6(delivered_ml),
        pump_delivered_ml: round6(sim.pump().status().delivered_ml),
        seed: scenario.seed,
        duration_s: scenario.duration_ms as f64 / 1000.0,
        alarms: alarms
            .iter()
            .map(|a| ReportAlarm {
                kind: a.kind.name().to_string(),
                priority: a.priority.name().to_string(),
                raised_at_s: a.raised_at_ms as f64 / 1000.0,
                cleared_at_s: a.cleared_at_ms.map(|c| c as f64 / 1000.0),
            })
            .collect(),
        expectations,
    };
    RunOutcome {
        report,
        journal: sim.journal().to_vec(),
        journal_dropped: sim.journal_dropped(),
        trace: sim.trace().to_vec(),
        alarms,
    }
}

/// Rounds to 6 decimals so JSON output does not show float noise (and stays byte-identical).
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn judge(
    x: &Expectation,
    alarms: &[AlarmRecord],
    delivered_ml: f64,
    state: pump::State,
) -> (bool, String) {
    let first = |kind| {
        alarms
            .iter()
            .find(|a| a.kind == kind)
            .map(|a| a.raised_at_ms)
    };
    match *x {
        Expectation::Alarm { alarm, by_ms } => match first(alarm) {
            Some(at) => (at <= by_ms, format!("raised at {}", format_duration_ms(at))),
            None => (false, "never raised".to_string()),
        },
        Expectation::NoAlarm { alarm: Some(kind) } => match first(kind) {
            Some(at) => (false, format!("raised at {}", format_duration_ms(at))),
            None => (true, "never raised".to_string()),
        },
        Expectation::NoAlarm { alarm: None } => match alarms.first() {
            Some(a) => (
                false,
                format!(
                    "{} raised at {}",
                    a.kind.name(),
                    format_duration_ms(a.raised_at_ms)
                ),
            ),
            None => (true, "no alarm".to_string()),
        },
        Expectation::Delivered { min_ml, max_ml } => {
            let ok = min_ml.is_none_or(|lo| delivered_ml >= lo)
                && max_ml.is_none_or(|hi| delivered_ml <= hi);
            (ok, format!("{delivered_ml:.3} mL delivered"))
        }
        Expectation::FinalState { state: want } => {
            (state == want, format!("final state {}", state.name()))
        }
    }
}

impl RunOutcome {
    /// The readable timeline of `infusafe sim run` without `--json`.
    pub fn timeline(&self) -> String {
        let mut out = String::new();
        let r = &self.report;
        out.push_str(&format!(
            "scenario: {} (seed {}, {} simulated)\n",
            r.name,
            r.seed,
            format_duration_ms((r.duration_s * 1000.0) as u64)
        ));
        for line in &self.journal {
            out.push_str(&format!(
                "{:>10}  {}\n",
                format_duration_ms(line.at_ms),
                line.text
            ));
        }
        if self.journal_dropped > 0 {
            out.push_str(&format!(
                "            ... {} more lines not kept\n",
                self.journal_dropped
            ));
        }
        out.push_str(&format!(
            "end: state {}, {:.3} mL reached the patient ({:.3} mL counted by the pump)\n",
            r.final_state, r.delivered_ml, r.pump_delivered_ml
        ));
        for x in &r.expectations {
            out.push_str(&format!(
                "{} {} — {}\n",
                if x.passed { "PASS" } else { "FAIL" },
                x.description,
                x.observed
            ));
        }
        out.push_str(if r.passed {
            "all expectations hold\n"
        } else {
            "SOME EXPECTATIONS FAILED\n"
        });
        out
    }
}

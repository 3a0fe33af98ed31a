//! The IEC 60601-2-24 test methods as simulations: the trumpet curve (flow accuracy over observation
//! windows in the second hour) and the occlusion test (time to alarm and bolus on release).
//!
//! Both weigh what reaches the end of the line (the plant's `delivered_to_patient`), as the standard's
//! balance does, never what the pump believes it delivered.

use pump::{AlarmKind, MotorCommand};
use serde::Serialize;
use thiserror::Error;

use crate::action::Action;
use crate::plant::PlantConfig;
use crate::scenario::ProgramSpec;
use crate::simulation::Simulation;

/// Why a test method cannot run.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MethodError {
    #[error("rate {rate_ml_per_h} mL/h is out of range; the test methods accept 0.1 to 999 mL/h")]
    Rate { rate_ml_per_h: f64 },
    #[error("the pump did not start infusing: it is {state} ({detail})")]
    DidNotStart { state: &'static str, detail: String },
}

/// What the methods run on: the plant, the core's configuration and the seed.
#[derive(Debug, Clone, Default)]
pub struct MethodConfig {
    pub plant: PlantConfig,
    pub pump: pump::Config,
    pub seed: u64,
}

/// Observation windows of the trumpet curve, minutes (IEC 60601-2-24).
pub const TRUMPET_WINDOWS_MIN: [u64; 5] = [2, 5, 11, 19, 31];
/// The balance is read every 30 s (the standard's sample interval S = 0.5 min).
pub const TRUMPET_SAMPLE_MS: u64 = 30_000;

/// Max and min flow error over every observation window of one length.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrumpetWindow {
    pub window_min: u64,
    pub max_error_percent: f64,
    pub min_error_percent: f64,
}

/// The trumpet curve and mean flow error at one rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrumpetResult {
    pub rate_ml_per_h: f64,
    pub seed: u64,
    /// Mean flow error over the second hour (the standard's A), percent.
    pub mean_error_percent: f64,
    /// Volume weighed in the second hour, mL.
    pub second_hour_ml: f64,
    pub windows: Vec<TrumpetWindow>,
    /// Flow of each 30 s sample in the second hour, mL/h (for plots).
    pub sample_flows_ml_per_h: Vec<f64>,
}

fn check_rate(rate_ml_per_h: f64) -> Result<(), MethodError> {
    if !(0.1..=999.0).contains(&rate_ml_per_h) || !rate_ml_per_h.is_finite() {
        return Err(MethodError::Rate { rate_ml_per_h });
    }
    Ok(())
}

/// Starts a pump at `rate` with a reservoir and VTBI that last the whole test.
fn started(rate_ml_per_h: f64, hours: f64, cfg: &MethodConfig) -> Result<Simulation, MethodError> {
    let volume = (rate_ml_per_h * hours * 1.5).clamp(1.0, 9_000.0);
    let mut plant = cfg.plant.clone();
    plant.reservoir_ml = plant.reservoir_ml.max(volume + 10.0);
    let program = ProgramSpec {
        rate_ml_per_h,
        vtbi_ml: volume,
        kvo_ml_per_h: None,
        bolus_ml: None,
        lockout_min: None,
        max_ml_per_h: None,
        reservoir_ml: None,
        drug_id: None,
    };
    let mut sim = Simulation::with_program(
        Some(&program),
        plant,
        cfg.pump.clone(),
        pump::DrugLibrary::default(),
        cfg.seed,
    );
    let started = sim.apply(Action::Start);
    if !matches!(sim.motor(), MotorCommand::Run { .. }) {
        return Err(MethodError::DidNotStart {
            state: sim.pump().state().name(),
            detail: match started {
                Err(e) => format!("{e:?}"),
                Ok(()) => "motor stopped".to_string(),
            },
        });
    }
    Ok(sim)
}

/// Runs the trumpet test: two hours at `rate`, the balance read every 30 s in the second hour.
pub fn trumpet(rate_ml_per_h: f64, cfg: &MethodConfig) -> Result<TrumpetResult, MethodError> {
    check_rate(rate_ml_per_h)?;
    let mut sim = started(rate_ml_per_h, 2.0, cfg)?;
    sim.run_until(3_600_000);
    sim.discard_events();
    let mut weights_ml = vec![sim.plant().delivered_to_patient_ml];
    for k in 1..=(3_600_000 / TRUMPET_SAMPLE_MS) {
        sim.run_until(3_600_000 + k * TRUMPET_SAMPLE_MS);
        sim.discard_events();
        weights_ml.push(sim.plant().delivered_to_patient_ml);
    }
    let sample_h = TRUMPET_SAMPLE_MS as f64 / 3_600_000.0;
    let flows: Vec<f64> = weights_ml
        .windows(2)
        .map(|w| (w[1] - w[0]) / sample_h)
        .collect();
    let second_hour_ml = weights_ml[weights_ml.len() - 1] - weights_ml[0];
    let error = |flow: f64| 100.0 * (flow - rate_ml_per_h) / rate_ml_per_h;
    let windows = TRUMPET_WINDOWS_MIN
        .iter()
        .map(|&p| {
            let m = (p * 60_000 / TRUMPET_SAMPLE_MS) as usize;
            let (mut max, mut min) = (f64::NEG_INFINITY, f64::INFINITY);
            for j in 0..=(flows.len() - m) {
                let mean = flows[j..j + m].iter().sum::<f64>() / m as f64;
                max = max.max(error(mean));
                min = min.min(error(mean));
            }
            TrumpetWindow {
                window_min: p,
                max_error_percent: round3(max),
                min_error_percent: round3(min),
            }
        })
        .collect();
    Ok(TrumpetResult {
        rate_ml_per_h,
        seed: cfg.seed,
        mean_error_percent: round3(error(second_hour_ml)),
        second_hour_ml: round3(second_hour_ml),
        windows,
        sample_flows_ml_per_h: flows.iter().map(|f| round3(*f)).collect(),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Pressure limits of the occlusion test: ECRI's adjustable range, 2 psi to 20 psi (the first two
/// rows), then the pump's default limit (the third row).
pub const OCCLUSION_LIMITS_MMHG: [f64; 2] = [103.4, 1034.0];
/// Longest we wait for an occlusion alarm before reporting that none came.
pub const OCCLUSION_WAIT_MS_MAX: u64 = 24 * 3_600_000;
/// Steady flow before the occlusion (the line must be at its working pressure first).
pub const OCCLUSION_WARMUP_MS: u64 = 15 * 60_000;
/// After the alarm, how long the line stays closed before it is opened: time for the pressure
/// relief to finish (it stops on its own when the line is back near its baseline).
pub const OCCLUSION_RELIEF_WAIT_MS: u64 = 5 * 60_000;

/// One row of the occlusion test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OcclusionRow {
    pub limit_mmhg: f64,
    /// Time from closing the line to `occlusion_downstream` (the per-stroke detector and the
    /// pressure limit together, as the pump runs); `None`: no alarm within 24 h.
    pub time_to_alarm_s: Option<f64>,
    /// What physics predicts for the pressure limit alone: line compliance × (limit − working
    /// pressure) / rate.
    pub predicted_time_s: f64,
    /// Time to `occlusion_downstream` with the per-stroke detector switched off (the fixed pressure
    /// limit alone, the behaviour before issue 11); `None`: no alarm within 24 h.
    pub time_to_alarm_limit_only_s: Option<f64>,
    /// Volume that reached the patient in the minute after the line was opened again, mL, with
    /// pressure relief (the pump as it runs: the line is opened once relief has finished).
    pub bolus_ml: f64,
    /// What physics predicts: compliance × (pressure at release − venous pressure).
    pub predicted_bolus_ml: f64,
    /// Line pressure when the line was opened, mmHg.
    pub pressure_at_release_mmhg: f64,
    /// The same test with pressure relief switched off (`relief_max_ul = 0`): the bolus the line
    /// stored at the alarm, mL.
    pub bolus_without_relief_ml: f64,
    /// Line pressure when the line was opened, without relief, mmHg.
    pub pressure_at_release_without_relief_mmhg: f64,
    /// Whether this row is the pump's default limit (`pump::Config::default()`).
    pub default_limit: bool,
}

/// The occlusion test at one rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OcclusionResult {
    pub rate_ml_per_h: f64,
    pub seed: u64,
    pub rows: Vec<OcclusionRow>,
}

/// Runs the occlusion test at `rate` for ECRI's lowest and highest pressure limit, then for the
/// pump's default limit; each with and without pressure relief, and with the pressure limit alone.
pub fn occlusion(rate_ml_per_h: f64, cfg: &MethodConfig) -> Result<OcclusionResult, MethodError> {
    check_rate(rate_ml_per_h)?;
    let mut rows = Vec::new();
    let default_limit = pump::Config::default().occlusion_downstream_mmhg;
    for (limit_mmhg, is_default) in OCCLUSION_LIMITS_MMHG
        .into_iter()
        .map(|l| (l, false))
        .chain([(default_limit, true)])
    {
        let mut c = cfg.clone();
        c.pump.occlusion_downstream_mmhg = limit_mmhg;
        let with_relief = occlusion_at(rate_ml_per_h, limit_mmhg, &c)?;
        let mut no_relief = c.clone();
        no_relief.pump.relief_max_ul = 0.0;
        let without = occlusion_at(rate_ml_per_h, limit_mmhg, &no_relief)?;
        // The pump before issue 11: the limit alone, alarming at the first reading above it.
        let mut limit_only = c.clone();
        limit_only.pump.occlusion_stroke_rise_mmhg = 1.0e9;
        limit_only.pump.occlusion_limit_persist_ms = 0;
        let limit_only = occlusion_at(rate_ml_per_h, limit_mmhg, &limit_only)?;
        rows.push(OcclusionRow {
            time_to_alarm_limit_only_s: limit_only.time_to_alarm_s,
            bolus_without_relief_ml: without.bolus_ml,
            pressure_at_release_without_relief_mmhg: without.pressure_at_release_mmhg,
            default_limit: is_default,
            ..with_relief
        });
    }
    Ok(OcclusionResult {
        rate_ml_per_h,
        seed: cfg.seed,
        rows,
    })
}

fn occlusion_at(
    rate_ml_per_h: f64,
    limit_mmhg: f64,
    cfg: &MethodConfig,
) -> Result<OcclusionRow, MethodError> {
    let hours = (OCCLUSION_WARMUP_MS + OCCLUSION_WAIT_MS_MAX + OCCLUSION_RELIEF_WAIT_MS) as f64
        / 3_600_000.0
        + 0.1;
    let mut sim = started(rate_ml_per_h, hours, cfg)?;
    // The line closes at a point of the stroke cycle drawn from the seed (a real occlusion does
    // not wait for a stroke), so the median over seeds is the median over the cycle.
    let stroke_ms = cfg.plant.stroke_volume_ul / (rate_ml_per_h / 3.6) * 1000.0;
    let phase = crate::rng::Rng::new(cfg.seed ^ 0x0cc1_u64).unit();
    sim.run_until(OCCLUSION_WARMUP_MS + (phase * stroke_ms) as u64);
    sim.discard_events();
    let working_mmhg = sim.plant().downstream_pressure_mmhg;
    let t0 = sim.now_ms();
    let _ = sim.apply(Action::CloseDownstreamClamp);
    let already = sim.alarm_history().len();
    let mut alarm_at = None;
    while sim.now_ms() < t0 + OCCLUSION_WAIT_MS_MAX {
        sim.step();
        sim.discard_events();
        if let Some(a) = sim.alarm_history()[already..]
            .iter()
            .find(|a| a.kind == AlarmKind::OcclusionDownstream)
        {
            alarm_at = Some(a.raised_at_ms);
            break;
        }
    }
    // The line stays closed while the pump relieves the pressure (the motor backs off, then
    // stops by itself), as a patient takes a moment to find the clamp.
    let wait_until = sim.now_ms() + OCCLUSION_RELIEF_WAIT_MS;
    while sim.now_ms() < wait_until {
        sim.step();
        sim.discard_events();
        if !matches!(sim.motor(), pump::MotorCommand::Reverse { .. })
            && sim.now_ms() > alarm_at.unwrap_or(0) + 1_000
        {
            break;
        }
    }
    let p = &cfg.plant;
    let pressure_at_release_mmhg = sim.plant().downstream_pressure_mmhg;
    let before_ml = sim.plant().delivered_to_patient_ml;
    let _ = sim.apply(Action::OpenDownstreamClamp);
    let release = sim.now_ms();
    sim.run_until(release + 60_000);
    let bolus_ml = sim.plant().delivered_to_patient_ml - before_ml;
    let predicted_time_s = p.line_compliance_ul_per_mmhg * (limit_mmhg - working_mmhg).max(0.0)
        / (rate_ml_per_h / 3.6);
    Ok(OcclusionRow {
        limit_mmhg,
        time_to_alarm_s: alarm_at.map(|t| (t - t0) as f64 / 1000.0),
        predicted_time_s: round3(predicted_time_s),
        time_to_alarm_limit_only_s: None,
        bolus_ml: round3(bolus_ml),
        predicted_bolus_ml: round3(
            p.line_compliance_ul_per_mmhg
                * (pressure_at_release_mmhg - p.venous_pressure_mmhg).max(0.0)
                / 1000.0,
        ),
        pressure_at_release_mmhg: round3(pressure_at_release_mmhg),
        bolus_without_relief_ml: round3(bolus_ml),
        pressure_at_release_without_relief_mmhg: round3(pressure_at_release_mmhg),
        default_limit: false,
    })
}

impl TrumpetResult {
    /// The readable table of `infusafe sim trumpet`.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "trumpet curve at {} mL/h (IEC 60601-2-24: balance every 30 s, second hour; seed {})\n\n",
            self.rate_ml_per_h, self.seed
        );
        out.push_str("window (min)   max error (%)   min error (%)\n");
        for w in &self.windows {
            out.push_str(&format!(
                "{:>12}   {:>13.2}   {:>13.2}\n",
                w.window_min, w.max_error_percent, w.min_error_percent
            ));
        }
        out.push_str(&format!(
            "\nmean flow error (second hour): {:.2} %  ({:.3} mL weighed, {:.3} mL programmed)\n",
            self.mean_error_percent, self.second_hour_ml, self.rate_ml_per_h
        ));
        out
    }
}

impl OcclusionResult {
    /// The readable table of `infusafe sim occlusion`.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "occlusion test at {} mL/h (IEC 60601-2-24: complete downstream occlusion after 15 min of flow; seed {})\n\n",
            self.rate_ml_per_h, self.seed
        );
        out.push_str(
            "limit (mmHg)   time to alarm   predicted   limit alone   bolus on release   predicted bolus   without relief\n",
        );
        let time = |t: Option<f64>| t.map_or("no alarm in 24h".to_string(), fmt_s);
        let mut rows: Vec<&OcclusionRow> = self.rows.iter().collect();
        rows.sort_by(|a, b| a.limit_mmhg.total_cmp(&b.limit_mmhg));
        for r in rows {
            out.push_str(&format!(
                "{:>12.0}   {:>13}   {:>9}   {:>11}   {:>13.3} mL   {:>12.3} mL   {:>11.3} mL{}\n",
                r.limit_mmhg,
                time(r.time_to_alarm_s),
                fmt_s(r.predicted_time_s),
                time(r.time_to_alarm_limit_only_s),
                r.bolus_ml,
                r.predicted_bolus_ml,
                r.bolus_without_relief_ml,
                if r.default_limit { "   (default)" } else { "" }
            ));
        }
        out.push_str(
            "\ntime to alarm: per-stroke detector and pressure limit; predicted and limit alone: the \
             pressure limit only.\nbolus on release: the line is opened after the pressure relief \
             finished; without relief: opened at the alarm.\n",
        );
        out
    }
}

/// Seconds as "42 s", "12.5 min" or "2.10 h".
pub fn fmt_s(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7_200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.2} h", s / 3600.0)
    }
}

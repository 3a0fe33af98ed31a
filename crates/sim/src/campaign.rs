//! The Monte Carlo safety campaign: many simulated patient-days of random therapies with random
//! faults at realistic rates, and checkers after every tick (VOPR style). Every violation carries
//! the seed of its patient-day, which replays it exactly ([`replay_day`]).

use std::sync::atomic::{AtomicU64, Ordering};

use pump::{AlarmKind, MotorCommand, State};
use serde::Serialize;

use crate::action::Action;
use crate::plant::PlantConfig;
use crate::rng::{Rng, splitmix64};
use crate::scenario::ProgramSpec;
use crate::simulation::Simulation;

/// One patient-day of simulated time.
pub const DAY_MS: u64 = 24 * 3_600_000;
/// Most violations kept per patient-day (the first ones; the rest are counted).
pub const VIOLATIONS_PER_DAY_MAX: usize = 8;
/// Harmless disturbances per patient-day: coughs, a bent arm, the pump moved (design estimate).
pub const NUISANCE_PER_DAY: f64 = 16.0;
/// Largest campaign accepted: ten million patient-days (bounds memory for per-fault statistics).
pub const PATIENT_DAYS_MAX: u64 = 10_000_000;
/// Most false alarms listed in a report with their day seeds (the first ones by day; all are
/// counted in the per-100-days figures).
pub const FALSE_ALARMS_LISTED_MAX: usize = 50;

/// The faults the campaign injects, with a detection deadline each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Kink,
    DownstreamClampClosed,
    CatheterBlocked,
    UpstreamClampClosed,
    AirBubble,
    DoorOpened,
    MainsUnplugged,
    BatteryNearlyEmpty,
    MotorStall,
    EncoderFault,
    MotorRunaway,
    Overheat,
    SelfTestFail,
    LineDisconnected,
}

impl FaultKind {
    pub const ALL: [FaultKind; 14] = [
        FaultKind::Kink,
        FaultKind::DownstreamClampClosed,
        FaultKind::CatheterBlocked,
        FaultKind::UpstreamClampClosed,
        FaultKind::AirBubble,
        FaultKind::DoorOpened,
        FaultKind::MainsUnplugged,
        FaultKind::BatteryNearlyEmpty,
        FaultKind::MotorStall,
        FaultKind::EncoderFault,
        FaultKind::MotorRunaway,
        FaultKind::Overheat,
        FaultKind::SelfTestFail,
        FaultKind::LineDisconnected,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kink => "kink",
            FaultKind::DownstreamClampClosed => "downstream_clamp_closed",
            FaultKind::CatheterBlocked => "catheter_blocked",
            FaultKind::UpstreamClampClosed => "upstream_clamp_closed",
            FaultKind::AirBubble => "air_bubble",
            FaultKind::DoorOpened => "door_opened",
            FaultKind::MainsUnplugged => "mains_unplugged",
            FaultKind::BatteryNearlyEmpty => "battery_nearly_empty",
            FaultKind::MotorStall => "motor_stall",
            FaultKind::EncoderFault => "encoder_fault",
            FaultKind::MotorRunaway => "motor_runaway",
            FaultKind::Overheat => "overheat",
            FaultKind::SelfTestFail => "self_test_fail",
            FaultKind::LineDisconnected => "line_disconnected",
        }
    }

    /// Expected occurrences per patient-day at home. Design estimates, documented in
    /// docs/simulator.md: user-caused problems (kinks, clamps, plugs) are common, device faults rare.
    pub fn rate_per_day(self) -> f64 {
        match self {
            FaultKind::Kink => 1.0,
            FaultKind::DownstreamClampClosed => 0.2,
            FaultKind::CatheterBlocked => 0.05,
            FaultKind::UpstreamClampClosed => 0.2,
            FaultKind::AirBubble => 0.3,
            FaultKind::DoorOpened => 0.1,
            FaultKind::MainsUnplugged => 0.5,
            FaultKind::BatteryNearlyEmpty => 0.05,
            FaultKind::MotorStall => 0.01,
            FaultKind::EncoderFault => 0.01,
            FaultKind::MotorRunaway => 0.01,
            FaultKind::Overheat => 0.01,
            FaultKind::SelfTestFail => 0.005,
            FaultKind::LineDisconnected => 0.05,
        }
    }

    /// Alarms that count as detecting this fault.
    fn detected_by(self) -> &'static [AlarmKind] {
        use AlarmKind as A;
        match self {
            FaultKind::Kink | FaultKind::DownstreamClampClosed | FaultKind::CatheterBlocked => {
                &[A::OcclusionDownstream]
            }
            FaultKind::UpstreamClampClosed => &[A::OcclusionUpstream],
            FaultKind::AirBubble => &[A::AirInLine],
            FaultKind::DoorOpened => &[A::DoorOpen],
            FaultKind::MainsUnplugged => &[A::MainsLost],
            FaultKind::BatteryNearlyEmpty => &[A::BatteryLow, A::BatteryDepleted],
            // A stalled or blind mechanism must stop the pump (system error, HIGH); a LOW
            // under-infusion notice that lets it "infuse" on is not a detection.
            FaultKind::MotorStall | FaultKind::EncoderFault => &[A::SystemError],
            FaultKind::MotorRunaway => &[A::SystemError, A::OverInfusion],
            FaultKind::Overheat | FaultKind::SelfTestFail => &[A::SystemError],
            FaultKind::LineDisconnected => &[A::LineDisconnected],
        }
    }
}

/// How soon a fault must be alarmed: after some time, or after the motor controller has commanded
/// some volume (an occlusion at 0.5 mL/h takes an hour to build pressure; counting commanded volume
/// keeps the deadline right when the rate changes, e.g. from the basal to KVO).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Deadline {
    AfterMs(u64),
    AfterCommandedUl(f64),
}

/// How the kind of each injected fault is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMix {
    /// In proportion to [`FaultKind::rate_per_day`]: what a patient meets at home.
    Realistic,
    /// Every kind equally often: exercises rare device faults in short runs.
    Uniform,
}

/// Everything a campaign is run with.
#[derive(Debug, Clone)]
pub struct CampaignConfig {
    pub patient_days: u64,
    pub seed: u64,
    /// Worker threads; 0 means every core.
    pub jobs: usize,
    /// Multiplies every fault rate (1.0 = realistic); more faults per simulated day for quick runs.
    pub fault_rate_scale: f64,
    /// Simulated length of one patient-day (tests use shorter days in debug builds).
    pub day_ms: u64,
    /// Which faults are drawn.
    pub fault_mix: FaultMix,
    pub plant: PlantConfig,
    pub pump: pump::Config,
    /// Draw each patient-day's line and vein from the ranges of issue 11 (compliance,
    /// resistance, venous pressure, venous and sensor noise) instead of using `plant` as is.
    pub draw_physics: bool,
}

impl CampaignConfig {
    pub fn new(patient_days: u64, seed: u64) -> CampaignConfig {
        CampaignConfig {
            patient_days,
            seed,
            jobs: 0,
            fault_rate_scale: 1.0,
            day_ms: DAY_MS,
            fault_mix: FaultMix::Realistic,
            plant: PlantConfig::default(),
            pump: pump::Config::default(),
            draw_physics: true,
        }
    }
}

/// A checker that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// Replays this patient-day: `infusafe sim campaign --replay SEED`.
    pub day_seed: u64,
    pub at_ms: u64,
    pub check: &'static str,
    /// The injected fault the violation is about, if any.
    pub fault: Option<FaultKind>,
    /// The therapy's programmed rate that day.
    pub rate_ml_per_h: f64,
    pub message: String,
}

/// An alarm raised with no injected fault behind it, with what replays it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FalseAlarm {
    /// Replays this patient-day: `infusafe sim campaign --replay SEED`.
    pub day_seed: u64,
    pub at_ms: u64,
    pub alarm: AlarmKind,
    /// The alarm's detail as the pump shows it (e.g. the pressure and the limit).
    pub detail: String,
    /// The therapy's programmed rate that day.
    pub rate_ml_per_h: f64,
}

/// Detection statistics of one fault kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultStats {
    pub kind: FaultKind,
    pub injected: u64,
    pub detected: u64,
    /// Injected but overtaken by another stop (another alarm, end of day) before detection could
    /// be judged; neither a detection nor a miss.
    pub masked: u64,
    /// Injected, not alarmed, and physically undetectable by the core (docs/pump-core.md, "Where
    /// physics cannot tell"): a disconnected line whose pump was then lowered so far that the
    /// open end reads no lower than the vein did. Neither a detection nor a violation; reported.
    pub undetectable: u64,
    pub missed: u64,
    pub detection_s_p50: Option<f64>,
    pub detection_s_p90: Option<f64>,
    pub detection_s_p99: Option<f64>,
    pub detection_s_max: Option<f64>,
}

/// The campaign's result. Deterministic for a given configuration (no wall-clock time in it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignReport {
    pub patient_days: u64,
    pub seed: u64,
    pub simulated_hours: f64,
    pub faults: Vec<FaultStats>,
    /// Alarms raised with no injected fault that explains them (nuisance alarms), per kind.
    pub unexplained_alarms: std::collections::BTreeMap<String, u64>,
    pub violations: Vec<Violation>,
    pub violations_not_listed: u64,
    /// `occlusion_downstream` raised with no injected fault behind it, per 100 patient-days (the
    /// home disturbances: coughs, bent arm, pump moved).
    pub false_occlusion_per_100_days: f64,
    /// Of `false_occlusion_per_100_days`, those the fixed pressure limit raised (a disturbance
    /// that really pushed the line over the limit); the rest came from the per-stroke detector.
    pub false_occlusion_by_limit_per_100_days: f64,
    /// `line_disconnected` raised with no injected fault behind it, per 100 patient-days.
    pub false_disconnection_per_100_days: f64,
    /// Disconnections drawn while the pump was infusing with no other fault, but not injected
    /// because the core's disconnection monitor was not armed (pulses that do not settle between
    /// strokes, or drain within three frames, or a line not yet learned): cases where physics at
    /// 10 frames a second cannot tell (docs/pump-core.md). Counted, never silently dropped.
    pub disconnections_not_judgeable: u64,
    /// Patient-days on which no fault was injected: normal infusions (disturbances only).
    pub normal_infusions: u64,
    /// Every alarm raised on those days (infusion_complete included), per normal infusion.
    pub alarms_per_normal_infusion: Option<f64>,
    /// The first [`FALSE_ALARMS_LISTED_MAX`] unexplained `occlusion_downstream` and
    /// `line_disconnected` alarms, in day order, each with its day seed for `--replay`.
    pub false_alarms: Vec<FalseAlarm>,
}

impl CampaignReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.violations_not_listed == 0
    }
}

/// What one patient-day produced.
#[derive(Debug, Clone, Default)]
struct DayResult {
    injected: Vec<(FaultKind, Outcome)>,
    disconnections_not_judgeable: u64,
    /// Every alarm raised that day.
    alarms_raised: u64,
    /// Unexplained `occlusion_downstream` raised by the fixed pressure limit (the rest came from
    /// the per-stroke detector).
    unexplained_by_limit: u64,
    unexplained: Vec<AlarmKind>,
    /// The unexplained occlusion and disconnection alarms, for the report's list.
    false_alarms: Vec<FalseAlarm>,
    violations: Vec<Violation>,
    violations_not_listed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Detected { after_ms: u64 },
    Masked,
    Undetectable,
    Missed,
}

/// The seed of patient-day `index` of a campaign seeded with `seed`.
pub fn day_seed(seed: u64, index: u64) -> u64 {
    let mut s = seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    splitmix64(&mut s)
}

/// Runs the campaign on `config.jobs` threads. `progress` is called with the number of finished
/// patient-days (from any thread) so a caller can draw a progress bar.
pub fn campaign(config: &CampaignConfig, progress: &(dyn Fn(u64) + Sync)) -> CampaignReport {
    let days = config.patient_days.min(PATIENT_DAYS_MAX);
    let jobs = if config.jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        config.jobs
    }
    .max(1);
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let mut results: Vec<(u64, DayResult)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= days {
                            break;
                        }
                        mine.push((index, run_day_guarded(config, day_seed(config.seed, index))));
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a campaign worker panicked"))
            .collect()
    });
    // Threads finish in any order; sort so the report is identical for any --jobs.
    results.sort_by_key(|(i, _)| *i);
    summarize(config, days, results.into_iter().map(|(_, r)| r))
}

fn summarize(
    config: &CampaignConfig,
    days: u64,
    results: impl Iterator<Item = DayResult>,
) -> CampaignReport {
    let mut per_kind: Vec<(FaultKind, Vec<u64>, u64, u64, u64, u64)> = FaultKind::ALL
        .iter()
        .map(|k| (*k, Vec::new(), 0, 0, 0, 0))
        .collect();
    let mut not_judgeable = 0u64;
    let mut unexplained = [0u64; AlarmKind::ALL.len()];
    let mut violations = Vec::new();
    let mut not_listed = 0;
    let mut normal_infusions = 0u64;
    let mut normal_alarms = 0u64;
    let mut by_limit = 0u64;
    let mut false_alarms = Vec::new();
    for r in results {
        by_limit += r.unexplained_by_limit;
        not_judgeable += r.disconnections_not_judgeable;
        let room = FALSE_ALARMS_LISTED_MAX.saturating_sub(false_alarms.len());
        false_alarms.extend(r.false_alarms.into_iter().take(room));
        if r.injected.is_empty() && r.violations.is_empty() {
            normal_infusions += 1;
            normal_alarms += r.alarms_raised;
        }
        for (kind, outcome) in r.injected {
            let entry = per_kind
                .iter_mut()
                .find(|e| e.0 == kind)
                .expect("every kind listed");
            entry.2 += 1;
            match outcome {
                Outcome::Detected { after_ms } => entry.1.push(after_ms),
                Outcome::Masked => entry.3 += 1,
                Outcome::Missed => entry.4 += 1,
                Outcome::Undetectable => entry.5 += 1,
            }
        }
        for a in r.unexplained {
            unexplained[AlarmKind::ALL
                .iter()
                .position(|k| *k == a)
                .expect("known alarm")] += 1;
        }
        violations.extend(r.violations);
        not_listed += r.violations_not_listed;
    }
    let faults = per_kind
        .into_iter()
        .map(
            |(kind, mut times, injected, masked, missed, undetectable)| {
                times.sort_unstable();
                let pct = |p: f64| -> Option<f64> {
                    if times.is_empty() {
                        return None;
                    }
                    let i = ((times.len() as f64 - 1.0) * p).round() as usize;
                    Some(times[i] as f64 / 1000.0)
                };
                FaultStats {
                    kind,
                    injected,
                    detected: times.len() as u64,
                    masked,
                    undetectable,
                    missed,
                    detection_s_p50: pct(0.5),
                    detection_s_p90: pct(0.9),
                    detection_s_p99: pct(0.99),
                    detection_s_max: times.last().map(|t| *t as f64 / 1000.0),
                }
            },
        )
        .collect();
    let per_100 = |kind: AlarmKind| {
        let n = unexplained[AlarmKind::ALL
            .iter()
            .position(|k| *k == kind)
            .expect("known alarm")];
        if days == 0 {
            0.0
        } else {
            n as f64 * 100.0 / days as f64
        }
    };
    CampaignReport {
        false_occlusion_per_100_days: per_100(AlarmKind::OcclusionDownstream),
        false_occlusion_by_limit_per_100_days: if days == 0 {
            0.0
        } else {
            by_limit as f64 * 100.0 / days as f64
        },
        false_disconnection_per_100_days: per_100(AlarmKind::LineDisconnected),
        disconnections_not_judgeable: not_judgeable,
        normal_infusions,
        alarms_per_normal_infusion: (normal_infusions > 0)
            .then(|| normal_alarms as f64 / normal_infusions as f64),
        patient_days: days,
        seed: config.seed,
        simulated_hours: days as f64 * config.day_ms as f64 / 3_600_000.0,
        faults,
        unexplained_alarms: AlarmKind::ALL
            .iter()
            .zip(unexplained)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.name().to_string(), n))
            .collect(),
        violations,
        violations_not_listed: not_listed,
        false_alarms,
    }
}

/// A fault in progress on one patient-day.
#[derive(Debug, Clone, Copy)]
struct ActiveFault {
    kind: FaultKind,
    at_ms: u64,
    commanded_at_ul: f64,
    deadline: Deadline,
    alarms_before: usize,
    /// The pump's height above the catheter when the fault was injected.
    height_cm: f64,
    /// How far the pump was lowered since, in moves too small for the core to see as a step of
    /// the reading (`occlusion_step_mmhg`); larger moves it measures and follows.
    unseen_lowering_cm: f64,
    outcome: Option<Outcome>,
}

/// One patient-day; a panic anywhere in it (the core's assertions are left on, as on a device)
/// becomes a violation with the day's seed instead of ending the campaign.
fn run_day_guarded(config: &CampaignConfig, seed: u64) -> DayResult {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_day(config, seed, None))) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            DayResult {
                violations: vec![Violation {
                    day_seed: seed,
                    at_ms: 0,
                    check: "panic",
                    fault: None,
                    rate_ml_per_h: f64::NAN,
                    message: format!("the simulation panicked: {message}"),
                }],
                ..DayResult::default()
            }
        }
    }
}

/// Replays one patient-day and returns its journal and violations (for `--replay`).
pub fn replay_day(config: &CampaignConfig, day_seed: u64) -> (Vec<Violation>, Vec<String>) {
    let mut journal = Vec::new();
    let r = run_day(config, day_seed, Some(&mut journal));
    (r.violations, journal)
}

/// One patient-day: a random therapy, random faults, a patient who responds to alarms, checkers
/// after every tick.
fn run_day(config: &CampaignConfig, seed: u64, journal: Option<&mut Vec<String>>) -> DayResult {
    let mut day = Day::new(config, seed, journal);
    while day.sim.now_ms() < config.day_ms {
        day.tick();
    }
    day.finish()
}

/// The therapy of one patient-day.
struct Therapy {
    rate: f64,
    vtbi: f64,
    kvo: Option<f64>,
}

/// Rates log-uniform 0.5–250 mL/h (home pain pumps to hydration), a day's volume.
fn draw_therapy(rng: &mut Rng, config: &CampaignConfig) -> Therapy {
    let rate = (rng.log_uniform(0.5, 250.0) * 10.0).round() / 10.0;
    let vtbi = (rate * config.day_ms as f64 / 3_600_000.0 * rng.uniform(0.9, 1.3))
        .clamp(1.0, 9_000.0)
        .round();
    let kvo = if rng.chance(0.5) {
        Some(rate.min(1.0))
    } else {
        None
    };
    Therapy { rate, vtbi, kvo }
}

/// The day's plant: a container for the VTBI, mains or battery, and (with `draw_physics`) the
/// patient's line and vein (issue 11's ranges): compliance 0.5–3 µL/mmHg, resistance
/// 0.3–3 mmHg·s/µL, venous pressure 5–10 mmHg, venous and sensor noise of several mmHg.
fn draw_plant(rng: &mut Rng, config: &CampaignConfig, vtbi: f64) -> PlantConfig {
    let mut plant = config.plant.clone();
    plant.reservoir_ml = vtbi + 10.0;
    plant.mains = rng.chance(0.7);
    if config.draw_physics {
        plant.line_compliance_ul_per_mmhg = rng.log_uniform(0.5, 3.0);
        plant.line_resistance_mmhg_s_per_ul = rng.log_uniform(0.3, 3.0);
        plant.venous_pressure_mmhg = rng.uniform(5.0, 10.0);
        plant.venous_noise_mmhg = rng.uniform(0.5, 3.0);
        plant.pressure_sensor_noise_mmhg = rng.uniform(0.3, 2.0);
    }
    plant
}

/// Alarms that follow from the therapy itself, not from an injected fault: the end of the
/// infusion, a container the pump's count (1 % off, like a real set) thinks still holds fluid, a
/// battery drained on a day off mains.
fn alarm_is_consequence(kind: AlarmKind, reservoir_ml: f64, mains: bool) -> bool {
    let container_dry =
        reservoir_ml < 1.0 && matches!(kind, AlarmKind::OcclusionUpstream | AlarmKind::AirInLine);
    let battery_drained =
        !mains && matches!(kind, AlarmKind::BatteryLow | AlarmKind::BatteryDepleted);
    container_dry
        || battery_drained
        || matches!(
            kind,
            AlarmKind::PausedTooLong
                | AlarmKind::RepeatedAlarm
                | AlarmKind::InfusionNearEnd
                | AlarmKind::InfusionComplete
                | AlarmKind::ReservoirEmpty
        )
}

/// A device fault stays for the rest of the day (only service removes it): every later alarm may
/// be its consequence.
fn is_device_fault(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::MotorStall
            | FaultKind::EncoderFault
            | FaultKind::MotorRunaway
            | FaultKind::Overheat
            | FaultKind::SelfTestFail
    )
}

/// A harmless disturbance of daily life: a cough, a bent arm, the pump moved.
fn draw_nuisance(rng: &mut Rng) -> Action {
    match rng.below(3) {
        0 => Action::Cough,
        1 => Action::BendArm {
            duration_ms: rng.uniform(5_000.0, 120_000.0) as u64,
        },
        _ => Action::MovePump {
            height_cm: rng.uniform(-60.0, 60.0).round(),
        },
    }
}

/// The state of one patient-day's tick loop: the simulation, the checkers' memory, the fault in
/// progress and the patient's pending reactions. Only [`Day::tick`]'s steps change it.
struct Day<'a> {
    config: &'a CampaignConfig,
    seed: u64,
    rng: Rng,
    result: DayResult,
    sim: Simulation,
    rate: f64,
    vtbi: f64,
    day_plant: PlantConfig,
    stroke_ul: f64,
    cfg: pump::Config,
    mean_gap_ms: f64,
    next_fault_ms: u64,
    nuisance_gap_ms: f64,
    next_nuisance_ms: u64,
    fault: Option<ActiveFault>,
    respond_at_ms: Option<u64>,
    acknowledge_at_ms: Option<u64>,
    explained_upto: usize,
    door_seen_open: bool,
    kvo_commanded_ul: f64,
    vtbi_reported: bool,
    silent_reported: bool,
    over_reported: bool,
    last_injected: Option<FaultKind>,
    device_fault: bool,
    last_position_ul: f64,
    still_since_commanded_ul: f64,
    log: Option<&'a mut Vec<String>>,
}

impl<'a> Day<'a> {
    /// Setup of the day: the therapy, the plant, the started pump and the first fault and
    /// nuisance times (in this order of random draws).
    fn new(config: &'a CampaignConfig, seed: u64, journal: Option<&'a mut Vec<String>>) -> Self {
        let mut rng = Rng::new(seed);
        let therapy = draw_therapy(&mut rng, config);
        let plant = draw_plant(&mut rng, config, therapy.vtbi);
        let day_plant = plant.clone();
        let program = ProgramSpec {
            rate_ml_per_h: therapy.rate,
            vtbi_ml: therapy.vtbi,
            kvo_ml_per_h: therapy.kvo,
            bolus_ml: None,
            lockout_min: None,
            max_ml_per_h: None,
            reservoir_ml: None,
            drug_id: None,
        };
        let mut sim = Simulation::with_program(
            Some(&program),
            plant,
            config.pump.clone(),
            pump::DrugLibrary::default(),
            rng.next_u64(),
        );
        let _ = sim.apply(Action::Start);

        let total_rate: f64 =
            FaultKind::ALL.iter().map(|k| k.rate_per_day()).sum::<f64>() * config.fault_rate_scale;
        let mean_gap_ms = DAY_MS as f64 / total_rate.max(1e-9);
        let next_fault_ms = rng.exponential(mean_gap_ms) as u64;
        // Harmless disturbances of daily life (coughs, a bent arm, the pump moved): any alarm they
        // cause shows as unexplained, i.e. a nuisance alarm.
        let nuisance_gap_ms = DAY_MS as f64 / NUISANCE_PER_DAY;
        let next_nuisance_ms = rng.exponential(nuisance_gap_ms) as u64;
        Day {
            config,
            seed,
            rng,
            result: DayResult::default(),
            sim,
            rate: therapy.rate,
            vtbi: therapy.vtbi,
            day_plant,
            stroke_ul: config.plant.stroke_volume_ul,
            cfg: config.pump.clone(),
            mean_gap_ms,
            next_fault_ms,
            nuisance_gap_ms,
            next_nuisance_ms,
            fault: None,
            respond_at_ms: None,
            acknowledge_at_ms: None,
            explained_upto: 0,
            door_seen_open: false,
            kvo_commanded_ul: 0.0,
            vtbi_reported: false,
            silent_reported: false,
            over_reported: false,
            last_injected: None,
            device_fault: false,
            last_position_ul: 0.0,
            still_since_commanded_ul: 0.0,
            log: journal,
        }
    }

    /// One tick: step the simulation, run the checkers, then the patient, the nuisances and the
    /// fault injection.
    fn tick(&mut self) {
        let commanded_before = self.sim.plant_model().commanded_ul();
        let state_before = self.sim.pump().state();
        self.sim.step();
        self.sim.discard_events();
        let now = self.sim.now_ms();
        if state_before == State::Kvo {
            self.kvo_commanded_ul += self.sim.plant_model().commanded_ul() - commanded_before;
        }
        self.check_door(now, commanded_before);
        self.check_delivery(now);
        self.attribute_alarms(now);
        self.check_detection(now);
        self.drop_missed_fault();
        self.patient_responds(now);
        self.patient_acknowledges(now);
        self.maybe_nuisance(now);
        self.maybe_inject(now);
    }

    fn violate(
        &mut self,
        at_ms: u64,
        check: &'static str,
        fault: Option<FaultKind>,
        message: String,
    ) {
        if self.result.violations.len() < VIOLATIONS_PER_DAY_MAX {
            self.result.violations.push(Violation {
                day_seed: self.seed,
                at_ms,
                check,
                fault,
                rate_ml_per_h: self.rate,
                message,
            });
        } else {
            self.result.violations_not_listed += 1;
        }
    }

    /// Checker: no motor motion with the door open once the core has seen it open.
    fn check_door(&mut self, now: u64, commanded_before: f64) {
        if self.door_seen_open && self.sim.plant_model().commanded_ul() > commanded_before {
            let fault = self.fault.map(|f| f.kind);
            self.violate(
                now,
                "door",
                fault,
                "the motor moved with the door open".to_string(),
            );
        }
        self.door_seen_open = !self.sim.plant_model().door_closed();
    }

    /// Checker: no delivery beyond tolerance. The controller never commands more than the VTBI plus
    /// one stroke (KVO volume is on top by design), and the mechanism never pushes more than the
    /// stroke accuracy plus ECRI's 0.5 mL unplanned bolus beyond what was commanded.
    fn check_delivery(&mut self, now: u64) {
        let commanded = self.sim.plant_model().commanded_ul();
        let pumped = self.sim.plant_model().pumped_ul();
        let bias = self.config.plant.stroke_volume_bias_fraction.abs()
            + 4.0 * self.config.plant.stroke_volume_noise_fraction;
        let (vtbi, kvo_commanded_ul, stroke_ul) =
            (self.vtbi, self.kvo_commanded_ul, self.stroke_ul);
        if !self.vtbi_reported
            && pumped > (vtbi * 1000.0 + kvo_commanded_ul) * (1.0 + bias) + 2.0 * stroke_ul
        {
            self.vtbi_reported = true;
            self.violate(
                now,
                "vtbi",
                self.last_injected,
                format!(
                    "the mechanism pushed {pumped:.1} µL, more than VTBI {vtbi} mL + {kvo_commanded_ul:.1} µL of KVO + stroke accuracy"
                ),
            );
        }
        self.check_silent_stop(now, commanded);
        if !self.over_reported && pumped > commanded * (1.0 + bias) + 2.0 * stroke_ul + 500.0 {
            self.over_reported = true;
            self.violate(
                now,
                "over_delivery",
                self.last_injected,
                format!(
                    "the mechanism pushed {:.1} µL for {:.1} µL commanded",
                    pumped, commanded
                ),
            );
        }
    }

    /// Checker: no silent stop. While the core says it infuses and no alarm is listed, the
    /// mechanism must be moving: a commanded volume of three mismatch limits with no motion is
    /// a patient silently getting nothing.
    fn check_silent_stop(&mut self, now: u64, commanded: f64) {
        let position = self.sim.plant_model().motor_position_ul();
        // Any motion counts (relief runs the mechanism backwards).
        if (position - self.last_position_ul).abs() > 1e-9 {
            self.last_position_ul = position;
            self.still_since_commanded_ul = commanded;
        }
        let silent = matches!(self.sim.pump().state(), State::Infusing | State::Kvo)
            && self.sim.pump().active_alarms().next().is_none()
            && commanded - self.still_since_commanded_ul > 3.0 * self.cfg.motor_encoder_mismatch_ul;
        if silent && !self.silent_reported {
            self.silent_reported = true;
            let fault = self.fault.map(|f| f.kind);
            let message = format!(
                "the pump shows {} with no alarm, but the mechanism has not moved for {:.0} µL commanded",
                self.sim.pump().state().name(),
                commanded - self.still_since_commanded_ul
            );
            self.violate(now, "silent_no_flow", fault, message);
        }
    }

    /// Attribute new alarms to the active fault, or count them as unexplained.
    fn attribute_alarms(&mut self, now: u64) {
        let history = self.sim.alarm_history();
        if let Some(f) = &mut self.fault
            && f.outcome.is_none()
            && let Some(a) = history[f.alarms_before..]
                .iter()
                .find(|a| f.kind.detected_by().contains(&a.kind))
        {
            f.outcome = Some(Outcome::Detected {
                after_ms: a.raised_at_ms - f.at_ms,
            });
        }
        for a in &history[self.explained_upto..] {
            let explained =
                self.device_fault || self.fault.is_some_and(|f| a.raised_at_ms >= f.at_ms);
            let consequence = alarm_is_consequence(
                a.kind,
                self.sim.plant().reservoir_ml,
                self.sim.plant().mains,
            );
            if !explained && !consequence {
                self.result.unexplained.push(a.kind);
                let detail = self.sim.pump().alarm(a.kind).map(|active| active.detail);
                if a.kind == AlarmKind::OcclusionDownstream
                    && matches!(detail, Some(pump::AlarmDetail::Pressure { .. }))
                {
                    self.result.unexplained_by_limit += 1;
                }
                if matches!(
                    a.kind,
                    AlarmKind::OcclusionDownstream | AlarmKind::LineDisconnected
                ) && self.result.false_alarms.len() < FALSE_ALARMS_LISTED_MAX
                {
                    self.result.false_alarms.push(FalseAlarm {
                        day_seed: self.seed,
                        at_ms: a.raised_at_ms,
                        alarm: a.kind,
                        detail: detail.map_or(String::new(), |d| d.to_string()),
                        rate_ml_per_h: self.rate,
                    });
                }
                if let Some(j) = self.log.as_deref_mut() {
                    j.push(format!("{now:>9} ms  unexplained alarm {}", a.kind.name()));
                }
            }
        }
        self.explained_upto = history.len();
    }

    /// Checker: every injected fault alarmed within its deadline.
    fn check_detection(&mut self, now: u64) {
        let Some(mut f) = self.fault else {
            return;
        };
        if f.outcome.is_some() {
            return;
        }
        let stopped_otherwise = !matches!(self.sim.motor(), MotorCommand::Run { .. })
            && self
                .sim
                .pump()
                .active_alarms()
                .any(|a| !f.kind.detected_by().contains(&a.kind));
        let overdue = match f.deadline {
            Deadline::AfterMs(ms) => now > f.at_ms + ms,
            Deadline::AfterCommandedUl(ul) => {
                self.sim.plant_model().commanded_ul() - f.commanded_at_ul > ul
            }
        };
        if stopped_otherwise && !overdue {
            f.outcome = Some(Outcome::Masked);
        } else if overdue && self.physically_undetectable(&f) {
            f.outcome = Some(Outcome::Undetectable);
            if let Some(j) = self.log.as_deref_mut() {
                j.push(format!(
                    "{now:>9} ms  {} physically undetectable (pump lowered {:.0} cm in small moves, from {} to {} cm)",
                    f.kind.name(),
                    f.unseen_lowering_cm,
                    f.height_cm,
                    self.sim.plant_model().config().pump_height_cm
                ));
            }
        } else if overdue {
            f.outcome = Some(Outcome::Missed);
            let message = format!(
                "{} injected at {} ms not alarmed ({:?} passed; rate {} mL/h, state {})",
                f.kind.name(),
                f.at_ms,
                f.deadline,
                self.rate,
                self.sim.pump().state().name()
            );
            self.violate(now, "detection", Some(f.kind), message);
        }
        self.fault = Some(f);
    }

    /// A disconnection the pump cannot see: the open end reads the room's pressure at the
    /// catheter's height, and a pump lowered after the disconnection by more than (venous pressure −
    /// `disconnect_drop_mmhg`) / 0.736 cm, in moves too small to show as a step of the reading,
    /// lifts that reading back to within the drop of the vein's, so no baseline fell
    /// (docs/pump-core.md, "Where physics cannot tell"). Larger moves the core follows.
    fn physically_undetectable(&self, f: &ActiveFault) -> bool {
        let hidden_cm = (self.day_plant.venous_pressure_mmhg - self.cfg.disconnect_drop_mmhg)
            / crate::plant::MMHG_PER_CM_WATER;
        f.kind == FaultKind::LineDisconnected && f.unseen_lowering_cm > hidden_cm
    }

    /// A missed fault will call nobody: judge it now and remove its cause, so one miss does not
    /// hide the rest of the day.
    fn drop_missed_fault(&mut self) {
        if let Some(f) = self.fault
            && let Some(outcome @ (Outcome::Missed | Outcome::Undetectable)) = f.outcome
        {
            self.result.injected.push((f.kind, outcome));
            for action in fix(f.kind) {
                let _ = self.sim.apply(*action);
            }
            self.fault = None;
        }
    }

    /// The patient: some minutes after an alarm sounds, fixes what is visibly wrong, acknowledges
    /// and resumes, as the guide tells them to.
    fn patient_responds(&mut self, now: u64) {
        let sounding = self.sim.pump().active_alarms().any(|a| !a.acknowledged);
        if sounding && self.respond_at_ms.is_none() && self.acknowledge_at_ms.is_none() {
            self.respond_at_ms = Some(now + self.rng.uniform(30_000.0, 300_000.0) as u64);
        }
        if let Some(t) = self.respond_at_ms
            && now >= t
        {
            self.respond_at_ms = None;
            // The patient only knows about a fault the pump told them about: one not judged yet
            // (another alarm called them) stays in place and keeps being judged.
            if let Some(f) = self.fault
                && let Some(outcome) = f.outcome
            {
                self.fault = None;
                for action in fix(f.kind) {
                    let _ = self.sim.apply(*action);
                }
                self.result.injected.push((f.kind, outcome));
            }
            // The pump must see the fix in a sensor frame before the alarm's condition is gone.
            self.acknowledge_at_ms = Some(now + 5_000);
        }
    }

    /// The patient acknowledges and resumes. The guide: after a system error, stop using the pump
    /// and call support; do not keep restarting an alarm that repeats. The patient resumes after
    /// anything else.
    fn patient_acknowledges(&mut self, now: u64) {
        let Some(t) = self.acknowledge_at_ms else {
            return;
        };
        if now < t {
            return;
        }
        self.acknowledge_at_ms = None;
        let give_up = self.sim.pump().active_alarms().any(|a| {
            matches!(
                a.kind,
                AlarmKind::SystemError | AlarmKind::OverInfusion | AlarmKind::RepeatedAlarm
            )
        });
        let _ = self.sim.apply(Action::Acknowledge { alarm: None });
        if !give_up
            && matches!(
                self.sim.pump().state(),
                State::StoppedByAlarm | State::Paused
            )
        {
            let _ = self.sim.apply(Action::Resume);
        }
        if let Some(j) = self.log.as_deref_mut() {
            j.push(format!(
                "{now:>9} ms  patient responded; state {}",
                self.sim.pump().state().name()
            ));
        }
    }

    fn maybe_nuisance(&mut self, now: u64) {
        if now >= self.next_nuisance_ms {
            self.next_nuisance_ms = now + self.rng.exponential(self.nuisance_gap_ms) as u64;
            let action = draw_nuisance(&mut self.rng);
            if let (Action::MovePump { height_cm }, Some(f)) = (action, &mut self.fault) {
                let from = self.sim.plant_model().config().pump_height_cm;
                let step_mmhg = (height_cm - from).abs() * crate::plant::MMHG_PER_CM_WATER;
                if step_mmhg <= self.cfg.occlusion_step_mmhg {
                    f.unseen_lowering_cm += from - height_cm;
                }
            }
            let _ = self.sim.apply(action);
        }
    }

    /// Inject the next fault while the pump is infusing and no other fault is in progress.
    fn maybe_inject(&mut self, now: u64) {
        if now < self.next_fault_ms {
            return;
        }
        let infusing = matches!(self.sim.pump().state(), State::Infusing | State::Kvo)
            && matches!(self.sim.motor(), MotorCommand::Run { .. });
        let quiet = self.sim.pump().active_alarms().next().is_none();
        let kind = pick_fault(&mut self.rng, self.config.fault_mix);
        // Unplugging a pump that runs on battery changes nothing: not a fault to judge.
        let meaningful = (!matches!(kind, FaultKind::MainsUnplugged) || self.sim.plant().mains)
            // The disconnection monitor reads pulses that settle between strokes: injected
            // only while the pump says it can judge (docs/pump-core.md, "Where physics cannot
            // tell"); the report counts the days it could not.
            && (kind != FaultKind::LineDisconnected || self.sim.pump().line_monitor_armed());
        if self.fault.is_none()
            && infusing
            && quiet
            && kind == FaultKind::LineDisconnected
            && !self.sim.pump().line_monitor_armed()
        {
            self.result.disconnections_not_judgeable += 1;
        }
        if !(self.fault.is_none() && infusing && quiet && meaningful) {
            // Not now: the pump is busy with another fault or not infusing. Try again in a
            // minute, so the faults still arrive at their rate over infusing time.
            self.next_fault_ms = now + 60_000;
        } else {
            self.next_fault_ms = now + self.rng.exponential(self.mean_gap_ms) as u64;
            self.inject(now, kind);
        }
    }

    fn inject(&mut self, now: u64, kind: FaultKind) {
        let rate_now = match self.sim.motor() {
            MotorCommand::Run { rate_ml_per_h } => rate_ml_per_h,
            MotorCommand::Stopped | MotorCommand::Reverse { .. } => 0.0,
        };
        let (actions, deadline) = inject(kind, &mut self.rng, &self.day_plant, &self.cfg, rate_now);
        if let Some(j) = self.log.as_deref_mut() {
            j.push(format!(
                "{now:>9} ms  inject {} ({:?})",
                kind.name(),
                deadline
            ));
        }
        for a in &actions {
            let _ = self.sim.apply(*a);
        }
        self.last_injected = Some(kind);
        self.device_fault |= is_device_fault(kind);
        self.fault = Some(ActiveFault {
            kind,
            at_ms: now,
            commanded_at_ul: self.sim.plant_model().commanded_ul(),
            deadline,
            alarms_before: self.sim.alarm_history().len(),
            height_cm: self.sim.plant_model().config().pump_height_cm,
            unseen_lowering_cm: 0.0,
            outcome: None,
        });
    }

    /// The summary: a fault still in progress counts as masked; the journal gets the pump's lines.
    fn finish(self) -> DayResult {
        let Day {
            mut result,
            fault,
            sim,
            log,
            ..
        } = self;
        if let Some(f) = fault {
            result
                .injected
                .push((f.kind, f.outcome.unwrap_or(Outcome::Masked)));
        }
        result.alarms_raised = sim.alarm_history().len() as u64;
        if let Some(j) = log {
            for line in sim.journal() {
                j.push(format!("{:>9} ms  {}", line.at_ms, line.text));
            }
            j.sort();
        }
        result
    }
}

fn pick_fault(rng: &mut Rng, mix: FaultMix) -> FaultKind {
    if mix == FaultMix::Uniform {
        return FaultKind::ALL[rng.below(FaultKind::ALL.len() as u64) as usize];
    }
    let total: f64 = FaultKind::ALL.iter().map(|k| k.rate_per_day()).sum();
    let mut x = rng.uniform(0.0, total);
    for k in FaultKind::ALL {
        if x < k.rate_per_day() {
            return k;
        }
        x -= k.rate_per_day();
    }
    FaultKind::Kink
}

/// The actions that inject a fault, and its deadline from the core's thresholds and the physics.
fn inject(
    kind: FaultKind,
    rng: &mut Rng,
    plant: &PlantConfig,
    cfg: &pump::Config,
    rate_ml_per_h: f64,
) -> (Vec<Action>, Deadline) {
    // Two sensor periods: the frame that sees it, and one more for the core's settling.
    let frames = Deadline::AfterMs(2 * cfg.sensor_period_ms + 1);
    let stroke = plant.stroke_volume_ul;
    match kind {
        FaultKind::Kink | FaultKind::DownstreamClampClosed | FaultKind::CatheterBlocked => {
            // Volume to fill the line's compliance from the working pressure (at most venous plus
            // the flow's pressure drop plus four noise sigmas) up to the limit, plus one stroke of
            // quantization, with 25 % margin on the compliance.
            let working = plant.venous_pressure_mmhg
                + plant.line_resistance_mmhg_s_per_ul * rate_ml_per_h / 3.6
                - plant.pump_height_cm * crate::plant::MMHG_PER_CM_WATER;
            let needed = plant.line_compliance_ul_per_mmhg
                * (cfg.occlusion_downstream_mmhg - working + 4.0 * plant.venous_noise_mmhg)
                    .max(0.0);
            let action = match kind {
                FaultKind::Kink => Action::Kink { severity: 1.0 },
                FaultKind::DownstreamClampClosed => Action::CloseDownstreamClamp,
                _ => Action::BlockCatheter,
            };
            // The pressure limit's physics (with the time the line must stay at the limit), or
            // the per-stroke detector's bound (issue 11), whichever comes first.
            let limit_ms = needed * 1.25 + 2.0 * stroke;
            let limit_ms = limit_ms / (rate_ml_per_h.max(0.01) / 3.6) * 1000.0
                + cfg.occlusion_limit_persist_ms as f64;
            let bound_ms = occlusion_bound_s(rate_ml_per_h) * 1000.0;
            (
                vec![action],
                Deadline::AfterMs(limit_ms.min(bound_ms) as u64 + 2 * cfg.sensor_period_ms),
            )
        }
        FaultKind::UpstreamClampClosed => {
            let needed = plant.upstream_compliance_ul_per_mmhg
                * (plant.upstream_head_mmhg - cfg.occlusion_upstream_mmhg);
            (
                vec![Action::CloseUpstreamClamp],
                Deadline::AfterCommandedUl(needed * 1.25 + 2.0 * stroke),
            )
        }
        FaultKind::AirBubble => {
            // Bubbles larger than the single-bubble limit: detected by the time they have passed
            // the detector, plus one stroke.
            let volume_ul = rng
                .uniform(
                    cfg.air_single_bubble_ul * 1.5,
                    cfg.air_single_bubble_ul * 5.0,
                )
                .round();
            (
                vec![Action::AirBubble { volume_ul }],
                Deadline::AfterCommandedUl(volume_ul * 1.1 + 2.0 * stroke),
            )
        }
        FaultKind::DoorOpened => (vec![Action::OpenDoor], frames),
        FaultKind::MainsUnplugged => (vec![Action::UnplugMains], frames),
        FaultKind::BatteryNearlyEmpty => (
            vec![
                Action::UnplugMains,
                Action::SetBatteryPercent { percent: 0.5 },
            ],
            Deadline::AfterMs(2 * cfg.sensor_period_ms + 1),
        ),
        FaultKind::MotorStall | FaultKind::EncoderFault | FaultKind::MotorRunaway => {
            let action = match kind {
                FaultKind::MotorStall => Action::MotorFault,
                FaultKind::EncoderFault => Action::EncoderFault,
                _ => Action::MotorRunaway,
            };
            (
                vec![action],
                Deadline::AfterCommandedUl(cfg.motor_encoder_mismatch_ul * 1.25 + 2.0 * stroke),
            )
        }
        FaultKind::Overheat => {
            // First-order heating towards ambient + rise: time to cross the limit, plus 25 %.
            let rise = plant.overheat_rise_c;
            let need = (cfg.overheat_c - plant.ambient_temperature_c).max(0.0);
            let t_s = if need >= rise {
                1.0e6
            } else {
                -plant.thermal_time_constant_s * (1.0 - need / rise).ln()
            };
            (
                vec![Action::Overheat],
                Deadline::AfterMs((t_s * 1250.0) as u64 + 2 * cfg.sensor_period_ms),
            )
        }
        FaultKind::SelfTestFail => (vec![Action::SelfTestFail { code: 7 }], frames),
        FaultKind::LineDisconnected => {
            // Injected only while the monitor is armed (it has learned the line); it needs three
            // strokes that drain fast to a lower baseline. Design deadline: ten strokes and a
            // minute, at least the 5 minutes (its bound at 5 mL/h).
            let stroke_ms = stroke / (rate_ml_per_h.max(0.01) / 3.6) * 1000.0;
            (
                vec![Action::DisconnectLine],
                Deadline::AfterMs(((10.0 * stroke_ms) as u64 + 60_000).max(300_000)),
            )
        }
    }
}

/// What the patient does to remove a fault's cause when they respond to its alarm.
fn fix(kind: FaultKind) -> &'static [Action] {
    match kind {
        FaultKind::Kink => &[Action::Unkink],
        FaultKind::DownstreamClampClosed => &[Action::OpenDownstreamClamp],
        FaultKind::CatheterBlocked => &[Action::UnblockCatheter],
        FaultKind::UpstreamClampClosed => &[Action::OpenUpstreamClamp],
        FaultKind::DoorOpened => &[Action::CloseDoor],
        FaultKind::MainsUnplugged | FaultKind::BatteryNearlyEmpty => &[Action::PlugMains],
        // The alarm comes while the rest of the bubble is still in the line: prime it out (the
        // core treats acknowledging air_in_line as "air primed out").
        FaultKind::AirBubble => &[Action::PrimeLine],
        // Device faults need service: nothing the patient can fix.
        FaultKind::MotorStall
        | FaultKind::EncoderFault
        | FaultKind::MotorRunaway
        | FaultKind::Overheat
        | FaultKind::SelfTestFail => &[],
        // The nurse comes and sets up a new line (the guide: never reconnect a dropped end).
        FaultKind::LineDisconnected => &[Action::ReconnectLine],
    }
}

/// The longest the per-stroke detector may take to alarm a complete downstream occlusion at
/// `rate` (issue 11): 60 s at 10 mL/h, 180 s at 2, 300 s at 1, 600 s at 0.5, 40 min at 0.1;
/// interpolated on log scales between, held beyond.
pub fn occlusion_bound_s(rate_ml_per_h: f64) -> f64 {
    const BOUNDS: [(f64, f64); 5] = [
        (0.1, 2400.0),
        (0.5, 600.0),
        (1.0, 300.0),
        (2.0, 180.0),
        (10.0, 60.0),
    ];
    let r = rate_ml_per_h.max(1e-6);
    if r <= BOUNDS[0].0 {
        return BOUNDS[0].1;
    }
    for w in BOUNDS.windows(2) {
        let ((r0, t0), (r1, t1)) = (w[0], w[1]);
        if r <= r1 {
            let x = (r.ln() - r0.ln()) / (r1.ln() - r0.ln());
            return (t0.ln() + x * (t1.ln() - t0.ln())).exp();
        }
    }
    BOUNDS[4].1
}

impl CampaignReport {
    /// The readable report of `infusafe sim campaign`.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "campaign: {} patient-days ({:.0} simulated hours), seed {}\n\n",
            self.patient_days, self.simulated_hours, self.seed
        );
        out.push_str(&format!(
            "{:<24} {:>8} {:>8} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9}\n",
            "fault",
            "injected",
            "detected",
            "masked",
            "undet.",
            "missed",
            "p50 s",
            "p90 s",
            "p99 s",
            "max s"
        ));
        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
        for s in &self.faults {
            out.push_str(&format!(
                "{:<24} {:>8} {:>8} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9}\n",
                s.kind.name(),
                s.injected,
                s.detected,
                s.masked,
                s.undetectable,
                s.missed,
                f(s.detection_s_p50),
                f(s.detection_s_p90),
                f(s.detection_s_p99),
                f(s.detection_s_max)
            ));
        }
        out.push_str(&format!(
            "\nfalse alarms per 100 patient-days: occlusion_downstream {:.2} ({:.2} by the pressure limit, {:.2} by the per-stroke detector), line_disconnected {:.2}\n",
            self.false_occlusion_per_100_days,
            self.false_occlusion_by_limit_per_100_days,
            self.false_occlusion_per_100_days - self.false_occlusion_by_limit_per_100_days,
            self.false_disconnection_per_100_days
        ));
        out.push_str(&format!(
            "disconnections not injected because the pump could not judge the line then (not armed): {}\n",
            self.disconnections_not_judgeable
        ));
        out.push_str(&format!(
            "normal infusions (days with no injected fault): {}, alarms per normal infusion: {}\n",
            self.normal_infusions,
            self.alarms_per_normal_infusion
                .map_or("-".to_string(), |a| format!("{a:.2}"))
        ));
        if !self.unexplained_alarms.is_empty() {
            out.push_str("\nalarms with no injected fault behind them:\n");
            for (k, n) in &self.unexplained_alarms {
                out.push_str(&format!("  {k}: {n}\n"));
            }
        }
        if !self.false_alarms.is_empty() {
            out.push_str(
                "\nfalse occlusion and disconnection alarms (replay with --replay DAY_SEED):\n",
            );
            for a in &self.false_alarms {
                out.push_str(&format!(
                    "  {} day seed {} at {} ms, {} mL/h: {}\n",
                    a.alarm.name(),
                    a.day_seed,
                    a.at_ms,
                    a.rate_ml_per_h,
                    a.detail
                ));
            }
        }
        if self.passed() {
            out.push_str("\nno violations\n");
        } else {
            out.push_str(&format!(
                "\n{} VIOLATIONS:\n",
                self.violations.len() as u64 + self.violations_not_listed
            ));
            for v in &self.violations {
                out.push_str(&format!(
                    "  [{}] day seed {} at {} ms: {}  (replay: infusafe sim campaign --replay {})\n",
                    v.check, v.day_seed, v.at_ms, v.message, v.day_seed
                ));
            }
            if self.violations_not_listed > 0 {
                out.push_str(&format!(
                    "  ... and {} more not listed\n",
                    self.violations_not_listed
                ));
            }
        }
        out
    }
}

/// [`campaign`] with an `indicatif` progress bar on standard error (the CLI's form).
pub fn campaign_with_progress_bar(config: &CampaignConfig) -> CampaignReport {
    let bar = indicatif::ProgressBar::new(config.patient_days.min(PATIENT_DAYS_MAX));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} patient-days  {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = campaign(config, &|done| bar.set_position(done));
    bar.finish_and_clear();
    report
}

//! The physical pump at home: container, pumping mechanism, tubing and patient line, air detector,
//! door, power and battery, mechanism temperature, and the faults that happen to them.
//!
//! The plant knows nothing of alarms or programs. It is advanced by one tick at a time with the motor
//! command the core gave at the end of the previous tick, and it is read as a [`SensorFrame`] exactly
//! like a device driver would read its sensors. All noise comes from the plant's own seeded [`Rng`].
//! Every default is in [`PlantConfig::default`] with the source of the number, and repeated in
//! docs/simulator.md.

use pump::{MotorCommand, SelfTest, SensorFrame};
use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// The line resistance a bent arm's `arm_bend_resistance_factor` refers to: the default line's
/// 0.3 mmHg·s/µL. A bend adds (factor − 1) × this to any line.
pub const ARM_BEND_REFERENCE_RESISTANCE: f64 = 0.3;

/// 1 cm of water column in mmHg: hydrostatic offsets (bag height, pump moved up or down).
pub const MMHG_PER_CM_WATER: f64 = 0.735_56;

/// What holds the drug. Changes what happens upstream when it runs dry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerKind {
    /// A collapsible bag: when empty it collapses, the mechanism pulls suction and then air.
    Bag,
    /// A rigid medication cassette with a collapsible reservoir bag inside (CADD type): same as a bag.
    Cassette,
    /// A syringe: when the plunger bottoms out nothing more can move; suction, no air.
    Syringe,
}

/// Every physical parameter of the simulated pump, patient line and home. `Default` gives the
/// documented defaults; scenario files override any of them in `[plant]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlantConfig {
    pub container: ContainerKind,
    /// Volume in the container when the run starts. Default 100 mL (a common antibiotic bag).
    pub reservoir_ml: f64,
    /// Fluid a bag or cassette holds beyond its label volume (`reservoir_ml` and `new_container` are
    /// label volumes), as a fraction of it. Default 0.05 (design estimate: makers fill small-volume
    /// bags above the label so that at least the label volume can be delivered; a few percent is
    /// typical). A syringe holds exactly what it was filled with.
    pub container_overfill_fraction: f64,
    /// Hydrostatic head of the container above the pump. Default 15 mmHg (a bag hung 20 cm above
    /// the pump, 20 × 0.736).
    pub upstream_head_mmhg: f64,
    /// Compliance of the set between container and pump. Default 0.5 µL/mmHg (design estimate: the
    /// short upstream segment is stiffer than the downstream line's 1.3 µL/mmHg).
    pub upstream_compliance_ul_per_mmhg: f64,
    /// Nominal volume of one pumping stroke. Default 50 µL (equal to the core's
    /// `Config::stroke_volume_ul`; order of one cassette stroke of an ambulatory pump).
    pub stroke_volume_ul: f64,
    /// Systematic stroke volume error (a set that is slightly too wide or narrow). Default +0.01
    /// (+1 %), well inside the ±5 % accuracy claimed by large-volume pumps.
    pub stroke_volume_bias_fraction: f64,
    /// Standard deviation of the random stroke-to-stroke error. Default 0.02 (2 %; design choice that
    /// gives trumpet curves of the published shape: wide at 2 min, narrow at 31 min).
    pub stroke_volume_noise_fraction: f64,
    /// Downstream line compliance. Default 1.3 µL/mmHg (published volumetric pump case study:
    /// 0.010 mL/kPa).
    pub line_compliance_ul_per_mmhg: f64,
    /// Downstream line resistance. Default 0.3 mmHg per µL/s (Poiseuille for 1.5 m of 1.0 mm inner
    /// diameter tubing at 37 °C, 0.21 mmHg·s/µL per metre; the catheter adds little): 100 mL/h gives
    /// 8 mmHg above venous pressure.
    pub line_resistance_mmhg_s_per_ul: f64,
    /// Mean pressure at the catheter tip. Default 8 mmHg (peripheral venous pressure 5–10 mmHg).
    pub venous_pressure_mmhg: f64,
    /// Standard deviation of venous pressure noise (breathing, movement). Default 1 mmHg.
    pub venous_noise_mmhg: f64,
    /// Standard deviation of the pressure sensor's own noise. Default 0.5 mmHg (design estimate).
    pub pressure_sensor_noise_mmhg: f64,
    /// Height of the pump above the catheter; the sensor reads the line pressure minus this column.
    /// Default 0 cm.
    pub pump_height_cm: f64,
    /// Peak pressure rise at the catheter from one cough. Default 40 mmHg (coughing raises
    /// intrathoracic and central venous pressure by tens of mmHg).
    pub cough_peak_mmhg: f64,
    /// A bent arm multiplies the default line's resistance by this: it adds (factor − 1) × 0.3
    /// mmHg·s/µL to whatever line is in use (a local narrowing at the elbow does not scale with the
    /// rest of the line). Default 20 (a partial occlusion that a healthy line tolerates for seconds).
    pub arm_bend_resistance_factor: f64,
    /// Air in the line at the start (an unprimed or badly primed line). Default 0 µL.
    pub unprimed_air_ul: f64,
    /// Fraction of each stroke drawn as air through a loose connection. Default 0.05 (design estimate).
    pub loose_connection_air_fraction: f64,
    /// Pressure above which the mechanism cannot complete a stroke (motor stalls). Default
    /// 1500 mmHg (above ECRI's 1034 mmHg ceiling for the occlusion limit, so the pump's own limit
    /// always trips first).
    pub stall_pressure_mmhg: f64,
    /// Lowest suction the mechanism can pull upstream. Default −400 mmHg (design estimate, well below
    /// the −51.7 mmHg upstream occlusion limit).
    pub upstream_suction_floor_mmhg: f64,
    /// Whether the door / cassette is closed and latched at the start. Default true.
    pub door_closed: bool,
    /// Mains connected at the start. Default true (the guide: keep the pump plugged in whenever
    /// possible).
    pub mains: bool,
    /// Battery state of charge at the start. Default 100 %.
    pub battery_percent: f64,
    /// Battery energy when full. Default 10 Wh (design estimate: four AA cells or a 2.5 Ah 3.7 V pack).
    pub battery_capacity_wh: f64,
    /// Electronics and screen. Default 0.12 W (design estimate; with the motor's share this gives
    /// about 2.5 days at 10 mL/h, the order ambulatory pumps publish).
    pub electronics_power_w: f64,
    /// Motor energy per stroke. Default 0.5 J (design estimate).
    pub motor_energy_per_stroke_j: f64,
    /// Charge rate on mains. Default 25 %/h (a 4 h full charge).
    pub charge_percent_per_h: f64,
    /// Room temperature; the mechanism starts here. Default 25 °C.
    pub ambient_temperature_c: f64,
    /// Mechanism temperature rise per stroke before cooling. Default 0.003 °C (design estimate: a
    /// continuous 999 mL/h raises the mechanism about 10 °C).
    pub heating_c_per_stroke: f64,
    /// Thermal time constant of the mechanism. Default 600 s (design estimate).
    pub thermal_time_constant_s: f64,
    /// Temperature rise above ambient of an overheating fault (a failing motor winding). Default 60 °C.
    pub overheat_rise_c: f64,
}

impl Default for PlantConfig {
    fn default() -> Self {
        PlantConfig {
            container: ContainerKind::Bag,
            reservoir_ml: 100.0,
            container_overfill_fraction: 0.05,
            upstream_head_mmhg: 15.0,
            upstream_compliance_ul_per_mmhg: 0.5,
            stroke_volume_ul: 50.0,
            stroke_volume_bias_fraction: 0.01,
            stroke_volume_noise_fraction: 0.02,
            line_compliance_ul_per_mmhg: 1.3,
            line_resistance_mmhg_s_per_ul: 0.3,
            venous_pressure_mmhg: 8.0,
            venous_noise_mmhg: 1.0,
            pressure_sensor_noise_mmhg: 0.5,
            pump_height_cm: 0.0,
            cough_peak_mmhg: 40.0,
            arm_bend_resistance_factor: 20.0,
            unprimed_air_ul: 0.0,
            loose_connection_air_fraction: 0.05,
            stall_pressure_mmhg: 1500.0,
            upstream_suction_floor_mmhg: -400.0,
            door_closed: true,
            mains: true,
            battery_percent: 100.0,
            battery_capacity_wh: 10.0,
            electronics_power_w: 0.12,
            motor_energy_per_stroke_j: 0.5,
            charge_percent_per_h: 25.0,
            ambient_temperature_c: 25.0,
            heating_c_per_stroke: 0.003,
            thermal_time_constant_s: 600.0,
            overheat_rise_c: 60.0,
        }
    }
}

/// A plant parameter outside what the model can represent.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantConfigError {
    pub field: &'static str,
    pub value: f64,
    pub min: f64,
    pub max: f64,
}

impl std::fmt::Display for PlantConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plant.{} = {} is out of range; allowed {} to {}",
            self.field, self.value, self.min, self.max
        )
    }
}

impl PlantConfig {
    /// What a container holds per mL of label volume.
    fn fill_factor(&self) -> f64 {
        match self.container {
            ContainerKind::Bag | ContainerKind::Cassette => 1.0 + self.container_overfill_fraction,
            ContainerKind::Syringe => 1.0,
        }
    }

    /// Checks every number is finite and within what the model represents.
    pub fn validate(&self) -> Result<(), PlantConfigError> {
        let checks: &[(&'static str, f64, f64, f64)] = &[
            ("reservoir_ml", self.reservoir_ml, 0.0, 10_000.0),
            (
                "container_overfill_fraction",
                self.container_overfill_fraction,
                0.0,
                0.5,
            ),
            ("upstream_head_mmhg", self.upstream_head_mmhg, -200.0, 200.0),
            (
                "upstream_compliance_ul_per_mmhg",
                self.upstream_compliance_ul_per_mmhg,
                0.01,
                100.0,
            ),
            ("stroke_volume_ul", self.stroke_volume_ul, 1.0, 1_000.0),
            (
                "stroke_volume_bias_fraction",
                self.stroke_volume_bias_fraction,
                -0.5,
                0.5,
            ),
            (
                "stroke_volume_noise_fraction",
                self.stroke_volume_noise_fraction,
                0.0,
                0.3,
            ),
            (
                "line_compliance_ul_per_mmhg",
                self.line_compliance_ul_per_mmhg,
                0.01,
                100.0,
            ),
            (
                "line_resistance_mmhg_s_per_ul",
                self.line_resistance_mmhg_s_per_ul,
                0.001,
                100.0,
            ),
            (
                "venous_pressure_mmhg",
                self.venous_pressure_mmhg,
                -20.0,
                100.0,
            ),
            ("venous_noise_mmhg", self.venous_noise_mmhg, 0.0, 50.0),
            (
                "pressure_sensor_noise_mmhg",
                self.pressure_sensor_noise_mmhg,
                0.0,
                50.0,
            ),
            ("pump_height_cm", self.pump_height_cm, -200.0, 200.0),
            ("cough_peak_mmhg", self.cough_peak_mmhg, 0.0, 300.0),
            (
                "arm_bend_resistance_factor",
                self.arm_bend_resistance_factor,
                1.0,
                1.0e6,
            ),
            ("unprimed_air_ul", self.unprimed_air_ul, 0.0, 100_000.0),
            (
                "loose_connection_air_fraction",
                self.loose_connection_air_fraction,
                0.0,
                1.0,
            ),
            (
                "stall_pressure_mmhg",
                self.stall_pressure_mmhg,
                100.0,
                10_000.0,
            ),
            (
                "upstream_suction_floor_mmhg",
                self.upstream_suction_floor_mmhg,
                -760.0,
                -1.0,
            ),
            ("battery_percent", self.battery_percent, 0.0, 100.0),
            (
                "battery_capacity_wh",
                self.battery_capacity_wh,
                0.01,
                1_000.0,
            ),
            ("electronics_power_w", self.electronics_power_w, 0.0, 100.0),
            (
                "motor_energy_per_stroke_j",
                self.motor_energy_per_stroke_j,
                0.0,
                100.0,
            ),
            (
                "charge_percent_per_h",
                self.charge_percent_per_h,
                0.0,
                1_000.0,
            ),
            (
                "ambient_temperature_c",
                self.ambient_temperature_c,
                -20.0,
                60.0,
            ),
            ("heating_c_per_stroke", self.heating_c_per_stroke, 0.0, 10.0),
            (
                "thermal_time_constant_s",
                self.thermal_time_constant_s,
                1.0,
                1.0e6,
            ),
            ("overheat_rise_c", self.overheat_rise_c, 0.0, 500.0),
        ];
        for &(field, value, min, max) in checks {
            if !value.is_finite() || value < min || value > max {
                return Err(PlantConfigError {
                    field,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }
}

/// A physical event: a fault, a fix, or a movement of the patient. Buttons are not here: they go to
/// the core, not to the plant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlantEvent {
    /// Tubing kinked; `severity` 1.0 is complete, less is a partial occlusion.
    Kink {
        severity: f64,
    },
    Unkink,
    CloseDownstreamClamp,
    OpenDownstreamClamp,
    CloseUpstreamClamp,
    OpenUpstreamClamp,
    BlockCatheter,
    UnblockCatheter,
    AirBubble {
        volume_ul: f64,
    },
    LoosenConnection,
    TightenConnection,
    /// The patient or nurse primes the line: the air waiting above the detector is flushed out.
    PrimeLine,
    OpenDoor,
    CloseDoor,
    UnplugMains,
    PlugMains,
    SetBatteryPercent {
        percent: f64,
    },
    /// The motor stalls: it is commanded but does not move.
    MotorFault,
    /// The encoder stops counting while the motor keeps moving.
    EncoderFault,
    /// The motor driver runs the motor at twice the commanded speed.
    MotorRunaway,
    /// The motor controller's speed calibration is off by `factor`: it runs the motor at `factor`
    /// times the commanded rate and counts what it does, so controller and encoder agree and only
    /// the flow check (over / under infusion) can notice.
    MotorSpeedError {
        factor: f64,
    },
    /// The downstream pressure sensor keeps reporting its last reading.
    PressureSensorStuck,
    Overheat,
    SelfTestFail {
        code: u16,
    },
    DisconnectLine,
    ReconnectLine,
    Cough,
    /// The patient bends the arm for `duration_ms`: a temporary partial occlusion.
    BendArm {
        duration_ms: u64,
    },
    /// The pump is moved to this height above the catheter.
    MovePump {
        height_cm: f64,
    },
    /// A fresh container of this volume is hung; the old one is removed.
    NewContainer {
        volume_ml: f64,
    },
}

/// What the plant physically is right now (the "truth", not what the sensors say).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PlantReadings {
    pub downstream_pressure_mmhg: f64,
    pub upstream_pressure_mmhg: f64,
    pub reservoir_ml: f64,
    /// Fluid that reached the patient (what a scale at the catheter would weigh), mL.
    pub delivered_to_patient_ml: f64,
    /// Fluid that left an open (disconnected) line, mL.
    pub spilled_ml: f64,
    /// Fluid the mechanism pushed into the downstream line, mL.
    pub pumped_ml: f64,
    /// Air that reached the patient side of the detector, µL.
    pub air_passed_ul: f64,
    pub battery_percent: f64,
    pub battery_minutes_left: f64,
    pub mains: bool,
    pub door_closed: bool,
    pub mechanism_temperature_c: f64,
    pub strokes: u64,
}

/// Per-stroke state that is rarely touched, kept apart from the hot fields.
#[derive(Debug, Clone)]
struct Faults {
    kink_severity: f64,
    downstream_clamp_closed: bool,
    upstream_clamp_closed: bool,
    catheter_blocked: bool,
    loose_connection: bool,
    motor_stalled: bool,
    encoder_dead: bool,
    runaway: bool,
    speed_factor: f64,
    pressure_sensor_stuck: Option<f64>,
    overheating: bool,
    self_test: SelfTest,
    disconnected: bool,
    arm_bent_until_ms: u64,
}

/// Constants of one tick length, recomputed only when the tick length changes.
#[derive(Debug, Clone, Copy, Default)]
struct PerTick {
    dt_s: f64,
    inv_dt_s: f64,
    hours: f64,
    charge_wh: f64,
    gauge_alpha: f64,
    thermal_alpha: f64,
}

/// The simulated pump hardware and its surroundings.
#[derive(Debug, Clone)]
pub struct Plant {
    cfg: PlantConfig,
    rng: Rng,
    faults: Faults,
    door_closed: bool,
    mains: bool,
    now_ms: u64,
    // Upstream.
    reservoir_ul: f64,
    upstream_mmhg: f64,
    air_pending_ul: f64,
    // Mechanism. Positions are in µL of nominal stroke volume.
    motor_position_ul: f64,
    next_stroke_at_ul: f64,
    encoder_ul: f64,
    commanded_ul: f64,
    strokes: u64,
    // Downstream.
    line_mmhg: f64,
    cough_mmhg: f64,
    cough_decay: f64,
    /// exp(−dt/τ) of the line for the resistance in `decay_for_resistance`; recomputed only when the
    /// resistance changes (faults), so the hot path has no `exp`.
    line_decay: f64,
    decay_for_resistance: f64,
    decay_for_dt_ms: u64,
    per_tick: PerTick,
    delivered_ul: f64,
    spilled_ul: f64,
    pumped_ul: f64,
    air_passed_ul: f64,
    air_since_frame_ul: f64,
    reading_mmhg: f64,
    // Power and heat.
    energy_wh: f64,
    load_w_average: f64,
    temperature_c: f64,
}

impl Plant {
    /// A plant in its initial state. `cfg` must have passed [`PlantConfig::validate`].
    pub fn new(cfg: PlantConfig, seed: u64) -> Plant {
        let venous = cfg.venous_pressure_mmhg - cfg.pump_height_cm * MMHG_PER_CM_WATER;
        Plant {
            rng: Rng::new(seed),
            faults: Faults {
                kink_severity: 0.0,
                downstream_clamp_closed: false,
                upstream_clamp_closed: false,
                catheter_blocked: false,
                loose_connection: false,
                motor_stalled: false,
                encoder_dead: false,
                runaway: false,
                speed_factor: 1.0,
                pressure_sensor_stuck: None,
                overheating: false,
                self_test: SelfTest::Passed,
                disconnected: false,
                arm_bent_until_ms: 0,
            },
            door_closed: cfg.door_closed,
            mains: cfg.mains,
            now_ms: 0,
            reservoir_ul: cfg.reservoir_ml * 1000.0 * cfg.fill_factor(),
            upstream_mmhg: cfg.upstream_head_mmhg,
            air_pending_ul: cfg.unprimed_air_ul,
            motor_position_ul: 0.0,
            next_stroke_at_ul: cfg.stroke_volume_ul,
            encoder_ul: 0.0,
            commanded_ul: 0.0,
            strokes: 0,
            line_mmhg: venous,
            cough_mmhg: 0.0,
            cough_decay: 0.0,
            line_decay: 0.0,
            decay_for_resistance: f64::NAN,
            decay_for_dt_ms: u64::MAX,
            per_tick: PerTick::default(),
            delivered_ul: 0.0,
            spilled_ul: 0.0,
            pumped_ul: 0.0,
            air_passed_ul: 0.0,
            air_since_frame_ul: 0.0,
            reading_mmhg: venous,
            energy_wh: cfg.battery_capacity_wh * cfg.battery_percent / 100.0,
            load_w_average: cfg.electronics_power_w,
            temperature_c: cfg.ambient_temperature_c,
            cfg,
        }
    }

    pub fn config(&self) -> &PlantConfig {
        &self.cfg
    }

    /// True when the line between pump and patient is completely blocked.
    pub fn downstream_occluded(&self) -> bool {
        self.faults.downstream_clamp_closed
            || self.faults.catheter_blocked
            || self.faults.kink_severity >= 1.0
    }

    pub fn door_closed(&self) -> bool {
        self.door_closed
    }

    /// Applies a fault, a fix or a movement now. An event with a parameter that is not a finite
    /// number (it may come from a JSON request of the practice pump) changes nothing.
    pub fn apply(&mut self, event: PlantEvent) {
        let parameter = match event {
            PlantEvent::Kink { severity } => severity,
            PlantEvent::AirBubble { volume_ul } => volume_ul,
            PlantEvent::SetBatteryPercent { percent } => percent,
            PlantEvent::MotorSpeedError { factor } => factor,
            PlantEvent::MovePump { height_cm } => height_cm,
            PlantEvent::NewContainer { volume_ml } => volume_ml,
            _ => 0.0,
        };
        if !parameter.is_finite() {
            return;
        }
        let f = &mut self.faults;
        match event {
            PlantEvent::Kink { severity } => f.kink_severity = severity.clamp(0.0, 1.0),
            PlantEvent::Unkink => f.kink_severity = 0.0,
            PlantEvent::CloseDownstreamClamp => f.downstream_clamp_closed = true,
            PlantEvent::OpenDownstreamClamp => f.downstream_clamp_closed = false,
            PlantEvent::CloseUpstreamClamp => f.upstream_clamp_closed = true,
            PlantEvent::OpenUpstreamClamp => f.upstream_clamp_closed = false,
            PlantEvent::BlockCatheter => f.catheter_blocked = true,
            PlantEvent::UnblockCatheter => f.catheter_blocked = false,
            PlantEvent::AirBubble { volume_ul } => {
                self.air_pending_ul += volume_ul.clamp(0.0, 100_000.0)
            }
            PlantEvent::LoosenConnection => f.loose_connection = true,
            PlantEvent::TightenConnection => f.loose_connection = false,
            PlantEvent::PrimeLine => self.air_pending_ul = 0.0,
            PlantEvent::OpenDoor => self.door_closed = false,
            PlantEvent::CloseDoor => self.door_closed = true,
            PlantEvent::UnplugMains => self.mains = false,
            PlantEvent::PlugMains => self.mains = true,
            PlantEvent::SetBatteryPercent { percent } => {
                self.energy_wh = self.cfg.battery_capacity_wh * percent.clamp(0.0, 100.0) / 100.0
            }
            PlantEvent::MotorFault => f.motor_stalled = true,
            PlantEvent::EncoderFault => f.encoder_dead = true,
            PlantEvent::MotorRunaway => f.runaway = true,
            PlantEvent::MotorSpeedError { factor } => f.speed_factor = factor.clamp(0.0, 10.0),
            PlantEvent::PressureSensorStuck => f.pressure_sensor_stuck = Some(self.reading_mmhg),
            PlantEvent::Overheat => f.overheating = true,
            PlantEvent::SelfTestFail { code } => f.self_test = SelfTest::Failed { code },
            PlantEvent::DisconnectLine => f.disconnected = true,
            PlantEvent::ReconnectLine => f.disconnected = false,
            PlantEvent::Cough => self.cough_mmhg = self.cfg.cough_peak_mmhg,
            PlantEvent::BendArm { duration_ms } => {
                f.arm_bent_until_ms = self.now_ms.saturating_add(duration_ms)
            }
            PlantEvent::MovePump { height_cm } => {
                // The water column between the pump and the catheter changes at once: the line's
                // pressure at the pump (and the sensor's reading) steps with it, no flow needed.
                let height_cm = height_cm.clamp(-200.0, 200.0);
                let step = (height_cm - self.cfg.pump_height_cm) * MMHG_PER_CM_WATER;
                self.line_mmhg -= step;
                if self.faults.pressure_sensor_stuck.is_none() {
                    self.reading_mmhg -= step;
                }
                self.cfg.pump_height_cm = height_cm;
            }
            PlantEvent::NewContainer { volume_ml } => {
                self.reservoir_ul =
                    volume_ml.clamp(0.0, 10_000.0) * 1000.0 * self.cfg.fill_factor();
                self.upstream_mmhg = self.cfg.upstream_head_mmhg;
            }
        }
    }

    /// The line resistance now, or infinity when completely occluded.
    fn resistance(&self) -> f64 {
        if self.downstream_occluded() {
            return f64::INFINITY;
        }
        let mut r = self.cfg.line_resistance_mmhg_s_per_ul;
        if self.faults.disconnected {
            // The catheter is no longer in the path: only the tubing, open to the air.
            r *= 0.5;
        }
        if self.faults.kink_severity > 0.0 {
            // Severity s leaves a fraction (1 − s) of the lumen; Poiseuille goes with the 4th power
            // of the radius, i.e. the square of the area.
            let open = 1.0 - self.faults.kink_severity;
            r /= open * open;
        }
        if self.now_ms < self.faults.arm_bent_until_ms {
            // The bend is a local narrowing at the elbow: it adds its own resistance, the default
            // line's times (factor − 1), whatever the rest of the line is (with the default line
            // this is the line's resistance times the factor).
            r += (self.cfg.arm_bend_resistance_factor - 1.0) * ARM_BEND_REFERENCE_RESISTANCE;
        }
        r
    }

    /// Advances the physics by `dt_ms` with the motor running as `motor` says.
    pub fn advance(&mut self, motor: MotorCommand, dt_ms: u64) {
        self.now_ms += dt_ms;
        if self.decay_for_dt_ms != dt_ms {
            self.refresh_decays(dt_ms);
        }
        let k = self.per_tick;
        let dt_s = k.dt_s;
        let powered = self.mains || self.energy_wh > 0.0;

        // Mechanism: the motor controller counts what it commands; the motor moves unless stalled,
        // unpowered or pushing against more than the stall pressure.
        let rate_ul_per_s = match motor {
            MotorCommand::Run { rate_ml_per_h } if powered => rate_ml_per_h.max(0.0) / 3.6,
            _ => 0.0,
        };
        let mut strokes_this_tick = 0u32;
        if rate_ul_per_s > 0.0 {
            let commanded = rate_ul_per_s * dt_s * self.faults.speed_factor;
            self.commanded_ul += commanded;
            let blocked =
                self.faults.motor_stalled || self.line_mmhg >= self.cfg.stall_pressure_mmhg;
            if !blocked {
                let moved = if self.faults.runaway {
                    2.0 * commanded
                } else {
                    commanded
                };
                self.motor_position_ul += moved;
                if !self.faults.encoder_dead {
                    self.encoder_ul += moved;
                }
                while self.motor_position_ul >= self.next_stroke_at_ul {
                    self.next_stroke_at_ul += self.cfg.stroke_volume_ul;
                    strokes_this_tick += 1;
                    self.stroke();
                    if self.line_mmhg >= self.cfg.stall_pressure_mmhg {
                        break;
                    }
                }
            }
        }
        // Relief: the motor runs backwards and draws fluid from the downstream line back towards
        // the container (exactly as commanded: the speed faults act on forward motion).
        let mut reverse_j = 0.0;
        if let MotorCommand::Reverse { rate_ml_per_h } = motor
            && powered
            && !self.faults.motor_stalled
        {
            let back = (rate_ml_per_h.max(0.0) / 3.6 * dt_s).min(self.motor_position_ul);
            if back > 0.0 {
                self.commanded_ul -= back;
                self.motor_position_ul -= back;
                if !self.faults.encoder_dead {
                    self.encoder_ul -= back;
                }
                let stroke = self.cfg.stroke_volume_ul;
                while self.next_stroke_at_ul - stroke > self.motor_position_ul + 1e-9 {
                    self.next_stroke_at_ul -= stroke;
                }
                if self.door_closed {
                    self.line_mmhg -= back / self.cfg.line_compliance_ul_per_mmhg;
                    self.reservoir_ul += back;
                    self.pumped_ul -= back;
                }
                reverse_j = back / stroke * self.cfg.motor_energy_per_stroke_j;
            }
        }
        let cfg = &self.cfg;

        // Upstream: with an open clamp and fluid left, the container's head refills the segment.
        let container_empty = self.reservoir_ul <= 0.0;
        if !self.faults.upstream_clamp_closed && !container_empty {
            self.upstream_mmhg = cfg.upstream_head_mmhg;
        }

        // Downstream: the line's compliance discharges through its resistance towards the pressure at
        // its far end (venous pressure, a cough, or the room when disconnected), less the pump height.
        let far_end_mmhg = if self.faults.disconnected {
            0.0
        } else {
            cfg.venous_pressure_mmhg
                + cfg.venous_noise_mmhg * self.rng.normal_fast()
                + self.cough_mmhg
        } - cfg.pump_height_cm * MMHG_PER_CM_WATER;
        if self.cough_mmhg > 0.01 {
            self.cough_mmhg *= self.cough_decay;
        } else {
            self.cough_mmhg = 0.0;
        }
        let r = self.resistance();
        if r.is_finite() {
            if r != self.decay_for_resistance {
                self.decay_for_resistance = r;
                self.refresh_decays(dt_ms);
            }
            let before = self.line_mmhg;
            self.line_mmhg = far_end_mmhg + (before - far_end_mmhg) * self.line_decay;
            let out_ul = (before - self.line_mmhg) * self.cfg.line_compliance_ul_per_mmhg;
            if self.faults.disconnected {
                self.spilled_ul += out_ul;
            } else {
                self.delivered_ul += out_ul;
            }
        }
        let cfg = &self.cfg;
        self.reading_mmhg = match self.faults.pressure_sensor_stuck {
            Some(stuck) => stuck,
            None => self.line_mmhg + cfg.pressure_sensor_noise_mmhg * self.rng.normal_fast(),
        };

        // Power: electronics always, the motor per stroke; mains powers everything and charges.
        let motor_j = strokes_this_tick as f64 * cfg.motor_energy_per_stroke_j + reverse_j;
        let load_w = cfg.electronics_power_w + motor_j * k.inv_dt_s;
        if self.mains {
            self.energy_wh = (self.energy_wh + k.charge_wh).min(cfg.battery_capacity_wh);
        } else {
            self.energy_wh = (self.energy_wh - load_w * k.hours).max(0.0);
        }
        // The gauge estimates minutes left from the load averaged over about a minute (a stroke's
        // energy is then spread over the minute, so at low rates the estimate does not jump with
        // each stroke, and a change of rate shows within minutes).
        self.load_w_average += (load_w - self.load_w_average) * k.gauge_alpha;

        // Heat: each stroke warms the mechanism, which cools towards the room (and a failing motor's
        // extra heat) with its thermal time constant.
        self.temperature_c += strokes_this_tick as f64 * cfg.heating_c_per_stroke;
        let target = cfg.ambient_temperature_c
            + if self.faults.overheating {
                cfg.overheat_rise_c
            } else {
                0.0
            };
        self.temperature_c += (target - self.temperature_c) * k.thermal_alpha;
    }

    fn refresh_decays(&mut self, dt_ms: u64) {
        let dt_s = dt_ms as f64 / 1000.0;
        self.decay_for_dt_ms = dt_ms;
        let tau_s = self.decay_for_resistance * self.cfg.line_compliance_ul_per_mmhg;
        self.line_decay = if tau_s.is_finite() && tau_s > 0.0 {
            (-dt_s / tau_s).exp()
        } else {
            1.0
        };
        // A cough's pressure rise fades with a 0.5 s time constant.
        self.cough_decay = (-dt_s / 0.5).exp();
        // Divisions hoisted out of the per-tick path: they cost more than the rest of the physics.
        let cfg = &self.cfg;
        self.per_tick = PerTick {
            dt_s,
            inv_dt_s: 1.0 / dt_s.max(1e-9),
            hours: dt_s / 3600.0,
            charge_wh: cfg.battery_capacity_wh * cfg.charge_percent_per_h / 100.0 * dt_s / 3600.0,
            gauge_alpha: (dt_s / 60.0).min(1.0),
            thermal_alpha: (dt_s / cfg.thermal_time_constant_s).min(1.0),
        };
    }

    /// One stroke of the mechanism: fill from the container, push into the downstream line.
    fn stroke(&mut self) {
        self.strokes += 1;
        if !self.door_closed {
            // The set is not seated in the mechanism: the fingers move, no fluid does.
            return;
        }
        let cfg = &self.cfg;
        let volume = cfg.stroke_volume_ul
            * (1.0
                + cfg.stroke_volume_bias_fraction
                + cfg.stroke_volume_noise_fraction * self.rng.normal_fast());
        let volume = volume.max(0.0);
        let mut fluid = volume;
        let mut air = 0.0;
        if self.faults.upstream_clamp_closed {
            // Nothing can be drawn: the chamber does not fill, suction builds upstream.
            self.upstream_mmhg = (self.upstream_mmhg
                - volume / cfg.upstream_compliance_ul_per_mmhg)
                .max(cfg.upstream_suction_floor_mmhg);
            return;
        }
        if self.faults.loose_connection {
            air += volume * cfg.loose_connection_air_fraction;
            fluid -= air;
        }
        if fluid > self.reservoir_ul {
            let missing = fluid - self.reservoir_ul;
            fluid = self.reservoir_ul;
            self.upstream_mmhg = (self.upstream_mmhg
                - missing / cfg.upstream_compliance_ul_per_mmhg)
                .max(cfg.upstream_suction_floor_mmhg);
            match cfg.container {
                // A collapsed bag lets the mechanism pull the air left in the bag and its port.
                ContainerKind::Bag | ContainerKind::Cassette => air += missing,
                // A bottomed-out syringe moves nothing more.
                ContainerKind::Syringe => {}
            }
        }
        self.reservoir_ul -= fluid;
        self.air_pending_ul += air;
        // The detector sits just below the mechanism: air already in the line passes it first.
        let moved = fluid + air;
        let air_out = self.air_pending_ul.min(moved);
        self.air_pending_ul -= air_out;
        self.air_passed_ul += air_out;
        self.air_since_frame_ul += air_out;
        self.pumped_ul += moved - air_out;
        self.line_mmhg += moved / cfg.line_compliance_ul_per_mmhg;
    }

    /// Reads every sensor, as the driver does once per sensor period. Resets the air-since-last-frame
    /// accumulator.
    pub fn read_sensors(&mut self) -> SensorFrame {
        let air = self.air_since_frame_ul;
        self.air_since_frame_ul = 0.0;
        SensorFrame {
            downstream_pressure_mmhg: self.reading_mmhg,
            upstream_pressure_mmhg: self.upstream_mmhg,
            air_ul_since_last_frame: air,
            door_closed: self.door_closed,
            battery_percent: self.battery_percent(),
            battery_minutes_left: self.battery_minutes_left(),
            mains_present: self.mains,
            motor_volume_ul_total: self.encoder_ul,
            commanded_volume_ul_total: self.commanded_ul,
            mechanism_temperature_c: self.temperature_c,
            self_test: self.faults.self_test,
        }
    }

    fn battery_percent(&self) -> f64 {
        self.energy_wh / self.cfg.battery_capacity_wh * 100.0
    }

    fn battery_minutes_left(&self) -> f64 {
        self.energy_wh / self.load_w_average.max(1e-6) * 60.0
    }

    /// The physical truth now.
    pub fn readings(&self) -> PlantReadings {
        PlantReadings {
            downstream_pressure_mmhg: self.line_mmhg,
            upstream_pressure_mmhg: self.upstream_mmhg,
            reservoir_ml: self.reservoir_ul / 1000.0,
            delivered_to_patient_ml: self.delivered_ul / 1000.0,
            spilled_ml: self.spilled_ul / 1000.0,
            pumped_ml: self.pumped_ul / 1000.0,
            air_passed_ul: self.air_passed_ul,
            battery_percent: self.battery_percent(),
            battery_minutes_left: self.battery_minutes_left(),
            mains: self.mains,
            door_closed: self.door_closed,
            mechanism_temperature_c: self.temperature_c,
            strokes: self.strokes,
        }
    }

    /// Volume the motor physically moved since power-on (µL of nominal stroke volume).
    pub fn motor_position_ul(&self) -> f64 {
        self.motor_position_ul
    }

    /// Volume the motor controller commanded since power-on, µL.
    pub fn commanded_ul(&self) -> f64 {
        self.commanded_ul
    }

    /// Volume the mechanism physically pushed (fluid only), µL.
    pub fn pumped_ul(&self) -> f64 {
        self.pumped_ul
    }

    pub fn delivered_ul(&self) -> f64 {
        self.delivered_ul
    }
}

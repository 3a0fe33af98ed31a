//! Every threshold and timer of the core, with its default and where the number comes from.
//!
//! One struct instead of constants or boolean parameters, so a device, the simulator and the tests
//! can each state the configuration they run with, and the record can store it. The sources of the
//! defaults are summarised again in `docs/pump-core.md`.

/// Pump configuration. Each field's doc says its default and the source of that number.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct Config {
    // ---- driving the core ----
    /// How often the driver reads the sensors and hands a frame in. Default 100 ms (10 Hz, the
    /// simulator's tick; fast enough that at 999 mL/h one period moves 28 µL, less than a stroke).
    pub sensor_period_ms: u64,
    /// While the motor should run, a gap between sensor frames longer than this is a
    /// `system_error` (watchdog). Default 500 ms = five missed frames (design choice).
    pub sensor_timeout_ms: u64,
    /// A call into the core later than the announced deadline plus this is a `system_error`
    /// (missed-deadline watchdog). Default 200 ms = two sensor periods (design choice).
    pub deadline_tolerance_ms: u64,
    /// Volume of one pumping stroke. The core never delivers more than the VTBI plus one stroke.
    /// Default 50 µL (order of one peristaltic cassette stroke; design choice).
    pub stroke_volume_ul: f64,

    // ---- program limits of the pump itself ----
    /// Lowest programmable rate. Default 0.1 mL/h (issue 2; CADD-Solis minimum).
    pub rate_ml_per_h_min: f64,
    /// Highest programmable rate. Default 999 mL/h (issue 2; large-volume pumps).
    pub rate_ml_per_h_max: f64,
    /// Smallest VTBI. Default 0.1 mL (design choice, one decimal on the keypad).
    pub vtbi_ml_min: f64,
    /// Largest VTBI. Default 9999 mL (four digits on the keypad; large-volume pumps).
    pub vtbi_ml_max: f64,
    /// Lowest KVO rate. Default 0.1 mL/h (CADD-Solis KVO).
    pub kvo_ml_per_h_min: f64,
    /// Highest KVO rate. Default 20 mL/h (BD Alaris: KVO 0.1–20 mL/h). Never above the programmed rate.
    pub kvo_ml_per_h_max: f64,
    /// KVO rate used while `hourly_limit_reached` holds the basal back, capped at the programmed
    /// rate. Default 0.1 mL/h (CADD-Solis KVO; Open PCA arbitration: hourly limit → KVO).
    pub limit_kvo_ml_per_h: f64,
    /// Patient bolus volume range. Default 0.1–50 mL (design choice covering CADD-type PCA doses).
    pub bolus_ml_min: f64,
    pub bolus_ml_max: f64,
    /// Lockout range between boluses. Default 5–1440 min (design choice; ambulatory PCA pumps
    /// offer minutes to 24 h).
    pub lockout_min_min: f64,
    pub lockout_min_max: f64,
    /// Rate at which a patient bolus is delivered (on top of nothing: it replaces the basal while it
    /// runs, so the basal volume is not lost but counted in the bolus). Default 60 mL/h, 1 mL/min
    /// (design choice: a 2 mL bolus takes 2 min).
    pub bolus_rate_ml_per_h: f64,

    // ---- alarm thresholds ----
    /// Downstream occlusion limit. Default 517 mmHg = 10 psi (Open PCA: occlusion > 10 psi; ECRI:
    /// at most 20 psi / 1034 mmHg).
    pub occlusion_downstream_mmhg: f64,
    /// The fixed limit (the backstop) raises `occlusion_downstream` only once the line has stayed
    /// at the limit this long. A spell at the limit starts at the first reading above it and lasts
    /// while every stroke the pump pushes brings the reading back above
    /// `occlusion_limit_release_fraction` of the limit; the motor waits whenever the reading is
    /// above the limit, so the line never stores more than a stroke beyond it meanwhile. Default
    /// 150 s (design estimate: longer than the longest bent arm issue 11 asks the pump to ride
    /// out, 2 minutes, plus the 30 s the slowest bent line, τ 26 s, needs to drain back; a complete
    /// occlusion is alarmed meanwhile by the per-stroke detector, whose held-pulse test goes on
    /// while the motor waits at the limit). Zero alarms at the first reading above the limit (the
    /// pump before issue 11).
    pub occlusion_limit_persist_ms: u64,
    /// A spell at the limit ends once the pump has carried a whole stroke with the reading at or
    /// below this fraction of the limit (or the pump is not meant to run and the reading is below
    /// it): the line drains again. Default 0.9 (design estimate: a line held at the limit by the
    /// waiting motor hovers within one stroke's pulse of it, which is above 90 % at every stroke
    /// it is pushed; the supported lines work at most at about 220 mmHg at 250 mL/h, well below).
    pub occlusion_limit_release_fraction: f64,
    /// Upstream occlusion: suction below this. Default −51.7 mmHg = 1 psi suction (Open PCA).
    pub occlusion_upstream_mmhg: f64,
    /// Per-stroke occlusion detector: a stroke's pressure pulse counts only if it rises at least
    /// this much above the level before the stroke, and an episode of held pulses must have risen
    /// this much in total before it may alarm. Default 10 mmHg (design estimate: 60 % of the
    /// smallest pulse in the supported lines, one 50 µL stroke into 3 µL/mmHg = 16.7 mmHg, and
    /// about three times the noise of the averaged readings at 3 mmHg sensor noise).
    pub occlusion_stroke_rise_mmhg: f64,
    /// Per-stroke occlusion detector: how much of the stacked rise may have leaked away for the
    /// pulses still to count as held (an open line lets them decay towards the venous baseline).
    /// Default 0.1 (design estimate: an open line with the slowest plausible time constant of a
    /// healthy line, 3 mmHg·s/µL × 3 µL/mmHg = 9 s, loses everything in 30 s; a bent arm at 20 ×
    /// that resistance still loses 15 % in 30 s).
    pub occlusion_flat_fraction: f64,
    /// Per-stroke occlusion detector: absolute allowance for noise in the "held" test, added to
    /// `occlusion_flat_fraction` of the rise. The test compares the mean of the three frames right
    /// after a stroke with the smoothed level since; in a held line their difference is noise
    /// alone, with a standard deviation of about 0.7 × the sensor noise. Default 5 mmHg (design
    /// estimate: 3.5 standard deviations at 2 mmHg sensor noise, the top of the simulator's range,
    /// so a held pulse is not taken for a drained one by noise within the 30 s confirmation; it
    /// was 3 mmHg, and a blocked line at 2.2 mL/h with 2 mmHg of sensor noise lost its episode to
    /// noise and was alarmed a stroke late, campaign seed 2027. An open line still drains well past
    /// it: the smallest pulse, 16.7 mmHg, in the slowest bent line, τ 26 s, loses 6.7 mmHg within
    /// 13 s).
    pub occlusion_flat_mmhg: f64,
    /// Per-stroke occlusion detector: between strokes a line only drains, so a reading that rises
    /// by more than this from one frame to the next, or (after the three frames that read a
    /// pulse) differs from the smoothed level by more than this, is a step: the pump was moved up
    /// or down (0.74 mmHg per cm, at once, in an open and a blocked line alike). The episode of
    /// held pulses ends without a verdict and the next stroke starts a new one. Without it a pump
    /// lowered just after a stroke lifts the level by about what the pulse then drains, and the
    /// drained pulse looks held (campaign seed 2027: pump lowered 33 cm at 2.8, 3.9 and 5.3 mL/h).
    /// Default 15 mmHg (design estimate: more than five standard deviations of the difference of
    /// two readings at 2 mmHg of noise; a move of 20 cm or more).
    pub occlusion_step_mmhg: f64,
    /// Per-stroke occlusion detector: after the pulse has been read, a reading that rises by more
    /// than this from one frame to the next (but not by `occlusion_step_mmhg`) is measured as a
    /// possible step (the three readings after its frame against the three before) and, if the
    /// step is at least half of this, taken out of the held-pulse accounting: what the pulse
    /// drained before and after it both count. Without it a pump lowered 19 cm (a 14 mmHg step,
    /// read as an 11 mmHg jump against the draining pulse) 0.4 s after a stroke's pulse had been
    /// read hid the pulse's drain and gave a false `occlusion_downstream` (campaign seed 2028 at
    /// 2 mL/h). Default 8 mmHg (design estimate: a pump move of 11 cm or more; 2.8 standard
    /// deviations of the difference of two readings at 2 mmHg of sensor noise, so noise alone
    /// starts a measurement now and then, but a single noisy frame measures as no step: the
    /// three-reading means exclude the jump's frame, and their difference has a standard deviation
    /// of 1.6 mmHg at 2 mmHg of noise, against the 4 mmHg needed to count).
    pub occlusion_jump_mmhg: f64,
    /// Per-stroke occlusion detector: the held pulses must have lasted this long since the first
    /// held stroke before `occlusion_downstream` is raised. Default 30 s (design estimate: longer
    /// than three time constants of the slowest healthy line, so any open line has visibly decayed,
    /// and short enough for the 60 s at 10 mL/h, where a stroke comes every 18 s).
    pub occlusion_confirm_ms: u64,
    /// Pressure relief after a downstream occlusion: the motor runs backwards at this rate until
    /// the line pressure is back near the baseline. Default 120 mL/h (design estimate: relieves the
    /// 0.7 mL stored at the 517 mmHg default limit in the 1.3 µL/mmHg line in about 20 s; still
    /// under 0.1 mL per 3 s, so the stop comes within one sensor period of the target).
    pub relief_rate_ml_per_h: f64,
    /// Relief stops once the line pressure is within this of the open-line baseline. Default 5 mmHg
    /// (design estimate: leaves at most 5 × 3 = 15 µL stored in the softest supported line, against
    /// ECRI's 0.5 mL and the 0.05 mL).
    pub relief_margin_mmhg: f64,
    /// Relief never draws back more than this. Default 3500 µL (design estimate: the most a line of
    /// 3 µL/mmHg can store at ECRI's highest limit, 1034 mmHg, plus 10 %). Zero switches relief off
    /// (the occlusion test uses it to show the bolus without relief).
    pub relief_max_ul: f64,
    /// Disconnection detector: the baseline before the strokes must have fallen at least this far
    /// below the learned venous baseline. Default 4 mmHg (design estimate: half of a typical
    /// peripheral venous pressure of 8 mmHg; a line open to the room reads the room, not the vein).
    pub disconnect_drop_mmhg: f64,
    /// Disconnection detector: a pulse counts as settled (its half-life is used) when, four
    /// half-lives after it halved, it is within `disconnect_settle_fraction` of its first excess
    /// plus this. Default 3 mmHg (design estimate: about three standard deviations of a reading at
    /// 1 mmHg of noise).
    pub disconnect_settle_mmhg: f64,
    /// Disconnection detector: see `disconnect_settle_mmhg`. Default 0.05 (design estimate; it was
    /// 0.15: a pulse that still held 15 % when the next stroke came sat on a level still draining,
    /// which reads its half-life short, and a line open to the room then read only 0.7–0.8 of the
    /// learned half-life instead of 0.5 and was missed, campaign seed 2026 at 26 mL/h. Such lines
    /// are now not judged: the monitor is not armed and the campaign counts them).
    pub disconnect_settle_fraction: f64,
    /// Disconnection detector: a stroke's pulse must decay with a half-life below this fraction of
    /// the learned one (the catheter's resistance is gone from the path). Default 0.75 (design
    /// estimate; the simulator's line loses half its resistance with the catheter).
    pub disconnect_half_life_fraction: f64,
    /// Disconnection detector: settled pulses that drain differently from the learned line (the
    /// half-life outside `disconnect_half_life_fraction` of it either way) without a lower
    /// baseline for this long mean the line itself has changed, and it is learned again (the
    /// monitor is not armed meanwhile). Shorter spells (a bent arm) leave the learned line as it
    /// was, so the arm straightened again is no disconnection. Default 150 s (design estimate:
    /// longer than the 2-minute bent arm of issue 11, like `occlusion_limit_persist_ms`).
    pub disconnect_relearn_ms: u64,
    /// Disconnection detector: the learned half-life must be at least this long for the monitor to
    /// judge (and be armed). Default 200 ms (design estimate: two sensor periods; a pulse that
    /// halves within fewer frames is read to about ±half its half-life, far coarser than the 25 %
    /// the half-life test needs: fast lines at 200 mL/h, half-lives of 100–150 ms, gave false
    /// disconnections in the campaign, seeds 2026–2028).
    pub disconnect_half_life_min_ms: f64,
    /// Disconnection detector: this many consecutive strokes must show both signs. Default 3 (design
    /// estimate: at 5 mL/h three strokes take 108 s, inside the 5 minutes).
    pub disconnect_strokes: u8,
    /// Disconnection detector: a settled stroke at least `disconnect_drop_mmhg` below the learned
    /// baseline never moves that baseline by itself, even if it drains as before: it joins a run
    /// of such strokes on a steady level, and the baseline follows the run only after this many
    /// of them whose mean half-life is within `disconnect_half_life_fraction` of the learned one
    /// (the pump was raised in moves too small to show as a step). Only on a quiet line: within
    /// `disconnect_relearn_ms` of a disturbance (a bend, a level still draining or pressurised
    /// above the baseline, a step of the reading) such a stroke sets the baseline at once, as
    /// before, and no run is judged. Default 8 (design estimate:
    /// a line open to the room read 0.7–0.8 of the learned half-life on some strokes, behind a
    /// level still draining, and one stroke that read as "drains as before" moved the learned
    /// baseline to the room's, campaign seeds 2026, 2027 and 2029 at 24–34 mL/h; eight strokes
    /// give the run's mean a standard error under 0.06 of the learned half-life on the noisiest
    /// lines the campaign draws).
    pub disconnect_follow_strokes: u8,
    /// Disconnection detector: a run of at least `disconnect_strokes` strokes below the learned
    /// baseline is a line open to the room when its mean half-life is at least this many standard
    /// errors below the learned one (the standard error from the scatter of this line's own
    /// half-lives, `half-life spread` × 1.25 / √n) and under `disconnect_run_fraction_max` of it.
    /// Default 4 (design estimate: a pump raised with the line in the vein drains as before, and
    /// its run's mean falls 4 standard errors short about 3 times in 100,000 looks).
    pub disconnect_run_sigmas: f64,
    /// Disconnection detector: see `disconnect_run_sigmas`. Default 0.8 (design estimate: the
    /// lines whose disconnections were missed read a mean of 0.64–0.8 of the learned half-life;
    /// a line in the vein reads 0.97–1.0 on average in the campaign, but one just after a bend
    /// about 0.8, and 0.9 gave false alarms there in a first try, campaign seed 2026).
    pub disconnect_run_fraction_max: f64,
    /// Disconnection detector: the least scatter of one stroke's half-life (mean absolute
    /// deviation from the learned one, as a fraction of it) the run test assumes. Default 0.05
    /// (design estimate: the steadiest lines in the campaign scatter by about 0.03–0.04 at
    /// 100 mL/h; a floor keeps one lucky quiet spell from making the test overconfident).
    pub disconnect_spread_min: f64,
    /// Disconnection detector: the scatter assumed when the line has just been learned, before
    /// its own half-lives have shown theirs (weight 1/8 per stroke). Default 0.15 (design
    /// estimate: about the noisiest lines in the campaign, 0.16 standard deviation, so a line just
    /// learned is judged cautiously).
    pub disconnect_spread_initial: f64,
    /// One bubble larger than this raises `air_in_line`. Default 100 µL (large-volume pumps offer
    /// 50–500 µL; a home patient is alone, so we take the sensitive end of the common settings).
    pub air_single_bubble_ul: f64,
    /// A frame with at most this much air counts as liquid when deciding where one bubble ends.
    /// Default 5 µL (a tenth of a stroke; well below the smallest single-bubble setting, so trace
    /// air such as micro-bubbles from a loose connection is left to the 15-minute accumulation).
    pub air_trace_ul: f64,
    /// One bubble is the air of consecutive frames until this much liquid has passed with no more
    /// than trace air; air separated by less liquid is the same bubble. Default 50 µL = one stroke
    /// (design choice: the detector reports air stroke by stroke, and at low rates many frames
    /// between two strokes show no air although no liquid has moved past the detector).
    pub air_bubble_gap_ul: f64,
    /// Air accumulated in the rolling window above this raises `air_in_line`. Default 1000 µL
    /// (BD Alaris GP: more than 1 mL in 15 min).
    pub air_accumulated_ul_max: f64,
    /// Rolling window for accumulated air. Default 15 min (BD Alaris GP).
    pub air_window_ms: u64,
    /// Reservoir below this is empty: motor stops. Default 0.5 mL (Open PCA).
    pub reservoir_empty_ml: f64,
    /// `infusion_near_end` when less than this remains... Default 1 mL (Open PCA reservoir low).
    pub near_end_ml: f64,
    /// ...or when the end is nearer than this at the present rate. Default 5 min (Medfusion:
    /// near-empty alert configurable 1–240 min before the end).
    pub near_end_ms: u64,
    /// `battery_low` (LOW) when on battery and fewer minutes are left. Default 40 min: IEC
    /// 60601-2-24 asks for the low-battery warning at least 30 min before the pump stops, and it
    /// stops at `battery_depleted_minutes` (3 min) of the gauge's estimate; the other 7 min are a
    /// design allowance for the estimate when the load rises (boluses). Also time for a patient at
    /// home to find the charger.
    pub battery_low_minutes: f64,
    /// `battery_low` becomes MEDIUM below this. Default 10 min (Open PCA: at least 10 min on battery).
    pub battery_low_medium_minutes: f64,
    /// `battery_depleted` (HIGH, motor stops) below this. Default 3 min (Open PCA warns under 3 min;
    /// the power-failure alarm must sound for at least 120 s, so we stop with energy left for it).
    pub battery_depleted_minutes: f64,
    /// Mechanism temperature above this is a `system_error`. Default 55 °C (design choice: 15 °C above
    /// the 40 °C top of the usual ambulatory operating range).
    pub overheat_c: f64,
    /// Absolute floor of the motor/encoder mismatch tolerance: encoder and motor controller
    /// disagreeing (cumulatively, see `motor_encoder_window_ul`) by more than this plus
    /// `motor_encoder_mismatch_fraction` of the volume compared is a `system_error`. Default
    /// 150 µL = three strokes (design choice).
    pub motor_encoder_mismatch_ul: f64,
    /// Part of the mismatch tolerance that grows with the volume compared: the stroke-volume error
    /// allowance between what the controller counts and what the encoder measures. Default 0.05
    /// (the ±5 % accuracy claim of large-volume pumps).
    pub motor_encoder_mismatch_fraction: f64,
    /// Memory of the mismatch check, in commanded volume: controller and encoder counts are
    /// compared through a leaky sum that forgets with this volume constant (not with time, so the
    /// check sees the same evidence at 0.5 mL/h as at 999 mL/h). Default 1000 µL = twenty strokes;
    /// with the defaults a stall, a blind encoder or a runaway is caught after about 223 µL
    /// commanded (13 min at 1 mL/h, 2.7 min at 5 mL/h).
    pub motor_encoder_window_ul: f64,
    /// Flow is compared with the commanded rate over windows of this length. Default 60 s.
    pub flow_window_ms: u64,
    /// Flow errors smaller than this are never an alarm (sensor resolution). Default 10 µL (a
    /// wearable pump's manual: under-delivery of 10 µL raises its occlusion alarm).
    pub flow_error_ul_min: f64,
    /// Over-infusion at once: measured volume exceeds expected by this much. Default 500 µL
    /// (ECRI: bolus released after an occlusion at most 0.5 mL; we accept no larger unplanned bolus).
    pub over_infusion_immediate_ul: f64,
    /// Relative flow error that counts as "far off" in one window (GPCA first threshold). Default 0.5.
    pub flow_error_immediate_fraction: f64,
    /// Relative flow error that counts as "slightly off" (GPCA second threshold). Default 0.1
    /// (twice the ±5 % accuracy claim of large-volume pumps).
    pub flow_error_sustained_fraction: f64,
    /// Slightly-off flow must last this long to alarm. Default 5 min (GPCA, Open PCA).
    pub flow_error_sustained_ms: u64,
    /// `paused_too_long` after this long paused or programmed but not started. Default 2 min
    /// (design choice between Medfusion's 30 s set-up callback and longer home pauses).
    pub paused_too_long_ms: u64,
    /// `repeated_alarm` when the same alarm stops the motor this many times... Default 3 (Open PCA).
    pub repeated_alarm_count: u8,
    /// ...within this window. Default 10 min (Open PCA).
    pub repeated_alarm_window_ms: u64,
    /// `hourly_limit_reached` stops holding the basal back once the rolling volume is below this
    /// fraction of the limit (hysteresis, so the motor does not toggle every frame). Default 0.9.
    pub hourly_resume_fraction: f64,

    // ---- alarm engine ----
    /// Audio pause length. Default 2 min (large-volume pumps; IEC 60601-1-8 audio pause is temporary).
    pub audio_pause_ms: u64,
    /// A HIGH alarm unacknowledged this long emits `AlarmEscalated`. Default 3 min (design choice:
    /// "if nobody responds within minutes, tell the next person").
    pub escalation_after_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sensor_period_ms: 100,
            sensor_timeout_ms: 500,
            deadline_tolerance_ms: 200,
            stroke_volume_ul: 50.0,
            rate_ml_per_h_min: 0.1,
            rate_ml_per_h_max: 999.0,
            vtbi_ml_min: 0.1,
            vtbi_ml_max: 9999.0,
            kvo_ml_per_h_min: 0.1,
            kvo_ml_per_h_max: 20.0,
            limit_kvo_ml_per_h: 0.1,
            bolus_ml_min: 0.1,
            bolus_ml_max: 50.0,
            lockout_min_min: 5.0,
            lockout_min_max: 1440.0,
            bolus_rate_ml_per_h: 60.0,
            occlusion_downstream_mmhg: 517.0,
            occlusion_limit_persist_ms: 150_000,
            occlusion_limit_release_fraction: 0.9,
            occlusion_upstream_mmhg: -51.7,
            occlusion_stroke_rise_mmhg: 10.0,
            occlusion_flat_fraction: 0.1,
            occlusion_flat_mmhg: 5.0,
            occlusion_step_mmhg: 15.0,
            occlusion_jump_mmhg: 8.0,
            occlusion_confirm_ms: 30_000,
            relief_rate_ml_per_h: 120.0,
            relief_margin_mmhg: 5.0,
            relief_max_ul: 3500.0,
            disconnect_drop_mmhg: 4.0,
            disconnect_settle_mmhg: 3.0,
            disconnect_settle_fraction: 0.05,
            disconnect_half_life_fraction: 0.75,
            disconnect_relearn_ms: 150_000,
            disconnect_half_life_min_ms: 200.0,
            disconnect_strokes: 3,
            disconnect_follow_strokes: 8,
            disconnect_run_sigmas: 4.0,
            disconnect_run_fraction_max: 0.8,
            disconnect_spread_min: 0.05,
            disconnect_spread_initial: 0.15,
            air_single_bubble_ul: 100.0,
            air_trace_ul: 5.0,
            air_bubble_gap_ul: 50.0,
            air_accumulated_ul_max: 1000.0,
            air_window_ms: 15 * 60_000,
            reservoir_empty_ml: 0.5,
            near_end_ml: 1.0,
            near_end_ms: 5 * 60_000,
            battery_low_minutes: 40.0,
            battery_low_medium_minutes: 10.0,
            battery_depleted_minutes: 3.0,
            overheat_c: 55.0,
            motor_encoder_mismatch_ul: 150.0,
            motor_encoder_mismatch_fraction: 0.05,
            motor_encoder_window_ul: 1000.0,
            flow_window_ms: 60_000,
            flow_error_ul_min: 10.0,
            over_infusion_immediate_ul: 500.0,
            flow_error_immediate_fraction: 0.5,
            flow_error_sustained_fraction: 0.1,
            flow_error_sustained_ms: 5 * 60_000,
            paused_too_long_ms: 2 * 60_000,
            repeated_alarm_count: 3,
            repeated_alarm_window_ms: 10 * 60_000,
            hourly_resume_fraction: 0.9,
            audio_pause_ms: 2 * 60_000,
            escalation_after_ms: 3 * 60_000,
        }
    }
}

/// Why a `Config` cannot be used. `Pump::new` with an invalid config starts in `Fault`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("config field {field} = {value} is invalid: {why}")]
    Invalid {
        field: &'static str,
        value: f64,
        why: &'static str,
    },
}

impl Config {
    /// Checks every value is usable: finite, positive where it divides or bounds, ranges in order.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn positive(field: &'static str, value: f64) -> Result<(), ConfigError> {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    field,
                    value,
                    why: "must be a positive number",
                })
            }
        }
        fn ordered(field: &'static str, min: f64, max: f64) -> Result<(), ConfigError> {
            if min <= max {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    field,
                    value: min,
                    why: "minimum above maximum",
                })
            }
        }
        fn fraction(field: &'static str, value: f64) -> Result<(), ConfigError> {
            if value.is_finite() && value > 0.0 && value < 1.0 {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    field,
                    value,
                    why: "must be between 0 and 1",
                })
            }
        }
        let periods = [
            ("sensor_period_ms", self.sensor_period_ms),
            ("sensor_timeout_ms", self.sensor_timeout_ms),
            ("air_window_ms", self.air_window_ms),
            ("flow_window_ms", self.flow_window_ms),
            ("flow_error_sustained_ms", self.flow_error_sustained_ms),
            ("paused_too_long_ms", self.paused_too_long_ms),
            ("repeated_alarm_window_ms", self.repeated_alarm_window_ms),
            ("audio_pause_ms", self.audio_pause_ms),
            ("escalation_after_ms", self.escalation_after_ms),
        ];
        for (field, value) in periods {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    field,
                    value: 0.0,
                    why: "must be above zero",
                });
            }
        }
        positive("stroke_volume_ul", self.stroke_volume_ul)?;
        positive("rate_ml_per_h_min", self.rate_ml_per_h_min)?;
        positive("rate_ml_per_h_max", self.rate_ml_per_h_max)?;
        ordered(
            "rate_ml_per_h_min",
            self.rate_ml_per_h_min,
            self.rate_ml_per_h_max,
        )?;
        positive("vtbi_ml_min", self.vtbi_ml_min)?;
        positive("vtbi_ml_max", self.vtbi_ml_max)?;
        ordered("vtbi_ml_min", self.vtbi_ml_min, self.vtbi_ml_max)?;
        positive("kvo_ml_per_h_min", self.kvo_ml_per_h_min)?;
        positive("kvo_ml_per_h_max", self.kvo_ml_per_h_max)?;
        ordered(
            "kvo_ml_per_h_min",
            self.kvo_ml_per_h_min,
            self.kvo_ml_per_h_max,
        )?;
        positive("limit_kvo_ml_per_h", self.limit_kvo_ml_per_h)?;
        positive("bolus_ml_min", self.bolus_ml_min)?;
        positive("bolus_ml_max", self.bolus_ml_max)?;
        ordered("bolus_ml_min", self.bolus_ml_min, self.bolus_ml_max)?;
        positive("lockout_min_min", self.lockout_min_min)?;
        positive("lockout_min_max", self.lockout_min_max)?;
        ordered(
            "lockout_min_min",
            self.lockout_min_min,
            self.lockout_min_max,
        )?;
        positive("bolus_rate_ml_per_h", self.bolus_rate_ml_per_h)?;
        positive("occlusion_downstream_mmhg", self.occlusion_downstream_mmhg)?;
        // Zero is allowed (the limit alone alarms at once); a persistence longer than a day would
        // leave a blocked line to the per-stroke detector alone.
        if self.occlusion_limit_persist_ms > 24 * 3_600_000 {
            return Err(ConfigError::Invalid {
                field: "occlusion_limit_persist_ms",
                value: self.occlusion_limit_persist_ms as f64,
                why: "must be at most a day (86400000 ms)",
            });
        }
        fraction(
            "occlusion_limit_release_fraction",
            self.occlusion_limit_release_fraction,
        )?;
        if !(self.occlusion_upstream_mmhg.is_finite() && self.occlusion_upstream_mmhg < 0.0) {
            return Err(ConfigError::Invalid {
                field: "occlusion_upstream_mmhg",
                value: self.occlusion_upstream_mmhg,
                why: "must be a negative pressure (suction)",
            });
        }
        positive(
            "occlusion_stroke_rise_mmhg",
            self.occlusion_stroke_rise_mmhg,
        )?;
        fraction("occlusion_flat_fraction", self.occlusion_flat_fraction)?;
        positive("occlusion_flat_mmhg", self.occlusion_flat_mmhg)?;
        positive("occlusion_step_mmhg", self.occlusion_step_mmhg)?;
        positive("occlusion_jump_mmhg", self.occlusion_jump_mmhg)?;
        if self.occlusion_confirm_ms == 0 {
            return Err(ConfigError::Invalid {
                field: "occlusion_confirm_ms",
                value: 0.0,
                why: "must be above zero",
            });
        }
        positive("relief_rate_ml_per_h", self.relief_rate_ml_per_h)?;
        positive("relief_margin_mmhg", self.relief_margin_mmhg)?;
        if !(self.relief_max_ul.is_finite() && self.relief_max_ul >= 0.0) {
            return Err(ConfigError::Invalid {
                field: "relief_max_ul",
                value: self.relief_max_ul,
                why: "must be zero (no relief) or a positive volume",
            });
        }
        positive("disconnect_drop_mmhg", self.disconnect_drop_mmhg)?;
        positive("disconnect_settle_mmhg", self.disconnect_settle_mmhg)?;
        fraction(
            "disconnect_settle_fraction",
            self.disconnect_settle_fraction,
        )?;
        positive(
            "disconnect_half_life_min_ms",
            self.disconnect_half_life_min_ms,
        )?;
        fraction(
            "disconnect_half_life_fraction",
            self.disconnect_half_life_fraction,
        )?;
        if self.disconnect_relearn_ms == 0 {
            return Err(ConfigError::Invalid {
                field: "disconnect_relearn_ms",
                value: 0.0,
                why: "must be above zero",
            });
        }
        if self.disconnect_strokes == 0 {
            return Err(ConfigError::Invalid {
                field: "disconnect_strokes",
                value: 0.0,
                why: "must be at least one stroke",
            });
        }
        if self.disconnect_follow_strokes == 0 {
            return Err(ConfigError::Invalid {
                field: "disconnect_follow_strokes",
                value: 0.0,
                why: "must be at least one stroke",
            });
        }
        positive("disconnect_run_sigmas", self.disconnect_run_sigmas)?;
        fraction(
            "disconnect_run_fraction_max",
            self.disconnect_run_fraction_max,
        )?;
        fraction("disconnect_spread_min", self.disconnect_spread_min)?;
        fraction("disconnect_spread_initial", self.disconnect_spread_initial)?;
        positive("air_single_bubble_ul", self.air_single_bubble_ul)?;
        positive("air_trace_ul", self.air_trace_ul)?;
        if self.air_trace_ul >= self.air_single_bubble_ul {
            return Err(ConfigError::Invalid {
                field: "air_trace_ul",
                value: self.air_trace_ul,
                why: "must be below air_single_bubble_ul (trace air is not a bubble)",
            });
        }
        positive("air_bubble_gap_ul", self.air_bubble_gap_ul)?;
        positive("air_accumulated_ul_max", self.air_accumulated_ul_max)?;
        positive("reservoir_empty_ml", self.reservoir_empty_ml)?;
        positive("near_end_ml", self.near_end_ml)?;
        positive("battery_low_minutes", self.battery_low_minutes)?;
        positive(
            "battery_low_medium_minutes",
            self.battery_low_medium_minutes,
        )?;
        positive("battery_depleted_minutes", self.battery_depleted_minutes)?;
        ordered(
            "battery_depleted_minutes",
            self.battery_depleted_minutes,
            self.battery_low_minutes,
        )?;
        positive("overheat_c", self.overheat_c)?;
        positive("motor_encoder_mismatch_ul", self.motor_encoder_mismatch_ul)?;
        fraction(
            "motor_encoder_mismatch_fraction",
            self.motor_encoder_mismatch_fraction,
        )?;
        positive("motor_encoder_window_ul", self.motor_encoder_window_ul)?;
        positive("flow_error_ul_min", self.flow_error_ul_min)?;
        positive(
            "over_infusion_immediate_ul",
            self.over_infusion_immediate_ul,
        )?;
        fraction(
            "flow_error_sustained_fraction",
            self.flow_error_sustained_fraction,
        )?;
        positive(
            "flow_error_immediate_fraction",
            self.flow_error_immediate_fraction,
        )?;
        ordered(
            "flow_error_sustained_fraction",
            self.flow_error_sustained_fraction,
            self.flow_error_immediate_fraction,
        )?;
        fraction("hourly_resume_fraction", self.hourly_resume_fraction)?;
        let count = self.repeated_alarm_count as usize;
        if !(2..=crate::engine::REPEAT_HISTORY_MAX).contains(&count) {
            return Err(ConfigError::Invalid {
                field: "repeated_alarm_count",
                value: f64::from(self.repeated_alarm_count),
                why: "must be between 2 and REPEAT_HISTORY_MAX",
            });
        }
        Ok(())
    }
}

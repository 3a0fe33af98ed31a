//! The per-stroke line monitor: each stroke of the mechanism is a small experiment on the line.
//!
//! A stroke pushes one stroke volume into the downstream line and its pressure jumps. In an open
//! line the pulse drains into the vein and the pressure falls back towards the venous baseline
//! within a few time constants (R·C, 0.15–9 s for healthy lines); in a blocked line nothing drains,
//! the pulse stays, and the next stroke stacks on it. A line whose end is no longer in a vein drains
//! towards the room instead: its baseline falls and (without the catheter's resistance) the pulses
//! drain faster. This module watches the pressure of every frame against the strokes the encoder
//! reports and gives two verdicts, `occluded` and `disconnected`; the engine turns them into alarms.
//!
//! No allocation, no floating-point library functions (`no_std` without `libm`): only sums,
//! averages and linear interpolation. See docs/pump-core.md, "Occlusion per stroke".

use crate::alarm::AlarmDetail;
use crate::config::Config;

/// Frames averaged right after a stroke to read the pulse (0.3 s at the default period).
const POST_FRAMES: u32 = 3;
/// Weight of each new frame in the smoothed pressure level between strokes.
const LEVEL_ALPHA: f64 = 0.25;
/// Weight of each new stroke in the learned venous baseline and half-life.
const LEARN_ALPHA: f64 = 0.125;
/// Weight of each new stroke in the learned venous baseline once learned: a pump moved up or down
/// changes it at once, and the pulses still drain as before.
const BASELINE_ALPHA: f64 = 1.0;
/// Strokes needed before the learned baseline and half-life are trusted.
const LEARN_STROKES: u32 = 4;
/// The disconnection monitor counts as armed while a half-life sample came within this many strokes.
const ARMED_STROKES: u32 = 8;
/// A pulse that has not halved within this many frames is not used for the half-life.
const HALF_LIFE_FRAMES_MAX: u32 = 600;

/// 1 / √n for the small counts of a run (no floating-point library in `no_std`); 1 / √8 beyond.
fn inv_sqrt(n: u32) -> f64 {
    const TABLE: [f64; 8] = [
        1.0,
        core::f64::consts::FRAC_1_SQRT_2,
        0.577_350_27,
        0.5,
        0.447_213_6,
        0.408_248_29,
        0.377_964_47,
        0.353_553_39,
    ];
    TABLE[(n.max(1) as usize - 1).min(TABLE.len() - 1)]
}

/// Pressure response of the line, stroke by stroke.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StrokeWatch {
    /// Whole strokes the encoder has counted (encoder total / stroke volume).
    strokes_seen: Option<i64>,
    /// Smoothed pressure; restarted at the mean of the frames right after each stroke.
    level: f64,
    level_valid: bool,
    /// The reading of the previous frame.
    last_pressure: f64,
    /// The last three readings (oldest first is not needed: only their mean is used).
    recent: [f64; 3],
    /// A step of the reading between strokes (the pump moved) being measured: the mean of the
    /// three readings before it, and the readings after it so far.
    step_pending: bool,
    step_from: f64,
    step_after_sum: f64,
    step_after_n: u32,

    // ---- occlusion: the current episode of held pulses ----
    episode: bool,
    episode_start_ms: u64,
    /// Level before the first stroke of the episode.
    episode_p0: f64,
    /// Sum of the pulses of the episode.
    rise: f64,
    /// What drained away over the completed segments of the episode.
    lost: f64,
    strokes: u32,
    /// Reading the pulse of the latest stroke.
    in_post: bool,
    post_sum: f64,
    post_n: u32,
    /// Level before the latest stroke.
    pre_level: f64,
    /// Mean of the frames right after the latest stroke.
    seg_first: f64,
    /// Pulse of the latest stroke (its mean right after minus the level before).
    post_seg_rise: f64,
    /// Level at which the line was last seen open (a pulse drained).
    open_baseline: Option<f64>,
    /// A jump of the reading between strokes (`occlusion_jump_mmhg`) being measured for the
    /// held-pulse test: the mean of the three readings before it, and the readings after it (the
    /// jump's own frame left out, so a single noisy frame measures as no step).
    jump_pending: bool,
    jump_from: f64,
    jump_after_sum: f64,
    jump_after_n: u32,
    /// The measured jumps since the latest stroke's pulse was read: the level moved by them
    /// without the line draining or holding, so they are taken out of what drained.
    seg_jumps: f64,

    // ---- disconnection: half-life of each pulse ----
    measuring: bool,
    hl_pre: f64,
    hl_half: f64,
    hl_prev_excess: f64,
    hl_frames: u32,
    /// First excess of the pulse being measured.
    hl_first: f64,
    /// Excess of the previous frame (the half-life is read on two-frame averages).
    hl_prev_raw: f64,
    /// Half-life found; waiting until `hl_check_frame` to see the pulse really drained to its
    /// baseline and sits still (a stacked or draining line gives no clean half-life).
    hl_found_ms: Option<f64>,
    hl_check_frame: u32,
    learned: u32,
    baseline_ref: f64,
    half_life_ref_ms: f64,
    suspect: u8,
    /// Strokes since the last half-life sample (the monitor is armed while samples keep coming).
    strokes_since_sample: u32,
    /// Lowest and highest baseline of the suspect strokes so far (an open line sits still).
    suspect_low: f64,
    suspect_high: f64,
    /// Sum of the half-lives of the suspect strokes so far (their mean must be fast too).
    suspect_half_life_sum_ms: f64,
    /// The run of settled strokes below the learned baseline (by `disconnect_drop_mmhg` or more)
    /// on a steady level, fast or draining as before: how many, the sum of their half-lives and
    /// baselines, and their lowest and highest baseline. Such a stroke never moves the learned
    /// baseline by itself: the run is judged by its mean half-life, and the baseline follows only
    /// after `disconnect_follow_strokes` of them that drain as before (the pump was raised).
    run_n: u32,
    run_half_life_sum_ms: f64,
    run_baseline_sum: f64,
    run_low: f64,
    run_high: f64,
    /// Mean absolute deviation of the settled half-lives from the learned one, as a fraction of
    /// it (how much one stroke's half-life scatters on this line).
    half_life_spread: f64,
    /// When the line was last disturbed for the run test: a settled pulse slower than the band (a
    /// bent arm) or faster without a drop (a level still draining), a level before a stroke more
    /// than `disconnect_drop_mmhg` above the learned baseline (a bend, a kink, stored volume still
    /// draining), or a step of the reading (the pump moved, or a bend's rise read as one). Within `disconnect_relearn_ms` of it a stroke that drains as before sets the
    /// baseline at once, as it always did, and no run is judged.
    disturbed_at_ms: Option<u64>,
    /// Since when the settled pulses drain differently from the learned line without a lower
    /// baseline (a bent arm, a line that changed): after `disconnect_relearn_ms` the line is
    /// learned again.
    mismatch_since_ms: Option<u64>,

    /// Verdicts.
    pub(crate) occluded: Option<AlarmDetail>,
    pub(crate) disconnected: Option<AlarmDetail>,
}

impl StrokeWatch {
    /// The smoothed pressure now (the reading itself before any frame was smoothed).
    pub(crate) fn level(&self) -> Option<f64> {
        self.level_valid.then_some(self.level)
    }

    /// Where the relief should bring the line back to: the level before the held pulses, or the
    /// level at which the line was last seen open.
    pub(crate) fn baseline(&self) -> Option<f64> {
        if self.episode {
            Some(match self.open_baseline {
                Some(b) => b.min(self.episode_p0),
                None => self.episode_p0,
            })
        } else {
            self.open_baseline
        }
    }

    /// The learned venous baseline, once trusted (the lowest baseline of a run of strokes below
    /// it, while that run is being judged).
    pub(crate) fn venous_baseline(&self) -> Option<f64> {
        (self.learned >= LEARN_STROKES).then_some(if self.run_n > 0 {
            self.baseline_ref.min(self.run_low)
        } else {
            self.baseline_ref
        })
    }

    /// Whether the disconnection monitor can judge the line now: it has learned the line's
    /// baseline and half-life, the half-life is long enough for the frames to read it
    /// (`disconnect_half_life_min_ms`), and the pulses keep settling between strokes (recent
    /// samples).
    pub(crate) fn disconnection_armed(&self, c: &Config) -> bool {
        self.learned >= LEARN_STROKES
            && self.half_life_ref_ms >= c.disconnect_half_life_min_ms
            && self.strokes_since_sample <= ARMED_STROKES
    }

    /// Forget the episode and any half-life measurement (the motor stopped or reversed).
    pub(crate) fn pause(&mut self) {
        self.episode = false;
        self.jump_pending = false;
        self.seg_jumps = 0.0;
        self.in_post = false;
        self.measuring = false;
        self.suspect = 0;
        self.run_n = 0;
    }

    /// One sensor frame. `forward` says whether the motor ran forwards since the last frame (only
    /// then are new strokes experiments on the line).
    pub(crate) fn frame(
        &mut self,
        now_ms: u64,
        pressure: f64,
        encoder_total_ul: f64,
        forward: bool,
        c: &Config,
    ) {
        let stroke_ul = c.stroke_volume_ul;
        let whole = if stroke_ul > 0.0 {
            let n = encoder_total_ul / stroke_ul;
            if (0.0..9.0e15).contains(&n) {
                n as i64
            } else {
                0
            }
        } else {
            0
        };
        let new_strokes = match self.strokes_seen {
            Some(seen) => whole - seen,
            None => 0,
        };
        self.strokes_seen = Some(whole);
        if !self.level_valid {
            self.level = pressure;
            self.level_valid = true;
            self.last_pressure = pressure;
            self.recent = [pressure; 3];
            return;
        }
        if !forward || new_strokes < 0 {
            self.pause();
            self.level += LEVEL_ALPHA * (pressure - self.level);
        } else {
            if new_strokes > 0 {
                self.stroke(
                    now_ms,
                    pressure,
                    new_strokes.min(i64::from(u32::MAX)) as u32,
                    c,
                );
            } else {
                self.between_strokes(now_ms, pressure, c);
            }
            self.judge_occlusion(now_ms, c);
        }
        self.last_pressure = pressure;
        self.recent = [self.recent[1], self.recent[2], pressure];
    }

    /// The pump moved: the vein's pressure at the pump moved by the measured step.
    fn shift_baseline(&mut self) {
        if self.step_pending && self.step_after_n > 0 {
            self.baseline_ref +=
                self.step_after_sum / f64::from(self.step_after_n) - self.step_from;
        }
        self.step_pending = false;
        self.step_after_n = 0;
    }

    fn stroke(&mut self, now_ms: u64, pressure: f64, count: u32, c: &Config) {
        // A step still being measured ends before the stroke's pulse.
        self.shift_baseline();
        let pre = self.level;
        if self.in_post {
            // The previous stroke's pulse was still being read: close it with what we have.
            self.close_post();
        }
        // Half-life: a new stroke ends any measurement in progress.
        self.measuring = false;
        // A line pressurised above the learned baseline before a stroke (a bent arm, a kink, the
        // stored volume of one still draining) is disturbed for the run test.
        if self.learned >= LEARN_STROKES && pre > self.baseline_ref + c.disconnect_drop_mmhg {
            self.disturbed_at_ms = Some(now_ms);
        }
        // A jump still being measured straddles this stroke: it is left out (the lost test was
        // held while it was measured, and the next pulse is judged afresh).
        self.jump_pending = false;
        if self.episode {
            self.lost += self.seg_first - pre + self.seg_jumps;
        } else {
            self.episode = true;
            self.episode_start_ms = now_ms;
            self.episode_p0 = pre;
            self.rise = 0.0;
            self.lost = 0.0;
            self.strokes = 0;
        }
        self.seg_jumps = 0.0;
        self.strokes = self.strokes.saturating_add(count);
        self.strokes_since_sample = self.strokes_since_sample.saturating_add(count);
        self.pre_level = pre;
        self.in_post = true;
        self.post_sum = pressure;
        self.post_n = 1;
        self.seg_first = pressure;
        self.level = pressure;
        // Start reading this pulse's half-life.
        let excess = pressure - pre;
        if excess > 0.0 {
            self.measuring = true;
            self.hl_pre = pre;
            self.hl_half = excess / 2.0;
            self.hl_prev_excess = excess;
            self.hl_prev_raw = excess;
            self.hl_first = excess;
            self.hl_frames = 0;
            self.hl_found_ms = None;
        }
    }

    fn close_post(&mut self) {
        self.in_post = false;
        self.seg_first = self.post_sum / f64::from(self.post_n.max(1));
        self.level = self.seg_first;
        let seg_rise = self.seg_first - self.pre_level;
        self.rise += seg_rise;
        self.post_seg_rise = seg_rise;
    }

    fn between_strokes(&mut self, now_ms: u64, pressure: f64, c: &Config) {
        // Between strokes a line only drains: a reading that jumps up from one frame to the next,
        // or away from the smoothed level, stepped (the pump was moved up or down, or a cough
        // reached an open line). What drained since the pulses can no longer be told from the
        // level: no evidence either way; the next stroke starts a new episode.
        let stepped = pressure - self.last_pressure > c.occlusion_step_mmhg
            || (!self.in_post && (pressure - self.level).abs() > c.occlusion_step_mmhg);
        if self.episode && stepped {
            self.episode = false;
            self.jump_pending = false;
        }
        // A smaller jump up of the reading after the pulse has been read (a pump lowered 11–20 cm,
        // 8–15 mmHg) cannot be told from noise well enough to end the episode, but it may hide a
        // pulse that drained: lowered just as the pulse drained, the level climbs back by about
        // what the pulse lost, and the drained pulse looks held (campaign seed 2028, 19 cm at
        // 2 mL/h). Measure it (the three readings after the jump's frame against the three before
        // it) and take it out of the held-pulse accounting: what drained before the jump and what
        // drained after it both count. A held line keeps the jump and stays held; a single noisy
        // frame measures as no step. The lost test waits while the jump is measured.
        if self.episode
            && !self.in_post
            && !self.jump_pending
            && pressure - self.last_pressure > c.occlusion_jump_mmhg
        {
            self.jump_pending = true;
            self.jump_from = (self.recent[0] + self.recent[1] + self.recent[2]) / 3.0;
            self.jump_after_sum = 0.0;
            self.jump_after_n = 0;
        } else if self.jump_pending {
            self.jump_after_sum += pressure;
            self.jump_after_n += 1;
            if self.jump_after_n >= 3 {
                self.jump_pending = false;
                let after = self.jump_after_sum / 3.0;
                let jump = after - self.jump_from;
                if jump >= c.occlusion_jump_mmhg / 2.0 {
                    self.seg_jumps += jump;
                    self.level = after;
                }
            }
        }
        // The same step seen from one frame to the next after the pulse has been read is the pump
        // moved up or down: the vein's pressure at the pump moved with it. A disconnection never
        // drops the reading that fast in a line the monitor judges (its pulses take two frames or
        // more to halve, so the line drains towards the room over several frames, and the drop is
        // the venous pressure, 5–10 mmHg, plus a part of the flow's). Shift the learned baseline by
        // the step, and drop the pulse being timed and any suspicion: they straddle the move.
        // The step is the mean of the three readings after it less the mean of the three before
        // (single readings would add their noise to the learned baseline).
        let frame_step = pressure - self.last_pressure;
        if !self.in_post && frame_step.abs() > c.occlusion_step_mmhg {
            self.disturbed_at_ms = Some(now_ms);
            if self.step_after_n > 0 {
                self.shift_baseline();
            }
            self.step_from = (self.recent[0] + self.recent[1] + self.recent[2]) / 3.0;
            self.step_after_sum = 0.0;
            self.step_after_n = 0;
            self.step_pending = true;
            // The smoothed level restarts at the reading after the step.
            self.level = pressure;
            self.suspect = 0;
            self.measuring = false;
        }
        if self.step_pending {
            self.step_after_sum += pressure;
            self.step_after_n += 1;
            if self.step_after_n >= 3 {
                self.shift_baseline();
            }
        }
        if self.in_post {
            self.post_sum += pressure;
            self.post_n += 1;
            self.level = self.post_sum / f64::from(self.post_n);
            if self.post_n >= POST_FRAMES {
                self.close_post();
                if self.episode && self.post_seg_rise < c.occlusion_stroke_rise_mmhg / 2.0 {
                    // No visible pulse: this stroke is no evidence of a held line.
                    self.episode = false;
                }
            }
        } else {
            self.level += LEVEL_ALPHA * (pressure - self.level);
        }
        if self.measuring {
            self.hl_frames += 1;
            // The pulse's excess averaged over this frame and the one before, so one noisy frame
            // does not decide the half-life (its time is taken half a frame earlier, below).
            let raw_excess = pressure - self.hl_pre;
            let excess = 0.5 * (raw_excess + self.hl_prev_raw);
            self.hl_prev_raw = raw_excess;
            if let Some(half_life_ms) = self.hl_found_ms {
                if self.hl_frames >= self.hl_check_frame {
                    self.measuring = false;
                    if raw_excess.abs()
                        <= c.disconnect_settle_fraction * self.hl_first + c.disconnect_settle_mmhg
                    {
                        self.half_life_sample(now_ms, half_life_ms.max(1.0), self.hl_pre, c);
                    }
                }
            } else if excess <= self.hl_half {
                // Linear interpolation between the last two frames.
                let span = self.hl_prev_excess - excess;
                let part = if span > 0.0 {
                    ((self.hl_prev_excess - self.hl_half) / span).clamp(0.0, 1.0)
                } else {
                    1.0
                };
                let half_life_ms =
                    (f64::from(self.hl_frames) - 1.5 + part).max(0.1) * c.sensor_period_ms as f64;
                // Four more half-lives (at least three frames) to see it settle.
                self.hl_found_ms = Some(half_life_ms);
                let period = (c.sensor_period_ms as f64).max(1.0);
                let more = (4.0 * half_life_ms / period) as u32;
                self.hl_check_frame = self.hl_frames.saturating_add(more.max(3));
            } else if self.hl_frames >= HALF_LIFE_FRAMES_MAX {
                self.measuring = false;
            } else {
                self.hl_prev_excess = excess;
            }
        }
    }

    /// One pulse's half-life and the baseline before it: learn them, or count them as a sign of
    /// a line open to the room.
    fn half_life_sample(&mut self, now_ms: u64, half_life_ms: f64, baseline: f64, c: &Config) {
        self.strokes_since_sample = 0;
        let ratio = half_life_ms / self.half_life_ref_ms.max(1e-9);
        let in_band = (c.disconnect_half_life_fraction..=1.0 / c.disconnect_half_life_fraction)
            .contains(&ratio);
        if self.learned < LEARN_STROKES {
            // The strokes learned from must agree with each other: a line that is still changing
            // (a bent arm, a level still draining) is learned again from this stroke.
            let agrees = in_band && (baseline - self.baseline_ref).abs() < c.disconnect_drop_mmhg;
            if self.learned == 0 || !agrees {
                self.baseline_ref = baseline;
                self.half_life_ref_ms = half_life_ms;
                self.half_life_spread = c.disconnect_spread_initial;
                self.learned = 1;
                self.run_n = 0;
            } else {
                self.baseline_ref += LEARN_ALPHA * 2.0 * (baseline - self.baseline_ref);
                self.half_life_ref_ms += LEARN_ALPHA * 2.0 * (half_life_ms - self.half_life_ref_ms);
                self.learned += 1;
            }
            self.mismatch_since_ms = None;
            return;
        }
        let drop = self.baseline_ref - baseline;
        let fast = half_life_ms <= c.disconnect_half_life_fraction * self.half_life_ref_ms;
        // A line that drains within a few frames gives no half-life to judge by.
        let readable = self.half_life_ref_ms >= c.disconnect_half_life_min_ms;
        // Slower than the band (a bend), or faster without a drop (a level still draining): the
        // line is disturbed. Faster with a drop is what a disconnection looks like, no disturbance.
        if ratio > 1.0 / c.disconnect_half_life_fraction
            || (!in_band && drop < c.disconnect_drop_mmhg)
        {
            self.disturbed_at_ms = Some(now_ms);
        }
        let quiet = self
            .disturbed_at_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= c.disconnect_relearn_ms);
        let dropped = drop >= c.disconnect_drop_mmhg && readable && quiet;
        // A dropped stroke that is not slower than the band joins the run below the baseline.
        if dropped && ratio <= 1.0 / c.disconnect_half_life_fraction {
            self.dropped_stroke(half_life_ms, baseline, c);
        } else {
            self.run_n = 0;
        }
        if drop >= c.disconnect_drop_mmhg && fast && readable {
            if self.suspect == 0 {
                self.suspect_low = baseline;
                self.suspect_high = baseline;
                self.suspect_half_life_sum_ms = 0.0;
            }
            self.suspect_low = self.suspect_low.min(baseline);
            self.suspect_high = self.suspect_high.max(baseline);
            if self.suspect_high - self.suspect_low > c.disconnect_drop_mmhg {
                // Still moving (a stacked line draining after a bend, a pump being moved): an
                // open end sits at the room's pressure. Start counting again from this stroke.
                self.suspect = 0;
                self.suspect_low = baseline;
                self.suspect_high = baseline;
                self.suspect_half_life_sum_ms = 0.0;
            }
            self.suspect = self.suspect.saturating_add(1);
            self.suspect_half_life_sum_ms += half_life_ms;
            // Their mean half-life too: one noisy reading of a half-life is no evidence.
            let mean_ms = self.suspect_half_life_sum_ms / f64::from(self.suspect.max(1));
            if self.suspect >= c.disconnect_strokes
                && mean_ms <= c.disconnect_half_life_fraction * self.half_life_ref_ms
                && self.disconnected.is_none()
            {
                self.disconnected = Some(AlarmDetail::LineOpen {
                    drop_mmhg: drop,
                    half_life_ms: mean_ms,
                    reference_half_life_ms: self.half_life_ref_ms,
                });
            }
        } else {
            self.suspect = 0;
            if !in_band {
                // A partly blocked line (a bent arm, a kink: pulses drain slower and stack), or
                // pulses measured on a level still draining: no venous baseline to learn. If it
                // lasts longer than a bent arm does, the line itself has changed: learn it again.
                let since = *self.mismatch_since_ms.get_or_insert(now_ms);
                if now_ms.saturating_sub(since) >= c.disconnect_relearn_ms {
                    self.learned = 0;
                    self.mismatch_since_ms = None;
                }
                return;
            }
            self.mismatch_since_ms = None;
            if dropped {
                // Drains as before but below the learned baseline: the pump raised, or a line
                // open to the room whose half-life reads long this once. One such stroke is no
                // evidence either way: the run below the baseline decides (above).
                return;
            }
            // A pulse that drains as it always did: the line still ends in the vein. Follow its
            // baseline quickly (the pump was moved up or down), its half-life and their scatter
            // slowly.
            self.baseline_ref += BASELINE_ALPHA * (baseline - self.baseline_ref);
            let deviation = (ratio - 1.0).abs();
            self.half_life_spread += LEARN_ALPHA * (deviation - self.half_life_spread);
            self.half_life_ref_ms += LEARN_ALPHA * (half_life_ms - self.half_life_ref_ms);
        }
    }

    /// A settled stroke below the learned baseline, fast or draining as before: judge the run of
    /// them by its mean half-life, or follow its baseline once it has drained as before long
    /// enough.
    fn dropped_stroke(&mut self, half_life_ms: f64, baseline: f64, c: &Config) {
        if self.run_n > 0 {
            let low = self.run_low.min(baseline);
            let high = self.run_high.max(baseline);
            if high - low > c.disconnect_drop_mmhg {
                // Still moving: an open end sits at the room's pressure. Start again from here.
                self.run_n = 0;
            }
        }
        if self.run_n == 0 {
            self.run_half_life_sum_ms = 0.0;
            self.run_baseline_sum = 0.0;
            self.run_low = baseline;
            self.run_high = baseline;
        }
        self.run_n = self.run_n.saturating_add(1);
        self.run_half_life_sum_ms += half_life_ms;
        self.run_baseline_sum += baseline;
        self.run_low = self.run_low.min(baseline);
        self.run_high = self.run_high.max(baseline);
        let n = self.run_n;
        let mean_ratio = self.run_half_life_sum_ms / f64::from(n) / self.half_life_ref_ms.max(1e-9);
        // One stroke's half-life scatters by about 1.25 × its mean absolute deviation (a normal
        // spread); the mean of n strokes by that over √n.
        let spread = 1.25 * self.half_life_spread.max(c.disconnect_spread_min);
        let limit = (1.0 - c.disconnect_run_sigmas * spread * inv_sqrt(n))
            .min(c.disconnect_run_fraction_max);
        if n >= u32::from(c.disconnect_strokes) && mean_ratio <= limit {
            if self.disconnected.is_none() {
                self.disconnected = Some(AlarmDetail::LineOpen {
                    drop_mmhg: self.baseline_ref - self.run_baseline_sum / f64::from(n),
                    half_life_ms: self.run_half_life_sum_ms / f64::from(n),
                    reference_half_life_ms: self.half_life_ref_ms,
                });
            }
        } else if n >= u32::from(c.disconnect_follow_strokes)
            && mean_ratio >= c.disconnect_half_life_fraction
        {
            // Long enough below the baseline, draining as before: the pump was raised (in moves
            // too small to show as a step). Follow the run's baseline.
            self.baseline_ref = self.run_baseline_sum / f64::from(n);
            self.run_n = 0;
            self.suspect = 0;
        }
    }

    fn judge_occlusion(&mut self, now_ms: u64, c: &Config) {
        if !self.episode || self.in_post || self.jump_pending {
            return;
        }
        let lost = self.lost + (self.seg_first - self.level) + self.seg_jumps;
        let tolerance = c.occlusion_flat_fraction * self.rise + c.occlusion_flat_mmhg;
        if lost.abs() > tolerance {
            // The pulses drained (or the baseline moved under them): the line is open.
            self.episode = false;
            if lost > 0.0 {
                self.open_baseline = Some(self.level);
            }
            return;
        }
        let held_ms = now_ms.saturating_sub(self.episode_start_ms);
        if self.rise >= c.occlusion_stroke_rise_mmhg
            && held_ms >= c.occlusion_confirm_ms
            && self.occluded.is_none()
        {
            self.occluded = Some(AlarmDetail::HeldPulses {
                rise_mmhg: self.level - self.episode_p0,
                lost_mmhg: lost,
                strokes: self.strokes,
                held_ms,
            });
        }
    }

    /// The disconnection verdict holds while the line stays below the learned venous baseline once
    /// the pump has stopped (while it runs, the pulses themselves lift the level).
    pub(crate) fn update_disconnected(&mut self, pumping: bool, c: &Config) {
        if self.disconnected.is_some()
            && !pumping
            && self.level_valid
            && self.level > self.baseline_ref - c.disconnect_drop_mmhg / 2.0
        {
            self.disconnected = None;
            self.suspect = 0;
        }
    }
}

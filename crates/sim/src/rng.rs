//! The simulator's own seeded random number generator, so a seed replays identically forever.
//!
//! We do not use the `rand` crate on purpose: its generators and distributions may change between
//! versions, and a safety campaign's violation must replay from its seed years later. xoshiro256**
//! (Blackman & Vigna) seeded through splitmix64 is small, fast and fully specified here.

/// xoshiro256** seeded with splitmix64. Deterministic across platforms and dependency versions.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

/// One splitmix64 step: used to expand a 64-bit seed into the 256-bit xoshiro state, and to derive
/// independent seeds for the campaign's patient-days.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), 53 bits of precision.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [low, high).
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform integer in [0, n). `n` must be > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        // Lemire's multiply-shift; the tiny bias for huge n does not matter for a simulation.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Log-uniform in [low, high): therapies span 0.5 to 250 mL/h, so each decade is equally likely.
    pub fn log_uniform(&mut self, low: f64, high: f64) -> f64 {
        (low.ln() + (high.ln() - low.ln()) * self.unit()).exp()
    }

    /// Standard normal by Box–Muller. Used where the shape matters (stroke volume error).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1], so ln is finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos()
    }

    /// Approximately standard normal (Irwin–Hall of 4 uniforms, scaled to variance 1): no
    /// transcendental functions, for the per-tick sensor noise on the hot path.
    pub fn normal_fast(&mut self) -> f64 {
        let x = self.next_u64();
        let a = (x & 0xFFFF) as f64;
        let b = ((x >> 16) & 0xFFFF) as f64;
        let c = ((x >> 32) & 0xFFFF) as f64;
        let d = (x >> 48) as f64;
        // Sum of 4 uniforms on [0, 65536): mean 131070, sd 65536 * sqrt(4/12).
        (a + b + c + d - 131_070.0) / (65_536.0 * 0.577_350_269_189_625_8)
    }

    /// Exponentially distributed waiting time with this mean (Poisson process arrivals).
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_known_first_value() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        // splitmix64's published first output for seed 0 (Vigna's reference implementation).
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn distributions_have_the_right_moments() {
        let mut r = Rng::new(7);
        let n = 100_000;
        let (mut sum, mut sum2) = (0.0, 0.0);
        for _ in 0..n {
            let x = r.normal_fast();
            sum += x;
            sum2 += x * x;
        }
        let mean = sum / n as f64;
        let var = sum2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "variance {var}");
        let mean_exp: f64 = (0..n).map(|_| r.exponential(3.0)).sum::<f64>() / n as f64;
        assert!((mean_exp - 3.0).abs() < 0.1, "exponential mean {mean_exp}");
        assert!((0..1000).all(|_| r.below(10) < 10));
    }
}

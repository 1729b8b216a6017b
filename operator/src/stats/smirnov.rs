//! The survival function of the one-sided Kolmogorov–Smirnov statistic,
//! `P(D+_n > x)`: SciPy's `smirnov(n, x)`. The two-sided distribution uses
//! twice it in its upper tail.
//!
//! It sums the Birnbaum–Tingey series, whose terms are all positive:
//! `x * sum_{v=0}^{floor(n(1-x))} C(n, v) (x + v/n)^(v-1) (1 - x - v/n)^(n-v)`.
//! SciPy carries each term in double-double precision; here each is one
//! `exp` of a sum of logarithms, with `n x` split exactly into two floats so
//! that `1 - x - v/n` keeps its precision near zero. Each term is then right
//! to about `n * 1e-16` relative, far inside the 1e-9 asked of a p-value.

/// Above this `n` SciPy switches to an approximation, and so does this.
const MAX_COMPUTE_N: u64 = 1_000_000;
/// `ln` of the smallest normal double: below it `exp` gives zero.
const MIN_LOG: f64 = -708.396_418_532_264_1;

/// `P(D+_n > x)` for `n >= 1` and `0 <= x <= 1`.
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if n == 0 || !(0.0..=1.0).contains(&x) {
        return f64::NAN;
    }
    let nf = n as f64;
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    // n x = nx_hi + nx_lo exactly (a two-product).
    let nx_hi = nf * x;
    let nx_lo = nf.mul_add(x, -nx_hi);
    let floor = nx_hi.floor();
    let fraction = (nx_hi - floor) + nx_lo;
    let (n_x_floor, alpha) = match fraction {
        f if f >= 1.0 => (floor + 1.0, f - 1.0),
        f if f < 0.0 => (floor - 1.0, f + 1.0),
        f => (floor, f),
    };
    if n_x_floor == 0.0 || (n_x_floor == 1.0 && alpha == 0.0) {
        // x <= 1/n: a single term.
        return (1.0 - x * (1.0 + x).powf(nf - 1.0)).clamp(0.0, 1.0);
    }
    if -2.0 * nf * x * x < MIN_LOG {
        return 0.0;
    }
    if n_x_floor >= nf - 1.0 {
        return (1.0 - x).powf(nf).clamp(0.0, 1.0);
    }
    if n > MAX_COMPUTE_N {
        // p ~ exp(-(6nx + 1)^2 / (18n))
        let log_p = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        let sf = if log_p < -std::f64::consts::LN_2 { log_p.exp() } else { 1.0 - (-log_p.exp_m1()) };
        return sf.clamp(0.0, 1.0);
    }
    // Terms v = 0 ..= floor(n(1 - x)), less the last when n(1 - x) is an
    // integer (its 1 - x - v/n is 0): n - floor(n x) - 1 either way.
    let terms = n - n_x_floor as u64;
    let ln_x = x.ln();
    let mut binomial = ScaledBinomial::default();
    let mut sum = 0.0f64;
    for v in 0..terms {
        let vf = v as f64;
        // x + v/n and 1 - x - v/n, each from the exact split of n x.
        let above = ((vf + nx_hi) + nx_lo) / nf;
        let below = (((nf - vf) - nx_hi) - nx_lo) / nf;
        let log_power = if v == 0 { -ln_x } else { (vf - 1.0) * above.ln() };
        let log_term = binomial.ln() + log_power + (nf - vf) * below.ln();
        let term = if log_term > MIN_LOG { log_term.exp() } else { 0.0 };
        sum += term;
        // SciPy's early exit: the remaining terms cannot change the sum.
        if term != 0.0 {
            if 4.0 * (terms - v) as f64 * term < f64::EPSILON * sum && v != terms - 1 {
                break;
            }
        } else if v > n / 2 {
            break;
        }
        binomial.advance(n, v);
    }
    (x * sum).clamp(0.0, 1.0)
}

/// `C(n, v)` as a mantissa in [0.5, 1) and a power of two, since it outgrows
/// a double long before `n` reaches a million.
struct ScaledBinomial {
    mantissa: f64,
    exponent: i64,
}

impl Default for ScaledBinomial {
    fn default() -> Self {
        ScaledBinomial { mantissa: 1.0, exponent: 0 }
    }
}

impl ScaledBinomial {
    /// From `C(n, v)` to `C(n, v + 1)`.
    fn advance(&mut self, n: u64, v: u64) {
        let product = self.mantissa * ((n - v) as f64 / (v as f64 + 1.0));
        let shift = product.log2().floor() as i64 + 1;
        self.mantissa = super::ldexp(product, -shift);
        self.exponent += shift;
    }

    fn ln(&self) -> f64 {
        self.mantissa.ln() + self.exponent as f64 * std::f64::consts::LN_2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_n_matches_the_closed_forms() {
        assert_eq!(smirnov_sf(1, 0.3), 0.7);
        // n = 2, 1/2 <= x < 1: P(D+ > x) = (1 - x)^2
        assert!((smirnov_sf(2, 0.6) - 0.16).abs() < 1e-15);
    }

    #[test]
    fn the_tail_is_close_to_the_asymptotic_exponential() {
        // P(D+_n > x) ~ exp(-2 n x^2) for large n.
        let p = smirnov_sf(100_000, 0.005);
        assert!((p / (-2.0 * 100_000.0 * 0.005f64.powi(2)).exp() - 1.0).abs() < 0.05, "{p}");
    }
}

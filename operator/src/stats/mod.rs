//! Two-sample statistics on raw values, for `trainloop drift compare` when both
//! inputs are data rather than binned profiles.
//!
//! They reproduce SciPy (`scipy.stats.ks_2samp` with `method='auto'` and
//! `scipy.stats.wasserstein_distance`) to 1e-9, so a number a person checks
//! in a notebook is the number the command prints. The p-value needs the
//! distributions of the Kolmogorov–Smirnov statistic, ported from SciPy's
//! algorithms: [`ks_distribution`] (two-sided, one sample, SciPy's `kstwo`)
//! and [`smirnov`] (one-sided).
//!
//! Every function takes values sorted ascending (with `f64::total_cmp`, which
//! [`sort_floats`] does faster) and finite: the caller sorts each column once
//! and reuses it for both statistics.

mod cdf_walk;
mod decimal_keys;
pub mod ks_distribution;
pub mod ks_two_sample;
mod radix_sort;
pub mod smirnov;
pub mod wasserstein;

pub use decimal_keys::{DecimalShape, ShapeOfColumn};
pub use ks_two_sample::{KsPValueMethod, KsTest, ks_two_sample};
pub use radix_sort::sort_floats;
pub use wasserstein::wasserstein_distance;

/// The KS test and the Wasserstein distance of two sorted samples in one pass
/// over them; `None` when either is empty.
pub fn ks_and_wasserstein(sorted_a: &[f64], sorted_b: &[f64]) -> Option<(KsTest, f64)> {
    if sorted_a.is_empty() || sorted_b.is_empty() {
        return None;
    }
    let gaps = cdf_walk::cdf_gaps(sorted_a, sorted_b);
    Some((ks_two_sample::ks_test_of(sorted_a.len(), sorted_b.len(), &gaps), gaps.area))
}

/// `value * 2^exponent` without overflowing in the power of two when the
/// result itself is representable (C's `ldexp`).
pub(crate) fn ldexp(mut value: f64, mut exponent: i64) -> f64 {
    const STEP: i64 = 1000;
    while exponent > STEP {
        value *= 2f64.powi(STEP as i32);
        exponent -= STEP;
    }
    while exponent < -STEP {
        value *= 2f64.powi(-STEP as i32);
        exponent += STEP;
    }
    value * 2f64.powi(exponent as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldexp_reaches_results_whose_power_of_two_alone_would_overflow() {
        assert_eq!(ldexp(1.5, 3), 12.0);
        assert_eq!(ldexp(2f64.powi(-600), 1200), 2f64.powi(600));
        assert_eq!(ldexp(2f64.powi(600), -1200), 2f64.powi(-600));
    }
}

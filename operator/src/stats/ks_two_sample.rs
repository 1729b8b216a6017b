//! The two-sided two-sample Kolmogorov–Smirnov test, as SciPy's
//! `ks_2samp(a, b)` computes it with the default `method='auto'`: the exact
//! p-value while both samples have at most 10,000 values, else the
//! distribution of the one-sample statistic at the effective sample size.

use serde::Serialize;

use super::cdf_walk::{CdfGaps, cdf_gaps};
use super::ks_distribution::kolmogorov_sf;

/// Above this many values in either sample the exact p-value is too slow
/// (SciPy's `MAX_AUTO_N`).
const MAX_EXACT_SAMPLES: usize = 10_000;

/// How the p-value was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KsPValueMethod {
    Exact,
    Asymptotic,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KsTest {
    /// The largest gap between the two empirical CDFs, in [0, 1].
    pub statistic: f64,
    pub p_value: f64,
    pub method: KsPValueMethod,
}

/// Tests two sorted samples; `None` when either is empty.
pub fn ks_two_sample(sorted_a: &[f64], sorted_b: &[f64]) -> Option<KsTest> {
    if sorted_a.is_empty() || sorted_b.is_empty() {
        return None;
    }
    Some(ks_test_of(sorted_a.len(), sorted_b.len(), &cdf_gaps(sorted_a, sorted_b)))
}

/// The test from the CDF gaps of samples of `n1` and `n2` values.
pub(crate) fn ks_test_of(n1: usize, n2: usize, gaps: &CdfGaps) -> KsTest {
    let statistic = largest_gap(gaps);
    if n1.max(n2) <= MAX_EXACT_SAMPLES {
        let (success, rounded, p_value) = exact_p_value(n1 as u64, n2 as u64, statistic);
        if success {
            return KsTest { statistic: rounded, p_value, method: KsPValueMethod::Exact };
        }
        // SciPy keeps the statistic rounded to the lattice for its fallback.
        return asymptotic(n1, n2, rounded);
    }
    asymptotic(n1, n2, statistic)
}

fn asymptotic(n1: usize, n2: usize, statistic: f64) -> KsTest {
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let effective_size = (m * n / (m + n)).round_ties_even();
    // The effective size is at least 1: both samples are non-empty.
    let p_value = kolmogorov_sf(effective_size as u64, statistic).clamp(0.0, 1.0);
    KsTest { statistic, p_value, method: KsPValueMethod::Asymptotic }
}

/// `max |F_a(x) - F_b(x)|`, chosen between the largest gap and the most
/// negative one as SciPy chooses (clipped to [0, 1], ties to the positive).
fn largest_gap(gaps: &CdfGaps) -> f64 {
    let below = (-gaps.smallest).clamp(0.0, 1.0);
    if below > gaps.largest { below } else { gaps.largest }
}

/// SciPy's `_attempt_exact_2kssamp` for the two-sided alternative: whether it
/// succeeded, the statistic rounded to a multiple of `1/lcm(n1, n2)`, and the
/// p-value.
fn exact_p_value(n1: u64, n2: u64, statistic: f64) -> (bool, f64, f64) {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) * n2;
    let h = (statistic * lcm as f64).round_ties_even() as u64;
    let rounded = h as f64 / lcm as f64;
    if h == 0 {
        return (true, rounded, 1.0);
    }
    let p = if n1 == n2 { outside_square(n1, h) } else { outside_band(n1, n2, g, h) };
    ((0.0..=1.0).contains(&p), rounded, p)
}

/// The share of lattice paths from (0, 0) to (n, n) that touch one of the
/// lines `x - y = ±h`: `2 (C(2n, n-h) - C(2n, n-2h) + ...) / C(2n, n)`, in a
/// Horner-like form without subtractive cancellation (SciPy's
/// `_compute_prob_outside_square`).
fn outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as f64, h as f64);
    let mut p = 0.0;
    let mut k = (n / h).floor();
    while k >= 0.0 {
        let mut term = 1.0;
        let mut j = 0.0;
        while j < h {
            term = (n - k * h - j) * term / (n + k * h + j + 1.0);
            j += 1.0;
        }
        p = term * (1.0 - p);
        k -= 1.0;
    }
    2.0 * p
}

/// The share of lattice paths from (0, 0) to (m, n) that leave the band
/// `|x/m - y/n| < h/lcm(m, n)`, computed column by column as one minus the
/// share inside it (Hodges' inside method with Viehmann's recursion for
/// `1 - p`; SciPy's `_compute_outer_prob_inside_method`).
fn outside_band(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = ((m / g) as f64, (n / g) as f64);
    let (h, n_len) = (h as f64, n as usize);
    let mut min_j = 0usize;
    let mut max_j = ((h / mg).ceil() as usize).min(n_len + 1);
    let mut current_len = max_j - min_j;
    let mut column = vec![1.0f64; (2 * max_j + 2).min(n_len + 1)];
    column[min_j..max_j].iter_mut().for_each(|a| *a = 0.0);
    for i in 1..=m {
        let (last_min_j, last_len) = (min_j, current_len);
        let i_f = i as f64;
        min_j = ((((ng * i_f - h) / mg).floor() + 1.0).max(0.0) as usize).min(n_len);
        max_j = (((ng * i_f + h) / mg).ceil() as usize).min(n_len + 1);
        if max_j <= min_j {
            return 1.0;
        }
        let mut value = if min_j == 0 { 0.0 } else { 1.0 };
        for jj in 0..max_j - min_j {
            let j = (jj + min_j) as f64;
            let carried = column.get(jj + min_j - last_min_j).copied().unwrap_or(1.0);
            value = (carried * i_f + value * j) / (i_f + j);
            if let Some(slot) = column.get_mut(jj) {
                *slot = value;
            }
        }
        current_len = max_j - min_j;
        if last_len > current_len {
            let start = max_j - min_j;
            let end = (start + last_len - current_len).min(column.len());
            column[start.min(end)..end].iter_mut().for_each(|a| *a = 1.0);
        }
    }
    column.get(max_j - min_j - 1).copied().unwrap_or(f64::NAN)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_have_statistic_zero_and_p_value_one() {
        let sample = [1.0, 2.0, 2.0, 3.0];
        let test = ks_two_sample(&sample, &sample).unwrap();
        assert_eq!((test.statistic, test.p_value, test.method), (0.0, 1.0, KsPValueMethod::Exact));
    }

    #[test]
    fn separated_samples_have_statistic_one() {
        // scipy.stats.ks_2samp([1, 2, 3], [4, 5, 6]).pvalue == 0.1 (2 of the 20 orderings)
        let test = ks_two_sample(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert_eq!(test.statistic, 1.0);
        assert!((test.p_value - 0.1).abs() < 1e-15, "{test:?}");
    }

    #[test]
    fn unequal_sizes_use_the_band_count() {
        // scipy.stats.ks_2samp([1, 2], [3, 4, 5]).pvalue == 0.2 (2 of the 10 orderings)
        let test = ks_two_sample(&[1.0, 2.0], &[3.0, 4.0, 5.0]).unwrap();
        assert_eq!(test.statistic, 1.0);
        assert!((test.p_value - 0.2).abs() < 1e-15, "{test:?}");
    }

    #[test]
    fn empty_samples_cannot_be_tested() {
        assert_eq!(ks_two_sample(&[], &[1.0]), None);
    }
}

//! The survival function of the two-sided one-sample Kolmogorov–Smirnov
//! statistic `D_n`, `P(D_n > x)`: SciPy's `kstwo.sf(x, n)`, which follows
//! Simard & L'Ecuyer (2011) in choosing, by `n` and `x`, between exact
//! formulas (Ruben–Gambino), the Durbin matrix (Marsaglia–Tsang–Wang), the
//! Pomeranz recursion, twice the one-sided Smirnov tail, and the Pelz–Good
//! expansion. The branches and their cut-offs are SciPy's, so the two agree
//! to rounding.

use std::f64::consts::PI;

use super::ldexp;
use super::smirnov::smirnov_sf;

/// Intermediate results are rescaled by 2^128 to stay within range.
const SCALE_EXPONENT: i64 = 128;
const SQRT_2PI: f64 = 2.506_628_274_631_000_7;
const LOG_2PI: f64 = 1.837_877_066_409_345_3;
/// `exp` of anything below underflows to zero.
const MIN_LOG: f64 = -708.0;
/// `B_{2j} / (2j (2j-1))` for j = 8 down to 1: Stirling's series.
const STIRLING_COEFFICIENTS: [f64; 8] = [
    -3617.0 / 122400.0,
    1.0 / 156.0,
    -691.0 / 360360.0,
    1.0 / 1188.0,
    -1.0 / 1680.0,
    1.0 / 1260.0,
    -1.0 / 360.0,
    1.0 / 12.0,
];

fn scale_up() -> f64 {
    2f64.powi(SCALE_EXPONENT as i32)
}

fn scale_down() -> f64 {
    2f64.powi(-SCALE_EXPONENT as i32)
}

/// `P(D_n > x)` for a sample of `n >= 1` values; 1 below the support
/// (`x <= 1/(2n)`), 0 from `x >= 1` on.
pub fn kolmogorov_sf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.5 / nf {
        return 1.0;
    }
    let t = nf * x;
    if t <= 1.0 {
        // Ruben–Gambino: 1/(2n) < x <= 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            (1..=n).map(|i| i as f64 * (1.0 / nf) * (2.0 * t - 1.0)).product()
        } else {
            (log_factorial_over_power(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip(1.0 - cdf);
    }
    if t >= nf - 1.0 {
        // Ruben–Gambino: x >= 1 - 1/n.
        return clip(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        return clip(2.0 * smirnov_sf(n, x));
    }
    let nx_squared = t * x;
    if n <= 140 {
        if nx_squared <= 0.754693 {
            return clip(1.0 - durbin_matrix_cdf(n, x));
        }
        if nx_squared <= 4.0 {
            return clip(1.0 - pomeranz_cdf(n, x));
        }
        return clip(2.0 * smirnov_sf(n, x));
    }
    if nx_squared >= 370.0 {
        return 0.0;
    }
    if nx_squared >= 2.2 {
        return clip(2.0 * smirnov_sf(n, x));
    }
    let cdf = if nx_squared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        durbin_matrix_cdf(n, x)
    } else {
        pelz_good_cdf(n, x)
    };
    clip(1.0 - cdf)
}

fn clip(p: f64) -> f64 {
    p.clamp(0.0, 1.0)
}

/// `ln(n! / n^n)` by Stirling's series, with `n ln n` removed up front.
fn log_factorial_over_power(n: f64) -> f64 {
    let rn = 1.0 / n;
    let series = STIRLING_COEFFICIENTS.iter().fold(0.0, |acc, c| acc * (rn / n) + c);
    n.ln() / 2.0 - n + LOG_2PI / 2.0 + rn * series
}

/// A dense square matrix, row-major.
#[derive(Clone)]
struct Matrix {
    size: usize,
    cells: Vec<f64>,
}

impl Matrix {
    fn zeros(size: usize) -> Self {
        Matrix { size, cells: vec![0.0; size * size] }
    }

    fn identity(size: usize) -> Self {
        let mut m = Matrix::zeros(size);
        (0..size).for_each(|i| m.cells[i * size + i] = 1.0);
        m
    }

    fn at(&self, row: usize, col: usize) -> f64 {
        self.cells[row * self.size + col]
    }

    fn set(&mut self, row: usize, col: usize, value: f64) {
        self.cells[row * self.size + col] = value;
    }

    fn times(&self, other: &Matrix) -> Matrix {
        let size = self.size;
        let mut out = Matrix::zeros(size);
        for row in 0..size {
            for k in 0..size {
                let left = self.at(row, k);
                if left == 0.0 {
                    continue;
                }
                let (from, to) = (k * size, row * size);
                for col in 0..size {
                    out.cells[to + col] += left * other.cells[from + col];
                }
            }
        }
        out
    }
}

/// `P(D_n <= d)` by the Durbin matrix: writing `d = (k - h)/n`, the `k`-th
/// diagonal entry of `H^n` times `n!/n^n`, `H` of size `2k - 1`; powers are
/// rescaled as they grow (Marsaglia, Tsang & Wang 2003).
fn durbin_matrix_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let nd = nf * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;

    // v is the first column (and, reversed, the last row) of H; w[j] = 1/j!.
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0; m];
    let mut factorial_inverse = 1.0;
    for j in 1..=m {
        w[j - 1] = factorial_inverse;
        factorial_inverse /= j as f64;
        v[j - 1] *= factorial_inverse;
    }
    let tail = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tail) * factorial_inverse;

    let mut power = Matrix::zeros(m);
    for i in 1..m {
        for (offset, row) in (i - 1..m).enumerate() {
            power.set(row, i, w[offset]);
        }
    }
    for (row, value) in v.iter().enumerate() {
        power.set(row, 0, *value);
    }
    for (col, value) in v.iter().rev().enumerate() {
        power.set(m - 1, col, *value);
    }

    let mut result = Matrix::identity(m);
    let (mut remaining, mut exponent, mut power_exponent) = (n, 0i64, 0i64);
    while remaining > 0 {
        if remaining % 2 == 1 {
            result = result.times(&power);
            exponent += power_exponent;
        }
        power = power.times(&power);
        power_exponent *= 2;
        if power.at(k - 1, k - 1).abs() > scale_up() {
            power.cells.iter_mut().for_each(|c| *c /= scale_up());
            power_exponent += SCALE_EXPONENT;
        }
        remaining /= 2;
    }

    let mut p = result.at(k - 1, k - 1);
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < scale_down() {
            p *= scale_up();
            exponent -= SCALE_EXPONENT;
        }
    }
    clip(ldexp(p, exponent))
}

/// The interval of non-zero entries of row `i` of the Pomeranz recursion.
fn pomeranz_interval(i: i64, n: i64, ll: i64, ceil_f: i64, round_f: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceil_f - 1, ll + ceil_f - 1)
    } else {
        let (half, odd) = ((i + 1) / 2, (i + 1) % 2);
        if odd == 0 {
            if half == n + 1 {
                (n - ll - ceil_f - 1, n + ll + ceil_f - 1)
            } else {
                (half - 1 - ll - round_f - 1, half + ll - 1 + ceil_f - 1)
            }
        } else {
            (half - 1 - ll - 1, half + ll + round_f - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// `P(D_n <= x)` by the Pomeranz recursion (1974): each row is the previous
/// one convolved with (unnormalised) Poisson probabilities; only two rows and
/// the non-zero stretch of each are kept.
fn pomeranz_cdf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let n_i = n as i64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceil_f = i64::from(f > 0.0);
    let round_f = i64::from(f > 0.5);
    let powers_needed = 2 * (ll as usize + 1);

    // (g/n)^m/m!, (2g/n)^m/m!, ((1-2g)/n)^m/m!
    let mut g_power = vec![1.0; powers_needed];
    let mut two_g_power = vec![1.0; powers_needed];
    let mut one_minus_two_g_power = vec![1.0; powers_needed];
    let (g_over_n, two_g_over_n, rest_over_n) = (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..powers_needed {
        g_power[m] = g_power[m - 1] * g_over_n / m as f64;
        two_g_power[m] = two_g_power[m - 1] * two_g_over_n / m as f64;
        one_minus_two_g_power[m] = one_minus_two_g_power[m - 1] * rest_over_n / m as f64;
    }

    let mut previous = vec![0.0; powers_needed];
    let mut current = vec![0.0; powers_needed];
    current[0] = 1.0;
    let (mut previous_start, mut current_start) = (0i64, 0i64);
    let mut exponent = 0i64;
    let (mut j1, _) = pomeranz_interval(0, n_i, ll, ceil_f, round_f);
    for i in 1..(2 * n_i + 2) {
        let k1 = j1;
        std::mem::swap(&mut previous, &mut current);
        std::mem::swap(&mut previous_start, &mut current_start);
        current.iter_mut().for_each(|c| *c = 0.0);
        let (next_j1, j2) = pomeranz_interval(i, n_i, ll, ceil_f, round_f);
        j1 = next_j1;
        let powers = if i == 1 || i == 2 * n_i + 1 {
            &g_power
        } else if i % 2 == 1 {
            &two_g_power
        } else {
            &one_minus_two_g_power
        };
        let width = j2 - k1 + 1;
        if width > 0 {
            let source = slice_from(&previous, k1 - previous_start, width);
            let kernel = slice_from(powers, 0, width);
            let (skip, take) = (j1 - k1, j2 - j1 + 1);
            for (index, slot) in current.iter_mut().take(take.max(0) as usize).enumerate() {
                *slot = convolution_at(source, kernel, (skip + index as i64) as usize);
            }
            let largest = current.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if largest > 0.0 && largest < scale_down() {
                current.iter_mut().for_each(|c| *c *= scale_up());
                exponent -= SCALE_EXPONENT;
            }
            current_start = previous_start + j1 - k1;
        }
    }

    let mut answer = usize::try_from(n_i - current_start).ok().and_then(|i| current.get(i)).copied().unwrap_or(0.0);
    for m in 1..=n {
        if answer.abs() > scale_up() {
            answer *= scale_down();
            exponent += SCALE_EXPONENT;
        }
        answer *= m as f64;
    }
    clip(ldexp(answer, exponent))
}

/// `values[start..start + len]`, clamped to the slice as Python slicing is.
fn slice_from(values: &[f64], start: i64, len: i64) -> &[f64] {
    let start = start.clamp(0, values.len() as i64) as usize;
    let end = (start as i64 + len.max(0)).min(values.len() as i64) as usize;
    &values[start..end]
}

/// Entry `k` of the full discrete convolution of `a` and `b`.
fn convolution_at(a: &[f64], b: &[f64], k: usize) -> f64 {
    let first = k.saturating_sub(b.len().saturating_sub(1));
    (first..=k.min(a.len().saturating_sub(1))).map(|i| a[i] * b[k - i]).sum()
}

/// The Pelz–Good (1976) approximation of `P(D_n <= x)`: Li-Chien and
/// Korolyuk's expansion in `1/sqrt(n)` with each term rewritten through Jacobi
/// theta functions for small `z = x sqrt(n)`.
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let q_log = -PI * PI / 8.0 / z2;
    if q_log < MIN_LOG {
        return 0.0;
    }
    let q = q_log.exp();
    let (pi2, pi4, pi6) = (PI * PI, PI.powi(4), PI.powi(6));

    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);

    // Horner over the odd integers m = 2k - 1 of sum c_m q^(m^2).
    let mut terms = [0.0f64; 4];
    let max_k = (16.0 * z / PI).ceil() as u64;
    for k in (1..=max_k).rev() {
        let m = (2 * k - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let q_power = q.powf(8.0 * k as f64);
        let coefficients = [1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6];
        for (term, c) in terms.iter_mut().zip(coefficients) {
            *term = *term * q_power + c;
        }
    }
    let divisors = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (term, divisor) in terms.iter_mut().zip(divisors) {
        *term = *term * q * SQRT_2PI / divisor;
    }

    // The remaining sums run over all integers k.
    let q = (-pi2 / 2.0 / z2).exp();
    let sqrt3_z = 3f64.sqrt() * z;
    let (mut k2_extra, mut k3_extra) = (0.0, 0.0);
    for k in (1..=max_k).rev() {
        let kf = k as f64;
        let k_squared = kf * kf;
        let q_power = q.powf(k_squared);
        let k_pi = PI * kf;
        k2_extra += k_squared * q_power;
        k3_extra += (sqrt3_z + k_pi) * (sqrt3_z - k_pi) * k_squared * q_power;
    }
    terms[2] += k2_extra * pi2 * SQRT_2PI / (-36.0 * z3);
    terms[3] += k3_extra * pi2 * SQRT_2PI / (216.0 * z6);
    terms.iter().enumerate().map(|(i, term)| term / nf.powf(i as f64 / 2.0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_support_ends_give_certainty() {
        assert_eq!(kolmogorov_sf(10, 0.01), 1.0);
        assert_eq!(kolmogorov_sf(10, 1.0), 0.0);
    }

    #[test]
    fn one_value_below_one_over_n_follows_ruben_gambino() {
        // P(D_n <= x) = n! (2x - 1/n)^n / ... for 1/(2n) < x <= 1/n: n = 2,
        // x = 0.4: t = 0.8, cdf = (1 * 0.5 * 0.6) * (2 * 0.5 * 0.6) = 0.18
        assert!((kolmogorov_sf(2, 0.4) - 0.82).abs() < 1e-15);
    }

    #[test]
    fn large_n_agrees_with_the_limiting_distribution() {
        // sqrt(n) D_n tends to Kolmogorov's distribution: P(K > 1) = 0.26999967
        let p = kolmogorov_sf(1_000_000, 1.0 / 1000.0);
        assert!((p - 0.26999967).abs() < 1e-3, "{p}");
    }
}

//! Drift statistics between a reference and a current distribution given as
//! counts over identical bins. Each is 0 for identical distributions and grows
//! with the shift, so a policy can compare any of them with a threshold.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::profile::FeatureProfile;

/// Proportion used in place of an empty bin, so PSI and chi-square stay finite
/// (the usual convention for PSI).
const EMPTY_BIN_PROPORTION: f64 = 1e-4;

/// The statistic a drift monitor computes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DriftMethod {
    /// Population stability index; > 0.1 is a moderate shift, > 0.2 a large one.
    #[default]
    Psi,
    /// Kolmogorov–Smirnov distance: largest gap between the binned CDFs, in [0, 1].
    Ks,
    /// Jensen–Shannon distance: the square root of the base-2 divergence, in
    /// [0, 1] (what scipy's `jensenshannon` returns).
    Js,
    /// Earth mover's distance between the binned distributions, bins one unit
    /// apart, divided by (bins - 1) so it lies in [0, 1].
    Wasserstein,
    /// Pearson chi-square statistic of the current counts against the counts
    /// the reference proportions predict.
    Chi2,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DriftError {
    #[error("bin counts differ in length: reference {reference}, current {current}")]
    LengthMismatch { reference: usize, current: usize },
    #[error("{0} distribution has no samples")]
    NoSamples(&'static str),
    #[error("feature {0:?} is missing from the current profile")]
    MissingFeature(String),
    #[error("feature {0:?} has different bins in the two profiles")]
    DifferentBins(String),
}

/// The drift of one feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FeatureDrift {
    pub name: String,
    pub value: f64,
    /// Samples in the current profile.
    pub samples: u64,
}

/// Computes `method` between reference and current bin counts.
pub fn drift(method: DriftMethod, reference: &[u64], current: &[u64]) -> Result<f64, DriftError> {
    let (p, q) = proportions(reference, current)?;
    Ok(match method {
        DriftMethod::Psi => psi_of(&p, &q),
        DriftMethod::Ks => ks_of(&p, &q),
        DriftMethod::Js => js_of(&p, &q),
        DriftMethod::Wasserstein => wasserstein_of(&p, &q),
        DriftMethod::Chi2 => {
            let n: u64 = current.iter().sum();
            chi2_of(&p, current, n)
        }
    })
}

/// Drift of every feature of `reference` found in `current`. The two must
/// share bins exactly (the server copies them from the reference).
pub fn compare_profiles(
    reference: &FeatureProfile,
    current: &FeatureProfile,
    method: DriftMethod,
) -> Result<Vec<FeatureDrift>, DriftError> {
    reference
        .features
        .iter()
        .map(|expected| {
            let actual =
                current.feature(&expected.name).ok_or_else(|| DriftError::MissingFeature(expected.name.clone()))?;
            if actual.bins != expected.bins {
                return Err(DriftError::DifferentBins(expected.name.clone()));
            }
            Ok(FeatureDrift {
                name: expected.name.clone(),
                value: drift(method, &expected.counts, &actual.counts)?,
                samples: actual.counts.iter().sum(),
            })
        })
        .collect()
}

fn proportions(reference: &[u64], current: &[u64]) -> Result<(Vec<f64>, Vec<f64>), DriftError> {
    if reference.len() != current.len() {
        return Err(DriftError::LengthMismatch { reference: reference.len(), current: current.len() });
    }
    Ok((normalise(reference, "reference")?, normalise(current, "current")?))
}

fn normalise(counts: &[u64], which: &'static str) -> Result<Vec<f64>, DriftError> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Err(DriftError::NoSamples(which));
    }
    Ok(counts.iter().map(|c| *c as f64 / total as f64).collect())
}

fn psi_of(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(p, q)| {
            let (p, q) = (p.max(EMPTY_BIN_PROPORTION), q.max(EMPTY_BIN_PROPORTION));
            (q - p) * (q / p).ln()
        })
        .sum()
}

fn cdf_gaps(p: &[f64], q: &[f64]) -> impl Iterator<Item = f64> {
    p.iter().zip(q).scan((0.0, 0.0), |(cp, cq), (p, q)| {
        *cp += p;
        *cq += q;
        Some((*cp - *cq).abs())
    })
}

fn ks_of(p: &[f64], q: &[f64]) -> f64 {
    cdf_gaps(p, q).fold(0.0, f64::max)
}

fn wasserstein_of(p: &[f64], q: &[f64]) -> f64 {
    if p.len() < 2 {
        return 0.0;
    }
    // The last CDF gap is 0 up to rounding; it is not a unit of distance.
    let total: f64 = cdf_gaps(p, q).take(p.len() - 1).sum();
    total / (p.len() - 1) as f64
}

fn js_of(p: &[f64], q: &[f64]) -> f64 {
    let kl_to_mixture = |a: f64, m: f64| if a > 0.0 { a * (a / m).log2() } else { 0.0 };
    p.iter()
        .zip(q)
        .map(|(p, q)| {
            let m = (p + q) / 2.0;
            (kl_to_mixture(*p, m) + kl_to_mixture(*q, m)) / 2.0
        })
        .sum::<f64>()
        .clamp(0.0, 1.0)
        .sqrt()
}

fn chi2_of(p: &[f64], observed: &[u64], n: u64) -> f64 {
    p.iter()
        .zip(observed)
        // A bin empty on both sides is no evidence of drift; with the floor
        // below it would add 1e-4 n, so identical inputs would not give 0.
        .filter(|(p, o)| **p > 0.0 || **o > 0)
        .map(|(p, o)| {
            // Only an empty bin is floored: flooring every small proportion
            // would make identical inputs with a rare bin drift.
            let expected = if *p > 0.0 { *p } else { EMPTY_BIN_PROPORTION } * n as f64;
            let diff = *o as f64 - expected;
            diff * diff / expected
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Bins, FeatureBins, PROFILE_FORMAT_VERSION};

    const ALL: [DriftMethod; 5] =
        [DriftMethod::Psi, DriftMethod::Ks, DriftMethod::Js, DriftMethod::Wasserstein, DriftMethod::Chi2];

    #[test]
    fn identical_distributions_have_no_drift_whatever_the_sample_size() {
        for method in ALL {
            let value = drift(method, &[10, 20, 30, 40], &[1, 2, 3, 4]).unwrap();
            assert!(value.abs() < 1e-12, "{method:?} gave {value}");
        }
    }

    #[test]
    fn psi_matches_a_hand_computed_value() {
        // p = (0.5, 0.5), q = (0.25, 0.75):
        // (0.25-0.5) ln(0.5) + (0.75-0.5) ln(1.5) = 0.25 (ln 2 + ln 1.5) = 0.25 ln 3
        let value = drift(DriftMethod::Psi, &[50, 50], &[25, 75]).unwrap();
        assert!((value - 0.25 * 3f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn psi_stays_finite_when_a_bin_empties() {
        let value = drift(DriftMethod::Psi, &[50, 50, 0], &[0, 50, 50]).unwrap();
        assert!(value.is_finite() && value > 1.0);
    }

    #[test]
    fn disjoint_distributions_reach_the_bounded_maxima() {
        assert_eq!(drift(DriftMethod::Ks, &[10, 0], &[0, 10]).unwrap(), 1.0);
        assert!((drift(DriftMethod::Js, &[10, 0], &[0, 10]).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(drift(DriftMethod::Wasserstein, &[10, 0, 0], &[0, 0, 10]).unwrap(), 1.0);
    }

    #[test]
    fn wasserstein_grows_with_the_distance_moved() {
        let near = drift(DriftMethod::Wasserstein, &[10, 0, 0, 0], &[0, 10, 0, 0]).unwrap();
        let far = drift(DriftMethod::Wasserstein, &[10, 0, 0, 0], &[0, 0, 0, 10]).unwrap();
        assert!((near - 1.0 / 3.0).abs() < 1e-12);
        assert!((far - 1.0).abs() < 1e-12);
    }

    #[test]
    fn js_is_the_square_root_of_the_base_2_divergence() {
        // p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4):
        // KL(p||m) = log2(4/3); KL(q||m) = (log2(2/3) + log2(2)) / 2
        let divergence = (f64::log2(4.0 / 3.0) + (f64::log2(2.0 / 3.0) + 1.0) / 2.0) / 2.0;
        let value = drift(DriftMethod::Js, &[10, 0], &[5, 5]).unwrap();
        assert!((value - divergence.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn bins_empty_on_both_sides_add_nothing() {
        for method in ALL {
            let value = drift(method, &[10, 0, 30], &[1000, 0, 3000]).unwrap();
            assert!(value.abs() < 1e-12, "{method:?} gave {value}");
        }
    }

    #[test]
    fn chi2_matches_a_hand_computed_value() {
        // expected (50, 50) of 100; observed (60, 40): 100/50 + 100/50 = 4
        let value = drift(DriftMethod::Chi2, &[1, 1], &[60, 40]).unwrap();
        assert!((value - 4.0).abs() < 1e-12);
    }

    #[test]
    fn mismatched_or_empty_counts_are_errors() {
        assert!(matches!(drift(DriftMethod::Psi, &[1, 2], &[1, 2, 3]), Err(DriftError::LengthMismatch { .. })));
        assert_eq!(drift(DriftMethod::Ks, &[1, 2], &[0, 0]), Err(DriftError::NoSamples("current")));
    }

    fn profile(edges: Vec<f64>, counts: Vec<u64>) -> FeatureProfile {
        FeatureProfile {
            format_version: PROFILE_FORMAT_VERSION,
            samples: counts.iter().sum(),
            features: vec![FeatureBins { name: "x".into(), bins: Bins::Number { edges }, counts }],
        }
    }

    #[test]
    fn profiles_are_compared_feature_by_feature_on_identical_bins() {
        let reference = profile(vec![1.0], vec![50, 50]);
        let drifts = compare_profiles(&reference, &profile(vec![1.0], vec![25, 75]), DriftMethod::Psi).unwrap();
        assert_eq!(drifts[0].name, "x");
        assert_eq!(drifts[0].samples, 100);
        assert!(drifts[0].value > 0.2);
        assert_eq!(
            compare_profiles(&reference, &profile(vec![2.0], vec![25, 75]), DriftMethod::Psi),
            Err(DriftError::DifferentBins("x".into()))
        );
    }
}

//! Properties every drift statistic must have, on generated inputs: zero for
//! identical inputs, symmetric where the statistic is, within its bounds, and
//! never NaN for valid input. Binned statistics of `trainloop::artifact::drift`
//! and the raw two-sample statistics of `trainloop::stats` alike.

use proptest::prelude::*;
use trainloop::artifact::{Bins, DriftMethod, drift};
use trainloop::cli::drift::{ALL_METHODS, counts_of_sorted};
use trainloop::stats::ks_distribution::kolmogorov_sf;
use trainloop::stats::smirnov::smirnov_sf;
use trainloop::stats::{ks_two_sample, wasserstein_distance};

const TOLERANCE: f64 = 1e-12;

/// Two count vectors over the same bins, each with at least one sample.
fn count_pair() -> impl Strategy<Value = (Vec<u64>, Vec<u64>)> {
    (1usize..20)
        .prop_flat_map(|bins| (prop::collection::vec(0u64..1000, bins), prop::collection::vec(0u64..1000, bins)))
        .prop_filter("each side needs a sample", |(a, b)| a.iter().sum::<u64>() > 0 && b.iter().sum::<u64>() > 0)
}

/// A sorted sample of finite values, with ties likely (values on a grid).
fn sample(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((-1000i32..1000, prop::bool::ANY), 1..max_len).prop_map(|raw| {
        let mut values: Vec<f64> =
            raw.into_iter().map(|(v, fine)| if fine { f64::from(v) / 7.0 } else { f64::from(v / 100) }).collect();
        values.sort_unstable_by(f64::total_cmp);
        values
    })
}

fn symmetric(method: DriftMethod) -> bool {
    // Chi-square weighs the current counts against the reference's proportions.
    method != DriftMethod::Chi2
}

fn upper_bound(method: DriftMethod) -> Option<f64> {
    match method {
        DriftMethod::Ks | DriftMethod::Js | DriftMethod::Wasserstein => Some(1.0),
        DriftMethod::Psi | DriftMethod::Chi2 => None,
    }
}

proptest! {
    #[test]
    fn binned_statistics_vanish_on_identical_distributions(counts in prop::collection::vec(0u64..1000, 1..20), scale in 1u64..50) {
        prop_assume!(counts.iter().sum::<u64>() > 0);
        let scaled: Vec<u64> = counts.iter().map(|c| c * scale).collect();
        for method in ALL_METHODS {
            let value = drift(method, &counts, &scaled).unwrap();
            prop_assert!(value.abs() < 1e-9, "{:?} gave {} for {:?}", method, value, counts);
        }
    }

    #[test]
    fn binned_statistics_are_bounded_finite_and_symmetric_where_they_should_be((reference, current) in count_pair()) {
        for method in ALL_METHODS {
            let value = drift(method, &reference, &current).unwrap();
            prop_assert!(value.is_finite() && value >= -TOLERANCE, "{:?} gave {}", method, value);
            if let Some(bound) = upper_bound(method) {
                prop_assert!(value <= bound + TOLERANCE, "{:?} gave {} above {}", method, value, bound);
            }
            if symmetric(method) {
                let swapped = drift(method, &current, &reference).unwrap();
                prop_assert!((value - swapped).abs() <= TOLERANCE * value.abs().max(1.0), "{:?}: {} vs {}", method, value, swapped);
            }
        }
    }

    #[test]
    fn raw_statistics_vanish_on_identical_samples(values in sample(300)) {
        let ks = ks_two_sample(&values, &values).unwrap();
        prop_assert_eq!((ks.statistic, ks.p_value), (0.0, 1.0));
        prop_assert_eq!(wasserstein_distance(&values, &values), Some(0.0));
    }

    #[test]
    fn raw_statistics_are_bounded_finite_and_symmetric(a in sample(300), b in sample(300)) {
        let (ab, ba) = (ks_two_sample(&a, &b).unwrap(), ks_two_sample(&b, &a).unwrap());
        prop_assert!((0.0..=1.0).contains(&ab.statistic) && (0.0..=1.0).contains(&ab.p_value), "{:?}", ab);
        prop_assert_eq!(ab.statistic, ba.statistic);
        prop_assert!((ab.p_value - ba.p_value).abs() <= TOLERANCE, "{:?} vs {:?}", ab, ba);
        let (wab, wba) = (wasserstein_distance(&a, &b).unwrap(), wasserstein_distance(&b, &a).unwrap());
        prop_assert!(wab.is_finite() && wab >= 0.0 && (wab - wba).abs() <= TOLERANCE * wab.max(1.0), "{} vs {}", wab, wba);
        // Never more than the distance between the samples' extremes.
        let span = a[a.len() - 1].max(b[b.len() - 1]) - a[0].min(b[0]);
        prop_assert!(wab <= span + TOLERANCE * span.max(1.0));
    }

    #[test]
    fn shifting_every_value_moves_the_wasserstein_distance_by_the_shift(a in sample(300), shift in 0i32..100) {
        let shift = f64::from(shift) / 4.0;
        let shifted: Vec<f64> = a.iter().map(|x| x + shift).collect();
        let distance = wasserstein_distance(&a, &shifted).unwrap();
        prop_assert!((distance - shift).abs() <= 1e-9 * shift.max(1.0), "{} for a shift of {}", distance, shift);
    }

    #[test]
    fn the_ks_tail_probabilities_are_probabilities_that_fall_with_the_statistic(n in 1u64..2_000_000, z in 0.0f64..4.0, step in 0.0f64..0.2) {
        // x around 1/sqrt(n), where the distribution is neither 0 nor 1.
        let x = (z / (n as f64).sqrt()).min(1.0);
        let next = ((z + step) / (n as f64).sqrt()).min(1.0);
        let (p, further) = (kolmogorov_sf(n, x), kolmogorov_sf(n, next));
        prop_assert!((0.0..=1.0).contains(&p), "kstwo.sf({}, {}) = {}", x, n, p);
        // The branches are approximations that meet at their cut-offs.
        prop_assert!(further <= p + 1e-7, "kstwo.sf rises from {} to {} between {} and {} (n = {})", p, further, x, next, n);
        // Where the two-sided tail is twice the one-sided one (SciPy's cut-off).
        if n as f64 * x * x >= 2.2 {
            let one_sided = smirnov_sf(n, x);
            prop_assert!((0.0..=1.0).contains(&one_sided) && one_sided <= p + 1e-9, "smirnov({}, {}) = {} > {}", n, x, one_sided, p);
        }
    }

    #[test]
    fn counting_a_sorted_column_equals_binning_each_value(values in sample(300), mut edges in prop::collection::vec(-150i32..150, 0..12)) {
        edges.sort_unstable();
        edges.dedup();
        let bins = Bins::Number { edges: edges.into_iter().map(f64::from).collect() };
        let mut expected = vec![0u64; bins.len()];
        for value in &values {
            expected[bins.number_index(*value).unwrap()] += 1;
        }
        prop_assert_eq!(counts_of_sorted(&bins, &values), expected);
    }
}

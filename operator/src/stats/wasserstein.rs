//! The Wasserstein-1 (earth mover's) distance between two samples: the area
//! between their empirical CDFs, as `scipy.stats.wasserstein_distance`.

use super::cdf_walk::cdf_gaps;

/// The area between the empirical CDFs of two sorted samples, or `None` when
/// either is empty.
pub fn wasserstein_distance(sorted_u: &[f64], sorted_v: &[f64]) -> Option<f64> {
    if sorted_u.is_empty() || sorted_v.is_empty() {
        return None;
    }
    Some(cdf_gaps(sorted_u, sorted_v).area)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_of_every_value_moves_the_distance_by_the_shift() {
        assert_eq!(wasserstein_distance(&[0.0, 1.0, 3.0], &[2.0, 3.0, 5.0]), Some(2.0));
    }

    #[test]
    fn matches_a_hand_computed_value_with_ties_and_unequal_sizes() {
        // scipy.stats.wasserstein_distance([0, 1, 1], [1, 2]) == 0.8333333333333333
        // CDF gap on [0, 1) is 1/3, on [1, 2) |1 - 1/2| = 1/2: 1/3 + 1/2.
        let value = wasserstein_distance(&[0.0, 1.0, 1.0], &[1.0, 2.0]).unwrap();
        assert!((value - 5.0 / 6.0).abs() < 1e-15, "{value}");
    }

    #[test]
    fn empty_samples_have_no_distance() {
        assert_eq!(wasserstein_distance(&[], &[1.0]), None);
    }
}

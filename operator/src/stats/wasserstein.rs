//! The Wasserstein-1 (earth mover's) distance between two samples: the area
//! between their empirical CDFs, as `scipy.stats.wasserstein_distance`.

/// The area between the empirical CDFs of two sorted, non-empty samples, or
/// `None` when either is empty.
pub fn wasserstein_distance(sorted_u: &[f64], sorted_v: &[f64]) -> Option<f64> {
    if sorted_u.is_empty() || sorted_v.is_empty() {
        return None;
    }
    let (nu, nv) = (sorted_u.len() as f64, sorted_v.len() as f64);
    let mut area = CompensatedSum::default();
    let (mut i, mut j) = (0, 0);
    let mut previous: Option<f64> = None;
    // Walk the distinct values of both samples in order; between two of them
    // both CDFs are flat, so the area there is a rectangle.
    while let Some(value) = next_value(sorted_u, sorted_v, i, j) {
        if let Some(left) = previous {
            let gap = (i as f64 / nu - j as f64 / nv).abs();
            area.add(gap * (value - left));
        }
        i += sorted_u[i..].iter().take_while(|x| **x <= value).count();
        j += sorted_v[j..].iter().take_while(|x| **x <= value).count();
        previous = Some(value);
    }
    Some(area.total())
}

/// The smaller of the next unconsumed values of two sorted samples.
pub(crate) fn next_value(a: &[f64], b: &[f64], i: usize, j: usize) -> Option<f64> {
    match (a.get(i), b.get(j)) {
        (Some(x), Some(y)) => Some(x.min(*y)),
        (Some(x), None) => Some(*x),
        (None, Some(y)) => Some(*y),
        (None, None) => None,
    }
}

/// Neumaier's compensated sum: millions of small terms add up to the same
/// value as NumPy's pairwise sum, far inside the 1e-9 both are held to.
#[derive(Default)]
struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    fn add(&mut self, term: f64) {
        let total = self.sum + term;
        self.compensation +=
            if self.sum.abs() >= term.abs() { (self.sum - total) + term } else { (term - total) + self.sum };
        self.sum = total;
    }

    fn total(&self) -> f64 {
        self.sum + self.compensation
    }
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

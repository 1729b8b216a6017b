//! One pass over two sorted samples in step, at each distinct value of
//! either: what the KS statistic and the Wasserstein distance both need.

/// The gaps `F_a(x) - F_b(x)` of two empirical CDFs (each counting the values
/// `<= x`), over every value `x` of either sample.
pub(crate) struct CdfGaps {
    /// The largest gap, and the smallest (most negative).
    pub largest: f64,
    pub smallest: f64,
    /// The area between the CDFs: `sum |gap| * (next value - value)`.
    pub area: f64,
}

/// Walks two sorted, non-empty samples. Each gap is computed with the float
/// operations SciPy uses (`count / size`, then the difference), so the KS
/// statistic is bit-identical to SciPy's.
pub(crate) fn cdf_gaps(a: &[f64], b: &[f64]) -> CdfGaps {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let (mut largest, mut smallest) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut area = CompensatedSum::default();
    let mut previous: Option<(f64, f64)> = None;
    loop {
        let value = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.min(*y),
            (Some(x), None) => *x,
            (None, Some(y)) => *y,
            (None, None) => break,
        };
        // Between two distinct values both CDFs are flat: a rectangle.
        if let Some((left, gap)) = previous {
            area.add(gap * (value - left));
        }
        while a.get(i).is_some_and(|x| *x <= value) {
            i += 1;
        }
        while b.get(j).is_some_and(|y| *y <= value) {
            j += 1;
        }
        let gap = i as f64 / n1 - j as f64 / n2;
        largest = largest.max(gap);
        smallest = smallest.min(gap);
        previous = Some((value, gap.abs()));
    }
    CdfGaps { largest, smallest, area: area.total() }
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

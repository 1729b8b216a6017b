//! A seeded train/test split. The generator is SplitMix64, written out here so
//! the split never changes with a dependency's version (factor 4).

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fully specified.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0); the modulo bias is negligible for dataset sizes.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

/// Row indices of the training and test splits: a seeded Fisher–Yates shuffle,
/// then the first `round(n * test_share)` rows (at least one, leaving at least
/// one) go to the test split. Each split is returned in ascending order.
pub fn train_test_indices(n: usize, test_share: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut indices: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64(seed);
    for i in (1..n).rev() {
        indices.swap(i, rng.below(i + 1));
    }
    let test_len = if n < 2 { 0 } else { ((n as f64 * test_share).round() as usize).clamp(1, n - 1) };
    let mut test = indices[..test_len].to_vec();
    let mut train = indices[test_len..].to_vec();
    test.sort_unstable();
    train.sort_unstable();
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_every_row_once_in_the_requested_share() {
        let (train, test) = train_test_indices(100, 0.2, 7);
        assert_eq!(test.len(), 20);
        assert_eq!(train.len(), 80);
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn same_seed_same_split_other_seed_other_split() {
        assert_eq!(train_test_indices(50, 0.3, 1), train_test_indices(50, 0.3, 1));
        assert_ne!(train_test_indices(50, 0.3, 1), train_test_indices(50, 0.3, 2));
    }

    #[test]
    fn the_generator_is_the_published_splitmix64() {
        // First output of SplitMix64 seeded with 0, from the reference implementation.
        assert_eq!(SplitMix64(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn tiny_inputs_do_not_panic() {
        assert_eq!(train_test_indices(0, 0.2, 1), (vec![], vec![]));
        assert_eq!(train_test_indices(1, 0.2, 1), (vec![0], vec![]));
        assert_eq!(train_test_indices(2, 0.01, 1).1.len(), 1);
    }
}

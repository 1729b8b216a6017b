//! Sorting a column of floats by their bits: an in-place most-significant-digit
//! radix sort (American flag sort), a byte at a time.
//!
//! Why not `sort_unstable_by(f64::total_cmp)`: comparison sorting was 40% of
//! `trainloop drift compare` on a million rows. A float's bits, with the sign
//! bit flipped for positives and every bit flipped for negatives, compare as
//! unsigned integers exactly as `total_cmp` orders the floats, so the radix
//! sort gives the very sequence `total_cmp` gives. In place, so that sorting
//! needs no second column of memory.

/// Buckets at most this long are finished by comparison: a radix pass over a
/// few values costs more than sorting them.
const SMALL: usize = 64;

/// Sorts `values` in the order of [`f64::total_cmp`].
pub fn sort_floats(values: &mut [f64]) {
    sort_from_byte(values, 7);
}

/// The float's bits as an unsigned integer in `total_cmp` order.
fn key(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 { !bits } else { bits | 1 << 63 }
}

fn digit(value: f64, byte: u32) -> usize {
    ((key(value) >> (byte * 8)) & 0xff) as usize
}

/// Sorts `values`, which agree on every byte above `byte`, by bytes `byte`
/// down to 0.
fn sort_from_byte(values: &mut [f64], byte: u32) {
    if values.len() <= SMALL {
        values.sort_unstable_by(f64::total_cmp);
        return;
    }
    let mut counts = [0usize; 256];
    for value in values.iter() {
        counts[digit(*value, byte)] += 1;
    }
    // All values share this byte (the sign and exponent of most columns):
    // nothing to move, go on with the next byte.
    if counts.contains(&values.len()) {
        if byte > 0 {
            sort_from_byte(values, byte - 1);
        }
        return;
    }
    let mut ends = [0usize; 256];
    let mut total = 0;
    for (end, count) in ends.iter_mut().zip(counts) {
        total += count;
        *end = total;
    }
    let mut heads: [usize; 256] = std::array::from_fn(|bucket| ends[bucket] - counts[bucket]);
    // Every value is swapped straight into the next free place of its bucket,
    // so each moves at most once.
    for bucket in 0..256 {
        while heads[bucket] < ends[bucket] {
            let mut value = values[heads[bucket]];
            let mut home = digit(value, byte);
            while home != bucket {
                std::mem::swap(&mut value, &mut values[heads[home]]);
                heads[home] += 1;
                home = digit(value, byte);
            }
            values[heads[bucket]] = value;
            heads[bucket] += 1;
        }
    }
    if byte == 0 {
        return;
    }
    let mut start = 0;
    for end in ends {
        if end - start > 1 {
            sort_from_byte(&mut values[start..end], byte - 1);
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn by_total_cmp(values: &[f64]) -> Vec<u64> {
        let mut sorted = values.to_vec();
        sorted.sort_unstable_by(f64::total_cmp);
        sorted.iter().map(|v| v.to_bits()).collect()
    }

    fn by_radix(values: &[f64]) -> Vec<u64> {
        let mut sorted = values.to_vec();
        sort_floats(&mut sorted);
        sorted.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn orders_signs_zeros_and_extremes_as_total_cmp() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            5e-324,
            -5e-324,
        ];
        // Enough copies that the radix passes run, not only the small-bucket sort.
        values = values.repeat(20);
        assert_eq!(by_radix(&values), by_total_cmp(&values));
    }

    #[test]
    fn sorts_a_large_column_with_many_ties_as_total_cmp() {
        // A fixed pseudo-random sequence: wide values, then coarse ones that tie.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut values: Vec<f64> = (0..50_000).map(|_| (next() >> 11) as f64 / (1u64 << 40) as f64 - 4096.0).collect();
        values.extend((0..50_000).map(|_| (next() % 1000) as f64 / 10.0 - 50.0));
        assert_eq!(by_radix(&values), by_total_cmp(&values));
    }

    proptest! {
        #[test]
        fn sorts_any_finite_column_as_total_cmp(values in proptest::collection::vec(proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO, 0..2_000)) {
            prop_assert_eq!(by_radix(&values), by_total_cmp(&values));
        }
    }
}

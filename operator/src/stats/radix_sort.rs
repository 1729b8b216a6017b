//! Sorting a column of floats: a least-significant-digit radix sort on the
//! integer keys of a column of short decimals (see [`DecimalKeys`]), which
//! plain CSV data is; `sort_unstable_by(f64::total_cmp)` for any other column.
//!
//! Why: comparison sorting was 40% of `trainloop drift compare` on a million
//! rows. Decimal keys span a few million values where the floats' bits span
//! 2^64: `scripts/bench-drift.py`'s columns (`-12.34567`) sort in two passes of
//! 13 bits, 3.5 times faster than by comparison (7.5 ms against 27 ms per
//! million values, thread CPU time on the shared 2-core machine). A radix sort
//! in place on the float bits (an American flag sort, before this) was slower
//! there than comparison: its swaps wait on one cache miss after another.
//!
//! The radix sort needs a second buffer as long as its keys. Keys of up to 32
//! bits (a range of four billion steps: nearly every decimal column) are
//! sorted as `u32`s in the first half of the column's own memory, the second
//! half being that buffer, which also halves the bytes each pass moves.
//! Wider keys need one as long as the column; the caller lends one (in `drift
//! compare`, a column it has finished with), so that sorting adds no memory
//! that grows with the rows. Either way the result is the very sequence
//! `total_cmp` gives.

use super::decimal_keys::{DecimalKeys, DecimalShape};

/// Widest digit: its counts (64 KiB) stay in the L2 cache.
const WIDEST_DIGIT: u32 = 13;

/// Sorts `values` in the order of [`f64::total_cmp`]. Columns of narrow
/// decimal keys sort in their own memory; others use `spare` as the radix
/// sort's second buffer when it is long enough. `shape`, when the reader of
/// the values knows it, saves finding it. What `spare` holds afterwards is
/// unspecified.
pub fn sort_floats(values: &mut [f64], spare: &mut [f64], shape: Option<DecimalShape>) {
    let keys = shape.map_or_else(|| DecimalKeys::of(values), DecimalKeys::of_shape);
    match keys {
        Some(keys) if keys.key_bits <= u32::BITS => sort_in_own_memory(values, keys),
        Some(keys) if spare.len() >= values.len() => sort_with_spare(values, &mut spare[..values.len()], keys),
        _ => values.sort_unstable_by(f64::total_cmp),
    }
}

/// Keys of 32 bits or fewer take half the column's memory as `u32`s: the
/// other half is the radix sort's second buffer. The values become keys
/// from the first on (key `k` lands where values `k/2` and earlier were),
/// and back from the last on (value `k` lands where keys `k` and later were).
fn sort_in_own_memory(values: &mut [f64], keys: DecimalKeys) {
    let count = values.len();
    let mut counts = DigitCounts::new(keys.key_bits);
    let slots: &mut [u32] = bytemuck::cast_slice_mut(values);
    for index in 0..count {
        // Below 2^32: the keys' bits say so.
        let key = keys.key(value_in(slots, index)) as u32;
        slots[index] = key;
        counts.count(u64::from(key));
    }
    let (sorted, spare) = slots.split_at_mut(count);
    back_and_forth(sorted, spare, counts.moving(count), |_, from, to, starts, digit| {
        scatter(from, to, starts, digit, u64::from, |key| key as u32);
    });
    for index in (0..count).rev() {
        let value = keys.value(u64::from(slots[index]));
        put_value(slots, index, value);
    }
}

/// The value at `index` of a column seen as `u32`s: its two halves, as they lie in memory.
fn value_in(slots: &[u32], index: usize) -> f64 {
    let (low, high) = (slots[2 * index].to_ne_bytes(), slots[2 * index + 1].to_ne_bytes());
    f64::from_ne_bytes([low[0], low[1], low[2], low[3], high[0], high[1], high[2], high[3]])
}

fn put_value(slots: &mut [u32], index: usize, value: f64) {
    let [a, b, c, d, e, f, g, h] = value.to_ne_bytes();
    (slots[2 * index], slots[2 * index + 1]) = (u32::from_ne_bytes([a, b, c, d]), u32::from_ne_bytes([e, f, g, h]));
}

/// Wider keys: a pass of the values to `spare` and back per digit.
fn sort_with_spare(values: &mut [f64], spare: &mut [f64], keys: DecimalKeys) {
    let mut counts = DigitCounts::new(keys.key_bits);
    values.iter().for_each(|value| counts.count(keys.key(*value)));
    let moving = counts.moving(values.len());
    let passes = moving.len();
    back_and_forth(values, spare, moving, |pass, from, to, starts, digit| {
        // Between passes a slot holds its key as bits (below 2^51: never a NaN's,
        // which copying could change); the last pass writes the values back.
        let value_of = |key| keys.value(key);
        let key_of = |value| keys.key(value);
        match (pass == 0, pass + 1 == passes) {
            (true, true) => scatter(from, to, starts, digit, key_of, value_of),
            (true, false) => scatter(from, to, starts, digit, key_of, f64::from_bits),
            (false, true) => scatter(from, to, starts, digit, f64::to_bits, value_of),
            (false, false) => scatter(from, to, starts, digit, f64::to_bits, f64::from_bits),
        }
    });
}

/// Where every key of a pass's digit goes: counted for all digits in one read.
struct DigitCounts {
    digits: Vec<Digit>,
    counts: Vec<Vec<usize>>,
}

impl DigitCounts {
    /// For keys of `key_bits` bits: as few passes as digits of at most
    /// [`WIDEST_DIGIT`] bits allow, of equal width.
    fn new(key_bits: u32) -> Self {
        let passes = key_bits.div_ceil(WIDEST_DIGIT);
        let bits = key_bits.div_ceil(passes.max(1));
        let digits: Vec<Digit> = (0..passes).map(|pass| Digit { shift: pass * bits, bits }).collect();
        let counts = digits.iter().map(|digit| vec![0; digit.buckets()]).collect();
        DigitCounts { digits, counts }
    }

    fn count(&mut self, key: u64) {
        for (digit, counts) in self.digits.iter().zip(self.counts.iter_mut()) {
            counts[digit.of(key)] += 1;
        }
    }

    /// The digits that move anything, with each bucket's first place: a digit
    /// all `keys` keys share moves nothing (e.g. the top one of a narrow column).
    fn moving(self, keys: usize) -> Vec<(Digit, Vec<usize>)> {
        self.digits
            .into_iter()
            .zip(self.counts)
            .filter(|(_, counts)| !counts.contains(&keys))
            .map(|(digit, counts)| (digit, running_starts(counts)))
            .collect()
    }
}

/// Runs the passes from `data` to `spare` and back, alternately (`pass` gets
/// its number, where to read and write, its buckets' first places and its
/// digit), and leaves the result in `data`.
fn back_and_forth<T: Copy>(
    data: &mut [T],
    spare: &mut [T],
    moving: Vec<(Digit, Vec<usize>)>,
    mut pass: impl FnMut(usize, &[T], &mut [T], Vec<usize>, Digit),
) {
    let passes = moving.len();
    for (number, (digit, starts)) in moving.into_iter().enumerate() {
        let (from, to) = if number % 2 == 0 { (&*data, &mut *spare) } else { (&*spare, &mut *data) };
        pass(number, from, to, starts, digit);
    }
    if passes % 2 == 1 {
        data.copy_from_slice(spare);
    }
}

/// One pass: every slot of `from` to the next place of its digit's bucket in `to`.
fn scatter<T: Copy>(
    from: &[T],
    to: &mut [T],
    mut starts: Vec<usize>,
    digit: Digit,
    key_of: impl Fn(T) -> u64,
    slot_of: impl Fn(u64) -> T,
) {
    for slot in from {
        let key = key_of(*slot);
        let start = &mut starts[digit.of(key)];
        to[*start] = slot_of(key);
        *start += 1;
    }
}

#[derive(Clone, Copy)]
struct Digit {
    shift: u32,
    bits: u32,
}

impl Digit {
    fn buckets(self) -> usize {
        1 << self.bits
    }

    fn of(self, key: u64) -> usize {
        ((key >> self.shift) & ((1 << self.bits) - 1)) as usize
    }
}

/// Counts per bucket into each bucket's first place.
fn running_starts(mut counts: Vec<usize>) -> Vec<usize> {
    let mut total = 0;
    for count in counts.iter_mut() {
        (*count, total) = (total, total + *count);
    }
    counts
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::stats::decimal_keys::ShapeOfColumn;

    fn by_total_cmp(values: &[f64]) -> Vec<u64> {
        let mut sorted = values.to_vec();
        sorted.sort_unstable_by(f64::total_cmp);
        sorted.iter().map(|v| v.to_bits()).collect()
    }

    fn by_radix(values: &[f64]) -> Vec<u64> {
        let mut sorted = values.to_vec();
        sort_floats(&mut sorted, &mut vec![0.0; values.len()], None);
        sorted.iter().map(|v| v.to_bits()).collect()
    }

    /// Sorted with the shape a reader finds in the texts, as `drift compare` sorts CSV columns.
    fn by_radix_with_shape(texts: &[String]) -> Vec<u64> {
        let mut shape = ShapeOfColumn::default();
        let mut sorted: Vec<f64> = texts.iter().map(|text| text.parse().unwrap()).collect();
        for (text, value) in texts.iter().zip(&sorted) {
            shape.see(*value, Some(text.split_once('.').map_or(0, |(_, decimals)| decimals.len())));
        }
        sort_floats(&mut sorted, &mut vec![0.0; texts.len()], shape.shape());
        sorted.iter().map(|v| v.to_bits()).collect()
    }

    /// A fixed pseudo-random sequence.
    fn xorshift() -> impl FnMut() -> u64 {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    #[test]
    fn orders_signs_zeros_and_extremes_as_total_cmp() {
        let values = [
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
        ]
        .repeat(20);
        assert_eq!(by_radix(&values), by_total_cmp(&values));
    }

    #[test]
    fn sorts_decimal_columns_of_one_to_four_passes_as_total_cmp() {
        let mut next = xorshift();
        // Keys of 3 bits (one pass), about 25 (the benchmark's), 31 (three passes in the
        // column's own memory), 40 and 50 bits (with the spare).
        for (range, power) in [(8u64, 1.0), (20_000_000, 1e5), (1 << 31, 1e2), (1 << 40, 1e3), (1 << 49, 1e9)] {
            let values: Vec<f64> =
                (0..50_000).map(|_| ((next() % range) as i64 - range as i64 / 2) as f64 / power).collect();
            assert!(DecimalKeys::of(&values).is_some(), "{range}");
            assert_eq!(by_radix(&values), by_total_cmp(&values), "{range}");
        }
    }

    #[test]
    fn a_constant_column_and_a_column_with_negative_zero_stay_right() {
        assert_eq!(by_radix(&[2.5; 100]), by_total_cmp(&[2.5; 100]));
        let values = [0.5, -0.0, 0.0, -0.5].repeat(30);
        assert_eq!(by_radix(&values), by_total_cmp(&values));
    }

    #[test]
    fn without_a_long_enough_spare_only_narrow_keys_are_radix_sorted() {
        let narrow: Vec<f64> = (0..1000).map(|i| f64::from((i * 7919) % 1000) / 100.0).collect();
        let wide: Vec<f64> = narrow.iter().map(|v| v * 1e9 + 0.5).collect();
        for values in [narrow, wide] {
            let mut sorted = values.clone();
            sort_floats(&mut sorted, &mut [0.0; 999], None);
            assert_eq!(sorted.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), by_total_cmp(&values));
        }
    }

    #[test]
    fn sorts_a_large_column_with_many_ties_as_total_cmp() {
        let mut next = xorshift();
        let mut values: Vec<f64> = (0..50_000).map(|_| (next() >> 11) as f64 / (1u64 << 40) as f64 - 4096.0).collect();
        values.extend((0..50_000).map(|_| (next() % 1000) as f64 / 10.0 - 50.0));
        assert_eq!(by_radix(&values), by_total_cmp(&values));
    }

    proptest! {
        #[test]
        fn sorts_any_finite_column_as_total_cmp(values in proptest::collection::vec(proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO, 0..2_000)) {
            prop_assert_eq!(by_radix(&values), by_total_cmp(&values));
        }

        #[test]
        fn sorts_any_column_of_decimals_as_total_cmp(texts in proptest::collection::vec("-?[0-9]{1,6}(\\.[0-9]{0,6})?", 0..2_000)) {
            let values: Vec<f64> = texts.iter().map(|text| text.parse().unwrap()).collect();
            prop_assert_eq!(by_radix(&values), by_total_cmp(&values));
            prop_assert_eq!(by_radix_with_shape(&texts), by_total_cmp(&values));
        }
    }
}

//! A column of short decimals (`-12.34567`, the commonest data) seen as
//! integers: each value is `m / 10^d` for one `d` per column and an integer `m`
//! in a narrow range, so sorting the `m` sorts the column, with a fraction of
//! the radix passes its 64 float bits would need.

/// Powers of ten that a double holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 16] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// Numerators stay below this: `value * 10^d` is then within 0.5 of the
/// numerator whatever the rounding, so rounding it finds the numerator back.
const LARGEST_NUMERATOR: f64 = (1u64 << 50) as f64;

/// Adding and subtracting 1.5 * 2^52 rounds any number below 2^51 in magnitude to
/// the nearest integer: `f64::round` is a call into libm on x86-64 without SSE4.1,
/// which made the keys cost three times the sorting.
const ROUNDING: f64 = 6_755_399_441_055_744.0;

fn round(value: f64) -> f64 {
    (value + ROUNDING) - ROUNDING
}

/// What a reader of decimal text saw of a column: every value is an integer
/// over `10^d` for some `d <= decimals`, divided with one rounding (no `-0`),
/// and these are the smallest and largest. Such a value is then also its
/// integer times `10^(decimals - d)` over `10^decimals`, rounded once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecimalShape {
    pub decimals: usize,
    pub lowest: f64,
    pub highest: f64,
}

/// Finds a column's [`DecimalShape`] while its reader parses it, value by value.
#[derive(Clone, Copy, Debug)]
pub struct ShapeOfColumn {
    decimals: usize,
    lowest: f64,
    highest: f64,
    plain: bool,
}

impl Default for ShapeOfColumn {
    fn default() -> Self {
        ShapeOfColumn { decimals: 0, lowest: f64::INFINITY, highest: f64::NEG_INFINITY, plain: true }
    }
}

impl ShapeOfColumn {
    /// One value, with `decimals` when it was read as an integer over `10^decimals`
    /// divided with one rounding, `None` when it was read otherwise.
    pub fn see(&mut self, value: f64, decimals: Option<usize>) {
        match decimals {
            // -0 has no integer numerator: `DecimalKeys::value` would give +0 back.
            Some(decimals) if value.to_bits() != (-0.0f64).to_bits() => self.decimals = self.decimals.max(decimals),
            _ => self.plain = false,
        }
        self.lowest = self.lowest.min(value);
        self.highest = self.highest.max(value);
    }

    /// The shape, when every value seen was such a decimal.
    pub fn shape(&self) -> Option<DecimalShape> {
        self.plain.then_some(DecimalShape { decimals: self.decimals, lowest: self.lowest, highest: self.highest })
    }
}

/// How every value of a column is `(lowest + key) / 10^decimals`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct DecimalKeys {
    power_of_ten: f64,
    lowest: i64,
    /// Bits of the largest key (0 when all values are equal).
    pub key_bits: u32,
}

impl DecimalKeys {
    /// The fewest decimals that write every value of `values` exactly, or
    /// `None` when some value is no such decimal (e.g. `1/3`, `1e-20`, `-0.0`,
    /// which `+0.0` would replace) or `values` is empty.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut decimals = 0;
        let (mut lowest, mut highest) = (i64::MAX, i64::MIN);
        for value in values {
            // Rarely entered twice: a column's values mostly share their decimals.
            let numerator = loop {
                let power = EXACT_POWERS_OF_TEN[decimals];
                let numerator = round(value * power);
                // Beyond 2^51 `round` is wrong, but so is the bound, and NaN fails it.
                // The very division a parser of the decimal does (exact numerator and
                // power, one rounding): the value is that decimal, bit for bit. Through
                // an integer, which has no -0.
                if numerator.abs() < LARGEST_NUMERATOR
                    && ((numerator as i64) as f64 / power).to_bits() == value.to_bits()
                {
                    break numerator as i64;
                }
                decimals += 1;
                if decimals == EXACT_POWERS_OF_TEN.len() {
                    return None;
                }
                // The values seen so far, at one more decimal.
                (lowest, highest) = (lowest.saturating_mul(10), highest.saturating_mul(10));
            };
            lowest = lowest.min(numerator);
            highest = highest.max(numerator);
        }
        if values.is_empty() {
            return None;
        }
        // A numerator of an earlier value, times ten for each decimal added since, may
        // have grown past the bound.
        DecimalKeys::of_numerators(EXACT_POWERS_OF_TEN[decimals], lowest, highest)
    }

    /// The keys of a column whose reader vouches for its [`DecimalShape`]: no
    /// pass over the values (that pass, a division per value, was a third of
    /// the sorting). `None` when the numerators are too long.
    pub fn of_shape(shape: DecimalShape) -> Option<Self> {
        let power_of_ten = *EXACT_POWERS_OF_TEN.get(shape.decimals)?;
        let (lowest, highest) = (round(shape.lowest * power_of_ten), round(shape.highest * power_of_ten));
        // No values seen (infinite extremes) or NaN: no numerators. Past the bound, the
        // saturating casts stay past it.
        if !(lowest.is_finite() && highest.is_finite() && lowest <= highest) {
            return None;
        }
        DecimalKeys::of_numerators(power_of_ten, lowest as i64, highest as i64)
    }

    /// Keys for numerators from `lowest` to `highest` over `power_of_ten`, or `None` when
    /// one reaches [`LARGEST_NUMERATOR`].
    fn of_numerators(power_of_ten: f64, lowest: i64, highest: i64) -> Option<Self> {
        if lowest.unsigned_abs().max(highest.unsigned_abs()) as f64 >= LARGEST_NUMERATOR {
            return None;
        }
        let key_bits = u64::BITS - (highest.abs_diff(lowest)).leading_zeros();
        Some(DecimalKeys { power_of_ten, lowest, key_bits })
    }

    /// The value's key: its numerator above the lowest. Keys order as the values.
    pub fn key(&self, value: f64) -> u64 {
        (round(value * self.power_of_ten) as i64).abs_diff(self.lowest)
    }

    /// The value of a key, bit for bit the value it was taken from.
    pub fn value(&self, key: u64) -> f64 {
        self.lowest.saturating_add_unsigned(key) as f64 / self.power_of_ten
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_fewest_decimals_and_gives_every_value_back() {
        let values = [-12.5, 3.25, 0.0, 7.0, 99.99999, -0.00001];
        let keys = DecimalKeys::of(&values).unwrap();
        assert_eq!(keys.power_of_ten, 1e5);
        for value in values {
            assert_eq!(keys.value(keys.key(value)).to_bits(), value.to_bits(), "{value}");
        }
        assert_eq!(keys.key(-12.5), 0);
    }

    #[test]
    fn a_vouched_shape_gives_the_keys_the_values_give() {
        let values = [-12.5, 3.25, 0.0, 7.0, 99.99999, -0.00001];
        let shape = DecimalShape { decimals: 5, lowest: -12.5, highest: 99.99999 };
        assert_eq!(DecimalKeys::of_shape(shape), DecimalKeys::of(&values));
        let long = DecimalShape { decimals: 15, lowest: -1e6, highest: 1.0 };
        assert_eq!(DecimalKeys::of_shape(long), None, "numerators of 2^50 and more");
        let empty = DecimalShape { decimals: 0, lowest: f64::INFINITY, highest: f64::NEG_INFINITY };
        assert_eq!(DecimalKeys::of_shape(empty), None);
        assert_eq!(DecimalKeys::of_shape(DecimalShape { decimals: 16, ..shape }), None);
    }

    #[test]
    fn values_that_are_not_short_decimals_have_no_keys() {
        assert_eq!(DecimalKeys::of(&[1.0, 1.0 / 3.0]), None);
        assert_eq!(DecimalKeys::of(&[1.0, -0.0]), None);
        assert_eq!(DecimalKeys::of(&[1e-20]), None);
        assert_eq!(DecimalKeys::of(&[1e300]), None);
        assert_eq!(DecimalKeys::of(&[]), None);
        // Each fits alone, but at the second one's five decimals the first is too long.
        assert_eq!(DecimalKeys::of(&[1e11, 0.00001]), None);
    }
}

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
        // A numerator of an earlier value, times ten for each decimal added since, may
        // have grown past the bound.
        if values.is_empty() || lowest.unsigned_abs().max(highest.unsigned_abs()) as f64 >= LARGEST_NUMERATOR {
            return None;
        }
        let key_bits = u64::BITS - (highest.abs_diff(lowest)).leading_zeros();
        Some(DecimalKeys { power_of_ten: EXACT_POWERS_OF_TEN[decimals], lowest, key_bits })
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

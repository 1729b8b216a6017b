//! A CSV line of plain decimals parsed in one pass over its bytes, without
//! splitting it into fields first: `drift compare` spent more time taking
//! lines apart (splitting, trimming, parsing each field on its own) than
//! sorting the columns. A line that is anything else (spaces around a
//! number, an exponent, a wrong number of fields) is left to the general
//! path, which reads it field by field and says what is wrong with it.

use super::number::{DecimalPrefix, decimal_prefix};

/// The fields of a line: which to parse, and the last line's numbers.
pub struct PlainLine {
    /// Per field of the header, whether it is parsed.
    wanted: Vec<bool>,
    /// Per field, the number of the last line parsed (unwanted fields keep
    /// whatever they held).
    numbers: Vec<DecimalPrefix>,
}

impl PlainLine {
    /// For lines of `fields` fields, of which those at `positions` are parsed.
    pub fn new(fields: usize, positions: &[usize]) -> Self {
        let mut wanted = vec![false; fields];
        for position in positions {
            if let Some(wanted) = wanted.get_mut(*position) {
                *wanted = true;
            }
        }
        PlainLine { wanted, numbers: vec![DecimalPrefix::default(); fields] }
    }

    /// Parses a line without quotes; `false` when it does not have exactly
    /// the header's fields or a wanted field is not exactly a plain decimal.
    pub fn parse(&mut self, line: &[u8]) -> bool {
        let last = self.wanted.len().saturating_sub(1);
        let mut start = 0;
        for (field, (wanted, number)) in self.wanted.iter().zip(self.numbers.iter_mut()).enumerate() {
            let rest = line.get(start..).unwrap_or_default();
            let length = if *wanted {
                let Some(prefix) = decimal_prefix(rest) else { return false };
                *number = prefix;
                prefix.length
            } else {
                memchr::memchr(b',', rest).unwrap_or(rest.len())
            };
            // The field must end where the line does if it is the last, at a comma if not.
            match rest.get(length) {
                None if field == last => return true,
                Some(b',') if field != last => start += length + 1,
                _ => return false,
            }
        }
        false
    }

    /// The number of the field at `position` in the line last parsed.
    pub fn number(&self, position: usize) -> Option<DecimalPrefix> {
        self.numbers.get(position).copied()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parsed(line: &str, fields: usize, positions: &[usize]) -> Option<Vec<(f64, usize)>> {
        let mut plain = PlainLine::new(fields, positions);
        plain.parse(line.as_bytes()).then(|| {
            positions.iter().map(|p| plain.number(*p).map(|n| (n.value, n.decimals)).unwrap_or_default()).collect()
        })
    }

    #[test]
    fn parses_the_wanted_fields_and_skips_the_others() {
        assert_eq!(parsed("-1.5,x y,+20", 3, &[2, 0, 2]), Some(vec![(20.0, 0), (-1.5, 1), (20.0, 0)]));
        assert_eq!(parsed("7", 1, &[0]), Some(vec![(7.0, 0)]));
        assert_eq!(parsed("a,,3.", 3, &[2]), Some(vec![(3.0, 0)]));
    }

    #[test]
    fn leaves_anything_but_exact_plain_decimals_in_exactly_the_fields_to_the_general_path() {
        for line in ["1,2", "1,2,3,4", "1, 2,3", "1,2 ,3", "1,,3", "1,2e3,3", "1,2.5.1,3", "1,-,3", "1,2,3,"] {
            assert_eq!(parsed(line, 3, &[0, 1, 2]), None, "{line}");
        }
        assert_eq!(parsed("", 1, &[0]), None);
        assert_eq!(parsed("1", 0, &[]), None);
    }

    proptest! {
        /// Whatever the fast path takes, it reads as the general path does: split at commas, each
        /// field a number by `str::parse`.
        #[test]
        fn agrees_with_splitting_and_str_parse(line in "[-+0-9., e]{0,30}", fields in 1usize..5) {
            let positions: Vec<usize> = (0..fields).collect();
            if let Some(numbers) = parsed(&line, fields, &positions) {
                let split: Vec<&str> = line.split(',').collect();
                prop_assert_eq!(split.len(), fields);
                for (text, (value, _)) in split.iter().zip(numbers) {
                    prop_assert_eq!(text.parse::<f64>().map(f64::to_bits), Ok(value.to_bits()), "{}", text);
                }
            }
        }
    }
}

//! Numbers straight from CSV bytes. Plain decimals (`-12.345`), by far the
//! commonest cells, take a fast path whose result is exactly what `str::parse`
//! gives; anything else (exponents, many digits, `inf`, non-ASCII) goes
//! through `str::parse` itself.

/// Powers of ten that a double holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// The value of a trimmed cell as `str::parse::<f64>` reads it, or `None`
/// when it is not a number; and the decimals of a plain decimal: its value is
/// then its digits as an integer over `10^decimals`, divided with one
/// rounding (what sorting it by integer keys relies on).
pub fn parse_cell(text: &[u8]) -> Option<(f64, Option<usize>)> {
    match fast_decimal(text) {
        Some((value, decimals)) => Some((value, Some(decimals))),
        None => Some((std::str::from_utf8(text).ok()?.parse().ok()?, None)),
    }
}

/// `[+-]digits[.digits]` with at most 2^53 as the digits' integer and at
/// most 22 decimals: both the integer and the power of ten are exact doubles,
/// so one division rounds correctly, as a full parser would (Clinger's fast
/// path).
fn fast_decimal(text: &[u8]) -> Option<(f64, usize)> {
    decimal_prefix(text).filter(|prefix| prefix.length == text.len()).map(|prefix| (prefix.value, prefix.decimals))
}

/// A plain decimal at the start of some text, read as [`fast_decimal`] reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DecimalPrefix {
    pub value: f64,
    pub decimals: usize,
    /// How many bytes it takes.
    pub length: usize,
}

/// The plain decimal that `text` starts with (what follows it is the caller's
/// to judge), or `None` when it starts with none that the fast path reads.
#[inline]
pub fn decimal_prefix(text: &[u8]) -> Option<DecimalPrefix> {
    let (negative, sign) = match text.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let number = &text[sign..];
    let (mantissa, whole_digits) = digits_of(0, number);
    let (mantissa, decimals, length) = match number.get(whole_digits) {
        Some(b'.') => {
            let (mantissa, decimals) = digits_of(mantissa, &number[whole_digits + 1..]);
            (mantissa, decimals, whole_digits + 1 + decimals)
        }
        _ => (mantissa, 0, whole_digits),
    };
    // At most 19 digits cannot overflow the u64 (unchecked, for speed).
    if whole_digits + decimals == 0 || whole_digits + decimals > 19 || mantissa > 1 << 53 {
        return None;
    }
    let value = mantissa as f64 / *EXACT_POWERS_OF_TEN.get(decimals)?;
    Some(DecimalPrefix { value: if negative { -value } else { value }, decimals, length: sign + length })
}

/// The leading ASCII digits of `text` appended to `mantissa`, and how many
/// there were (wrapping past 19 digits, which the caller refuses).
fn digits_of(mut mantissa: u64, text: &[u8]) -> (u64, usize) {
    let mut count = 0;
    for byte in text {
        if !byte.is_ascii_digit() {
            break;
        }
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(byte - b'0'));
        count += 1;
    }
    (mantissa, count)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse_f64(text: &[u8]) -> Option<f64> {
        parse_cell(text).map(|(value, _)| value)
    }

    #[test]
    fn reads_what_str_parse_reads_and_nothing_else() {
        for text in ["0", "-0", "+1.5", "12.", ".5", "-03.85352", "1e3", "inf", "NaN", "123456789012345678901234"] {
            assert_eq!(
                parse_f64(text.as_bytes()).map(f64::to_bits),
                text.parse::<f64>().ok().map(f64::to_bits),
                "{text}"
            );
        }
        for text in ["", "-", ".", "1.2.3", "1,5", "x"] {
            assert_eq!(parse_f64(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn a_plain_decimal_says_its_decimals() {
        assert_eq!(parse_cell(b"-12.34500"), Some((-12.345, Some(5))));
        assert_eq!(parse_cell(b"7"), Some((7.0, Some(0))));
        assert_eq!(parse_cell(b"1e3"), Some((1000.0, None)));
        assert_eq!(parse_cell(b"x"), None);
    }

    proptest! {
        #[test]
        fn the_fast_path_rounds_exactly_as_str_parse(sign in "[-+]?", whole in "[0-9]{0,17}", fraction in "(\\.[0-9]{0,23})?") {
            let text = format!("{sign}{whole}{fraction}");
            let expected = text.parse::<f64>().ok().map(f64::to_bits);
            prop_assert_eq!(parse_f64(text.as_bytes()).map(f64::to_bits), expected, "{}", text);
        }
    }
}

//! A strict scanner for the plain JSON of prediction requests: objects,
//! arrays, numbers and strings without escapes. It is the fast path only:
//! every method answers `None` on anything it does not handle (an escape, a
//! `true`, a syntax error, …), and the caller then leaves the body to
//! serde_json, which decides and words the error. So what it accepts it must
//! read exactly as serde_json does; `tests` compares the two on generated input.

use trainloop_contract::{FeatureSpec, FeatureType, FeatureValue, Violation};

pub struct Scanner<'a> {
    bytes: &'a [u8],
    position: usize,
}

/// The largest integer every smaller one of which an `f64` holds exactly.
const MAX_EXACT: u64 = 1 << 53;

/// `10^|scale|` when an `f64` holds it exactly.
fn exact_power_of_ten(scale: i64) -> Option<f64> {
    const POWERS: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ];
    POWERS.get(usize::try_from(scale.unsigned_abs()).ok()?).copied()
}

/// Reads the ASCII digits from `start` into `mantissa` (wrapping: the
/// caller knows how many were read) and answers where they end.
///
/// Eight bytes at a time: a number's digits are read as one word with no
/// branch per digit, so how many there are (which varies from cell to cell)
/// is not a branch to mispredict.
fn read_digits(bytes: &[u8], start: usize, mantissa: &mut u64) -> usize {
    let mut end = start;
    while let Some(chunk) = bytes.get(end..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        let digits = leading_digits(word);
        if digits == 0 {
            return end;
        }
        // The digits moved to the word's top, zero bytes (leading zeros) below.
        let value = eight_digits((word.wrapping_sub(ZEROS)) << (8 * (8 - digits)));
        *mantissa = mantissa.wrapping_mul(POWERS_OF_TEN[digits]).wrapping_add(value);
        end += digits;
        if digits < 8 {
            return end;
        }
    }
    while let Some(digit) = bytes.get(end).map(|b| b.wrapping_sub(b'0')).filter(|d| *d <= 9) {
        *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(digit));
        end += 1;
    }
    end
}

/// A decimal that ends within the eight bytes at `start` and has a point
/// (`17.99`, `0.2776`: most numbers a client sends) as its mantissa, its
/// integer digits and its fraction digits, read as one word: the digits on
/// each side of the point in place of two reads of digits. `None` for
/// anything else, which `read_digits` then reads.
fn short_decimal(bytes: &[u8], start: usize) -> Option<(u64, usize, Option<usize>)> {
    let word = u64::from_le_bytes(*bytes.get(start..)?.first_chunk::<8>()?);
    let integer_digits = leading_digits(word);
    // At least one digit on each side, and the byte after the last one in the word.
    if !(1..=5).contains(&integer_digits) || (word >> (8 * integer_digits)) as u8 != b'.' {
        return None;
    }
    // Shifted in from above: zero bytes, which are not digits.
    let fraction_digits = leading_digits(word >> (8 * (integer_digits + 1)));
    if fraction_digits == 0 || integer_digits + 1 + fraction_digits == 8 {
        return None;
    }
    // The fraction's digits moved down over the point, then all of them to the word's top.
    let integer_bytes = (1u64 << (8 * integer_digits)) - 1;
    let joined = (word & integer_bytes) | ((word >> 8) & !integer_bytes);
    let digits = integer_digits + fraction_digits;
    Some((eight_digits(joined.wrapping_sub(ZEROS) << (8 * (8 - digits))), integer_digits, Some(fraction_digits)))
}

const ZEROS: u64 = u64::from_ne_bytes([b'0'; 8]);
const POWERS_OF_TEN: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// How many of the word's bytes, from its first (lowest), are ASCII digits.
fn leading_digits(word: u64) -> usize {
    const HIGH_NIBBLES: u64 = u64::from_ne_bytes([0xF0; 8]);
    const SIXES: u64 = u64::from_ne_bytes([0x06; 8]);
    // A digit's byte is 0x3_ and stays 0x3_ with 6 added; any other byte
    // differs in one of the two high nibbles. (A carry out of a byte only
    // changes bytes after a non-digit.)
    let other = ((word & HIGH_NIBBLES) ^ ZEROS) | ((word.wrapping_add(SIXES) & HIGH_NIBBLES) ^ ZEROS);
    (other.trailing_zeros() / 8) as usize
}

/// The number eight digit values (0 to 9, one per byte, the first the most
/// significant) make: three multiplications instead of eight.
fn eight_digits(word: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let pairs = word.wrapping_mul(10).wrapping_add(word >> 8);
    ((pairs & MASK).wrapping_mul(MUL1).wrapping_add(((pairs >> 16) & MASK).wrapping_mul(MUL2))) >> 32
}

/// The length of a string's content up to the first `"`, `\` or control
/// character, or `None` if there is none. Eight bytes at a time: a key or a
/// category is one to three words.
fn string_length(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each byte below `n` (n <= 128); a byte's bit can be set
    // wrongly only above a byte that matched, so the lowest one is exact.
    let below = |word: u64, n: u64| word.wrapping_sub(ONES * n) & !word & HIGHS;
    let mut offset = 0;
    while let Some(chunk) = bytes.get(offset..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        let found =
            below(word, 0x20) | below(word ^ (ONES * u64::from(b'"')), 1) | below(word ^ (ONES * u64::from(b'\\')), 1);
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let rest = bytes.get(offset..)?;
    rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|length| offset + length)
}

/// `a == b`, for keys of 8 to 24 bytes (most quoted feature names) as up to three
/// overlapping eight-byte words: inline, where a slice compare calls `memcmp`.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let word = |bytes: &[u8], at: usize| bytes.get(at..).and_then(<[u8]>::first_chunk::<8>).copied();
    match a.len() {
        length @ 8..=24 if b.len() == length => {
            [0, 8.min(length - 8), length - 8].iter().all(|&at| word(a, at) == word(b, at))
        }
        _ => a == b,
    }
}

/// A scalar as the scanner read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar<'a> {
    Number(f64),
    Text(&'a str),
}

impl Scalar<'_> {
    /// The value serde_json would have read for it.
    pub fn to_value(self) -> serde_json::Value {
        match self {
            Scalar::Number(number) => serde_json::Value::from(number),
            Scalar::Text(text) => serde_json::Value::from(text),
        }
    }

    /// `spec.parse_json(&self.to_value())`, without building the value when
    /// the type is the feature's (every valid request): a prediction's cells
    /// are checked on every request.
    pub fn check(self, spec: &FeatureSpec) -> Result<FeatureValue, Violation> {
        match (spec.kind, self) {
            // The scanner reads finite numbers only, which `to_value` keeps as they are.
            (FeatureType::Number, Scalar::Number(number)) => spec.check_number(number),
            (FeatureType::Category, Scalar::Text(text)) => spec.check_category(text),
            _ => spec.parse_json(&self.to_value()),
        }
    }
}

impl<'a> Scanner<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Scanner { bytes, position: 0 }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.position) {
            self.position += 1;
        }
    }

    /// The next byte that is not whitespace, without consuming it.
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.position).copied()
    }

    /// Consumes `byte` (after whitespace), or answers `None`.
    pub fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.position += 1)
    }

    /// After an element of an object or array closed by `close`: `Some(true)`
    /// if another element follows (a comma was eaten), `Some(false)` at the end.
    pub fn more(&mut self, close: u8) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.position += 1;
                Some(true)
            }
            byte if byte == close => {
                self.position += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// Opens a collection: `Some(true)` if it has elements, `Some(false)` if
    /// it is empty (and already closed).
    pub fn open(&mut self, open: u8, close: u8) -> Option<bool> {
        self.eat(open)?;
        if self.peek()? == close {
            self.position += 1;
            return Some(false);
        }
        Some(true)
    }

    /// An object key and its colon.
    ///
    /// Its bytes are not checked to be UTF-8: callers compare them with
    /// names they know, which are, and give up on any other key.
    pub fn key(&mut self) -> Option<&'a [u8]> {
        let key = self.string_bytes()?;
        self.eat(b':')?;
        Some(key)
    }

    /// Consumes a key and its colon if the key comes next written as
    /// `quoted` (a name that needs no escaping, in quotes): `Some(true)`;
    /// `Some(false)` (nothing consumed) if another comes; `None` if the
    /// colon is missing.
    pub fn key_is(&mut self, quoted: &[u8]) -> Option<bool> {
        self.skip_whitespace();
        let end = self.position + quoted.len();
        let here = self.bytes.get(self.position..end).is_some_and(|key| same_bytes(key, quoted));
        if here {
            self.position = end;
            self.eat(b':')?;
        }
        Some(here)
    }

    /// A string without escapes (valid UTF-8, no control characters).
    pub fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.string_bytes()?).ok()
    }

    fn string_bytes(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.position;
        let length = string_length(&self.bytes[start..])?;
        self.position = start + length;
        // Not `eat`: no whitespace may be skipped inside the string.
        if !self.accept(|b| b == b'"') {
            return None;
        }
        Some(&self.bytes[start..start + length])
    }

    /// A number or a string.
    pub fn scalar(&mut self) -> Option<Scalar<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Scalar::Text),
            _ => self.number().map(Scalar::Number),
        }
    }

    /// A JSON number, as serde_json reads it into a `Value` and `as_f64`
    /// gives it back: every path there (`u64`, `i64` or a float parsed with
    /// `float_roundtrip`) rounds the decimal value correctly, as this does;
    /// `-0` is `-0.0` there too. Non-finite results are errors in serde_json,
    /// so `None` here.
    pub fn number(&mut self) -> Option<f64> {
        self.skip_whitespace();
        let bytes = self.bytes;
        let start = self.position;
        let negative = bytes.get(start) == Some(&b'-');
        let integer_start = start + usize::from(negative);
        // The digits as one integer (exact while there are at most 19 of
        // them), and the power of ten the point and the exponent give it;
        // the fraction's digits are `None` without a point.
        let (mantissa, integer_digits, fraction_digits) = match short_decimal(bytes, integer_start) {
            Some(read) => read,
            None => {
                let mut mantissa: u64 = 0;
                let integer_end = read_digits(bytes, integer_start, &mut mantissa);
                let fraction_digits = match bytes.get(integer_end) {
                    Some(b'.') => Some(read_digits(bytes, integer_end + 1, &mut mantissa) - (integer_end + 1)),
                    _ => None,
                };
                (mantissa, integer_end - integer_start, fraction_digits)
            }
        };
        // One leading `0`, or a non-zero digit then digits; a point, then digits.
        if integer_digits == 0 || (integer_digits > 1 && bytes[integer_start] == b'0') || fraction_digits == Some(0) {
            return None;
        }
        let (fraction_digits, mut end) = match fraction_digits {
            None => (0, integer_start + integer_digits),
            Some(digits) => (digits, integer_start + integer_digits + 1 + digits),
        };
        let mut scale = -(fraction_digits as i64);
        if let Some(b'e' | b'E') = bytes.get(end) {
            end += 1;
            let exponent_negative = bytes.get(end) == Some(&b'-');
            end += usize::from(matches!(bytes.get(end), Some(b'-' | b'+')));
            let exponent_start = end;
            let mut exponent: i64 = 0;
            while let Some(&b) = bytes.get(end).filter(|b| b.is_ascii_digit()) {
                end += 1;
                exponent = exponent.saturating_mul(10).saturating_add(i64::from(b - b'0'));
            }
            if end == exponent_start {
                return None;
            }
            scale = scale.saturating_add(if exponent_negative { -exponent } else { exponent });
        }
        self.position = end;
        match exact_power_of_ten(scale) {
            // Clinger's fast path: an exact mantissa and an exact power of
            // ten, so one rounding, which is the correct one (and finite:
            // at most 2^53 * 10^22).
            Some(power) if integer_digits + fraction_digits <= 19 && mantissa <= MAX_EXACT => {
                let magnitude = if scale < 0 { mantissa as f64 / power } else { mantissa as f64 * power };
                Some(if negative { -magnitude } else { magnitude })
            }
            _ => {
                let value: f64 = std::str::from_utf8(&bytes[start..end]).ok()?.parse().ok()?;
                value.is_finite().then_some(value)
            }
        }
    }

    /// A JSON integer that fits an `i64` (what serde reads into one).
    pub fn integer(&mut self) -> Option<i64> {
        self.skip_whitespace();
        let start = self.position;
        self.accept(|b| b == b'-');
        match self.bytes.get(self.position)? {
            b'0' => self.position += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if matches!(self.bytes.get(self.position), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        std::str::from_utf8(&self.bytes[start..self.position]).ok()?.parse().ok()
    }

    fn accept(&mut self, wanted: impl Fn(u8) -> bool) -> bool {
        let found = self.bytes.get(self.position).is_some_and(|&b| wanted(b));
        if found {
            self.position += 1;
        }
        found
    }

    fn digits(&mut self) {
        while self.accept(|b| b.is_ascii_digit()) {}
    }

    /// Only whitespace is left.
    pub fn end(&mut self) -> Option<()> {
        self.skip_whitespace();
        (self.position == self.bytes.len()).then_some(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::Value;
    use trainloop_example_trainer::split::SplitMix64;

    fn serde_number(text: &str) -> Option<f64> {
        serde_json::from_str::<Value>(text).ok()?.as_f64()
    }

    fn scanned_number(text: &str) -> Option<f64> {
        let mut scanner = Scanner::new(text.as_bytes());
        let value = scanner.number()?;
        let end = scanner.position;
        scanner.end()?;
        // Followed by more of a body (so that short numbers are read as one
        // word), it reads the same and ends in the same place.
        let followed = format!("{text}]}} ,\"x\":1}}");
        let mut scanner = Scanner::new(followed.as_bytes());
        assert_eq!(scanner.number().map(f64::to_bits), Some(value.to_bits()), "{followed:?}");
        assert_eq!(scanner.position, end, "{followed:?}");
        Some(value)
    }

    fn pick<'a>(random: &mut SplitMix64, choices: &[&'a str]) -> &'a str {
        choices[random.below(choices.len())]
    }

    /// Checks `agrees` (which asserts, and answers whether the fast path took
    /// the body) on 20 000 variants of `bodies`, each with one to three bytes
    /// deleted, replaced or inserted (JSON tokens, and bytes that break UTF-8);
    /// enough of them must still take the fast path for the check to mean much.
    pub(crate) fn assert_agrees_on_mutations(bodies: &[&str], agrees: impl Fn(&[u8]) -> bool) {
        let taken = mutations(bodies, 20_000).iter().filter(|body| agrees(body)).count();
        assert!(taken > 100, "only {taken} mutated bodies took the fast path");
    }

    fn mutations(bodies: &[&str], count: usize) -> Vec<Vec<u8>> {
        const TOKENS: &[&str] = &[
            ",",
            "]",
            "[",
            "{",
            "}",
            ":",
            "\"",
            "\\",
            " ",
            "1",
            "-",
            ".",
            "e",
            "0",
            "null",
            "true",
            "\"x\"",
            "\"k\"",
            "\"a\"",
            "1e999",
            "\u{e9}",
            "\t",
            "\n",
            "\"instances\"",
            "\"inputs\"",
            "\"data\"",
        ];
        let mut random = SplitMix64(11);
        (0..count)
            .map(|i| {
                let mut body = bodies[i % bodies.len()].as_bytes().to_vec();
                for _ in 0..1 + random.below(3) {
                    let at = random.below(body.len() + 1);
                    let token = pick(&mut random, TOKENS).as_bytes();
                    match random.below(4) {
                        0 if at < body.len() => {
                            body.remove(at);
                        }
                        1 if at < body.len() => {
                            body.splice(at..at + 1, token.iter().copied());
                        }
                        2 if at < body.len() => body[at] = 0xc3,
                        _ => {
                            body.splice(at..at, token.iter().copied());
                        }
                    }
                }
                body
            })
            .collect()
    }

    /// Whatever the scanner reads as a number, serde_json reads as the same bits.
    #[test]
    fn numbers_read_as_serde_json_reads_them() {
        let mut random = SplitMix64(7);
        let mut agreed = 0;
        for case in 0..200_000 {
            let text: String = if case % 2 == 0 {
                // Arbitrary strings over the characters of numbers.
                let length = 1 + random.next_u64() % 12;
                (0..length).map(|_| pick(&mut random, &["-", "0", "1", "5", "9", ".", "e", "E", "+", " "])).collect()
            } else {
                // Well-formed numbers with long mantissas and extreme exponents.
                let digits: String = (0..1 + random.next_u64() % 25)
                    .map(|_| pick(&mut random, &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]))
                    .collect();
                let sign = pick(&mut random, &["", "-"]);
                // Exponents around the exact powers of ten (up to 22), and far out.
                let exponent = random.next_u64() % if random.below(2) == 0 { 30 } else { 700 };
                match random.next_u64() % 4 {
                    0 => format!("{sign}{digits}"),
                    1 => format!("{sign}0.{digits}"),
                    2 => format!("{sign}{}.{digits}e-{exponent}", &digits[..1]),
                    _ => format!("{sign}{digits}E+{}", exponent / 2),
                }
            };
            // The scanner reads what serde_json reads, and refuses what it refuses.
            let (scanned, expected) = (scanned_number(&text), serde_number(&text));
            assert_eq!(scanned.map(f64::to_bits), expected.map(f64::to_bits), "{text:?}: {expected:?} vs {scanned:?}");
            agreed += usize::from(scanned.is_some());
        }
        assert!(agreed > 50_000, "only {agreed} numbers were read");
        let short = ["17.99", "0.2776", "1001.0", "-0.07871", "12345.6", "123456.7", "1.234567", "0.0", "-9.9e2"];
        for text in short.into_iter().chain([
            "-0",
            "-0.0",
            "0",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
        ]) {
            assert_eq!(scanned_number(text).map(f64::to_bits), serde_number(text).map(f64::to_bits), "{text}");
        }
        for refused in ["01", "1.", ".5", "+1", "1e", "-", "1e999", "Infinity", "NaN", "0x10", "01.5", "1.e5", "-.5"] {
            assert_eq!(scanned_number(refused), None, "{refused}");
            // Followed by more: still refused, or read as the same prefix.
            let bare = Scanner::new(refused.as_bytes()).number();
            assert_eq!(Scanner::new(format!("{refused}]}}  ").as_bytes()).number(), bare, "{refused}");
        }
    }

    /// The digits of `bytes` from `start`, one at a time: what `read_digits` must answer.
    fn digits_one_by_one(bytes: &[u8], start: usize) -> (u64, usize) {
        let end = start + bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
        let mantissa = bytes[start..end].iter().fold(0u64, |m, b| m.wrapping_mul(10).wrapping_add(u64::from(b - b'0')));
        (mantissa, end)
    }

    #[test]
    fn digits_read_by_the_word_are_the_digits_read_one_by_one() {
        let mut random = SplitMix64(11);
        for length in 0..=41 {
            for tail in ["", "]", ".5", "e3", "        ", "x", "/", ":", "\u{ff}"] {
                let digits: String = (0..length).map(|_| char::from(b'0' + random.below(10) as u8)).collect();
                let text = format!("-{digits}{tail}");
                let mut mantissa = 0;
                let end = read_digits(text.as_bytes(), 1, &mut mantissa);
                assert_eq!((mantissa, end), digits_one_by_one(text.as_bytes(), 1), "{text:?}");
            }
        }
        // Every byte after every number of digits in a word.
        for digits in 0..8 {
            for byte in 0..=255u8 {
                let mut word = [b'7'; 8];
                word[digits] = byte;
                let expected = word.iter().take_while(|b| b.is_ascii_digit()).count();
                assert_eq!(leading_digits(u64::from_le_bytes(word)), expected, "{word:?}");
            }
        }
    }

    #[test]
    fn same_bytes_is_equality() {
        let mut random = SplitMix64(9);
        for _ in 0..100_000 {
            let a: Vec<u8> = (0..random.below(30)).map(|_| b"ab"[random.below(2)]).collect();
            let mut b = a.clone();
            match random.below(3) {
                0 if !b.is_empty() => {
                    let at = random.below(b.len());
                    b[at] ^= 1;
                }
                1 => b.push(b'a'),
                _ => {}
            }
            assert_eq!(same_bytes(&a, &b), a == b, "{a:?} {b:?}");
        }
    }

    /// Eight bytes at a time finds what a byte-by-byte search finds.
    #[test]
    fn string_length_stops_at_the_first_quote_backslash_or_control_byte() {
        let mut random = SplitMix64(3);
        let alphabet =
            [b'a', b'a', b'a', b'~', b' ', 0x7f, 0x80, 0xc3, 0xff, b'"', b'\\', 0x1f, 0x00, b'!', b'#', b'[', b']'];
        for _ in 0..100_000 {
            let length = random.below(40);
            let bytes: Vec<u8> = (0..length).map(|_| alphabet[random.below(alphabet.len())]).collect();
            let expected = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            assert_eq!(string_length(&bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn strings_with_escapes_or_control_characters_are_left_to_serde() {
        let string = |text: &str| Scanner::new(text.as_bytes()).string().map(str::to_string);
        assert_eq!(string(r#" "mean_radius" "#).as_deref(), Some("mean_radius"));
        assert_eq!(string("\"h\u{e9}\"").as_deref(), Some("h\u{e9}"));
        assert_eq!(string(r#""a\"b""#), None);
        assert_eq!(string("\"a\nb\""), None);
        assert_eq!(string("\"a\n\""), None);
        assert_eq!(string("\"abc"), None);
        assert_eq!(Scanner::new(b"\"\xff\"").string(), None);
    }

    #[test]
    fn integers_are_those_an_i64_takes() {
        let integer = |text: &str| Scanner::new(text.as_bytes()).integer();
        assert_eq!(integer("64"), Some(64));
        assert_eq!(integer("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(integer("9223372036854775808"), None);
        assert_eq!(integer("1.0"), None);
        assert_eq!(integer("1e2"), None);
    }
}

//! Go-style durations (`30s`, `5m`, `1h30m`, `1.5h`, `250ms`), as the CRDs' intervals are written.
//! Checked arithmetic throughout: a value too large for a `Duration` is `None`, never a panic
//! (`kube::core::Duration`'s parser panics on one, e.g. `99999999999999999999h`).

use std::time::Duration;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// The duration `text` spells, or `None` when it is not one or does not fit.
pub fn parse(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (number, tail) = rest.split_at(rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?);
        let (unit, tail) = tail.split_at(tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len()));
        let per_unit: u128 = match unit {
            "ms" => 1_000_000,
            "s" => NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "h" => 3600 * NANOS_PER_SECOND,
            _ => return None,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = whole.parse().ok()?;
        // Digits beyond the 18th are below a nanosecond of any unit here.
        let fraction = &fraction[..fraction.len().min(18)];
        let fraction_nanos = match fraction {
            "" => 0,
            digits => digits.parse::<u128>().ok()?.checked_mul(per_unit)? / 10u128.pow(digits.len() as u32),
        };
        nanos = nanos.checked_add(whole.checked_mul(per_unit)?)?.checked_add(fraction_nanos)?;
        rest = tail;
    }
    let seconds = u64::try_from(nanos / NANOS_PER_SECOND).ok()?;
    Some(Duration::new(seconds, (nanos % NANOS_PER_SECOND) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_crds_accept() {
        assert_eq!(parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("9.999s"), Some(Duration::from_millis(9999)));
    }

    #[test]
    fn refuses_nonsense_and_overflow_without_panicking() {
        for text in
            ["", "5", "s", "1d", "-5m", "1.5.2s", "99999999999999999999999999999999999999999h", "99999999999999999999h"]
        {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}

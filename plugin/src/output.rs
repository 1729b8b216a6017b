//! Printing: aligned tables as kubectl prints them, or the same data as JSON or YAML.

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::args::Output;

/// Columns padded to their widest cell, three spaces apart, as `kubectl get` prints.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let mut text = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        text.push_str(cells.join("   ").trim_end());
        text.push('\n');
    }
    text
}

/// `value` as JSON or YAML; `None` for a table, which the caller renders.
pub fn structured<T: Serialize>(format: Output, value: &T) -> anyhow::Result<Option<String>> {
    Ok(match format {
        Output::Table => None,
        Output::Json => Some(serde_json::to_string_pretty(value)? + "\n"),
        Output::Yaml => Some(serde_saphyr::to_string(value)?),
    })
}

/// An age as `kubectl get` shows it: `42s`, `7m`, `5h`, `3d`.
pub fn age(since: Option<Timestamp>, now: Timestamp) -> String {
    let Some(since) = since else { return "<unknown>".into() };
    let seconds = now.duration_since(since).as_secs().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// A metric value, short but exact enough to tell runs apart.
pub fn number(value: f64) -> String {
    format!("{value:.4}")
}

/// A signed difference: `+0.0123`, `-0.0040`.
pub fn delta(value: f64) -> String {
    format!("{value:+.4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell_and_lines_have_no_trailing_blanks() {
        let rows = vec![vec!["cancer-10".to_string(), "".to_string()], vec!["c-1".to_string(), "*".to_string()]];
        assert_eq!(table(&["NAME", "CHAMPION"], &rows), "NAME        CHAMPION\ncancer-10\nc-1         *\n");
    }

    #[test]
    fn ages_round_down_to_kubectls_units() {
        let now: Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        let ago = |s: i64| Some(now - k8s_openapi::jiff::SignedDuration::from_secs(s));
        assert_eq!(age(ago(5), now), "5s");
        assert_eq!(age(ago(119), now), "119s");
        assert_eq!(age(ago(600), now), "10m");
        assert_eq!(age(ago(3 * 3600), now), "3h");
        assert_eq!(age(ago(3 * 86400), now), "3d");
        assert_eq!(age(None, now), "<unknown>");
    }

    #[test]
    fn deltas_carry_their_sign() {
        assert_eq!(
            (delta(0.0123), delta(-0.004), number(0.97123)),
            ("+0.0123".into(), "-0.0040".into(), "0.9712".into())
        );
    }
}

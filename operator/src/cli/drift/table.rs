//! The comparison as an aligned text table for people.

use std::fmt::Write;

use crate::artifact::DriftMethod;
use crate::stats::KsPValueMethod;

use super::compare::{Comparison, Source};
use super::input::InputKind;

/// Renders the sources, one row per feature (every binned statistic, then
/// the raw ones when present), and the threshold's verdict.
pub fn render(comparison: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "reference  {}", describe(&comparison.reference));
    let _ = writeln!(out, "current    {}", describe(&comparison.current));
    out.push('\n');

    let has_raw = comparison.features.iter().any(|f| f.raw.is_some());
    let mut header: Vec<String> = vec!["feature".into(), "bins".into()];
    header.extend(comparison.methods.iter().map(|m| method_name(*m).to_string()));
    if has_raw {
        header.extend(["ks (raw)", "p-value", "wasserstein (raw)"].map(String::from));
    }
    let mut rows = vec![header];
    for feature in &comparison.features {
        let mut row = vec![feature.name.clone(), feature.bins.to_string()];
        for value in &feature.binned {
            let mark = if value.above_threshold { "*" } else { " " };
            row.push(format!("{}{mark}", number(value.value)));
        }
        if let Some(raw) = &feature.raw {
            row.extend([number(raw.ks.statistic), number(raw.ks.p_value), number(raw.wasserstein)]);
        } else if has_raw {
            row.extend(["-", "-", "-"].map(String::from));
        }
        rows.push(row);
    }
    out.push_str(&aligned(&rows));

    if let Some(threshold) = comparison.threshold {
        let drifted = comparison.features.iter().filter(|f| f.drifted).count();
        let _ = writeln!(
            out,
            "\n* above the threshold {threshold}: {drifted} of {} feature(s) drifted",
            comparison.features.len()
        );
    }
    if has_raw {
        let exact = comparison.features.iter().filter_map(|f| f.raw).all(|r| r.ks.method == KsPValueMethod::Exact);
        let _ = writeln!(
            out,
            "\nraw statistics on all values: two-sample KS ({} p-value) and Wasserstein-1, as SciPy's \
             ks_2samp and wasserstein_distance",
            if exact { "exact" } else { "asymptotic" }
        );
    }
    out
}

fn describe(source: &Source) -> String {
    match source.kind {
        InputKind::Profile => format!("{}  (profile, {} samples)", source.path, source.rows),
        InputKind::Data => format!("{}  (data, {} rows)", source.path, source.rows),
    }
}

pub fn method_name(method: DriftMethod) -> &'static str {
    match method {
        DriftMethod::Psi => "psi",
        DriftMethod::Ks => "ks",
        DriftMethod::Js => "js",
        DriftMethod::Wasserstein => "wasserstein",
        DriftMethod::Chi2 => "chi2",
    }
}

/// Six decimals where that shows the value, scientific notation otherwise
/// (tiny p-values, huge chi-square statistics).
fn number(value: f64) -> String {
    if value == 0.0 || (1e-4..1e6).contains(&value.abs()) { format!("{value:.6}") } else { format!("{value:.3e}") }
}

/// The first column left-aligned, the others right-aligned, two spaces apart.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, width))| if c == 0 { format!("{cell:<width$}") } else { format!("{cell:>width$}") })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

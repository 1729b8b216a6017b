//! `compare RUN RUN...`: metrics side by side with deltas against the first run, and the frozen
//! inputs in which the runs differ.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;
use kube::ResourceExt;
use serde::Serialize;
use trainloop_api::TrainingRun;

use crate::output::{delta, number, table};

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub runs: Vec<String>,
    pub metrics: Vec<MetricRow>,
    /// Inputs whose values differ between the runs.
    pub differences: Vec<InputRow>,
    /// Inputs every run shares.
    pub identical: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricRow {
    pub metric: String,
    /// One per run; `None` where a run did not report the metric.
    pub values: Vec<Option<f64>>,
    /// Against the first run, one per run (the first's is `None`).
    pub deltas: Vec<Option<f64>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputRow {
    pub input: String,
    pub values: Vec<String>,
}

/// Runs of different pipelines are not comparable: their gates and data differ by design.
pub fn same_pipeline(runs: &[TrainingRun]) -> anyhow::Result<()> {
    let Some(first) = runs.first() else { return Ok(()) };
    for run in &runs[1..] {
        if run.spec.pipeline != first.spec.pipeline {
            bail!(
                "tr/{} is a run of {}, not of {} as tr/{} is: compare runs of one pipeline",
                run.name_any(),
                pipeline_name(run),
                pipeline_name(first),
                first.name_any()
            );
        }
    }
    Ok(())
}

fn pipeline_name(run: &TrainingRun) -> String {
    run.spec.pipeline.as_ref().map_or("no pipeline".into(), |p| format!("pipeline {p}"))
}

pub fn compare(runs: &[TrainingRun]) -> Comparison {
    let statuses: Vec<_> = runs.iter().map(|r| r.status.clone().unwrap_or_default()).collect();
    let names: BTreeSet<&String> = statuses.iter().flat_map(|s| s.metrics.keys()).collect();
    let metrics = names
        .into_iter()
        .map(|metric| {
            let values: Vec<Option<f64>> = statuses.iter().map(|s| s.metrics.get(metric).copied()).collect();
            let deltas = values
                .iter()
                .enumerate()
                .map(|(i, value)| match (i, values[0], value) {
                    (0, _, _) => None,
                    (_, Some(base), Some(value)) => Some(value - base),
                    _ => None,
                })
                .collect();
            MetricRow { metric: metric.clone(), values, deltas }
        })
        .collect();
    let (mut differences, mut identical) = (Vec::new(), Vec::new());
    for (input, values) in inputs(runs) {
        if values.iter().all(|v| *v == values[0]) {
            identical.push(input);
        } else {
            differences.push(InputRow { input, values });
        }
    }
    Comparison { runs: runs.iter().map(|r| r.name_any()).collect(), metrics, differences, identical }
}

/// Each frozen input of the runs, by name, one value per run.
fn inputs(runs: &[TrainingRun]) -> BTreeMap<String, Vec<String>> {
    let mut inputs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |name: String, value: String| inputs.entry(name).or_default().push(value);
    let absent = || "-".to_string();
    let keys: BTreeSet<&String> = runs.iter().flat_map(|r| r.spec.hyperparameters.keys()).collect();
    let features: BTreeSet<&String> = runs.iter().flat_map(|r| r.spec.features.iter().map(|f| &f.name)).collect();
    for run in runs {
        let spec = &run.spec;
        add("configHash".into(), spec.config_hash.clone().unwrap_or_else(absent));
        for key in &keys {
            add(format!("hyperparameters.{key}"), spec.hyperparameters.get(*key).cloned().unwrap_or_else(absent));
        }
        add(
            "data".into(),
            spec.data.uri.clone() + &spec.data.version.as_ref().map(|v| format!(" ({v})")).unwrap_or_default(),
        );
        let digest = run.status.as_ref().and_then(|s| s.data_digest.clone());
        add("dataDigest".into(), digest.unwrap_or_else(absent));
        add("image".into(), spec.image.clone());
        add("seed".into(), spec.seed.to_string());
        for name in &features {
            let feature = spec.features.iter().find(|f| &f.name == *name);
            let value = feature.and_then(|f| serde_json::to_string(f).ok());
            add(format!("features.{name}"), value.unwrap_or_else(absent));
        }
    }
    inputs
}

pub fn render(comparison: &Comparison) -> String {
    let mut headers = vec!["METRIC"];
    headers.extend(comparison.runs.iter().map(String::as_str));
    let metrics: Vec<Vec<String>> = comparison
        .metrics
        .iter()
        .map(|row| {
            let cells = row.values.iter().zip(&row.deltas).map(|(value, change)| match (value, change) {
                (None, _) => "-".to_string(),
                (Some(v), None) => number(*v),
                (Some(v), Some(d)) => format!("{} ({})", number(*v), delta(*d)),
            });
            std::iter::once(row.metric.clone()).chain(cells).collect()
        })
        .collect();
    let mut text = table(&headers, &metrics);
    text.push('\n');
    if comparison.differences.is_empty() {
        text.push_str("Frozen inputs: all identical.\n");
    } else {
        headers[0] = "INPUT";
        let rows: Vec<Vec<String>> = comparison
            .differences
            .iter()
            .map(|row| std::iter::once(row.input.clone()).chain(row.values.iter().map(|v| short(v))).collect())
            .collect();
        text.push_str(&table(&headers, &rows));
        text.push_str(&format!("Identical: {}\n", summary(&comparison.identical).join(", ")));
    }
    text
}

/// Identical inputs with a common prefix counted rather than listed (`10 features`); the JSON
/// output lists them all.
fn summary(identical: &[String]) -> Vec<String> {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for input in identical {
        let group = input.split_once('.').map_or(input.as_str(), |(prefix, _)| prefix);
        groups.entry(group).or_default().push(input);
    }
    groups
        .into_iter()
        .map(|(group, inputs)| match inputs.as_slice() {
            [single] => single.to_string(),
            _ => format!("{} {group}", inputs.len()),
        })
        .collect()
}

/// A digest shortened to what a person compares by eye; other values whole.
pub fn short(value: &str) -> String {
    match value.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 => format!("sha256:{}", &hex[..12]),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::run;

    #[test]
    fn metrics_show_deltas_against_the_first_run_and_only_differing_inputs_are_listed() {
        let first = run("churn-1", "churn", "2026-11-30T11:00:00Z", Some(("Passed", 0.95)));
        let mut second = run("churn-2", "churn", "2026-11-30T11:30:00Z", Some(("Rejected", 0.93)));
        second.spec.hyperparameters.insert("C".into(), "0.5".into());
        second.spec.config_hash = Some(crate::fixtures::digest('4'));
        second.spec.seed = 8;
        second.status.as_mut().unwrap().metrics.remove("accuracy");
        let text = render(&compare(&[first, second]));
        assert_eq!(
            text,
            "METRIC     churn-1   churn-2\n\
             accuracy   0.9000    -\n\
             auc        0.9500    0.9300 (-0.0200)\n\
             \n\
             INPUT               churn-1               churn-2\n\
             configHash          sha256:333333333333   sha256:444444444444\n\
             hyperparameters.C   1.0                   0.5\n\
             seed                7                     8\n\
             Identical: data, dataDigest, features.age, hyperparameters.max_iter, image\n"
        );
        let identical = ["features.a", "features.b", "hyperparameters.C", "image"].map(String::from);
        assert_eq!(summary(&identical), ["2 features", "hyperparameters.C", "image"]);
    }

    #[test]
    fn identical_runs_say_so_and_a_missing_feature_is_a_difference() {
        let first = run("churn-1", "churn", "2026-11-30T11:00:00Z", Some(("Passed", 0.95)));
        let same = run("churn-2", "churn", "2026-11-30T11:30:00Z", Some(("Passed", 0.95)));
        assert!(render(&compare(&[first.clone(), same.clone()])).ends_with("Frozen inputs: all identical.\n"));
        let mut fewer = same;
        fewer.spec.features.clear();
        let comparison = compare(&[first, fewer]);
        assert_eq!(comparison.differences[0].input, "features.age");
        assert_eq!(comparison.differences[0].values[1], "-");
        assert_eq!(comparison.metrics[1].deltas, [None, Some(0.0)]);
    }

    #[test]
    fn runs_of_another_pipeline_are_refused_by_name() {
        let churn = run("churn-1", "churn", "2026-11-30T11:00:00Z", None);
        let other = run("fraud-1", "fraud", "2026-11-30T11:00:00Z", None);
        let error = same_pipeline(&[churn, other]).unwrap_err().to_string();
        assert_eq!(
            error,
            "tr/fraud-1 is a run of pipeline fraud, not of pipeline churn as tr/churn-1 is: compare runs of one pipeline"
        );
    }
}

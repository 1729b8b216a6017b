//! `runs [PIPELINE]`: one line per run, with the champion each pipeline's next run is judged
//! against marked.

use std::collections::BTreeSet;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;
use trainloop_api::gates::best_passing;
use trainloop_api::{ModelDeployment, TrainingRun};

use crate::output::{age, table};

/// One run as listed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRow {
    pub name: String,
    pub pipeline: Option<String>,
    pub trigger: String,
    pub reason: String,
    pub phase: String,
    pub metric: Option<String>,
    pub gate: Option<String>,
    pub champion: bool,
    pub age: String,
}

/// The runs of `pipeline` (all when `None`), oldest first, each pipeline's champion marked.
pub fn rows(
    runs: &[TrainingRun],
    deployments: &[ModelDeployment],
    pipeline: Option<&str>,
    now: Timestamp,
) -> Vec<RunRow> {
    let mut selected: Vec<&TrainingRun> =
        runs.iter().filter(|run| pipeline.is_none_or(|p| run.spec.pipeline.as_deref() == Some(p))).collect();
    selected.sort_by_key(|run| (run.spec.pipeline.clone(), run.creation_timestamp().map(|t| t.0), run.name_any()));
    let champions = champions(runs, deployments);
    selected
        .into_iter()
        .map(|run| {
            let status = run.status.clone().unwrap_or_default();
            RunRow {
                name: run.name_any(),
                pipeline: run.spec.pipeline.clone(),
                trigger: run.spec.trigger.trigger_type.as_str().to_string(),
                reason: run.spec.trigger.reason.clone(),
                phase: status.phase.as_str().to_string(),
                metric: status.headline,
                gate: status.evaluation.map(|e| format!("{:?}", e.result)),
                champion: champions.contains(&run.name_any()),
                age: age(run.creation_timestamp().map(|t| t.0), now),
            }
        })
        .collect()
}

/// The champion of each pipeline, as the operator chooses it for the gates: the run a
/// ModelDeployment following the pipeline serves, else its best passing run.
pub fn champions(runs: &[TrainingRun], deployments: &[ModelDeployment]) -> BTreeSet<String> {
    let pipelines: BTreeSet<&str> = runs.iter().filter_map(|r| r.spec.pipeline.as_deref()).collect();
    pipelines
        .into_iter()
        .filter_map(|pipeline| {
            let served = deployments.iter().find_map(|md| {
                let follows = md.spec.source.pipeline_ref.as_ref().is_some_and(|p| p.name == pipeline);
                follows.then(|| md.status.as_ref()?.current_model.as_ref().map(|m| m.run.clone())).flatten()
            });
            served.or_else(|| {
                let own: Vec<&TrainingRun> =
                    runs.iter().filter(|r| r.spec.pipeline.as_deref() == Some(pipeline)).collect();
                let newest = own.iter().max_by_key(|r| r.creation_timestamp().map(|t| t.0))?;
                best_passing(own.iter().copied(), &newest.spec.evaluation, "").map(|c| c.name)
            })
        })
        .collect()
}

pub fn render(rows: &[RunRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.trigger.clone(),
                r.phase.clone(),
                r.metric.clone().unwrap_or_else(|| "-".into()),
                r.gate.clone().unwrap_or_else(|| "-".into()),
                if r.champion { "*".into() } else { String::new() },
                r.age.clone(),
            ]
        })
        .collect();
    table(&["NAME", "TRIGGER", "PHASE", "METRIC", "GATE", "CHAMPION", "AGE"], &cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{deployment, run};

    fn now() -> Timestamp {
        "2026-11-30T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_line_per_run_of_the_pipeline_oldest_first_with_the_best_passing_run_as_champion() {
        let runs = [
            run("churn-2", "churn", "2026-11-30T11:58:00Z", Some(("Passed", 0.93))),
            run("churn-1", "churn", "2026-11-30T11:00:00Z", Some(("Passed", 0.95))),
            run("other-1", "other", "2026-11-30T11:00:00Z", Some(("Passed", 0.99))),
        ];
        let text = render(&rows(&runs, &[], Some("churn"), now()));
        assert_eq!(
            text,
            "NAME      TRIGGER   PHASE       METRIC      GATE     CHAMPION   AGE\n\
             churn-1   Drift     Succeeded   auc=0.950   Passed   *          60m\n\
             churn-2   Drift     Succeeded   auc=0.930   Passed              2m\n"
        );
    }

    #[test]
    fn the_served_model_of_a_following_deployment_is_the_champion_and_unfinished_runs_show_dashes() {
        let runs = [
            run("churn-1", "churn", "2026-11-30T11:00:00Z", Some(("Passed", 0.95))),
            run("churn-2", "churn", "2026-11-30T11:30:00Z", Some(("Passed", 0.93))),
            run("churn-3", "churn", "2026-11-30T11:59:30Z", None),
        ];
        let rows = rows(&runs, &[deployment("churn", Some("churn"), "churn-2", &[])], None, now());
        let marked: Vec<&str> = rows.iter().filter(|r| r.champion).map(|r| r.name.as_str()).collect();
        assert_eq!(marked, ["churn-2"]);
        assert_eq!(
            (rows[2].phase.as_str(), rows[2].metric.as_deref(), rows[2].gate.as_deref()),
            ("Running", None, None)
        );
        assert_eq!(
            render(&rows).lines().last().unwrap(),
            "churn-3   Drift     Running     -           -                   30s"
        );
    }
}

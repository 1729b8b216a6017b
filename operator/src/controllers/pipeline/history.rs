//! Pure: which finished runs to delete, keeping the newest N succeeded and M failed runs, the
//! champion, and every run a ModelDeployment serves or may roll back to.

use std::collections::BTreeSet;

use crate::api::{Evaluation, GateOutcome, History, RunPhase, TrainingRun};
use crate::controllers::run::gates::best_passing;

use super::resolve::run_index;

/// The runs that are the pipeline's champion: the best passing run by the first gate (what a new
/// run must beat) and the newest passing run (what a deployment following the pipeline serves).
/// History pruning never deletes them, however many newer runs there are.
pub fn champions(runs: &[TrainingRun], evaluation: &Evaluation) -> BTreeSet<String> {
    let passed = |run: &&TrainingRun| {
        run.status.as_ref().and_then(|s| s.evaluation.as_ref()).is_some_and(|e| e.result == GateOutcome::Passed)
    };
    let newest = runs.iter().filter(passed).max_by_key(|run| run_index(run)).and_then(|run| run.metadata.name.clone());
    let best = best_passing(runs, evaluation, "").map(|champion| champion.name);
    newest.into_iter().chain(best).collect()
}

/// Names of the runs to delete. `protected` are served or rollback targets.
pub fn prune(runs: &[TrainingRun], history: &History, protected: &BTreeSet<String>) -> Vec<String> {
    let mut finished: Vec<(i64, RunPhase, String)> = runs
        .iter()
        .filter_map(|run| {
            let phase = run.status.as_ref()?.phase;
            let name = run.metadata.name.clone()?;
            Some((run_index(run)?, phase, name))
        })
        .filter(|(_, phase, _)| !matches!(phase, RunPhase::Pending | RunPhase::Running))
        .collect();
    finished.sort_by_key(|(index, _, _)| std::cmp::Reverse(*index));
    let (mut succeeded, mut failed) = (0, 0);
    let mut doomed = Vec::new();
    for (_, phase, name) in finished {
        let (kept, limit) = match phase {
            RunPhase::Succeeded => (&mut succeeded, history.succeeded),
            _ => (&mut failed, history.failed),
        };
        if *kept < limit {
            *kept += 1;
        } else if !protected.contains(&name) {
            doomed.push(name);
        }
    }
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TrainingRunStatus;
    use crate::controllers::labels;

    fn run(index: i64, phase: RunPhase) -> TrainingRun {
        let mut run: TrainingRun = serde_json::from_value(serde_json::json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingRun",
            "metadata": {"name": format!("p-{index}"), "labels": {labels::RUN_INDEX: index.to_string()}},
            "spec": {"trigger": {"type": "Manual"}, "image": "i", "features": [{"name": "a", "type": "number"}],
                     "data": {"uri": "file:///d"}, "evaluation": {"gates": []}}
        }))
        .unwrap();
        run.status = Some(TrainingRunStatus { phase, ..TrainingRunStatus::default() });
        run
    }

    fn judged(index: i64, auc: f64, result: GateOutcome) -> TrainingRun {
        let mut run = run(index, RunPhase::Succeeded);
        let status = run.status.as_mut().unwrap();
        status.metrics.insert("auc".into(), auc);
        status.evaluation = Some(crate::api::EvaluationResult { result, ..Default::default() });
        run
    }

    #[test]
    fn rejected_runs_never_push_the_champion_out() {
        let runs = [
            judged(1, 0.99, GateOutcome::Passed),
            judged(2, 0.95, GateOutcome::Rejected),
            judged(3, 0.96, GateOutcome::Rejected),
            judged(4, 0.97, GateOutcome::Rejected),
        ];
        let evaluation: Evaluation = serde_json::from_value(
            serde_json::json!({"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9}]}),
        )
        .unwrap();
        let protected = champions(&runs, &evaluation);
        assert_eq!(protected, BTreeSet::from(["p-1".to_string()]));
        let doomed = prune(&runs, &History { succeeded: 2, failed: 0 }, &protected);
        assert_eq!(doomed, ["p-2"], "p-1 is the champion; p-4 and p-3 are the newest two");
    }

    #[test]
    fn keeps_the_newest_of_each_outcome_and_every_protected_run() {
        let runs: Vec<TrainingRun> = (1..=8)
            .map(|i| run(i, if i % 2 == 0 { RunPhase::Succeeded } else { RunPhase::Failed }))
            .chain([run(9, RunPhase::Running)])
            .collect();
        let history = History { succeeded: 2, failed: 1 };
        let protected = BTreeSet::from(["p-2".to_string()]);
        let mut doomed = prune(&runs, &history, &protected);
        doomed.sort();
        // Succeeded: 8, 6 kept; 4 deleted; 2 served. Failed: 7 kept; 5, 3, 1 deleted. 9 is running.
        assert_eq!(doomed, ["p-1", "p-3", "p-4", "p-5"]);
    }
}

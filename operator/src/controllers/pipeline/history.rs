//! Pure: which finished runs to delete, keeping the newest N succeeded and M failed runs and
//! every run a ModelDeployment serves or may roll back to.

use std::collections::BTreeSet;

use crate::api::{History, RunPhase, TrainingRun};

use super::resolve::run_index;

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

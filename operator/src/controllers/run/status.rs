//! Pure: the status a run should have, given what was observed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{GateOutcome, RunPhase, TrainingRun, TrainingRunStatus};
use crate::controllers::conditions::{self, Desired, merge};

use super::build::ValidatedRun;
use super::gates::{self, Champion};
use super::outcome::Outcome;

/// Condition types this controller manages on runs.
const MANAGED: &[&str] = &["Ready", "Reconciling", "Stalled", "Passed", "Rejected"];

/// A run whose spec cannot work: it failed before starting, and says what to fix.
pub fn invalid(run: &TrainingRun, old: &TrainingRunStatus, problem: &str) -> TrainingRunStatus {
    let desired =
        [Desired::new("Ready", false, "InvalidSpec", problem), Desired::new("Stalled", true, "InvalidSpec", problem)];
    TrainingRunStatus {
        observed_generation: run.metadata.generation,
        phase: RunPhase::Failed,
        conditions: merge(&old.conditions, &desired, MANAGED, run.metadata.generation, Timestamp::now()),
        ..old.clone()
    }
}

/// A run whose reconcile keeps failing: its phase stays, its conditions say what fails.
pub fn failing(run: &TrainingRun, old: &TrainingRunStatus, reason: &str, message: &str) -> TrainingRunStatus {
    let desired = conditions::failing(reason, message);
    TrainingRunStatus {
        conditions: merge(&old.conditions, &desired, MANAGED, run.metadata.generation, Timestamp::now()),
        ..old.clone()
    }
}

/// A run that a newer run replaced (`concurrencyPolicy: Replace`).
pub fn superseded(run: &TrainingRun, old: &TrainingRunStatus, message: &str) -> TrainingRunStatus {
    let desired = [Desired::new("Ready", false, "Superseded", message)];
    TrainingRunStatus {
        observed_generation: run.metadata.generation,
        phase: RunPhase::Superseded,
        completion_time: Some(Time(Timestamp::now())),
        conditions: merge(&old.conditions, &desired, MANAGED, run.metadata.generation, Timestamp::now()),
        ..old.clone()
    }
}

/// A started run whose Job disappeared.
pub fn vanished(run: &TrainingRun, old: &TrainingRunStatus, outcome: &Outcome) -> TrainingRunStatus {
    let Outcome::Failed { finished, reason, message } = outcome else { return old.clone() };
    let desired = [
        Desired::new("Ready", false, *reason, message.clone()),
        Desired::new("Stalled", true, *reason, message.clone()),
    ];
    TrainingRunStatus {
        observed_generation: run.metadata.generation,
        phase: RunPhase::Failed,
        completion_time: finished.map(Time),
        conditions: merge(&old.conditions, &desired, MANAGED, run.metadata.generation, Timestamp::now()),
        ..old.clone()
    }
}

/// The status that reflects `outcome`; for a success, judged against `champion`.
pub fn observed(
    run: &TrainingRun,
    old: &TrainingRunStatus,
    validated: &ValidatedRun,
    outcome: &Outcome,
    champion: Option<&Champion>,
) -> TrainingRunStatus {
    let generation = run.metadata.generation;
    let mut status =
        TrainingRunStatus { observed_generation: generation, job_name: Some(validated.name.clone()), ..old.clone() };
    let desired = match outcome {
        Outcome::Pending => {
            status.phase = RunPhase::Pending;
            vec![
                Desired::new("Ready", false, "Pending", "waiting for the training pod to start"),
                Desired::new("Reconciling", true, "Pending", "waiting for the training pod to start"),
            ]
        }
        Outcome::Blocked { reason, message } => {
            status.phase = RunPhase::Pending;
            vec![
                Desired::new("Ready", false, reason.clone(), message.clone()),
                Desired::new("Stalled", true, reason.clone(), message.clone()),
            ]
        }
        Outcome::Running { started } => {
            status.phase = RunPhase::Running;
            status.start_time = started.map(Time);
            vec![
                Desired::new("Ready", false, "Running", "the trainer is running"),
                Desired::new("Reconciling", true, "Running", "the trainer is running"),
            ]
        }
        Outcome::Failed { finished, reason, message } => {
            status.phase = RunPhase::Failed;
            status.completion_time = finished.map(Time).or(status.completion_time);
            vec![
                Desired::new("Ready", false, *reason, message.clone()),
                Desired::new("Stalled", true, *reason, message.clone()),
            ]
        }
        Outcome::Succeeded { started, finished, result } => {
            status.phase = RunPhase::Succeeded;
            status.start_time = started.map(Time).or(status.start_time);
            status.completion_time = finished.map(Time).or(status.completion_time);
            status.data_digest = Some(result.data_digest.clone());
            status.metrics = result.metrics.clone();
            status.artifact = Some(result.artifact.clone());
            status.profile = Some(result.profile.clone());
            let (evaluation, summary) = gates::judge(&run.spec.evaluation, &result.metrics, champion);
            status.headline = headline(run, &result.metrics);
            let verdict = match evaluation.result {
                GateOutcome::Passed => Desired::new("Passed", true, "GatesPassed", summary),
                GateOutcome::Rejected => Desired::new("Rejected", true, "GatesRejected", summary),
            };
            status.evaluation = Some(evaluation);
            vec![Desired::new("Ready", true, "Succeeded", "the run succeeded and was judged"), verdict]
        }
    };
    status.conditions = merge(&old.conditions, &desired, MANAGED, generation, Timestamp::now());
    status
}

/// `auc=0.9312` for the first gate's metric (or the first metric), shown by `kubectl get tr`.
fn headline(run: &TrainingRun, metrics: &std::collections::BTreeMap<String, f64>) -> Option<String> {
    let name =
        run.spec.evaluation.gates.first().map(|g| g.metric.as_str()).or(metrics.keys().next().map(String::as_str))?;
    let value = metrics.get(name)?;
    Some(format!("{name}={value:.4}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::{ArtifactRef, Gate, Goal};
    use crate::artifact::TrainerResult;
    use crate::controllers::Settings;
    use crate::controllers::run::build::{tests::sample_run, validate};

    fn run_gated_on_auc(threshold: f64) -> TrainingRun {
        let mut run = sample_run();
        run.metadata.generation = Some(3);
        run.spec.evaluation.gates =
            vec![Gate { metric: "auc".into(), goal: Goal::Maximize, threshold, min_improvement: None }];
        run
    }

    fn succeeded(auc: f64) -> Outcome {
        let at = |s| Some(Timestamp::from_second(s).unwrap());
        Outcome::Succeeded {
            started: at(100),
            finished: at(200),
            result: TrainerResult {
                metrics: BTreeMap::from([("auc".into(), auc), ("f1".into(), 0.5)]),
                artifact: ArtifactRef { uri: "file:///a/model.json".into(), digest: "sha256:aa".into() },
                data_digest: "sha256:bb".into(),
                profile: "file:///a/profile.json".into(),
            },
        }
    }

    /// (type, status, reason) of every condition, in order.
    fn conditions(status: &TrainingRunStatus) -> Vec<(&str, &str, &str)> {
        status.conditions.iter().map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str())).collect()
    }

    fn observe(run: &TrainingRun, old: &TrainingRunStatus, outcome: &Outcome) -> TrainingRunStatus {
        // Pods sharing the operator's files, as on localplane.
        let settings = Settings { local_files: true, ..Settings::new("file:///a") };
        let validated = validate(run, &settings).unwrap();
        observed(run, old, &validated, outcome, None)
    }

    #[test]
    fn a_success_records_the_result_and_the_verdict_of_its_gates() {
        let run = run_gated_on_auc(0.8);
        let status = observe(&run, &TrainingRunStatus::default(), &succeeded(0.9));
        assert_eq!(status.phase, RunPhase::Succeeded);
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.job_name.as_deref(), Some("churn-3"));
        assert_eq!(status.artifact.as_ref().map(|a| a.digest.as_str()), Some("sha256:aa"));
        assert_eq!(status.data_digest.as_deref(), Some("sha256:bb"));
        assert_eq!(status.profile.as_deref(), Some("file:///a/profile.json"));
        assert_eq!(status.metrics.get("auc"), Some(&0.9));
        assert_eq!(status.headline.as_deref(), Some("auc=0.9000"));
        assert_eq!(status.start_time, Some(Time(Timestamp::from_second(100).unwrap())));
        assert_eq!(status.evaluation.as_ref().map(|e| e.result), Some(GateOutcome::Passed));
        assert_eq!(conditions(&status), [("Passed", "True", "GatesPassed"), ("Ready", "True", "Succeeded")]);

        let rejected = observe(&run_gated_on_auc(0.95), &TrainingRunStatus::default(), &succeeded(0.9));
        assert_eq!(rejected.phase, RunPhase::Succeeded);
        assert_eq!(rejected.evaluation.as_ref().map(|e| e.result), Some(GateOutcome::Rejected));
        assert_eq!(conditions(&rejected), [("Ready", "True", "Succeeded"), ("Rejected", "True", "GatesRejected")]);
    }

    #[test]
    fn each_phase_replaces_the_conditions_of_the_one_before() {
        let run = run_gated_on_auc(0.8);
        let pending = observe(&run, &TrainingRunStatus::default(), &Outcome::Pending);
        assert_eq!(pending.phase, RunPhase::Pending);
        assert_eq!(conditions(&pending), [("Ready", "False", "Pending"), ("Reconciling", "True", "Pending")]);

        let blocked = Outcome::Blocked { reason: "ErrImagePull".into(), message: "no such image".into() };
        let blocked = observe(&run, &pending, &blocked);
        assert_eq!(blocked.phase, RunPhase::Pending);
        assert_eq!(conditions(&blocked), [("Ready", "False", "ErrImagePull"), ("Stalled", "True", "ErrImagePull")]);

        let started = Some(Timestamp::from_second(100).unwrap());
        let running = observe(&run, &blocked, &Outcome::Running { started });
        assert_eq!(running.phase, RunPhase::Running);
        assert_eq!(running.start_time, started.map(Time));
        assert_eq!(conditions(&running), [("Ready", "False", "Running"), ("Reconciling", "True", "Running")]);

        // A failure without a time of its own keeps the completion time already recorded.
        let earlier = TrainingRunStatus { completion_time: started.map(Time), ..running };
        let failed = Outcome::Failed { finished: None, reason: "BackoffLimitExceeded", message: "exit 1".into() };
        let failed = observe(&run, &earlier, &failed);
        assert_eq!(failed.phase, RunPhase::Failed);
        assert_eq!(failed.completion_time, started.map(Time));
        assert!(failed.evaluation.is_none());
        assert_eq!(
            conditions(&failed),
            [("Ready", "False", "BackoffLimitExceeded"), ("Stalled", "True", "BackoffLimitExceeded")]
        );
    }

    #[test]
    fn an_invalid_a_superseded_and_a_vanished_run_end_failed_or_superseded() {
        let run = run_gated_on_auc(0.8);
        let running = TrainingRunStatus { phase: RunPhase::Running, ..TrainingRunStatus::default() };

        let invalid = invalid(&run, &running, "spec.features is empty");
        assert_eq!(invalid.phase, RunPhase::Failed);
        assert_eq!(conditions(&invalid), [("Ready", "False", "InvalidSpec"), ("Stalled", "True", "InvalidSpec")]);
        assert_eq!(invalid.conditions[1].message, "spec.features is empty");

        let superseded = superseded(&run, &running, "replaced by churn-4");
        assert_eq!(superseded.phase, RunPhase::Superseded);
        assert!(superseded.completion_time.is_some());
        assert_eq!(conditions(&superseded), [("Ready", "False", "Superseded")]);

        let gone = Outcome::Failed { finished: None, reason: "JobDeleted", message: "the Job was deleted".into() };
        assert_eq!(vanished(&run, &running, &gone).phase, RunPhase::Failed);
        assert_eq!(vanished(&run, &running, &Outcome::Pending), running);

        // A failing reconcile says so and leaves the phase alone.
        let failing = failing(&run, &running, "KubeApi", "the API server refused");
        assert_eq!(failing.phase, RunPhase::Running);
        assert_eq!(conditions(&failing), [("Ready", "False", "KubeApi"), ("Reconciling", "True", "KubeApi")]);
    }
}

//! Pure: the status a run should have, given what was observed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{ArtifactRef, GateOutcome, RunPhase, TrainingRun, TrainingRunStatus};
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
            status.artifact =
                Some(ArtifactRef { uri: result.artifact.uri.clone(), digest: result.artifact.digest.clone() });
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

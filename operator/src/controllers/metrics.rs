//! The operator's Prometheus metrics: the reconcile loop itself and the training loop it drives.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    pub category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerLabels {
    pub trigger: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub trigger: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PipelineLabels {
    pub namespace: String,
    pub pipeline: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GateLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RollbackLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriftValueLabels {
    pub policy: String,
    pub monitor: String,
    pub feature: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EvaluationLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SuppressionLabels {
    pub reason: &'static str,
}

/// Every metric, registered once at start.
#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<ControllerLabels, Histogram>,
    pub runs_finished: Family<RunLabels, Counter>,
    pub run_duration: Histogram,
    pub gate_outcomes: Family<GateLabels, Counter>,
    pub runs_started: Family<TriggerLabels, Counter>,
    pub queued_runs: Family<PipelineLabels, Gauge>,
    pub controller_restarts: Counter,
    pub api_requests: Family<super::client::RequestLabels, Counter>,
    pub promotions: Counter,
    pub rollbacks: Family<RollbackLabels, Counter>,
    pub promotion_seconds: Histogram,
    pub drift_value: Family<DriftValueLabels, Gauge<f64, AtomicU64>>,
    pub drift_evaluations: Family<EvaluationLabels, Counter>,
    pub retrains: Counter,
    pub retrains_suppressed: Family<SuppressionLabels, Counter>,
}

impl Metrics {
    /// Create the metrics and register them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics {
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(|| {
                Histogram::new([0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0])
            }),
            runs_finished: Family::default(),
            run_duration: Histogram::new([10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4.0 * 3600.0, 24.0 * 3600.0]),
            gate_outcomes: Family::default(),
            runs_started: Family::default(),
            queued_runs: Family::default(),
            controller_restarts: Counter::default(),
            api_requests: Family::default(),
            promotions: Counter::default(),
            rollbacks: Family::default(),
            promotion_seconds: Histogram::new([1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0]),
            drift_value: Family::default(),
            drift_evaluations: Family::default(),
            retrains: Counter::default(),
            retrains_suppressed: Family::default(),
        };
        registry.register("reconciles", "Reconciles by controller", metrics.reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciles by controller and error category",
            metrics.reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            metrics.reconcile_duration.clone(),
        );
        registry.register("runs_started", "Training runs created, by trigger", metrics.runs_started.clone());
        registry.register(
            "runs_finished",
            "Training runs finished, by trigger and outcome",
            metrics.runs_finished.clone(),
        );
        registry.register("run_duration_seconds", "Wall time of finished training runs", metrics.run_duration.clone());
        registry.register("gate_outcomes", "Evaluation results of succeeded runs", metrics.gate_outcomes.clone());
        registry.register("kube_requests", "Requests sent to the Kubernetes API server", metrics.api_requests.clone());
        registry.register(
            "queued_runs",
            "Whether a pipeline's triggers wait for an earlier run to finish (Forbid), per pipeline",
            metrics.queued_runs.clone(),
        );
        registry.register(
            "controller_restarts",
            "Restarts of the controllers after their watches kept failing",
            metrics.controller_restarts.clone(),
        );
        registry.register(
            "promotions",
            "Models that took all traffic of a ModelDeployment",
            metrics.promotions.clone(),
        );
        registry.register(
            "rollbacks",
            "Rollouts rolled back to the previous model, by reason",
            metrics.rollbacks.clone(),
        );
        registry.register(
            "promotion_seconds",
            "From a run passing its gates to its model taking all traffic",
            metrics.promotion_seconds.clone(),
        );
        registry.register(
            "drift_value",
            "The latest drift statistic of a DriftPolicy's monitor, by feature",
            metrics.drift_value.clone(),
        );
        registry.register(
            "drift_evaluations",
            "Monitor evaluations by outcome (ok, breach, waiting for samples, error)",
            metrics.drift_evaluations.clone(),
        );
        registry.register("retrains", "Retrains requested by DriftPolicies", metrics.retrains.clone());
        registry.register(
            "retrains_suppressed",
            "Firing DriftPolicies whose retrain a guard held, by guard",
            metrics.retrains_suppressed.clone(),
        );
        metrics
    }

    /// Count one reconcile of `controller` that took `elapsed`.
    pub fn reconciled(&self, controller: &'static str, elapsed: Duration) {
        let labels = ControllerLabels { controller };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// Count a failed reconcile.
    pub fn failed(&self, controller: &'static str, category: &'static str) {
        self.reconcile_errors.get_or_create(&ErrorLabels { controller, category }).inc();
    }
}

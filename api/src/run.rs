//! TrainingRun: one execution of a pipeline, with every input it resolved frozen in its spec.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::EnvVar;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    Condition, DataSource, Evaluation, FeatureSpec, NAME_PATTERN, PodOptions, StorageAccess, Time, trainer_env_rule,
};
use super::{HandledTriggers, labels};
// The trainer result's artifact reference is the run's `status.artifact` as is.
pub use trainloop_contract::ArtifactRef;

/// One execution of a pipeline. Its spec is the resolved input and never changes, so the run can
/// be reproduced from it alone.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trainloop.dev",
    version = "v1alpha1",
    kind = "TrainingRun",
    namespaced,
    shortname = "tr",
    category = "trainloop",
    status = "TrainingRunStatus",
    cel,
    validation = Rule::new("self.spec == oldSelf.spec").message("TrainingRun spec is immutable: create a new run instead"),
    validation = Rule::new("size(self.metadata.name) <= 63")
        .message("metadata.name: a run name has at most 63 characters: it names the run's Job and labels its pods"),
    printcolumn(name = "Pipeline", type_ = "string", json_path = ".spec.pipeline"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Trigger", type_ = "string", json_path = ".spec.trigger.type"),
    printcolumn(name = "Metric", type_ = "string", json_path = ".status.headline"),
    printcolumn(name = "Gate", type_ = "string", json_path = ".status.evaluation.result"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct TrainingRunSpec {
    /// The pipeline this run belongs to; its champion is the baseline for `minImprovement`.
    /// At most 52 characters, as a pipeline's name: it labels the run's Job and pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 52), regex(pattern = NAME_PATTERN))]
    pub pipeline: Option<String>,
    /// Why this run exists.
    pub trigger: Trigger,
    /// Trainer image.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Entrypoint override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Arguments to the entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Extra environment variables. The `TRAINLOOP_*` ones are the operator's to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    #[x_kube(
        merge_strategy = ListMerge::Map(vec!["name".into()]),
        validation = trainer_env_rule()
    )]
    pub env: Option<Vec<EnvVar>>,
    /// Where the trainer pod runs and what it gets beyond the image.
    #[serde(flatten)]
    pub pod: PodOptions,
    /// Hyperparameters handed to the trainer as its config file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hyperparameters: BTreeMap<String, String>,
    /// `sha256:<hex>` of the config file; filled in by the controller when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^sha256:[0-9a-f]{64}$"))]
    pub config_hash: Option<String>,
    /// The feature schema the data must follow.
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[schemars(length(min = 1))]
    pub features: Vec<FeatureSpec>,
    /// The training data.
    pub data: DataSource,
    /// Credentials of the trainer pod for the data and the artifact root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageAccess>,
    /// Random seed.
    #[serde(default)]
    #[schemars(range(min = 0, max = 4_294_967_295_i64))]
    pub seed: i64,
    /// The gates this run is judged by.
    pub evaluation: Evaluation,
    /// Retries of a failed trainer pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub backoff_limit: Option<i32>,
    /// How long a run's trainer may take to start (image pulled, container running) before the
    /// run fails with the reason it could not start. Default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2_147_483_647))]
    pub start_timeout_seconds: Option<i64>,
    /// Time limit of the Job, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2_147_483_647))]
    pub active_deadline_seconds: Option<i64>,
    /// Kueue queue of the Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = NAME_PATTERN))]
    pub queue_name: Option<String>,
}

/// Why a run exists.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// The kind of trigger.
    #[serde(rename = "type")]
    pub trigger_type: TriggerType,
    /// A sentence for humans, e.g. `psi(tenure)=0.31 > 0.20 in DriftPolicy churn`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 1024))]
    pub reason: String,
}

/// The kinds of trigger.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TriggerType {
    /// Created by hand.
    #[default]
    Manual,
    /// A new generation of the pipeline spec.
    SpecChange,
    /// A changed `retrainToken`.
    RetrainToken,
    /// The cron schedule fired.
    Schedule,
    /// The data digest changed.
    DataChange,
    /// A DriftPolicy fired.
    Drift,
}

impl TriggerType {
    /// The name as in the API: a stable metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::Manual => "Manual",
            TriggerType::SpecChange => "SpecChange",
            TriggerType::RetrainToken => "RetrainToken",
            TriggerType::Schedule => "Schedule",
            TriggerType::DataChange => "DataChange",
            TriggerType::Drift => "Drift",
        }
    }
}

/// Where a run is in its life.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RunPhase {
    /// Waiting for its Job to start (or for an earlier run under `Forbid`).
    #[default]
    Pending,
    /// The trainer is running.
    Running,
    /// The trainer finished and reported a valid result.
    Succeeded,
    /// The trainer failed or reported an invalid result.
    Failed,
    /// Stopped in favour of a newer run (`concurrencyPolicy: Replace`).
    Superseded,
}

impl RunPhase {
    /// The name as in the API: a stable metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Pending => "Pending",
            RunPhase::Running => "Running",
            RunPhase::Succeeded => "Succeeded",
            RunPhase::Failed => "Failed",
            RunPhase::Superseded => "Superseded",
        }
    }
}

impl TrainingRun {
    /// The pipeline's handled triggers recorded on this run when it was created (annotation
    /// [`labels::HANDLED`]); `None` for a run the pipeline controller did not create.
    pub fn handled_triggers(&self) -> Option<HandledTriggers> {
        serde_json::from_str(self.metadata.annotations.as_ref()?.get(labels::HANDLED)?).ok()
    }
}

/// What the run produced and how it was judged.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TrainingRunStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the run is.
    #[serde(default)]
    pub phase: RunPhase,
    /// The training Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// When the Job started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// `sha256:<hex>` of the data the trainer read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_digest: Option<String>,
    /// Metrics on the held-out split.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    /// The main metric for `kubectl get`, e.g. `auc=0.912`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// The model the run produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactRef>,
    /// URI of the reference feature profile of the training data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The judgement of the gates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<EvaluationResult>,
    /// `Ready`, `Reconciling`, `Stalled`, `Passed`/`Rejected`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// The outcome of the gates.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationResult {
    /// `Passed` or `Rejected`.
    pub result: GateOutcome,
    /// The run compared against, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion: Option<String>,
    /// Evidence per gate.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["metric".into()]))]
    pub gates: Vec<GateResult>,
}

/// Passed or rejected.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GateOutcome {
    #[default]
    Passed,
    Rejected,
}

/// The evidence for one gate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GateResult {
    /// The metric judged.
    pub metric: String,
    /// The run's value, absent when the trainer did not report the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The gate's threshold.
    pub threshold: f64,
    /// The champion's value, when there is a champion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion_value: Option<f64>,
    /// Improvement over the champion (positive is better, whatever the goal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// Whether the gate passed.
    pub pass: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_annotated(handled: Option<&str>) -> TrainingRun {
        let spec = serde_json::json!({"trigger": {"type": "Manual"}, "image": "trainer:1", "features": [],
            "data": {"uri": "file:///data/churn.csv"}, "evaluation": {"gates": []}});
        let mut run = TrainingRun::new("churn-2", serde_json::from_value(spec).expect("a minimal run spec"));
        run.metadata.annotations = handled.map(|h| BTreeMap::from([(labels::HANDLED.to_string(), h.to_string())]));
        run
    }

    #[test]
    fn handled_triggers_are_read_from_the_annotation_and_absent_when_missing_or_unreadable() {
        let handled = run_annotated(Some(r#"{"runIndex":2,"generation":3}"#)).handled_triggers();
        assert_eq!(handled, Some(HandledTriggers { run_index: Some(2), generation: Some(3), ..Default::default() }));
        assert_eq!(run_annotated(None).handled_triggers(), None);
        assert_eq!(run_annotated(Some("not json")).handled_triggers(), None);
    }
}

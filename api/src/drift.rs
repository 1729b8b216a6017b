//! DriftPolicy: watches a served model and retrains its pipeline when a monitor fires.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, DURATION_PATTERN, LocalRef, Time};
/// The drift statistics, shared with the model servers' profiles.
pub use trainloop_contract::DriftMethod;

/// Watches a ModelDeployment and retrains its pipeline when a monitor fires.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trainloop.dev",
    version = "v1alpha1",
    kind = "DriftPolicy",
    namespaced,
    shortname = "dp",
    category = "trainloop",
    status = "DriftPolicyStatus",
    cel,
    printcolumn(name = "Deployment", type_ = "string", json_path = ".spec.deploymentRef.name"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Last Retrain", type_ = "string", json_path = ".status.lastTriggeredRun"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.interval) >= duration('5s')")
    .message("interval must be at least 5s"))]
pub struct DriftPolicySpec {
    /// The ModelDeployment to watch; its pipeline is retrained.
    pub deployment_ref: LocalRef,
    /// How often the monitors are evaluated.
    #[serde(default = "one_minute")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: String,
    /// The monitors; any one firing requests a retrain. At most 32: the API server refuses a
    /// CRD whose per-item CEL rule has no bound on the list's length (its cost budget).
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub monitors: Vec<Monitor>,
    /// Guards against retrain storms.
    #[serde(default)]
    pub guards: Guards,
    /// Evaluate monitors but start no runs.
    #[serde(default)]
    pub suspend: bool,
}

fn one_minute() -> String {
    "1m".into()
}

/// One monitor: exactly one of `featureDrift`, `prometheus` and `webhook`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.featureDrift), has(self.prometheus), has(self.webhook)].filter(x, x).size() == 1")
    .message("set exactly one of featureDrift, prometheus and webhook"))]
pub struct Monitor {
    /// Name of the monitor, unique in the policy.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Compare the live feature profile of the served model with its training profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_drift: Option<FeatureDriftMonitor>,
    /// Fire when a PromQL query crosses a threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMonitor>,
    /// Fire when Alertmanager posts a matching alert to the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookMonitor>,
}

/// Feature drift against the champion run's reference profile.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FeatureDriftMonitor {
    /// The statistic.
    #[serde(default)]
    pub method: DriftMethod,
    /// Fire when the statistic of any watched feature exceeds this.
    #[schemars(range(min = 0.0))]
    pub threshold: f64,
    /// Features to watch; all features when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub features: Option<Vec<String>>,
    /// Samples the live profile needs before it is judged.
    #[serde(default = "hundred")]
    #[schemars(range(min = 1, max = 1_000_000_000))]
    pub min_samples: i64,
}

fn hundred() -> i64 {
    100
}

/// A PromQL query compared with a threshold.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMonitor {
    /// Base URL of the Prometheus HTTP API.
    #[schemars(regex(pattern = r"^https?://.+$"))]
    pub url: String,
    /// An instant PromQL query returning one sample.
    #[schemars(length(min = 1))]
    pub query: String,
    /// How the sample is compared with the threshold.
    #[serde(default)]
    pub comparison: Comparison,
    /// The threshold.
    pub threshold: f64,
}

/// Comparisons.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Comparison {
    #[default]
    GreaterThan,
    LessThan,
}

/// An Alertmanager-compatible receiver on the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMonitor {
    /// Labels an alert must carry to fire this monitor.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Secret key holding the bearer token the sender must present.
    pub token_secret_ref: SecretKeyRef,
}

/// A key in a Secret of the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253), regex(pattern = super::common::NAME_PATTERN))]
    pub name: String,
    /// Key in the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// Guards against retrain storms.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Guards {
    /// Consecutive breaching evaluations before a monitor fires.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 1000))]
    pub consecutive: i32,
    /// Minimum time between two retrains.
    #[serde(default = "one_hour")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub cooldown: String,
    /// At most this many retrains per rolling 24 hours.
    #[serde(default = "three")]
    #[schemars(range(min = 0, max = 1000))]
    pub max_retrains_per_day: i32,
}

impl Default for Guards {
    fn default() -> Self {
        Guards { consecutive: one(), cooldown: one_hour(), max_retrains_per_day: three() }
    }
}

fn one() -> i32 {
    1
}

fn one_hour() -> String {
    "1h".into()
}

fn three() -> i32 {
    3
}

/// What the monitors saw and what the policy did.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DriftPolicyStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Watching`, `Firing` or `Suppressed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Per monitor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub monitors: Vec<MonitorStatus>,
    /// The newest run this policy started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_triggered_run: Option<String>,
    /// When it was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_triggered_time: Option<Time>,
    /// Why a firing monitor started no run (cooldown, daily limit, a drift run already pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression_reason: Option<String>,
    /// The newest retrain this policy asked of its pipeline. The pipeline controller, the only
    /// creator of runs, consumes it like a retrain token: one run per request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrain_request: Option<RetrainRequest>,
    /// How many retrains this policy has requested: the next request id counts on from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrain_requests: Option<i64>,
    /// When the retrains of the last 24 hours were requested: the cooldown and the daily limit
    /// count from here, so they hold across an operator restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_retrains: Vec<Time>,
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// A retrain asked of a pipeline by a DriftPolicy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetrainRequest {
    /// Unique to this request: never used again, by this policy or one of the same name.
    pub id: String,
    /// The pipeline asked to retrain.
    pub pipeline: String,
    /// Why, for people: recorded as the run's trigger reason.
    pub reason: String,
    /// When it was asked.
    pub requested_at: Time,
}

/// What one monitor saw.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MonitorStatus {
    /// The monitor.
    pub name: String,
    /// The latest value (the largest over the watched features for feature drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The feature with that value, for feature drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// The value of every watched feature, for feature drift.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feature_values: BTreeMap<String, f64>,
    /// Rows of live traffic the latest value was computed on, for feature drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<i64>,
    /// The threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Whether the monitor is firing.
    #[serde(default)]
    pub firing: bool,
    /// Consecutive breaching evaluations.
    #[serde(default)]
    pub consecutive_breaches: i32,
    /// Since when it has been firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// When it was last evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation_time: Option<Time>,
    /// Why no value could be computed, if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For feature drift: per server pod, the cursor of the profile read whose rows the latest
    /// value judged. The operator acknowledges it to the pod as this monitor's reader, and only
    /// then does the pod subtract those rows, for this reader alone; after a restart it
    /// acknowledges them again from here (the pod subtracts them once for this reader), so,
    /// while the pod holds the reader, this monitor neither loses a row nor judges one twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile_cursors: Vec<ProfileCursor>,
}

/// A server pod's cursor: names the rows of one read of its live profile.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProfileCursor {
    pub pod: String,
    pub cursor: String,
}

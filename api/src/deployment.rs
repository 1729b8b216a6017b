//! ModelDeployment: serves one model, follows a pipeline's champion or a pinned run, rolls back.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::EnvVar;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, LocalRef, PodOptions, StorageAccess, Time};

/// Serves one model behind a Service, and rolls it out safely.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trainloop.dev",
    version = "v1alpha1",
    kind = "ModelDeployment",
    namespaced,
    shortname = "md",
    category = "trainloop",
    status = "ModelDeploymentStatus",
    cel,
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Model", type_ = "string", json_path = ".status.currentModel.run"),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.endpoint"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ModelDeploymentSpec {
    /// Which model to serve.
    pub source: ModelSource,
    /// The serving container.
    pub serving: Serving,
    /// Credentials of the server pods for reading the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageAccess>,
    /// How a new model replaces the old one.
    #[serde(default)]
    pub rollout: Rollout,
}

/// Exactly one of `pipelineRef` (follow the pipeline's champion) and `runRef` (pin one run).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.pipelineRef) != has(self.runRef)")
    .message("set exactly one of source.pipelineRef and source.runRef"))]
pub struct ModelSource {
    /// Promote every run of this pipeline that passes its gates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_ref: Option<LocalRef>,
    /// Serve this run, and only it: the GitOps way to pin a model or roll back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_ref: Option<LocalRef>,
}

/// The model server. It receives the model as `MODEL_URI` (and `MODEL_DIGEST`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Serving {
    /// Model server image.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Entrypoint override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Arguments to the entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Port the server listens on.
    #[serde(default = "http_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Number of server pods.
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// Extra environment variables. `MODEL_URI`, `MODEL_DIGEST`, `MODEL_NAME`, `PORT` and
    /// `POD_IP` are the operator's to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    #[x_kube(
        merge_strategy = ListMerge::Map(vec!["name".into()]),
        validation = Rule::new("self.all(e, !(e.name in ['MODEL_URI', 'MODEL_DIGEST', 'MODEL_NAME', 'PORT', 'POD_IP']))")
            .message("MODEL_URI, MODEL_DIGEST, MODEL_NAME, PORT and POD_IP are set by the operator (the serving contract)")
    )]
    pub env: Option<Vec<EnvVar>>,
    /// Where the server pods run and what they get beyond the image. Their service account's
    /// API token is never mounted.
    #[serde(flatten)]
    pub pod: PodOptions,
}

fn http_port() -> i32 {
    8080
}

fn one() -> i32 {
    1
}

/// How a new model replaces the old one.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// `RollingUpdate` keeps serving during the change; `Recreate` stops the old model first.
    #[serde(default)]
    pub strategy: RolloutStrategy,
    /// HTTP path that must answer 2xx before the new model takes traffic.
    #[serde(default = "ready_path")]
    #[schemars(regex(pattern = r"^/.*$"))]
    pub readiness_path: String,
    /// A prediction request that must succeed before the new model takes traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke_test: Option<SmokeTest>,
    /// How long a new model may take to become ready before it is rolled back.
    #[serde(default = "five_minutes")]
    #[schemars(range(min = 1, max = 86400))]
    pub progress_deadline_seconds: i32,
    /// Go back to the previous model when the new one fails its smoke test or readiness.
    #[serde(default = "enabled")]
    pub auto_rollback: bool,
    /// How many previous models to remember as rollback targets.
    #[serde(default = "three")]
    #[schemars(range(min = 0, max = 100))]
    pub keep_previous: i32,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            strategy: RolloutStrategy::default(),
            readiness_path: ready_path(),
            smoke_test: None,
            progress_deadline_seconds: five_minutes(),
            auto_rollback: true,
            keep_previous: three(),
        }
    }
}

fn ready_path() -> String {
    "/v2/health/ready".into()
}

fn five_minutes() -> i32 {
    300
}

fn enabled() -> bool {
    true
}

fn three() -> i32 {
    3
}

/// Rollout strategies.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RolloutStrategy {
    #[default]
    RollingUpdate,
    Recreate,
}

/// A request sent to a new model before it takes traffic.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SmokeTest {
    /// Path to POST to, e.g. `/v1/models/model:predict`.
    #[schemars(regex(pattern = r"^/.*$"))]
    pub path: String,
    /// JSON body of the request.
    #[schemars(length(min = 1))]
    pub body: String,
}

/// What is served and how the rollout went.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ModelDeploymentStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The model taking traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_model: Option<ServedModel>,
    /// Earlier models, newest first: the rollback targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_models: Vec<ServedModel>,
    /// In-cluster URL of the model server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Server pods ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// The model being rolled out, while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
    /// Models whose rollout failed, newest first (at most 10): not tried again under the same
    /// spec generation, so a broken champion is not retried in a loop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_models: Vec<FailedModel>,
    /// `Ready`, `Progressing`, `Degraded`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// A model that is or was served.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServedModel {
    /// The TrainingRun that produced it.
    pub run: String,
    /// Artifact URI.
    pub artifact_uri: String,
    /// Artifact digest.
    pub artifact_digest: String,
    /// The run's metrics.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    /// URI of the model's reference feature profile: the default smoke test's input row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// When it started taking traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<Time>,
}

/// A model on its way to taking traffic.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The model rolled out.
    pub model: ServedModel,
    /// When its pods started to be rolled out (unset while the deployment is scaled to 0): the
    /// progress deadline counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When its run passed its gates: promotion latency is measured from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed_at: Option<Time>,
}

/// A model whose rollout failed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FailedModel {
    /// The TrainingRun that produced it.
    pub run: String,
    /// Artifact digest.
    pub artifact_digest: String,
    /// `ProgressDeadlineExceeded`, `ServerExited`, `DigestRefused` or `SmokeTestFailed`.
    pub reason: String,
    /// What happened, e.g. the server's last words.
    pub message: String,
    /// The spec generation it failed under: a new generation (another image, say) tries it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// When the failure was seen.
    pub failed_at: Time,
}

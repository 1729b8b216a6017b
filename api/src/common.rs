//! Types shared by more than one resource: references, the trainer's inputs, feature schemas,
//! gates and kstatus-style conditions.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvFromSource, EnvVar, LocalObjectReference, ResourceRequirements, SecretEnvSource, Toleration, Volume,
    VolumeMount,
};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
// One feature declaration for the CRD and the trainer/server contract.
pub use trainloop_contract::{FeatureSpec, FeatureType};

/// A Kubernetes object name (RFC 1123 subdomain), as the API server accepts it.
pub const NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// The CEL rule on a trainer's extra `env`: the `TRAINLOOP_*` variables are the operator's (the
/// trainer contract), on a pipeline's template and a run alike.
pub fn trainer_env_rule() -> kube::core::Rule {
    kube::core::Rule::new("self.all(e, !e.name.startsWith('TRAINLOOP_'))")
        .message("variables starting with TRAINLOOP_ are set by the operator (the trainer contract)")
}

/// A Go-style duration such as `30s`, `5m` or `1h30m`: what `kubectl`, Argo CD and Flux users
/// already write for intervals.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// A reference to another object of a known kind in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct LocalRef {
    /// Name of the referenced object.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
}

/// Where the training data lives.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DataSource {
    /// URI of the data set: `s3://`, `gs://`, `az://`, `file://`, `http://` or `https://`.
    #[schemars(length(min = 1), regex(pattern = r"^(file|https?|s3|gs|az)://.+$"))]
    pub uri: String,
    /// Optional label of the data version, recorded on every run (e.g. a date or a commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Where a pod's storage credentials come from: a Secret the operator names in the pod spec
/// and never reads, so its values stay out of the spec, the status and the operator's logs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StorageAccess {
    /// A Secret in the same namespace whose keys become the pod's environment (`envFrom`), e.g.
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` for an
    /// S3-compatible server, `GOOGLE_SERVICE_ACCOUNT_KEY`, `AZURE_STORAGE_ACCOUNT_NAME` and
    /// `AZURE_STORAGE_ACCOUNT_KEY`. Variables the operator sets (`TRAINLOOP_*`, `MODEL_*`) win.
    pub secret_ref: LocalRef,
}

impl StorageAccess {
    /// The container's `envFrom`: the Secret's keys as variables. A missing Secret keeps the pod
    /// from starting, which the run's start timeout and the deployment's progress report name.
    pub fn env_from(storage: Option<&StorageAccess>) -> Option<Vec<EnvFromSource>> {
        let storage = storage?;
        let secret = SecretEnvSource { name: storage.secret_ref.name.clone(), optional: Some(false) };
        Some(vec![EnvFromSource { secret_ref: Some(secret), ..EnvFromSource::default() }])
    }
}

/// Whether a larger or a smaller metric value is better.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    #[default]
    Maximize,
    Minimize,
}

/// An evaluation gate: a run is promoted only if every gate passes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// Name of a metric the trainer reports, e.g. `auc`.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[A-Za-z_][A-Za-z0-9_.-]*$"))]
    pub metric: String,
    /// `maximize` or `minimize`.
    pub goal: Goal,
    /// The value the metric must reach (at least for maximize, at most for minimize).
    pub threshold: f64,
    /// How much better than the current champion the metric must be, if there is a champion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub min_improvement: Option<f64>,
}

/// The gates every run of a pipeline is judged by.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("size(self.gates) > 0 || self.passWithoutGates")
    .message("declare at least one gate, or set passWithoutGates: true to promote runs unjudged"))]
pub struct Evaluation {
    /// Gates keyed by metric; all must pass. At most 32, so that the trainer's result, which
    /// reports each gate's metric, fits in a termination message (4 KiB).
    #[serde(default)]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["metric".into()]))]
    pub gates: Vec<Gate>,
    /// Explicitly promote runs when no gate is declared.
    #[serde(default)]
    pub pass_without_gates: bool,
}

/// The trainer container: what runs in each training Job.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TrainerTemplate {
    /// Container image, preferably pinned by digest (`repo@sha256:...`) for reproducibility.
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
}

/// What a real workload needs beyond its image, for trainer and server pods alike: mounted
/// volumes, environment from ConfigMaps and Secrets, resources (GPUs too), and where the pod may
/// run. Each field is the Kubernetes field of the same name, passed to the pod unchanged.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodOptions {
    /// CPU, memory and accelerator requests and limits, e.g. `limits: {nvidia.com/gpu: 1}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Variables from whole ConfigMaps and Secrets. Variables the operator sets win over them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub env_from: Option<Vec<EnvFromSource>>,
    /// Volumes of the pod, mounted by `volumeMounts`. Names starting with `trainloop-` are the
    /// operator's (`trainloop-config`, `trainloop-artifacts`, `trainloop-data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(
        merge_strategy = ListMerge::Map(vec!["name".into()]),
        validation = Rule::new("self.all(v, !v.name.startsWith('trainloop-'))")
            .message("volume names starting with trainloop- are reserved for the operator's own volumes")
    )]
    pub volumes: Option<Vec<Volume>>,
    /// Where the container mounts `volumes`. The operator's own mounts (its config directory
    /// `/etc/trainloop`, the artifact and data volumes) cannot be replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(
        validation = Rule::new("self.all(m, !m.name.startsWith('trainloop-'))")
            .message("volume names starting with trainloop- are reserved for the operator's own volumes"),
        validation = Rule::new("self.all(m, m.mountPath != '/etc/trainloop' && !m.mountPath.startsWith('/etc/trainloop/'))")
            .message("/etc/trainloop is reserved for the files the operator mounts (the trainer's config)")
    )]
    pub volume_mounts: Option<Vec<VolumeMount>>,
    /// Service account the pod runs as: with workload identity (EKS, GKE, AKS), what grants it
    /// access to a bucket without a credentials Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub service_account_name: Option<String>,
    /// Node labels the pod must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations of the pod, e.g. of GPU nodes' taints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Node and pod affinity and anti-affinity of the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Secrets to pull a private image with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// PriorityClass of the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), regex(pattern = NAME_PATTERN))]
    pub priority_class_name: Option<String>,
}

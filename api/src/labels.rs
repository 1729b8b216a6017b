//! Label and annotation keys the operator puts on what it creates, and clients read.

/// Every child names its pipeline here, so runs and Jobs are found by label selector.
pub const PIPELINE: &str = "trainloop.dev/pipeline";
/// Every child of a run names it here.
pub const RUN: &str = "trainloop.dev/run";
/// The run's sequence number within its pipeline (`<pipeline>-<n>`).
pub const RUN_INDEX: &str = "trainloop.dev/run-index";
/// The pipeline's handled triggers after this run was created (JSON), for crash recovery.
pub const HANDLED: &str = "trainloop.dev/handled";
/// Set by the pipeline controller on a run that a newer run replaces (`concurrencyPolicy:
/// Replace`); the run controller then records it as Superseded and stops its Job.
pub const SUPERSEDED_BY: &str = "trainloop.dev/superseded-by";
/// The standard marker of the tool that manages an object.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Kueue's queue label.
pub const KUEUE_QUEUE: &str = "kueue.x-k8s.io/queue-name";
/// The field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "trainloop";
/// Every child of a ModelDeployment (its Deployment, Service and server pods) names it here.
pub const DEPLOYMENT: &str = "trainloop.dev/deployment";
/// The artifact digest of the model a server pod runs (an annotation of the pod template, beside
/// the run's name under [`RUN`], so each model is its own ReplicaSet).
pub const ARTIFACT_DIGEST: &str = "trainloop.dev/artifact-digest";
/// The pod readiness gate the operator sets once a server pod passed its smoke test: Services
/// route only to Ready pods, so an unverified model never takes traffic.
pub const MODEL_VERIFIED: &str = "trainloop.dev/model-verified";

//! trainloop-contract: the formats that cross a process boundary, shared by the
//! operator, trainers, model servers and the CLI.
//!
//! Everything here is pure data and pure functions, with no Kubernetes client,
//! HTTP server or async runtime, so that the operator, the example trainer and
//! the example model server agree byte for byte and a workload links only this:
//! - [`schema`]: the declared feature schema (also a pipeline's `spec.features`
//!   in the CRD) and the checks applied to training rows and serving requests
//!   alike (factor 2);
//! - [`preprocess`] and [`model`]: the versioned model artifact, which carries
//!   its own preprocessing so serving cannot drift from training (factor 9);
//! - [`profile`]: the reference feature profile (bins from training data) and
//!   the binning that a server applies to live traffic;
//! - [`drift`]: statistics comparing two profiles with identical bins;
//! - [`result`]: the JSON a trainer writes to its termination message;
//! - [`digest`]: the `sha256:<hex>` digests of artifacts and data.

pub mod digest;
pub mod drift;
pub mod model;
pub mod preprocess;
pub mod profile;
pub mod result;
pub mod schema;
pub mod serving;

pub use digest::{Sha256Stream, is_sha256_digest, sha256_digest};
pub use drift::{DriftError, DriftMethod, FeatureDrift, compare_profiles, drift};
pub use model::{
    ARTIFACT_FORMAT_VERSION, ArtifactError, LOGISTIC_REGRESSION, LinearModel, ModelArtifact, Provenance, Target,
};
pub use preprocess::{FeatureTransform, Preprocessing, TransformStep};
pub use profile::{Bins, FeatureBins, FeatureProfile, PROFILE_FORMAT_VERSION, quantile_edges_of_sorted};
pub use result::{ArtifactRef, TERMINATION_MESSAGE_LIMIT, TrainerResult};
pub use schema::{ColumnViolation, FeatureSchema, FeatureSpec, FeatureType, FeatureValue, SchemaError, Violation};

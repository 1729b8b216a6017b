//! The four custom resources of `trainloop.dev/v1alpha1`, generated into CRDs.

// kube's `printcolumn(name = .., type_ = ..)` repeats keys by design; clippy mistakes that for
// a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

mod common;
mod deployment;
mod drift;
pub mod gates;
pub mod labels;
mod pipeline;
mod run;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use common::*;
pub use deployment::*;
pub use drift::*;
pub use pipeline::*;
pub use run::*;

/// The API group of every trainloop resource.
pub const GROUP: &str = "trainloop.dev";

/// Every CRD trainloop defines, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![TrainingPipeline::crd(), TrainingRun::crd(), ModelDeployment::crd(), DriftPolicy::crd()]
}

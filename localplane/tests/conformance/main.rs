//! Conformance with a real API server where clients notice (issue 12): one module per
//! behaviour, each checked with the real kubectl where it can show it, kube-rs otherwise.
//! DELETE's answers are checked on localplane and the real API server alike, in
//! `e2e/tests/both_planes.rs`.

#[path = "../common/mod.rs"]
mod common;

mod aggregated_discovery;
mod bootstrap_objects;
mod events;
mod everyday_kubectl;
mod field_selectors;
mod in_cluster_access;
mod metadata_writes;
mod readiness_gates;
mod rollout_history;
mod rollouts;
mod subresources;

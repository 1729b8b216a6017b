//! The error of the workload controllers' reconciles: one type for the Job, ReplicaSet and
//! Deployment controllers, which fail only by an API call failing.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube api: {0}")]
    Kube(#[from] kube::Error),
}

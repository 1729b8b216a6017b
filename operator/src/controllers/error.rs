//! The controllers' errors, each with a stable category used as Event reason and metric label.

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource asks for something that cannot work; it waits for a spec change.
    #[error("{0}")]
    InvalidSpec(String),
    /// A call to the API server failed; retried with backoff.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be (de)serialized.
    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),
    /// Something outside the cluster (data URI, model server) did not answer; retried.
    #[error("{0}")]
    External(String),
}

impl Error {
    /// PascalCase, stable: the Event reason and the `category` label of failure metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::Kube(_) => "KubeApi",
            Error::Serialization(_) => "Serialization",
            Error::External(_) => "External",
        }
    }

    /// A write lost an optimistic-concurrency race (the cache was behind): retried at once, and
    /// never reported as a failure of the object.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(status)) if status.is_conflict())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The controllers' errors, each with a stable category used as Event reason and metric label.

/// Why a reconcile failed. A spec that cannot work is not an error: the reconcile reports it on
/// the resource (a `Stalled` condition and a Warning event) and waits for a change. What fails a
/// reconcile is the API server, and it is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    /// PascalCase, stable: the Event reason and the `category` label of failure metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeApi",
        }
    }

    /// A write lost an optimistic-concurrency race (the cache was behind): retried at once, and
    /// never reported as a failure of the object.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(status)) if status.is_conflict())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

//! What went wrong with an object, in words a person can act on, and a stable reason for
//! conditions and metrics.

/// An object could not be read, written or versioned.
#[derive(Debug, thiserror::Error)]
#[error("{uri}: {problem}")]
pub struct StorageError {
    pub uri: String,
    pub problem: Problem,
}

#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("invalid URI: {0}")]
    InvalidUri(String),
    #[error("unsupported scheme {0}://: use s3://, gs://, az://, file:// or http(s)://")]
    Unsupported(String),
    #[error("http(s):// URIs can be read, not written")]
    ReadOnly,
    #[error("no such object")]
    NotFound,
    #[error("the bucket does not exist: {0}")]
    NoSuchBucket(String),
    #[error("access denied (check the credentials in the storage Secret and what they may read and write): {0}")]
    AccessDenied(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("storage unreachable (check the endpoint): {0}")]
    Unreachable(String),
    #[error("the store's client cannot be set up: {0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

impl StorageError {
    pub fn new(uri: &str, problem: Problem) -> Self {
        StorageError { uri: uri.to_string(), problem }
    }

    /// Classifies an `object_store` error by what a person would do about it.
    pub fn from_store(uri: &str, error: object_store::Error) -> Self {
        let detail = error_chain(&error);
        let problem = match &error {
            object_store::Error::NotFound { .. } if detail.contains("NoSuchBucket") => Problem::NoSuchBucket(detail),
            object_store::Error::NotFound { .. } => Problem::NotFound,
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                Problem::AccessDenied(detail)
            }
            object_store::Error::UnknownConfigurationKey { .. } => Problem::Config(detail),
            _ if detail.contains("NoSuchBucket") => Problem::NoSuchBucket(detail),
            _ if detail.contains("timed out") || detail.contains("Timeout") => Problem::Timeout(detail),
            _ if detail.contains("Connection refused") || detail.contains("dns error") => Problem::Unreachable(detail),
            _ if detail.contains("credential") => Problem::AccessDenied(detail),
            _ => Problem::Other(detail),
        };
        StorageError::new(uri, problem)
    }

    /// A stable PascalCase reason for run conditions and metric labels.
    pub fn reason(&self) -> &'static str {
        match self.problem {
            Problem::InvalidUri(_) => "InvalidStorageUri",
            Problem::Unsupported(_) => "UnsupportedStorage",
            Problem::ReadOnly => "ReadOnlyStorage",
            Problem::NotFound => "ObjectNotFound",
            Problem::NoSuchBucket(_) => "BucketNotFound",
            Problem::AccessDenied(_) => "StorageAccessDenied",
            Problem::Timeout(_) => "StorageTimeout",
            Problem::Unreachable(_) => "StorageUnreachable",
            Problem::Config(_) => "StorageConfig",
            Problem::Other(_) => "StorageError",
        }
    }
}

/// The error and its causes on one line: the cause a person can act on ("Connection refused")
/// often sits at the bottom of the chain.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

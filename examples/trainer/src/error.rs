//! Every way a training run can fail; the message goes to the termination log.

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("environment variable {name}: {reason}")]
    Env { name: &'static str, reason: String },
    #[error("hyperparameter {key:?}: {reason}")]
    Config { key: String, reason: String },
    #[error("cannot read {uri}: {reason}")]
    Fetch { uri: String, reason: String },
    #[error("data is not valid CSV: {0}")]
    Csv(String),
    #[error("feature schema: {0}")]
    Schema(String),
    #[error("data does not match the feature schema: {0}")]
    Data(#[from] trainloop_contract::SchemaError),
    #[error("target column {column:?}: {reason}")]
    Target { column: String, reason: String },
    #[error("training failed: {0}")]
    Fit(String),
    /// Storage errors lead with their reason (e.g. `StorageAccessDenied`), which the run's
    /// condition then quotes.
    #[error("{reason}: cannot read {0}", reason = .0.reason())]
    Read(trainloop_storage::StorageError),
    #[error("{reason}: cannot write {0}", reason = .0.reason())]
    Write(trainloop_storage::StorageError),
}

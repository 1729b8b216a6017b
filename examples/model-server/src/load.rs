//! Fetches the artifact named by `MODEL_URI` (s3://, gs://, az://, file://, http(s):// or a
//! plain path, with the storage credentials of the environment) and checks its digest.

use trainloop_contract::{ModelArtifact, sha256_digest};
use trainloop_storage::{StorageConfig, StorageError};

use crate::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{reason}: cannot read {0}", reason = .0.reason())]
    Read(StorageError),
    #[error("artifact digest {actual} does not match MODEL_DIGEST {expected}")]
    DigestMismatch { expected: String, actual: String },
    #[error(transparent)]
    Artifact(#[from] trainloop_contract::ArtifactError),
}

impl LoadError {
    /// The exit code that tells the operator why the server refused its model (the serving
    /// contract: Kubernetes reports it in the container's terminated state, and the rollout
    /// names the failure after it). 65 and 66 follow sysexits' `EX_DATAERR` and `EX_NOINPUT`.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadError::DigestMismatch { .. } => EXIT_DIGEST_MISMATCH,
            LoadError::Read(_) | LoadError::Artifact(_) => EXIT_MODEL_UNREADABLE,
        }
    }
}

pub use trainloop_contract::serving::{EXIT_DIGEST_MISMATCH, EXIT_MODEL_UNREADABLE};

/// A loaded model and the digest of the bytes it came from.
#[derive(Debug)]
pub struct LoadedModel {
    pub artifact: ModelArtifact,
    pub digest: String,
}

pub async fn load_model(settings: &Settings) -> Result<LoadedModel, LoadError> {
    let bytes =
        trainloop_storage::read(&settings.model_uri, &StorageConfig::from_env()).await.map_err(LoadError::Read)?;
    let digest = sha256_digest(&bytes);
    if let Some(expected) = &settings.model_digest {
        // Accept a bare hex digest as well as the `sha256:` form.
        let expected_full = if expected.contains(':') { expected.clone() } else { format!("sha256:{expected}") };
        if !expected_full.eq_ignore_ascii_case(&digest) {
            return Err(LoadError::DigestMismatch { expected: expected.clone(), actual: digest });
        }
    }
    Ok(LoadedModel { artifact: ModelArtifact::from_bytes(&bytes)?, digest })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(uri: String, digest: Option<&str>) -> Settings {
        Settings::from_lookup(|name| match name {
            "MODEL_URI" => Some(uri.clone()),
            "MODEL_DIGEST" => digest.map(str::to_string),
            _ => None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_digest_mismatch_or_a_bad_file_refuses_to_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        std::fs::write(&path, b"{\"formatVersion\": 1}").unwrap();
        let uri = format!("file://{}", path.display());
        let err = load_model(&settings(uri.clone(), Some("sha256:00"))).await.unwrap_err();
        assert!(matches!(err, LoadError::DigestMismatch { .. }), "{err}");
        assert_eq!(err.exit_code(), EXIT_DIGEST_MISMATCH);
        // The digest matches (bare hex accepted) but the content is no artifact.
        let hex = sha256_digest(b"{\"formatVersion\": 1}").trim_start_matches("sha256:").to_string();
        let err = load_model(&settings(uri, Some(&hex))).await.unwrap_err();
        assert!(matches!(err, LoadError::Artifact(_)), "{err}");
        assert_eq!(err.exit_code(), EXIT_MODEL_UNREADABLE);
        let missing = format!("file://{}/missing.json", dir.path().display());
        let err = load_model(&settings(missing, None)).await.unwrap_err();
        assert!(matches!(err, LoadError::Read(_)), "{err}");
        assert!(err.to_string().starts_with("ObjectNotFound: cannot read file://"), "{err}");
    }
}

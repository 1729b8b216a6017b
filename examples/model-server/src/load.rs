//! Fetches the artifact named by `MODEL_URI` and checks its digest.

use std::sync::Once;
use std::time::Duration;

use trainloop::artifact::{ModelArtifact, sha256_digest};

use crate::settings::Settings;

const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {uri}: {reason}")]
    Fetch { uri: String, reason: String },
    #[error("artifact digest {actual} does not match MODEL_DIGEST {expected}")]
    DigestMismatch { expected: String, actual: String },
    #[error(transparent)]
    Artifact(#[from] trainloop::artifact::ArtifactError),
}

/// A loaded model and the digest of the bytes it came from.
#[derive(Debug)]
pub struct LoadedModel {
    pub artifact: ModelArtifact,
    pub digest: String,
}

pub async fn load_model(settings: &Settings) -> Result<LoadedModel, LoadError> {
    let bytes = fetch(&settings.model_uri).await?;
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

async fn fetch(uri: &str) -> Result<Vec<u8>, LoadError> {
    let fail = |reason: String| LoadError::Fetch { uri: uri.to_string(), reason };
    if uri.starts_with("http://") || uri.starts_with("https://") {
        install_crypto_provider();
        let client = reqwest::Client::builder().timeout(HTTP_TIMEOUT).build().map_err(|e| fail(e.to_string()))?;
        let response =
            client.get(uri).send().await.and_then(|r| r.error_for_status()).map_err(|e| fail(e.to_string()))?;
        return Ok(response.bytes().await.map_err(|e| fail(e.to_string()))?.to_vec());
    }
    let path = match uri.strip_prefix("file://") {
        Some(path) => path,
        None if !uri.contains("://") => uri,
        None => return Err(fail("only file://, http:// and https:// are supported".into())),
    };
    tokio::fs::read(path).await.map_err(|e| fail(e.to_string()))
}

/// reqwest is built without a bundled crypto provider (the workspace uses ring).
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if a provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
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
        // The digest matches (bare hex accepted) but the content is no artifact.
        let hex = sha256_digest(b"{\"formatVersion\": 1}").trim_start_matches("sha256:").to_string();
        let err = load_model(&settings(uri, Some(&hex))).await.unwrap_err();
        assert!(matches!(err, LoadError::Artifact(_)), "{err}");
        let err = load_model(&settings("s3://bucket/model.json".into(), None)).await.unwrap_err();
        assert!(matches!(err, LoadError::Fetch { .. }), "{err}");
    }
}

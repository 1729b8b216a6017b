//! Kubeconfig files for the real control plane: one per identity, naming certificate files.

use std::path::{Path, PathBuf};

use super::certs::ClientCert;

/// Write a kubeconfig for `client` against the API server at `url` into `path`.
pub fn write(path: &Path, url: &str, ca: &Path, client: &ClientCert) -> anyhow::Result<PathBuf> {
    // JSON is YAML, and serde_json quotes the paths correctly whatever they hold.
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "realplane", "cluster": {"server": url, "certificate-authority": ca}}],
        "users": [{"name": "user", "user": {"client-certificate": client.cert, "client-key": client.key}}],
        "contexts": [{"name": "realplane", "context": {"cluster": "realplane", "user": "user", "namespace": "default"}}],
        "current-context": "realplane",
    });
    std::fs::write(path, serde_json::to_vec_pretty(&config)?)?;
    Ok(path.to_path_buf())
}

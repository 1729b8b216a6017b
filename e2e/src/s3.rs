//! A real S3-compatible server on loopback for the object-storage tests: moto's
//! (`fixtures/s3_server.py`, from the pinned packages in `.venv`), with buckets, an access key
//! and authentication on, so that other credentials are refused.

use std::path::Path;
use std::process::Stdio;

use anyhow::Context as _;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use trainloop_storage::StorageConfig;

/// The region moto serves (any is accepted; the signature must name one).
pub const REGION: &str = "us-east-1";

pub struct S3Server {
    pub endpoint: String,
    pub access_key_id: String,
    secret_access_key: String,
    /// Serves until its standard input closes; killed if the test drops it without `stop`.
    process: Child,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ready {
    endpoint: String,
    access_key_id: String,
    secret_access_key: String,
}

impl S3Server {
    /// Starts the server with `buckets` created, once it answers.
    pub async fn start(buckets: &[&str]) -> anyhow::Result<S3Server> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/s3_server.py");
        let mut process = Command::new("python3")
            .arg(&script)
            .args(buckets)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the S3 server (python3 with the packages of scripts/requirements-test.txt)")?;
        let stdout = process.stdout.take().context("the S3 server's output")?;
        let line = tokio::time::timeout(crate::TIMEOUT, BufReader::new(stdout).lines().next_line())
            .await
            .context("the S3 server did not start in time")??
            .context("the S3 server exited before it was ready (is moto installed: scripts/python-env.sh?)")?;
        let ready: Ready = serde_json::from_str(&line).with_context(|| format!("the S3 server said {line:?}"))?;
        Ok(S3Server {
            endpoint: ready.endpoint,
            access_key_id: ready.access_key_id,
            secret_access_key: ready.secret_access_key,
            process,
        })
    }

    /// The variables a pod or the operator reads its S3 settings from, with these credentials.
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        self.variables_with_secret(&self.secret_access_key)
    }

    /// [`S3Server::variables`] with another secret key: credentials the server refuses.
    pub fn variables_with_secret(&self, secret: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }

    /// A client configuration with these credentials.
    pub fn config(&self) -> StorageConfig {
        StorageConfig::from_vars(self.variables())
    }

    /// Closes the server's input, which ends it, and waits for it.
    pub async fn stop(mut self) {
        drop(self.process.stdin.take());
        if tokio::time::timeout(crate::TIMEOUT, self.process.wait()).await.is_err() {
            let _ = self.process.kill().await;
        }
    }
}

//! `trainloop-example-model-server`: binds first (live, not ready), loads the
//! model, then turns ready. A model that cannot load ends the process, so
//! Kubernetes and trainloop's rollout see the failure.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    trainloop_example_model_server::process::main().await
}

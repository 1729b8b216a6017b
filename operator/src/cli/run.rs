//! `trainloop run`: connect to the cluster, check that the CRDs are installed, start the operator.

use anyhow::{Context, bail};
use kube::{Client, CustomResourceExt};

use crate::api::{DriftPolicy, GROUP, ModelDeployment, TrainingPipeline, TrainingRun};
use crate::server::Health;

/// Flags of `trainloop run`; each is also read from the environment.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// Address of the `/metrics`, `/readyz` and `/livez` endpoints.
    #[arg(long, env = "TRAINLOOP_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
}

/// Run the operator until SIGINT or SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = Client::try_default().await.context("cannot reach a cluster: set KUBECONFIG or run inside a pod")?;
    check_crds_installed(&client).await?;
    let health = Health::new(prometheus_client::registry::Registry::with_prefix("trainloop"));
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.metrics_addr))?;
    tracing::info!(metrics_addr = %args.metrics_addr, "trainloop started");
    health.set_ready();
    axum::serve(listener, health.router()).with_graceful_shutdown(shutdown_signal()).await?;
    tracing::info!("trainloop stopped");
    Ok(())
}

/// Fail with a one-line hint when any of the four CRDs is missing, rather than letting every
/// watcher fail later with a 404 that says nothing about the cause.
pub async fn check_crds_installed(client: &Client) -> anyhow::Result<()> {
    let api_version = format!("{GROUP}/v1alpha1");
    let served: Vec<String> = match client.list_api_group_resources(&api_version).await {
        Ok(list) => list.resources.into_iter().map(|r| r.name).collect(),
        Err(kube::Error::Api(status)) if status.is_not_found() => Vec::new(),
        Err(error) => return Err(error).context("cannot read the API server's discovery"),
    };
    let missing: Vec<String> =
        [TrainingPipeline::crd_name(), TrainingRun::crd_name(), ModelDeployment::crd_name(), DriftPolicy::crd_name()]
            .into_iter()
            .filter(|name| !served.iter().any(|plural| name.starts_with(&format!("{plural}."))))
            .map(str::to_owned)
            .collect();
    if !missing.is_empty() {
        bail!("CRDs not installed: {}; install them with `kubectl apply -f crds/`", missing.join(", "));
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

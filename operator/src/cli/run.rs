//! `trainloop run`: connect to the cluster, check that the CRDs are installed, start the operator.

use crate::server::alertmanager::Receiver;
use anyhow::{Context as _, bail};
use kube::{Client, CustomResourceExt};

use crate::api::{DriftPolicy, GROUP, ModelDeployment, TrainingPipeline, TrainingRun};
use std::sync::Arc;

use crate::controllers::shared_volumes::path_within;
use crate::controllers::{self, Context, DEFAULT_DATA_DIR, Metrics, Settings, client::counting_client};
use crate::leader::{Election, LeaseConfig, Role};
use crate::server::Health;
use crate::triggers::http_client;
use trainloop_storage::StorageConfig;

/// Flags of `trainloop run`; each is also read from the environment.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// Address of the `/metrics`, `/readyz` and `/livez` endpoints.
    #[arg(long, env = "TRAINLOOP_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
    /// Address of Alertmanager's webhook receiver (`POST /hooks/alertmanager`) for DriftPolicy
    /// webhook monitors; without it the receiver is served beside the metrics.
    #[arg(long, env = "TRAINLOOP_ALERTS_ADDR")]
    pub alerts_addr: Option<std::net::SocketAddr>,
    /// Where trainers write artifacts (`file://` on a volume that trainers and servers share, or
    /// `s3://bucket/prefix`); each run writes under `<root>/<namespace>/<run>/`.
    #[arg(long, env = "TRAINLOOP_ARTIFACT_ROOT", default_value = "file:///var/lib/trainloop/artifacts", value_parser = artifact_root)]
    pub artifact_root: String,
    /// A PersistentVolumeClaim, of this name in each namespace with runs, mounted at a `file://`
    /// artifact root's path in trainer pods and (read-only) model server pods: what makes a
    /// `file://` root work on a real cluster, where every pod has a filesystem of its own.
    #[arg(long, env = "TRAINLOOP_ARTIFACT_VOLUME")]
    pub artifact_volume: Option<String>,
    /// A PersistentVolumeClaim, of this name in each namespace with runs, mounted read-only at
    /// `--data-dir` in trainer pods: what makes `file://` data URIs work on a real cluster.
    #[arg(long, env = "TRAINLOOP_DATA_VOLUME")]
    pub data_volume: Option<String>,
    /// Where `--data-volume` is mounted: data URIs `file://<dir>/...` read from it.
    #[arg(long, env = "TRAINLOOP_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: String,
    /// Pods share this host's files (localplane, whose kubelet runs them as processes), so
    /// `file://` artifact roots and data URIs need no volume. Without it, a run whose `file://`
    /// paths no volume covers is stalled, saying which flag to use.
    #[arg(long, env = "TRAINLOOP_LOCAL_FILES")]
    pub local_files: bool,
    /// Reconcile only these namespaces (comma-separated), with no cluster-wide rights needed;
    /// empty: every namespace.
    #[arg(long, env = "TRAINLOOP_WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,
    /// Reconcile only while holding the `--lease-name` Lease: what makes two replicas safe.
    #[arg(long, env = "TRAINLOOP_LEADER_ELECTION")]
    pub leader_election: bool,
    /// The Lease of the election.
    #[arg(long, env = "TRAINLOOP_LEASE_NAME", default_value = "trainloop")]
    pub lease_name: String,
    /// The Lease's namespace; default: the pod's (or the kubeconfig context's).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Seconds without renewal after which a standby takes the lease over.
    #[arg(long, env = "TRAINLOOP_LEASE_DURATION_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=300))]
    pub lease_duration_seconds: u64,
    /// Where the service account's token, ca.crt and namespace are, when no kubeconfig is found.
    /// On localplane a pod names the standard path here, which its kubelet rewrites to the pod's
    /// own volume.
    #[arg(long, env = "TRAINLOOP_SERVICE_ACCOUNT_DIR", default_value = super::SERVICE_ACCOUNT_DIR)]
    pub service_account_dir: std::path::PathBuf,
}

impl RunArgs {
    /// The defaults of every flag, with the two that tests and tools always choose.
    pub fn new(metrics_addr: std::net::SocketAddr, artifact_root: String) -> Self {
        RunArgs {
            metrics_addr,
            alerts_addr: None,
            artifact_root,
            artifact_volume: None,
            data_volume: None,
            data_dir: DEFAULT_DATA_DIR.into(),
            local_files: false,
            watch_namespaces: Vec::new(),
            leader_election: false,
            lease_name: "trainloop".into(),
            lease_namespace: None,
            lease_duration_seconds: 15,
            service_account_dir: super::SERVICE_ACCOUNT_DIR.into(),
        }
    }
}

/// An artifact root trainers can write under: a `file://` absolute path, or an object store
/// bucket (`s3://`, `gs://`, `az://`) with an optional prefix.
pub fn artifact_root(value: &str) -> Result<String, String> {
    let expected = "expected file:///absolute/path or s3://bucket[/prefix] (also gs://, az://)";
    let (scheme, rest) = value.split_once("://").ok_or_else(|| format!("{value:?} is not a URI: {expected}"))?;
    let valid = match scheme {
        "file" => rest.starts_with('/') && rest.len() > 1,
        "s3" | "gs" | "az" => rest.split('/').next().is_some_and(|bucket| !bucket.is_empty()),
        _ => false,
    };
    if !valid || value.chars().any(char::is_whitespace) {
        return Err(format!("{value:?}: {expected}"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// The settings of the artifact root and the shared volumes: only a `file://` root takes an
/// artifact volume, and the data directory is an absolute path apart from the artifact root's.
fn volume_settings(args: &RunArgs) -> Result<Settings, String> {
    let root = &args.artifact_root;
    if args.artifact_volume.is_some() && !root.starts_with("file://") {
        return Err(format!(
            "--artifact-volume needs a file:// --artifact-root, not {root:?} (an object store needs no volume)"
        ));
    }
    let data_dir = args.data_dir.trim_end_matches('/');
    if !data_dir.starts_with('/') || data_dir.chars().any(char::is_whitespace) {
        return Err(format!("--data-dir {:?}: expected an absolute path other than /", args.data_dir));
    }
    let artifact_dir = root.strip_prefix("file://").unwrap_or_default();
    let nested = |inner: &str, outer: &str| !outer.is_empty() && path_within(inner, outer);
    if args.data_volume.is_some() && (nested(data_dir, artifact_dir) || nested(artifact_dir, data_dir)) {
        return Err(format!("--data-dir {data_dir:?} and the artifact root {root:?} must not contain each other"));
    }
    Ok(Settings {
        artifact_volume: args.artifact_volume.clone(),
        data_volume: args.data_volume.clone(),
        data_dir: data_dir.into(),
        local_files: args.local_files,
        ..Settings::new(root.clone())
    })
}

/// Run the operator until SIGINT or SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut registry = prometheus_client::registry::Registry::with_prefix("trainloop");
    let metrics = Metrics::register(&mut registry);
    let config = super::cluster_config(&args.service_account_dir).await?;
    let client = counting_client(config, metrics.api_requests.clone())?;
    check_crds_installed(&client).await?;
    let watches = controllers::WatchHealth::default();
    let role = Role::default();
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.metrics_addr))?;
    let mut settings = volume_settings(&args).map_err(anyhow::Error::msg)?;
    settings.namespaces = args.watch_namespaces;
    settings.storage = StorageConfig::from_env();
    tracing::info!(storage = ?settings.storage, "storage settings (names only)");
    let ctx = Arc::new(Context::new(client, metrics, settings, http_client()?));
    let alerts = Receiver::of(&ctx).with_role(role.clone());
    let health = Health::new(registry, watches.clone()).with_role(role.clone());
    let (health, alerts_listener) = match args.alerts_addr {
        Some(addr) => {
            let listener =
                tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
            (health, Some((listener, alerts)))
        }
        None => (health.with_alertmanager(alerts), None),
    };
    tracing::info!(metrics_addr = %args.metrics_addr, namespaces = ?ctx.settings.namespaces, "trainloop started");

    let stop = tokio_util::sync::CancellationToken::new();
    let server = crate::server::serve(listener, health, stop.clone());
    let alerts_server = async {
        match alerts_listener {
            Some((listener, alerts)) => alerts.serve(listener, stop.clone()).await,
            None => Ok(()),
        }
    };
    let election = match args.leader_election {
        true => {
            let lease = LeaseConfig {
                name: args.lease_name,
                namespace: args.lease_namespace,
                duration: std::time::Duration::from_secs(args.lease_duration_seconds),
            };
            Some(Election::join(ctx.client.clone(), &lease, role).await?)
        }
        false => None,
    };
    let work = reconcile_while_leading(ctx, stop.clone(), watches, election);
    let signal = async {
        shutdown_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    };
    let (served, alerts_served, worked, ()) = tokio::join!(server, alerts_server, work, signal);
    served?;
    alerts_served?;
    worked?;
    tracing::info!("trainloop stopped");
    Ok(())
}

/// Run the controllers until `stop`; with an election, only once leading, and never after the
/// lease is lost: then the process ends with an error, and its restart is a standby.
async fn reconcile_while_leading(
    ctx: Arc<Context>,
    stop: tokio_util::sync::CancellationToken,
    watches: controllers::WatchHealth,
    election: Option<Election>,
) -> anyhow::Result<()> {
    let Some(mut election) = election else {
        controllers::run(ctx, stop, watches).await;
        return Ok(());
    };
    tokio::select! {
        leading = election.until_leading() => leading?,
        () = stop.cancelled() => {
            election.resign().await;
            return Ok(());
        }
    }
    let outcome = tokio::select! {
        () = controllers::run(ctx, stop.clone(), watches) => Ok(()),
        () = election.until_lost() => Err(anyhow::anyhow!("lost the lease to another replica: stopping")),
    };
    // Whatever ended this, the server goes too: a process that may not reconcile must not stay.
    stop.cancel();
    election.resign().await;
    outcome
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

#[cfg(test)]
mod tests {
    use super::{RunArgs, artifact_root, volume_settings};

    fn args(root: &str, artifact_volume: Option<&str>, data_volume: Option<&str>, data_dir: &str) -> RunArgs {
        let mut args = RunArgs::new(([127, 0, 0, 1], 0).into(), root.into());
        args.artifact_volume = artifact_volume.map(str::to_string);
        args.data_volume = data_volume.map(str::to_string);
        args.data_dir = data_dir.into();
        args
    }

    #[test]
    fn artifact_roots_are_checked_at_start() {
        assert_eq!(artifact_root("file:///var/lib/trainloop/").as_deref(), Ok("file:///var/lib/trainloop"));
        let shared = volume_settings(&args("file:///srv", Some("artifacts"), None, "/data")).unwrap();
        assert_eq!(shared.artifact_volume.as_deref(), Some("artifacts"));
        let error = volume_settings(&args("s3://models", Some("artifacts"), None, "/data")).unwrap_err();
        assert!(error.contains("--artifact-volume needs a file://"), "{error}");
        assert!(artifact_root("s3://models/trainloop").is_ok());
        for bad in ["/var/lib/trainloop", "file://relative/dir", "s3://", "ftp://host/dir", "file:///a b"] {
            let error = artifact_root(bad).expect_err(bad);
            assert!(error.contains("expected file:///absolute/path"), "{error}");
        }
    }

    #[test]
    fn a_data_volume_is_mounted_at_an_absolute_dir_apart_from_the_artifacts() {
        let settings = volume_settings(&args("s3://models", None, Some("datasets"), "/srv/data/")).unwrap();
        assert_eq!((settings.data_volume.as_deref(), settings.data_dir.as_str()), (Some("datasets"), "/srv/data"));
        for dir in ["data", "/", "/a b"] {
            let error = volume_settings(&args("s3://models", None, Some("datasets"), dir)).unwrap_err();
            assert!(error.contains("expected an absolute path"), "{dir}: {error}");
        }
        for (root, dir) in
            [("file:///srv", "/srv/data"), ("file:///srv/data/models", "/srv/data"), ("file:///srv", "/srv")]
        {
            let error = volume_settings(&args(root, Some("artifacts"), Some("datasets"), dir)).unwrap_err();
            assert!(error.contains("must not contain each other"), "{root} {dir}: {error}");
        }
        assert!(volume_settings(&args("file:///srv/artifacts", None, Some("datasets"), "/srv/data")).is_ok());
    }
}

//! The workload controllers (Job, Deployment, ReplicaSet, Service proxy) and the process kubelet.
//! They talk to the API server only as ordinary Kubernetes clients, through `kube::Client`,
//! exactly like kube-controller-manager and a kubelet would.

pub mod deployment;
pub mod job;
pub mod replicaset;
pub mod revision;
pub mod service_accounts;
pub mod service_proxy;
mod util;
mod wiring;

// The kubelet lives in `src/kubelet/`; it is declared here so that the crate root needs no edit
// for it (it may move to `lib.rs` as `pub mod kubelet;`).
#[path = "../kubelet/mod.rs"]
pub mod kubelet;

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

/// What the controllers and kubelet need to know about their environment.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// File mapping container images to local executables (see `kubelet::images`).
    pub images: Option<PathBuf>,
    /// Root of per-pod directories; pod logs go to `<work_dir>/pods/<namespace>/<pod>/log`.
    pub work_dir: PathBuf,
    /// Where pods reach the API server, and the CA they trust it with.
    pub api_server: Option<ApiServer>,
}

/// The API server as pods see it: KUBERNETES_SERVICE_HOST/PORT and the `ca.crt` of their
/// service-account volume (and of every namespace's `kube-root-ca.crt` ConfigMap).
#[derive(Clone, Debug)]
pub struct ApiServer {
    pub host: String,
    pub port: u16,
    pub ca_pem: String,
}

/// Runs the controllers and the kubelet until `shutdown` is cancelled, then stops every process
/// the kubelet started and every Service listener before returning.
pub async fn run(client: kube::Client, settings: Settings, shutdown: CancellationToken) {
    let ca_pem = settings.api_server.as_ref().map(|a| a.ca_pem.clone());
    let kubelet = Arc::new(kubelet_for(client.clone(), settings, shutdown.clone()));
    let service_accounts = async {
        if let Some(ca_pem) = ca_pem {
            service_accounts::run(client.clone(), ca_pem, shutdown.clone()).await;
        }
    };
    tokio::join!(
        kubelet::run(kubelet),
        job::run(client.clone(), shutdown.clone()),
        replicaset::run(client.clone(), shutdown.clone()),
        deployment::run(client.clone(), shutdown.clone()),
        service_accounts,
        service_proxy::run(client.clone(), shutdown.clone()),
    );
}

/// Runs what a node runs, joined to another API server (the real control plane) as the Node
/// `node`, until `shutdown` is cancelled: the kubelet (registers the Node, renews its Lease, runs
/// the pods the scheduler binds to it) and the Service proxy (kube-proxy's part: it listens on
/// the ClusterIPs the API server allocates, which must be loopback addresses for it to bind).
/// `client` needs the rights of a node and of kube-proxy (or an administrator's). The kubelet's
/// endpoint (`pods/log` through the API server) listens on a free loopback port.
pub async fn join(
    client: kube::Client,
    node: &str,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let endpoint = tokio::net::TcpListener::bind((kubelet::HOST_IP, 0)).await?;
    let registered = kubelet::node::register(&client, node, endpoint.local_addr()?.port()).await?;
    let kubelet = Arc::new(kubelet_for(client.clone(), settings, shutdown.clone()).joining(node));
    let serving = kubelet::server::serve(kubelet.clone(), endpoint);
    let (_, _, _, served) = tokio::join!(
        kubelet::run(kubelet),
        kubelet::node::heartbeat(client.clone(), registered, shutdown.clone()),
        service_proxy::run(client, shutdown),
        serving,
    );
    served
}

fn kubelet_for(client: kube::Client, settings: Settings, shutdown: CancellationToken) -> kubelet::Kubelet {
    let work_dir = if settings.work_dir.is_absolute() {
        settings.work_dir.clone()
    } else {
        std::env::current_dir().map(|d| d.join(&settings.work_dir)).unwrap_or_else(|_| settings.work_dir.clone())
    };
    if let Err(e) = std::fs::create_dir_all(&work_dir) {
        tracing::error!(dir = %work_dir.display(), error = %e, "cannot create the work dir");
    }
    let images = settings
        .images
        .map(|p| if p.is_absolute() { p } else { std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p) });
    kubelet::Kubelet::new(client, work_dir, images, settings.api_server, shutdown)
}

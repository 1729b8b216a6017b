//! Either control plane, for a test body that must behave the same on both: localplane (ours,
//! embedded) and the real Kubernetes control plane (the truth, when its binaries are built).
//!
//! The suites that run workloads ([`crate::Env`]) pick one with `TRAINLOOP_PLANE`: `localplane`
//! (the default) or `kubernetes`, where localplane's kubelet joins the real plane as its node.

use std::path::{Path, PathBuf};

use kube::Client;
use localplane::{Config, LocalPlane};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::realplane::{self, RealPlane};

/// The variable that selects the control plane of the workload suites.
pub const SWITCH: &str = "TRAINLOOP_PLANE";

/// The name of the node localplane's kubelet registers on the real plane.
pub const NODE: &str = "trainloop-e2e-node";

pub struct Plane {
    /// Always present; taken only by [`Plane::shutdown`] and [`Plane::into_local`].
    kind: Option<Kind>,
    /// kubectl's discovery cache, this plane's own: caches are keyed by host and port, and a
    /// later plane may get an earlier one's port.
    kubectl_cache: PathBuf,
}

enum Kind {
    Local(LocalPlane),
    Real(RealPlane, Option<Node>),
}

/// localplane's kubelet, joined to the real plane.
struct Node {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Plane {
    pub async fn local() -> anyhow::Result<Plane> {
        Ok(Plane::new(Kind::Local(LocalPlane::start(Config::default()).await?)))
    }

    /// The real control plane, or `None` when its binaries are not built and nobody asked for
    /// them ([`built`]).
    pub async fn real() -> anyhow::Result<Option<Plane>> {
        match built()? {
            Some(bin) => Ok(Some(Plane::new(Kind::Real(RealPlane::start(&bin).await?, None)))),
            None => Ok(None),
        }
    }

    /// The real control plane with localplane's kubelet joined as its node [`NODE`], ready to
    /// run pods: the kubelet keeps pod directories under `work_dir` and runs `images` (a
    /// localplane images file) as their executables. `None` as for [`Plane::real`].
    pub async fn real_with_node(work_dir: PathBuf, images: Option<PathBuf>) -> anyhow::Result<Option<Plane>> {
        let Some(bin) = built()? else { return Ok(None) };
        let real = RealPlane::start(&bin).await?;
        let stop = CancellationToken::new();
        let settings = localplane::controllers::Settings { images, work_dir, api_server: real.api_server().cloned() };
        let joining = localplane::controllers::join(real.client().await?, NODE, settings, stop.clone());
        let node = Node { stop, task: tokio::spawn(joining) };
        let plane = Plane::new(Kind::Real(real, Some(node)));
        plane.await_node_ready().await?;
        Ok(Some(plane))
    }

    /// The plane [`SWITCH`] selects, ready to run pods (see [`Plane::real_with_node`]).
    pub async fn for_workloads(work_dir: PathBuf, images: PathBuf) -> anyhow::Result<Plane> {
        if !Plane::kubernetes_selected()? {
            let config = Config { work_dir: Some(work_dir), images: Some(images), ..Config::default() };
            return Ok(Plane::new(Kind::Local(LocalPlane::start(config).await?)));
        }
        let plane = Plane::real_with_node(work_dir, Some(images)).await?;
        plane.ok_or_else(|| anyhow::anyhow!("{SWITCH}=kubernetes, but the real control plane is not built"))
    }

    /// Whether [`SWITCH`] selects the real control plane.
    pub fn kubernetes_selected() -> anyhow::Result<bool> {
        match std::env::var(SWITCH).as_deref() {
            Err(_) | Ok("") | Ok("localplane") => Ok(false),
            Ok("kubernetes") => Ok(true),
            Ok(other) => anyhow::bail!("{SWITCH}={other}: use localplane or kubernetes"),
        }
    }

    /// Until the scheduler may place pods on the joined node: Ready, and without the `not-ready`
    /// taint the node lifecycle controller lifts.
    async fn await_node_ready(&self) -> anyhow::Result<()> {
        use k8s_openapi::api::core::v1::Node;
        let nodes: kube::Api<Node> = kube::Api::all(self.client().await?);
        let schedulable = |node: Option<&Node>| {
            let Some(node) = node else { return false };
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let tainted = node.spec.as_ref().and_then(|s| s.taints.as_ref()).is_some_and(|t| !t.is_empty());
            ready && !tainted
        };
        let ready = kube::runtime::wait::await_condition(nodes, NODE, schedulable);
        tokio::time::timeout(crate::TIMEOUT, ready)
            .await
            .map_err(|_| anyhow::anyhow!("the node {NODE} did not become schedulable in time"))??;
        Ok(())
    }

    fn new(kind: Kind) -> Plane {
        Plane {
            kind: Some(kind),
            kubectl_cache: std::env::temp_dir().join(format!("trainloop-kubectl-{}", crate::unique())),
        }
    }

    fn kind(&self) -> &Kind {
        self.kind.as_ref().expect("a plane not yet shut down")
    }

    pub fn name(&self) -> &'static str {
        match self.kind() {
            Kind::Local(_) => "localplane",
            Kind::Real(..) => "kubernetes",
        }
    }

    /// localplane itself, the plane given up; an error on kubernetes.
    pub fn into_local(mut self) -> anyhow::Result<LocalPlane> {
        match self.kind.take() {
            Some(Kind::Local(plane)) => Ok(plane),
            other => {
                self.kind = other;
                anyhow::bail!("this needs localplane; the suite runs on {}", self.name())
            }
        }
    }

    pub fn kubeconfig_path(&self) -> &Path {
        match self.kind() {
            Kind::Local(plane) => plane.kubeconfig_path(),
            Kind::Real(plane, _) => plane.kubeconfig_path(),
        }
    }

    pub async fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::try_from(self.client_config().await?)?)
    }

    /// An administrator's client configuration, for a test to adjust.
    pub async fn client_config(&self) -> anyhow::Result<kube::Config> {
        match self.kind() {
            Kind::Local(plane) => plane.client_config(),
            Kind::Real(plane, _) => plane.client_config().await,
        }
    }

    /// What the operator's client is made from: an administrator's on localplane (which does not
    /// authorize); on kubernetes, the chart's ServiceAccount with exactly the chart's rules, so
    /// every suite there also proves them by real RBAC.
    pub async fn operator_config(&self) -> anyhow::Result<kube::Config> {
        match self.kind() {
            Kind::Local(plane) => plane.client_config(),
            Kind::Real(plane, _) => {
                crate::rbac::as_chart_service_account(&plane.client().await?, plane.client_config().await?).await
            }
        }
    }

    /// A client that localplane's fault injection spares; on kubernetes, which injects none, an
    /// administrator's.
    pub async fn observer_client(&self) -> anyhow::Result<Client> {
        match self.kind() {
            Kind::Local(plane) => plane.observer_client(),
            Kind::Real(plane, _) => plane.client().await,
        }
    }

    /// Stops the kubelet's processes (on kubernetes) and the plane; how the kubelet ended.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        match self.kind.take() {
            Some(Kind::Local(plane)) => plane.shutdown().await,
            Some(Kind::Real(plane, node)) => {
                if let Some(node) = node {
                    node.stop.cancel();
                    node.task.await??;
                }
                drop(plane);
            }
            None => {}
        }
        Ok(())
    }

    /// Run the real kubectl against this plane from the workspace root: whether it succeeded,
    /// and its stdout then stderr.
    pub async fn kubectl(&self, args: &[&str]) -> anyhow::Result<(bool, String)> {
        let run = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig_path())
            .arg("--cache-dir")
            .arg(&self.kubectl_cache)
            .args(args)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(crate::TIMEOUT, run)
            .await
            .map_err(|_| anyhow::anyhow!("kubectl {args:?} did not finish in time"))??;
        let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
        Ok((output.status.success(), text))
    }

    /// kubectl that must succeed; its output.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        match self.kubectl(args).await {
            Ok((true, text)) => text,
            Ok((false, text)) => panic!("on {}: kubectl {args:?} failed: {text}", self.name()),
            Err(e) => panic!("on {}: kubectl {args:?}: {e}", self.name()),
        }
    }
}

/// The folder of the real control plane's binaries, or `None` (saying why on stderr) when they
/// are not built and nobody asked for them: `make test` sets `TRAINLOOP_KUBE_BIN`, so there a
/// missing build is an error, not a skip.
fn built() -> anyhow::Result<Option<PathBuf>> {
    match realplane::binaries() {
        Ok(bin) => Ok(Some(bin)),
        Err(why) if std::env::var_os("TRAINLOOP_KUBE_BIN").is_none() => {
            eprintln!("skipped: the real control plane is not built ({why})");
            Ok(None)
        }
        Err(why) => anyhow::bail!(why),
    }
}

impl From<LocalPlane> for Plane {
    fn from(plane: LocalPlane) -> Plane {
        Plane::new(Kind::Local(plane))
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        // A plane dropped without shutdown (a failing test): its kubelet's processes are stopped
        // by the cancelled token, its servers by their own drops.
        if let Some(Kind::Real(_, Some(node))) = &self.kind {
            node.stop.cancel();
        }
        let _ = std::fs::remove_dir_all(&self.kubectl_cache);
    }
}

//! Either control plane, for a test body that must behave the same on both: localplane (ours,
//! embedded) and the real Kubernetes control plane (the truth, when its binaries are built).

use std::path::{Path, PathBuf};

use kube::Client;
use localplane::{Config, LocalPlane};

use crate::realplane::{self, RealPlane};

pub struct Plane {
    kind: Kind,
    /// kubectl's discovery cache, this plane's own: caches are keyed by host and port, and a
    /// later plane may get an earlier one's port.
    kubectl_cache: PathBuf,
}

enum Kind {
    Local(LocalPlane),
    Real(RealPlane),
}

impl Plane {
    pub async fn local() -> anyhow::Result<Plane> {
        Ok(Plane::new(Kind::Local(LocalPlane::start(Config::default()).await?)))
    }

    /// The real control plane, or `None` (saying why on stderr) when its binaries are not built
    /// and nobody asked for them. `make test` builds them and sets `TRAINLOOP_KUBE_BIN`, so there
    /// a missing build is an error, not a skip.
    pub async fn real() -> anyhow::Result<Option<Plane>> {
        match realplane::binaries() {
            Ok(bin) => Ok(Some(Plane::new(Kind::Real(RealPlane::start(&bin).await?)))),
            Err(why) if std::env::var_os("TRAINLOOP_KUBE_BIN").is_none() => {
                eprintln!("skipped: the real control plane is not built ({why})");
                Ok(None)
            }
            Err(why) => anyhow::bail!(why),
        }
    }

    fn new(kind: Kind) -> Plane {
        Plane { kind, kubectl_cache: std::env::temp_dir().join(format!("trainloop-kubectl-{}", crate::unique())) }
    }

    pub fn name(&self) -> &'static str {
        match &self.kind {
            Kind::Local(_) => "localplane",
            Kind::Real(_) => "kubernetes",
        }
    }

    pub fn kubeconfig_path(&self) -> &Path {
        match &self.kind {
            Kind::Local(plane) => plane.kubeconfig_path(),
            Kind::Real(plane) => plane.kubeconfig_path(),
        }
    }

    pub async fn client(&self) -> anyhow::Result<Client> {
        match &self.kind {
            Kind::Local(plane) => plane.client().await,
            Kind::Real(plane) => plane.client().await,
        }
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

impl Drop for Plane {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.kubectl_cache);
    }
}

//! The real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager and
//! kube-scheduler of the release pinned in `e2e/kube/go.mod` (built by `scripts/build-kube.sh`),
//! started on loopback like a cluster's: generated certificates, RBAC and the default admission
//! plugins, the service-account token signer, the workload controllers and the scheduler.
//! Every process is killed when the plane is dropped, also when a test panics.

mod certs;
mod kubeconfig;
pub mod process;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::{Api, Client, Config};

use certs::Pki;
use process::Server;

/// How long the plane may take to become ready (about 5 s on the shared machine).
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// The controllers a cluster's workloads need: the list, the publisher of the
/// `kube-root-ca.crt` ConfigMap that pods' service-account volumes mount, and the node lifecycle
/// controller, which lifts the `not-ready` taint the API server puts on every new Node once its
/// kubelet reports Ready (and puts it back when the kubelet stops renewing its Lease).
const CONTROLLERS: &str = "job-controller,replicaset-controller,deployment-controller,\
garbage-collector-controller,endpointslice-controller,serviceaccount-token-controller,\
serviceaccount-controller,namespace-controller,root-ca-certificate-publisher-controller,\
node-lifecycle-controller";

pub struct RealPlane {
    /// In start order; dropped in reverse.
    servers: Vec<Server>,
    kubeconfig: PathBuf,
    dir: PathBuf,
    /// Where the API server listens, and the CA its serving certificate is signed by.
    api_server: Option<localplane::controllers::ApiServer>,
}

/// The folder holding the built binaries, or why there is none. `TRAINLOOP_KUBE_BIN` names it
/// (the Makefile sets it after building); otherwise the build script says where it would be.
pub fn binaries() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("TRAINLOOP_KUBE_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-kube.sh");
            let out = std::process::Command::new("bash")
                .arg(&script)
                .arg("--dir")
                .output()
                .map_err(|e| format!("running {}: {e}", script.display()))?;
            if !out.status.success() {
                return Err(format!("{} --dir: {}", script.display(), String::from_utf8_lossy(&out.stderr)));
            }
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
    };
    if dir.join("complete").is_file() {
        Ok(dir)
    } else {
        Err(format!("{} holds no complete build: run scripts/build-kube.sh (or make test)", dir.display()))
    }
}

impl RealPlane {
    /// Start a fresh plane from the binaries in `bin` and wait until it is ready.
    pub async fn start(bin: &Path) -> anyhow::Result<RealPlane> {
        let dir = std::env::temp_dir().join(format!("trainloop-realplane-{}", super::unique()));
        std::fs::create_dir_all(&dir)?;
        // Constructed first, so that whatever fails below still stops what was started.
        let mut plane =
            RealPlane { servers: Vec::new(), kubeconfig: dir.join("admin.kubeconfig"), dir, api_server: None };
        let mut attempts = 1;
        loop {
            match plane.launch(bin).await {
                Ok(()) => return Ok(plane),
                // A free port can be taken by a parallel test before the server binds it.
                Err(e) if attempts < 3 && e.to_string().contains("address already in use") => {
                    attempts += 1;
                    plane.servers.clear();
                    std::fs::remove_dir_all(&plane.dir)?;
                    std::fs::create_dir_all(&plane.dir)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn launch(&mut self, bin: &Path) -> anyhow::Result<()> {
        let dir = self.dir.clone();
        let services = certs::ServiceRange::random();
        let pki = Pki::generate(&dir.join("pki"), &services)?;
        let path = |p: &Path| p.display().to_string();
        let [etcd_client, etcd_peer, secure] = [free_port()?, free_port()?, free_port()?];
        let url = format!("https://127.0.0.1:{secure}");

        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        self.servers.push(Server::start(
            "etcd",
            &bin.join("etcd"),
            &[
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                // A test's data need not survive a power cut; fsyncs would dominate its time.
                "--unsafe-no-fsync".into(),
            ],
            &dir,
        )?);

        self.servers.push(Server::start(
            "kube-apiserver",
            &bin.join("kube-apiserver"),
            &[
                format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={secure}"),
                format!("--cert-dir={}", dir.join("apiserver").display()),
                format!("--tls-cert-file={}", path(&pki.serving_cert)),
                format!("--tls-private-key-file={}", path(&pki.serving_key)),
                format!("--client-ca-file={}", path(&pki.ca_cert)),
                "--authorization-mode=Node,RBAC".into(),
                // The default plugins are on without naming them; kubeadm adds NodeRestriction.
                "--enable-admission-plugins=NodeRestriction".into(),
                format!("--service-cluster-ip-range={}", services.cidr),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", path(&pki.service_account_public_key)),
                format!("--service-account-signing-key-file={}", path(&pki.service_account_key)),
                "--allow-privileged=true".into(),
                // As kubeadm sets it: kubelets are reached at their InternalIP, not a host name.
                "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname".into(),
                "--profiling=false".into(),
            ],
            &dir,
        )?);

        let ca_pem = std::fs::read_to_string(&pki.ca_cert)?;
        self.api_server = Some(localplane::controllers::ApiServer { host: "127.0.0.1".into(), port: secure, ca_pem });
        let admin = pki.client("trainloop-admin", Some("system:masters"))?;
        kubeconfig::write(&self.kubeconfig, &url, &pki.ca_cert, &admin)?;
        let client = self.client().await?;
        self.wait_until("the API server's /readyz", async || {
            let ready = client.request_text(http::Request::get("/readyz").body(Vec::new())?).await?;
            Ok(ready.trim() == "ok")
        })
        .await?;

        let manager = pki.client("system:kube-controller-manager", None)?;
        let manager_config =
            kubeconfig::write(&dir.join("controller-manager.kubeconfig"), &url, &pki.ca_cert, &manager)?;
        self.servers.push(Server::start(
            "kube-controller-manager",
            &bin.join("kube-controller-manager"),
            &[
                format!("--kubeconfig={}", path(&manager_config)),
                format!("--controllers={CONTROLLERS}"),
                // Each controller acts as its own service account, under its bootstrap role.
                "--use-service-account-credentials=true".into(),
                format!("--service-account-private-key-file={}", path(&pki.service_account_key)),
                format!("--root-ca-file={}", path(&pki.ca_cert)),
                // Health is read from the API (its lease), not from a port that parallel planes share.
                "--secure-port=0".into(),
            ],
            &dir,
        )?);

        let scheduler = pki.client("system:kube-scheduler", None)?;
        let scheduler_config = kubeconfig::write(&dir.join("scheduler.kubeconfig"), &url, &pki.ca_cert, &scheduler)?;
        self.servers.push(Server::start(
            "kube-scheduler",
            &bin.join("kube-scheduler"),
            &[format!("--kubeconfig={}", path(&scheduler_config)), "--secure-port=0".into()],
            &dir,
        )?);

        // Each component has taken its leader-election lease once it runs against this API server,
        // and the default ServiceAccount exists once the controllers work (pods need it).
        let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
        for component in ["kube-controller-manager", "kube-scheduler"] {
            self.wait_until(&format!("{component}'s lease"), async || {
                let lease = leases.get_opt(component).await?;
                Ok(lease.and_then(|l| l.spec?.holder_identity).is_some())
            })
            .await?;
        }
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        self.wait_until("the default ServiceAccount", async || Ok(accounts.get_opt("default").await?.is_some()))
            .await?;
        Ok(())
    }

    /// Poll `ready` until it answers true; fail early if a server exits, and after START_TIMEOUT.
    async fn wait_until(&mut self, what: &str, ready: impl AsyncFnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
        process::wait_until(&mut self.servers, what, START_TIMEOUT, ready).await
    }

    /// The servers' process ids (each leads its own process group).
    pub fn pids(&self) -> Vec<u32> {
        self.servers.iter().map(Server::pid).collect()
    }

    /// The certificates, kubeconfigs, data and logs; removed on drop, kept when a test failed.
    pub fn work_dir(&self) -> &Path {
        &self.dir
    }

    /// The API server as pods reach it (for a kubelet joining the plane).
    pub fn api_server(&self) -> Option<&localplane::controllers::ApiServer> {
        self.api_server.as_ref()
    }

    /// An administrator's kubeconfig (group system:masters).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client with the administrator's kubeconfig.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::try_from(self.client_config().await?)?)
    }

    /// The administrator's client configuration, for a test to adjust (e.g. to impersonate).
    pub async fn client_config(&self) -> anyhow::Result<Config> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        Ok(Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?)
    }
}

impl Drop for RealPlane {
    fn drop(&mut self) {
        while let Some(server) = self.servers.pop() {
            drop(server);
        }
        if std::thread::panicking() {
            eprintln!("the real control plane's logs and data are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A port that was free a moment ago (the OS picks it; the server binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

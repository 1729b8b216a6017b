//! localplane: a local Kubernetes control plane for development and tests. An API server on
//! loopback that kubectl, Helm and kube-rs can use, plus workload controllers and a kubelet
//! that runs pods as local processes. See README.md for what differs from a real cluster.

pub mod controllers;
pub mod convert;
mod error;
pub mod faults;
pub mod field_labels;
pub mod patch;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod server;
pub mod store;
pub mod strategy;
pub mod time;
pub mod tls;

pub use error::Error;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How to start a local plane. `Default` = any free port, temporary work dir.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// 0 picks any free port.
    pub port: u16,
    /// File mapping container images to local executables (for the kubelet).
    pub images: Option<PathBuf>,
    /// Where pods run and log; a temporary directory (removed at shutdown) when unset.
    pub work_dir: Option<PathBuf>,
    /// Where to write the kubeconfig; `<work_dir>/kubeconfig` when unset.
    pub kubeconfig: Option<PathBuf>,
    /// The CA and serving certificate; a new one when unset. A plane restarted with the identity
    /// of an earlier one is trusted by that one's clients.
    pub identity: Option<tls::Identity>,
}

pub struct LocalPlane {
    url: String,
    identity: tls::Identity,
    kubeconfig: PathBuf,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    temp_dir: Option<PathBuf>,
}

/// The kubeconfig YAML for a plane serving at `url` with `identity`'s CA, as its administrator.
pub fn kubeconfig_yaml(url: &str, identity: &tls::Identity) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(identity.ca_pem());
    let token = identity.admin_token();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: localplane\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\n\
         contexts:\n- name: localplane\n  context:\n    cluster: localplane\n    user: localplane\n    namespace: default\n\
         current-context: localplane\nusers:\n- name: localplane\n  user:\n    token: {token}\n"
    )
}

impl LocalPlane {
    /// Binds the API server, writes the kubeconfig, and starts the controllers and kubelet.
    pub async fn start(config: Config) -> anyhow::Result<LocalPlane> {
        let (work_dir, temp_dir) = match &config.work_dir {
            Some(d) => (d.clone(), None),
            None => {
                let d = std::env::temp_dir().join(format!("localplane-{}", uuid::Uuid::new_v4()));
                (d.clone(), Some(d))
            }
        };
        std::fs::create_dir_all(&work_dir).with_context(|| format!("creating work dir {}", work_dir.display()))?;
        let work_dir = std::fs::canonicalize(&work_dir).unwrap_or(work_dir);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", config.port))?;
        let addr = listener.local_addr()?;
        let url = format!("https://{addr}");
        let identity = match config.identity.clone() {
            Some(id) => id,
            None => tls::Identity::generate(&[addr.ip(), std::net::Ipv6Addr::LOCALHOST.into()])?,
        };
        let listener = server::tls_listener::TlsListener::new(listener, identity.server_config()?)?;
        let shutdown = CancellationToken::new();
        let store = store::Store::new().context("reserving a service range")?;
        store.bootstrap(addr.port());
        let app = Arc::new(server::App {
            store,
            faults: Arc::new(faults::Faults::default()),
            shutdown: shutdown.clone(),
            addr: addr.to_string(),
            work_dir: work_dir.clone(),
            tokens: server::subresources::tokens::TokenIssuer::default(),
            admin_token: identity.admin_token().to_string(),
        });
        let router = server::router(app);
        let stop = shutdown.clone();
        let server_task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                stop.cancelled().await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "API server failed");
            }
        });

        let client = kube::Client::try_from(client_config(&url, &identity)?)?;
        let settings = controllers::Settings {
            images: config.images.clone(),
            work_dir: work_dir.clone(),
            api_server: Some(controllers::ApiServer {
                host: addr.ip().to_string(),
                port: addr.port(),
                ca_pem: identity.ca_pem().to_string(),
            }),
        };
        let controllers_task = tokio::spawn(controllers::run(client.clone(), settings, shutdown.clone()));
        // A pod created at once would find no service account to get its token for (and wait
        // for the kubelet's retry): return once `default` has its own.
        let accounts: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> = kube::Api::namespaced(client, "default");
        let ready = kube::runtime::wait::await_condition(accounts, "default", |a: Option<&_>| a.is_some());
        let failure = match tokio::time::timeout(Duration::from_secs(30), ready).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(format!("waiting for the default service account: {e}")),
            Err(_) => Some("the default service account was not created within 30 s".to_string()),
        };
        if let Some(why) = failure {
            shutdown.cancel();
            anyhow::bail!(why);
        }
        let kubeconfig = config.kubeconfig.clone().unwrap_or_else(|| work_dir.join("kubeconfig"));
        if let Some(parent) = kubeconfig.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        // Written last, once the plane is ready. Write then rename, so a reader never sees half a kubeconfig.
        let tmp = kubeconfig.with_extension("tmp-localplane");
        std::fs::write(&tmp, kubeconfig_yaml(&url, &identity))?;
        std::fs::rename(&tmp, &kubeconfig)?;
        Ok(LocalPlane { url, identity, kubeconfig, shutdown, tasks: vec![server_task, controllers_task], temp_dir })
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The CA and serving certificate (to restart a plane that its clients still trust).
    pub fn identity(&self) -> &tls::Identity {
        &self.identity
    }

    /// A client configuration that trusts this plane's CA; tests adjust timeouts or headers on it.
    pub fn client_config(&self) -> anyhow::Result<kube::Config> {
        client_config(&self.url, &self.identity)
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kube client for this plane (default namespace `default`).
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        Ok(kube::Client::try_from(self.client_config()?)?)
    }

    /// A client that fault injection spares (`faults::OBSERVER_HEADER`): for a test to watch
    /// what happens under faults without being disturbed itself.
    pub fn observer_client(&self) -> anyhow::Result<kube::Client> {
        let mut config = self.client_config()?;
        let name = axum::http::HeaderName::from_static(faults::OBSERVER_HEADER);
        config.headers.push((name, axum::http::HeaderValue::from_static("true")));
        Ok(kube::Client::try_from(config)?)
    }

    /// Stops the controllers (and every process the kubelet started) and the server.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for t in self.tasks.drain(..) {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(40), t).await.is_err() {
                abort.abort();
            }
        }
        if let Some(d) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Drop for LocalPlane {
    fn drop(&mut self) {
        // Without an async context we can only signal: the kubelet stops its processes on
        // cancellation (processes are also killed when their handles drop).
        self.shutdown.cancel();
        if let Some(d) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn client_config(url: &str, identity: &tls::Identity) -> anyhow::Result<kube::Config> {
    let mut config = kube::Config::new(url.parse().context("parsing the server URL")?);
    config.default_namespace = "default".into();
    config.read_timeout = None;
    config.root_cert = Some(vec![identity.ca_der()]);
    config.auth_info = serde_json::from_value(serde_json::json!({"token": identity.admin_token()}))?;
    Ok(config)
}

//! A test environment: localplane with the trainloop CRDs installed and the operator running
//! in-process, so a test can stop and restart it like a crashed pod.

pub mod chaos;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client, Resource,
    api::PostParams,
    runtime::wait::{Condition, await_condition},
};
use localplane::{Config, LocalPlane};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use trainloop::controllers::{self, Context, Metrics, Settings};

/// How long any single wait may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A namespaced Kubernetes object the environment can create, read and wait for.
pub trait Object:
    Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
    + Send
    + 'static
{
}

impl<K> Object for K where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + 'static
{
}

pub struct Env {
    /// Always present; taken only while [`Env::reset_plane`] replaces it.
    plane: Option<LocalPlane>,
    pub client: Client,
    pub work_dir: PathBuf,
    operator: Option<(CancellationToken, JoinHandle<()>)>,
    /// The operator as its own process (`start_operator_process`), when it runs as one.
    process: Option<tokio::process::Child>,
    /// The running operator's metrics (reset at each start, like a new process's).
    registry: prometheus_client::registry::Registry,
}

impl Env {
    /// A fresh plane with the CRDs established and the operator running.
    pub async fn start() -> anyhow::Result<Env> {
        let work_dir = std::env::temp_dir().join(format!("trainloop-e2e-{}", unique()));
        std::fs::create_dir_all(&work_dir)?;
        let plane = LocalPlane::start(Config { work_dir: Some(work_dir.join("plane")), ..Config::default() }).await?;
        let client = plane.client().await?;
        install_crds(&client).await?;
        let mut env =
            Env { plane: Some(plane), client, work_dir, operator: None, process: None, registry: Default::default() };
        env.start_operator();
        Ok(env)
    }

    /// Switches the API server's injected faults (`/localplane/faults`): `None` turns them off.
    pub async fn set_faults(&self, faults: Option<&Value>) -> anyhow::Result<()> {
        let request = match faults {
            Some(config) => http::Request::post("/localplane/faults").body(serde_json::to_vec(config)?)?,
            None => http::Request::delete("/localplane/faults").body(Vec::new())?,
        };
        self.client.request_text(request).await?;
        Ok(())
    }

    /// Replace the API server by a new, empty one at the same address, with the CRDs installed:
    /// what an operator sees when its cluster's state is lost and restored from nothing.
    pub async fn reset_plane(&mut self) -> anyhow::Result<()> {
        let old = self.plane.take().ok_or_else(|| anyhow::anyhow!("no plane"))?;
        let port: u16 = old.url().rsplit(':').next().unwrap_or_default().parse()?;
        // The same CA and credentials: a restored server keeps its identity.
        let identity = Some(old.identity().clone());
        old.shutdown().await;
        let work_dir = self.work_dir.join(format!("plane-{}", unique()));
        let fresh = LocalPlane::start(Config { port, work_dir: Some(work_dir), identity, ..Config::default() }).await?;
        self.plane = Some(fresh);
        install_crds(&self.client).await
    }

    /// Start the operator's controllers (again).
    pub fn start_operator(&mut self) {
        let mut registry = prometheus_client::registry::Registry::default();
        // Tests recover from a reset API server in seconds, not a minute.
        let settings = Settings {
            watch_restart_after: Duration::from_secs(3),
            ..Settings::new(format!("file://{}/artifacts", self.work_dir.display()))
        };
        let http = trainloop::triggers::http_client().expect("an HTTP client");
        let ctx = Arc::new(Context::new(self.client.clone(), Metrics::register(&mut registry), settings, http));
        let stop = CancellationToken::new();
        let task = tokio::spawn(controllers::run(ctx, stop.clone(), controllers::WatchHealth::default()));
        self.operator = Some((stop, task));
        self.registry = registry;
    }

    /// The operator's `/metrics` text since it was last started.
    pub fn operator_metrics(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Stop the operator as a crash would leave things: nothing it created is cleaned up.
    pub async fn stop_operator(&mut self) {
        if let Some((stop, task)) = self.operator.take() {
            stop.cancel();
            task.abort();
            let _ = task.await;
        }
    }

    /// Start the operator as its own process (the `trainloop-operator` binary of this package),
    /// in place of the in-process one.
    pub fn start_operator_process(&mut self, binary: &std::path::Path) -> anyhow::Result<()> {
        let kubeconfig = self.plane.as_ref().map(|p| p.kubeconfig_path().to_path_buf()).unwrap_or_default();
        let child = tokio::process::Command::new(binary)
            .arg("127.0.0.1:0")
            .arg(format!("file://{}/artifacts", self.work_dir.display()))
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()?;
        self.process = Some(child);
        Ok(())
    }

    /// SIGKILL the operator's process and reap it.
    pub async fn kill_operator_process(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill().await;
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Create a namespaced object from JSON.
    pub async fn create<K: Object>(&self, object: Value) -> anyhow::Result<K> {
        let typed: K = serde_json::from_value(object)?;
        Ok(self.api::<K>().create(&PostParams::default(), &typed).await?)
    }

    /// Wait until `name` satisfies `condition`, failing after [`TIMEOUT`].
    pub async fn wait_for<K: Object>(&self, name: &str, what: &str, condition: impl Condition<K>) -> K {
        self.wait_longer(name, what, TIMEOUT, condition).await
    }

    /// [`Env::wait_for`] with its own time limit, for what happens on a clock (cron ticks).
    pub async fn wait_longer<K: Object>(
        &self,
        name: &str,
        what: &str,
        limit: Duration,
        condition: impl Condition<K>,
    ) -> K {
        let found = self.wait::<K>(name, what, limit, condition).await;
        found.unwrap_or_else(|| panic!("{name} was deleted while waiting for {what}"))
    }

    /// Wait until `name` no longer exists, failing after [`TIMEOUT`].
    pub async fn wait_gone<K: Object>(&self, name: &str) {
        self.wait::<K>(name, "deletion", TIMEOUT, |object: Option<&K>| object.is_none()).await;
    }

    async fn wait<K: Object>(
        &self,
        name: &str,
        what: &str,
        limit: Duration,
        condition: impl Condition<K>,
    ) -> Option<K> {
        let api = self.api::<K>();
        match tokio::time::timeout(limit, await_condition(api.clone(), name, condition)).await {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => panic!("watching {name} for {what}: {error}"),
            Err(_) => panic!("timed out waiting for {name}: {what}; it is now {:#?}", api.get_opt(name).await),
        }
    }

    pub async fn shutdown(mut self) {
        self.stop_operator().await;
        self.kill_operator_process().await;
        if let Some(plane) = self.plane.take() {
            plane.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }
}

/// Apply the four CRDs and wait until each is Established.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in trainloop::api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.create(&PostParams::default(), &crd).await?;
        let established = kube::runtime::conditions::is_crd_established();
        tokio::time::timeout(TIMEOUT, await_condition(api.clone(), &name, established)).await??;
    }
    Ok(())
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{}-{nanos}", std::process::id())
}

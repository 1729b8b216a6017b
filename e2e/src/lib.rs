//! A test environment: a control plane with the trainloop CRDs installed and the operator running
//! in-process, so a test can stop and restart it like a crashed pod. The plane is localplane, or
//! the real Kubernetes control plane with localplane's kubelet as its node when
//! `TRAINLOOP_PLANE=kubernetes` ([`planes::SWITCH`]).

pub mod alerting;
pub mod chaos;
pub mod helm;
pub mod kubectl;
pub mod planes;
pub mod rbac;
pub mod realplane;
pub mod s3;
pub mod serving;

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
use planes::Plane;
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use trainloop::controllers::{self, Context, Metrics, Settings};
use trainloop_storage::StorageConfig;

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
    plane: Option<Plane>,
    pub client: Client,
    /// What the operator's client is made from ([`Plane::operator_config`]).
    operator_config: kube::Config,
    /// A client that localplane's fault injection spares: what a test observes with.
    pub observer: Client,
    pub work_dir: PathBuf,
    operator: Option<Operator>,
    /// The loopback port of the running operator's Alertmanager receiver, once a test asked for
    /// it ([`Env::serve_alerts`]): each operator started later serves it there too.
    alerts_port: Option<u16>,
    /// The operator as its own process (`start_operator_process`), when it runs as one.
    process: Option<tokio::process::Child>,
    /// The running operator's metrics (reset at each start, like a new process's).
    registry: prometheus_client::registry::Registry,
    /// Where the operator has trainers write artifacts, and its own storage credentials.
    artifact_root: String,
    storage: StorageConfig,
    /// Whether the operator knows that pods share its files (`--local-files`): true, as they do
    /// on both planes (localplane's kubelet runs them as processes); false to see the operator
    /// as it runs on a real cluster.
    pub local_files: bool,
}

impl Env {
    /// A fresh plane with the CRDs established and the operator running.
    pub async fn start() -> anyhow::Result<Env> {
        Env::start_with_images(&[]).await
    }

    /// [`Env::start`], with the kubelet running each of `images` (image, executable) as that
    /// executable.
    pub async fn start_with_images(images: &[(&str, &str)]) -> anyhow::Result<Env> {
        Env::start_with_storage(images, None).await
    }

    /// [`Env::start_with_images`], the operator's artifact root and storage credentials being
    /// `storage` (default: a `file://` folder in the work directory, no credentials).
    pub async fn start_with_storage(
        images: &[(&str, &str)],
        storage: Option<(String, StorageConfig)>,
    ) -> anyhow::Result<Env> {
        let mut env = Env::start_bare(images).await?;
        if let Some((artifact_root, storage)) = storage {
            env.artifact_root = artifact_root;
            env.storage = storage;
        }
        install_crds(&env.client).await?;
        env.start_operator();
        Ok(env)
    }

    /// A fresh plane whose kubelet runs each of `images` as its executable, with neither the CRDs
    /// nor the operator: for installing both as a user does (the Helm chart).
    pub async fn start_bare(images: &[(&str, &str)]) -> anyhow::Result<Env> {
        init_logging();
        let work_dir = std::env::temp_dir().join(format!("trainloop-e2e-{}", unique()));
        std::fs::create_dir_all(&work_dir)?;
        let images_file = work_dir.join("images.yaml");
        let lines: Vec<String> = images.iter().map(|(image, path)| format!("{image:?}: {path:?}")).collect();
        std::fs::write(&images_file, lines.join("\n"))?;
        let plane = Plane::for_workloads(work_dir.join("plane"), images_file).await?;
        let client = plane.client().await?;
        let operator_config = plane.operator_config().await?;
        let observer = plane.observer_client().await?;
        let artifact_root = format!("file://{}/artifacts", work_dir.display());
        Ok(Env {
            plane: Some(plane),
            operator_config,
            client,
            observer,
            work_dir,
            operator: None,
            alerts_port: None,
            process: None,
            registry: Default::default(),
            artifact_root,
            storage: StorageConfig::default(),
            local_files: true,
        })
    }

    /// The kubeconfig of the plane, for clients and processes of the test's own.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.plane.as_ref().map(|p| p.kubeconfig_path().to_path_buf()).unwrap_or_default()
    }

    /// Switches the API server's injected faults (`/localplane/faults`): `None` turns them off
    /// and answers what was injected. Sent by the observer, which faults spare.
    pub async fn set_faults(&self, faults: Option<&Value>) -> anyhow::Result<Value> {
        let request = match faults {
            Some(config) => http::Request::post("/localplane/faults").body(serde_json::to_vec(config)?)?,
            None => http::Request::delete("/localplane/faults").body(Vec::new())?,
        };
        Ok(serde_json::from_str(&self.observer.request_text(request).await?)?)
    }

    /// Replace the API server by a new, empty one at the same address, with the CRDs installed:
    /// what an operator sees when its cluster's state is lost and restored from nothing.
    /// localplane only.
    pub async fn reset_plane(&mut self) -> anyhow::Result<()> {
        let old = self.plane.take().ok_or_else(|| anyhow::anyhow!("no plane"))?.into_local()?;
        let port: u16 = old.url().rsplit(':').next().unwrap_or_default().parse()?;
        // The same CA and credentials: a restored server keeps its identity.
        let identity = Some(old.identity().clone());
        old.shutdown().await;
        let work_dir = self.work_dir.join(format!("plane-{}", unique()));
        let fresh = LocalPlane::start(Config { port, work_dir: Some(work_dir), identity, ..Config::default() }).await?;
        self.plane = Some(Plane::from(fresh));
        install_crds(&self.client).await
    }

    /// Start the operator's controllers (again).
    pub fn start_operator(&mut self) {
        self.start_operator_watching(&[]);
    }

    /// Start the operator's controllers (again) for `namespaces` only; empty: every namespace.
    pub fn start_operator_watching(&mut self, namespaces: &[&str]) {
        self.start_with_context(|env, registry| env.operator_context_on(None, namespaces, registry));
    }

    /// Start the operator's controllers (again) with their own `client` (e.g. one that records).
    pub fn start_operator_on(&mut self, client: Client, namespaces: &[&str]) {
        self.start_with_context(|env, registry| env.operator_context_on(Some(client), namespaces, registry));
    }

    fn start_with_context(&mut self, context: impl FnOnce(&Self, &mut Registry) -> Arc<Context>) {
        let mut registry = Registry::default();
        let ctx = context(self, &mut registry);
        let stop = CancellationToken::new();
        let alerts = self.alerts_port.map(|port| {
            let (_, task) = serve_receiver(&ctx, port, stop.clone()).expect("the receiver's port, free again");
            task
        });
        let task = tokio::spawn(controllers::run(ctx.clone(), stop.clone(), controllers::WatchHealth::default()));
        self.operator = Some(Operator { stop, task, ctx, alerts });
        self.registry = registry;
    }

    /// Serve the running operator's Alertmanager receiver on a loopback port, as `--alerts-addr`
    /// does, and the receiver of every operator started after it on the same port (until it
    /// stops): the URL Alertmanager's webhook points at.
    pub fn serve_alerts(&mut self) -> anyhow::Result<String> {
        let operator = self.operator.as_mut().ok_or_else(|| anyhow::anyhow!("no operator runs"))?;
        let port = match self.alerts_port {
            Some(port) => port,
            None => {
                let (port, task) = serve_receiver(&operator.ctx, 0, operator.stop.clone())?;
                operator.alerts = Some(task);
                self.alerts_port = Some(port);
                port
            }
        };
        Ok(format!("http://127.0.0.1:{port}{}", trainloop::server::alertmanager::PATH))
    }

    /// What the operator's controllers run with, their metrics registered in `registry`: for a
    /// test that calls a reconcile itself.
    pub fn operator_context(&self, registry: &mut Registry) -> Arc<Context> {
        self.operator_context_on(None, &[], registry)
    }

    /// The operator's context with `client`, else one of its own that counts its requests as the
    /// operator's binary does.
    fn operator_context_on(
        &self,
        client: Option<Client>,
        namespaces: &[&str],
        registry: &mut Registry,
    ) -> Arc<Context> {
        // Tests recover from a reset API server in seconds, not a minute.
        let settings = Settings {
            watch_restart_after: Duration::from_secs(3),
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            storage: self.storage.clone(),
            local_files: self.local_files,
            ..Settings::new(self.artifact_root.clone())
        };
        let http = trainloop::triggers::http_client().expect("an HTTP client");
        let metrics = Metrics::register(registry);
        let client = client.unwrap_or_else(|| {
            controllers::client::counting_client(self.operator_config.clone(), metrics.api_requests.clone())
                .expect("a client")
        });
        Arc::new(Context::new(client, metrics, settings, http))
    }

    /// The operator's `/metrics` text since it was last started.
    pub fn operator_metrics(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Stop the operator as a crash would leave things: nothing it created is cleaned up.
    pub async fn stop_operator(&mut self) {
        if let Some(Operator { stop, task, alerts, .. }) = self.operator.take() {
            stop.cancel();
            task.abort();
            let _ = task.await;
            // Stopped gracefully, so that its port is free for the next operator's receiver.
            if let Some(alerts) = alerts {
                let _ = alerts.await;
            }
        }
    }

    /// Start the operator as its own process (the `trainloop-operator` binary of this package),
    /// in place of the in-process one.
    pub fn start_operator_process(&mut self, binary: &std::path::Path) -> anyhow::Result<()> {
        self.process = Some(self.spawn_operator_process(binary, &[])?);
        Ok(())
    }

    /// One more operator process with `env` set (e.g. a candidate for the lease), which the
    /// caller owns: it is killed when dropped.
    pub fn spawn_operator_process(
        &self,
        binary: &std::path::Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<tokio::process::Child> {
        let child = tokio::process::Command::new(binary)
            .arg("127.0.0.1:0")
            .arg(&self.artifact_root)
            .env("KUBECONFIG", self.kubeconfig_path())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .spawn()?;
        Ok(child)
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

    /// Create a run by hand whose trainer waits until the returned file exists, then reports
    /// `result` (its termination message): a test decides when the trainer finishes.
    pub async fn create_held_run(&self, name: &str, result: &str) -> anyhow::Result<PathBuf> {
        let release = self.work_dir.join(format!("release-{name}"));
        let script = format!(
            "while [ ! -e {release} ]; do sleep 0.05; done\nprintf '%s' '{result}' > /dev/termination-log",
            release = release.display()
        );
        self.create::<trainloop::api::TrainingRun>(serde_json::json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingRun", "metadata": {"name": name},
            "spec": {
                "trigger": {"type": "Manual"}, "image": "shell", "command": ["sh", "-c", script],
                "features": [{"name": "age", "type": "number"}], "data": {"uri": "file:///dev/null"},
                "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9}]}
            }
        }))
        .await?;
        Ok(release)
    }

    /// Create a pipeline whose trainers wait until the returned file exists, then report an auc
    /// of 0.95 and an artifact in their run's folder; `spec`'s fields are set over its spec.
    pub async fn create_held_pipeline(&self, name: &str, spec: Value) -> anyhow::Result<PathBuf> {
        const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let release = self.work_dir.join(format!("release-{name}"));
        let script = format!(
            r#"while [ ! -e "{release}" ]; do sleep 0.05; done
printf '{{"metrics":{{"auc":0.95}},"artifact":{{"uri":"%smodel.json","digest":"{DIGEST}"}},"dataDigest":"{DIGEST}","profile":"%sprofile.json"}}' "$TRAINLOOP_ARTIFACT_URI" "$TRAINLOOP_ARTIFACT_URI" > /dev/termination-log"#,
            release = release.display()
        );
        let mut pipeline = serde_json::json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingPipeline",
            "metadata": {"name": name},
            "spec": {
                "template": {"image": "shell", "command": ["sh", "-c", script]},
                "data": {"uri": "file:///dev/null"},
                "features": [{"name": "age", "type": "number"}],
                "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9}]}
            }
        });
        if let (Some(fields), Value::Object(overrides)) = (pipeline["spec"].as_object_mut(), spec) {
            fields.extend(overrides);
        }
        self.create::<trainloop::api::TrainingPipeline>(pipeline).await?;
        Ok(release)
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
        if let Some(plane) = self.plane.take()
            && let Err(error) = plane.shutdown().await
        {
            eprintln!("the plane's node ended with an error: {error}");
        }
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }
}

/// An operator running in-process.
struct Operator {
    stop: CancellationToken,
    task: JoinHandle<()>,
    ctx: Arc<Context>,
    /// Its Alertmanager receiver's server, when it serves one.
    alerts: Option<JoinHandle<()>>,
}

/// Serve the receiver of the operator of `ctx` on the loopback `port` until `stop`; listening
/// once this returns (port 0: any free one). The port and the server.
fn serve_receiver(ctx: &Context, port: u16, stop: CancellationToken) -> anyhow::Result<(u16, JoinHandle<()>)> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let port = listener.local_addr()?.port();
    let receiver = trainloop::server::alertmanager::Receiver::of(ctx);
    let task = tokio::spawn(async move {
        if let Err(error) = receiver.serve(listener, stop).await {
            eprintln!("the Alertmanager receiver on port {port} stopped: {error}");
        }
    });
    Ok((port, task))
}

/// Whether a test needing what only localplane can do (`why`) must be skipped because the suite
/// runs on the real control plane ([`planes::SWITCH`]); says so on stderr.
pub fn skip_on_kubernetes(why: &str) -> bool {
    let skip = Plane::kubernetes_selected().unwrap_or(false);
    if skip {
        eprintln!("skipped on kubernetes: {why}");
    }
    skip
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

/// Logs of the operator and localplane (in-process) to stderr when `RUST_LOG` is set, to tell
/// where a failing test stuck; silent otherwise.
fn init_logging() {
    if std::env::var("RUST_LOG").is_ok_and(|level| !level.is_empty())
        && let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env()
    {
        // Every test's first `Env::start` installs it; later ones find it installed.
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_test_writer().try_init();
    }
}

/// A server on a loopback port that accepts connections and never answers (a hung upstream),
/// until the returned task is aborted.
pub async fn silent_server() -> (std::net::SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("a bound address");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    (address, task)
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{}-{nanos}", std::process::id())
}

//! One pod's life on the process kubelet: prepare its directory, volumes and environment, run its
//! init containers then its containers as processes, restart them per restartPolicy, probe them,
//! and report status; on deletion stop them gracefully.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodCondition, Secret, ServiceAccount};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::env::{self, EnvList, Sources, TokenKey};
use super::images::Images;
use super::paths::{PathMap, PodDirs, container_path_map, pod_key};
use super::runtime::{Launch, Process, exit_code, find_executable};
use super::status::{ContainerRecord, PodRecord, RunState, pod_status};
use super::{Kubelet, lifecycle, logs, probe, service_account, volumes};

/// First and longest delay between restarts of a crashing container. Real kubelets start at 10s
/// and cap at 5 minutes; a local tool waits less so that tests and demos move on.
const RESTART_BACKOFF_START: Duration = Duration::from_secs(1);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A container that ran this long is considered healthy again: its backoff starts over.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);
/// How long processes get to stop when localplane itself shuts down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How often a pod that cannot start yet (missing ConfigMap, unmapped image) is retried.
const CONFIG_RETRY: Duration = Duration::from_secs(2);
/// A failed final status write is retried after this, doubling up to the maximum.
const FINAL_STATUS_RETRY_FIRST: Duration = Duration::from_millis(200);
const FINAL_STATUS_RETRY_MAX: Duration = Duration::from_secs(1);

/// How the registry tells a pod worker to stop.
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    /// Stop the containers gracefully.
    pub stop: CancellationToken,
    /// The pod object is gone: write nothing more about it.
    pub gone: Arc<std::sync::atomic::AtomicBool>,
}

/// Everything one container needs to start, computed before its first start.
#[derive(Debug, Clone)]
struct Plan {
    name: String,
    launch: Launch,
    term_file: PathBuf,
    fallback_to_logs: bool,
    readiness: Option<(probe::Check, probe::Timing)>,
    liveness: Option<(probe::Check, probe::Timing)>,
    pre_stop: Option<lifecycle::PreStop>,
    /// A native sidecar: an init container with restartPolicy Always, which keeps running
    /// beside the containers and is stopped when they finish.
    sidecar: bool,
}

/// Shared between the worker and its container tasks.
struct Shared {
    record: Mutex<PodRecord>,
    changed: Notify,
    /// Grace period for the stop in progress (set before `stop` is cancelled).
    grace: Mutex<Duration>,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut PodRecord)) {
        if let Ok(mut rec) = self.record.lock() {
            f(&mut rec);
        }
        self.changed.notify_one();
    }
    fn snapshot(&self) -> Option<PodRecord> {
        self.record.lock().ok().map(|r| r.clone())
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Init(usize),
    Main(usize),
}

fn container_mut(rec: &mut PodRecord, slot: Slot) -> Option<&mut ContainerRecord> {
    match slot {
        Slot::Init(i) => rec.init.get_mut(i),
        Slot::Main(i) => rec.containers.get_mut(i),
    }
}

/// Writes pod status with a strategic merge patch, skipping writes that would change nothing.
struct StatusWriter {
    api: Api<Pod>,
    name: String,
    last: Option<serde_json::Value>,
    /// The kubelet's own conditions as last written (for their lastTransitionTime).
    conditions: Vec<PodCondition>,
    /// The pod's readiness gates (spec.readinessGates[].conditionType).
    gates: Vec<String>,
    /// The pod's conditions as last seen on the server, including other clients' ones.
    observed: Vec<PodCondition>,
}

impl StatusWriter {
    async fn write(&mut self, rec: &PodRecord) -> bool {
        let status = pod_status(rec, &self.conditions, &self.gates, &self.observed, Timestamp::now());
        let value = match serde_json::to_value(&status) {
            Ok(v) => v,
            Err(_) => return false,
        };
        if self.last.as_ref() == Some(&value) && self.server_agrees(&status) {
            return true;
        }
        let patch = json!({ "status": status_patch(value.clone()) });
        match self.api.patch_status(&self.name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
            Ok(_) => {
                self.conditions = status.conditions.unwrap_or_default();
                self.last = Some(value);
                true
            }
            Err(kube::Error::Api(e)) if e.code == 404 => true,
            Err(e) => {
                tracing::debug!(pod = %self.name, error = %e, "pod status write failed");
                false
            }
        }
    }
}

impl StatusWriter {
    /// Whether the server still shows the kubelet's conditions as computed: another client may
    /// have replaced the whole list (a merge patch of `status.conditions`); then they are
    /// written again. A stale watch event only costs a write that changes nothing.
    fn server_agrees(&self, status: &k8s_openapi::api::core::v1::PodStatus) -> bool {
        status.conditions.iter().flatten().all(|mine| {
            self.observed.iter().any(|seen| {
                (&seen.type_, &seen.status, &seen.reason, &seen.message)
                    == (&mine.type_, &mine.status, &mine.reason, &mine.message)
            })
        })
    }
}

/// The status as a strategic merge patch. Conditions merge by type, so the ones other clients
/// write through pods/status (readiness gates) survive the kubelet's writes, as on a real node;
/// a reason or message the kubelet no longer reports is deleted explicitly (a merge of list
/// items would keep it). containerStatuses have no merge key: they are replaced whole.
fn status_patch(mut status: serde_json::Value) -> serde_json::Value {
    if let Some(conditions) = status.get_mut("conditions").and_then(serde_json::Value::as_array_mut) {
        for c in conditions.iter_mut().filter_map(serde_json::Value::as_object_mut) {
            for field in ["reason", "message"] {
                c.entry(field).or_insert(serde_json::Value::Null);
            }
        }
    }
    status
}

/// The grace period of a stop: the deletion's, else the pod's, else 30 seconds. A recorded
/// deletion grace of 0 is ignored: servers record 0 for objects held by finalizers, and a force
/// delete removes the object (the DELETED path) anyway.
pub fn grace_period(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .filter(|g| *g > 0)
        .or_else(|| pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30)
        .max(0);
    Duration::from_secs(secs as u64)
}

/// Runs a pod until it is deleted or localplane shuts down.
pub async fn run(kubelet: Arc<Kubelet>, pod: Pod, mut updates: watch::Receiver<Pod>, signal: StopSignal) {
    let (namespace, name) = pod_key(&pod);
    let api: Api<Pod> = Api::namespaced(kubelet.client.clone(), &namespace);
    assign_node(&api, &pod, &kubelet.node).await;

    let ip = kubelet.claim_ip(&pod);
    let dirs = PodDirs::new(&kubelet.work_dir, &namespace, &name);
    // A previous pod of the same name leaves nothing behind for this one.
    let _ = std::fs::remove_dir_all(&dirs.root);
    let dir_error = std::fs::create_dir_all(&dirs.root).err();

    let spec = pod.spec.clone().unwrap_or_default();
    let record = PodRecord {
        init: spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| ContainerRecord::new(&c.name, c.image.as_deref().unwrap_or_default()))
            .collect(),
        containers: spec
            .containers
            .iter()
            .map(|c| ContainerRecord::new(&c.name, c.image.as_deref().unwrap_or_default()))
            .collect(),
        initialized: spec.init_containers.as_ref().is_none_or(Vec::is_empty),
        pod_ip: ip.map(|i| i.to_string()).unwrap_or_default(),
        start_time: Timestamp::now(),
        failure: None,
    };
    let shared =
        Arc::new(Shared { record: Mutex::new(record), changed: Notify::new(), grace: Mutex::new(grace_period(&pod)) });
    let mut writer = StatusWriter {
        api: api.clone(),
        name: name.clone(),
        last: None,
        conditions: observed_conditions(&pod)
            .into_iter()
            .filter(|c| super::status::KUBELET_CONDITIONS.contains(&c.type_.as_str()))
            .collect(),
        gates: spec.readiness_gates.iter().flatten().map(|g| g.condition_type.clone()).collect(),
        observed: observed_conditions(&pod),
    };

    let failure = match (ip, dir_error) {
        (None, _) => Some(("OutOfpods".to_string(), "no free pod IP".to_string())),
        (_, Some(e)) => Some(("PodDirectoryError".to_string(), format!("cannot create {}: {e}", dirs.root.display()))),
        _ => None,
    };
    if let Some(failure) = failure {
        shared.update(|r| r.failure = Some(failure));
    } else if let Some(ip) = ip {
        let life = Life {
            kubelet: kubelet.clone(),
            pod: pod.clone(),
            dirs: dirs.clone(),
            ip,
            shared: shared.clone(),
            stop: signal.stop.clone(),
        };
        let mut running = std::pin::pin!(life.run());
        let mut updates_open = true;
        loop {
            if let Some(rec) = shared.snapshot()
                && !signal.gone.load(std::sync::atomic::Ordering::SeqCst)
                && !kubelet.shutdown.is_cancelled()
                && !writer.write(&rec).await
            {
                // Retry a failed write soon even if nothing else changes.
                let s = shared.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    s.changed.notify_one();
                });
            }
            tokio::select! {
                _ = &mut running => break,
                _ = shared.changed.notified() => {}
                changed = updates.changed(), if updates_open => {
                    if changed.is_err() { updates_open = false; continue; }
                    let latest = updates.borrow_and_update().clone();
                    // A gate's condition written by another client recomputes Ready now: the
                    // loop writes the status again at its top (a no-op when nothing changed).
                    writer.observed = observed_conditions(&latest);
                    if latest.metadata.deletion_timestamp.is_some() {
                        if let Ok(mut g) = shared.grace.lock() { *g = grace_period(&latest); }
                        signal.stop.cancel();
                    }
                }
                // Guarded: once stopping, a ready `cancelled()` would spin this loop.
                _ = kubelet.shutdown.cancelled(), if !signal.stop.is_cancelled() => {
                    if let Ok(mut g) = shared.grace.lock() { *g = (*g).min(SHUTDOWN_GRACE); }
                    signal.stop.cancel();
                }
            }
        }
    }

    // Final status, then the IP goes back to the pool (the status keeps showing it, as on a
    // real node where a finished pod's IP may be reused). Retried until written, however long
    // the API server fails: the pod's outcome exists nowhere else, and its Job and whoever reads
    // its result wait for it.
    if let Some(rec) = shared.snapshot() {
        let mut delay = FINAL_STATUS_RETRY_FIRST;
        while !signal.gone.load(std::sync::atomic::Ordering::SeqCst)
            && !kubelet.shutdown.is_cancelled()
            && !writer.write(&rec).await
        {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = kubelet.shutdown.cancelled() => break,
            }
            delay = (delay * 2).min(FINAL_STATUS_RETRY_MAX);
        }
    }
    if let Some(ip) = ip {
        kubelet.release_ip(ip);
    }

    // A finished pod stays until it is deleted; then, if the server waits for the kubelet
    // (deletionTimestamp set, object still there), remove the object.
    loop {
        let deleting = updates.borrow().metadata.deletion_timestamp.is_some();
        if deleting || signal.stop.is_cancelled() {
            break;
        }
        tokio::select! {
            changed = updates.changed() => if changed.is_err() { return },
            _ = signal.stop.cancelled() => {}
            _ = kubelet.shutdown.cancelled() => return,
        }
    }
    if kubelet.shutdown.is_cancelled() || signal.gone.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let latest = updates.borrow().clone();
    remove(kubelet.client.clone(), latest).await;
}

fn observed_conditions(pod: &Pod) -> Vec<PodCondition> {
    pod.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default()
}

/// Removes a pod object whose processes are stopped (deletion with gracePeriodSeconds=0).
pub async fn remove(client: Client, pod: Pod) {
    let (namespace, name) = pod_key(&pod);
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    let uid = pod.metadata.uid.clone();
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid, resource_version: None }),
        ..Default::default()
    };
    if let Err(e) = api.delete(&name, &params).await
        && !matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 409)
    {
        tracing::warn!(pod = %name, error = %e, "could not remove deleted pod");
    }
}

/// Binds the pod to this node if no scheduler did (there is none).
async fn assign_node(api: &Api<Pod>, pod: &Pod, node: &str) {
    let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    if bound {
        return;
    }
    let Some(name) = pod.metadata.name.as_deref() else {
        return;
    };
    let patch = json!({ "spec": { "nodeName": node } });
    if let Err(e) = api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        tracing::debug!(pod = %name, error = %e, "could not set spec.nodeName");
    }
}

/// The part of a pod's life that runs containers; ends when every container is final or the
/// pod is stopped.
struct Life {
    kubelet: Arc<Kubelet>,
    pod: Pod,
    dirs: PodDirs,
    ip: Ipv4Addr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Life {
    async fn run(self) {
        if self.stop.is_cancelled() {
            return;
        }
        let plans = loop {
            match self.prepare().await {
                Ok(plans) => break plans,
                Err((slot_reason, message)) => {
                    self.shared.update(|r| {
                        for c in r.init.iter_mut().chain(r.containers.iter_mut()) {
                            c.state = RunState::waiting(&slot_reason, Some(message.clone()));
                        }
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(CONFIG_RETRY) => {}
                        _ = self.stop.cancelled() => return,
                    }
                }
            }
        };
        let (init_plans, main_plans) = plans;
        let policy =
            self.pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".to_string());

        // Sidecars run beside everything after them and stop once the containers are done.
        let sidecar_stop = self.stop.child_token();
        let (sidecar_tx, mut sidecar_rx) = tokio::sync::mpsc::unbounded_channel();
        let sequence = async {
            // Owned here, so the sidecar loop sees the channel close when the sequence ends.
            let sidecar_tx = sidecar_tx;
            for (i, plan) in init_plans.into_iter().enumerate() {
                if plan.sidecar {
                    let _ = sidecar_tx.send((i, plan));
                    continue;
                }
                // Init containers run to success; under Never a failure fails the pod.
                let init_policy = if policy == "Never" { "Never" } else { "OnFailure" };
                match self.run_container(Slot::Init(i), plan, init_policy, &self.stop).await {
                    Some(0) => {}
                    Some(code) => {
                        self.shared.update(|r| {
                            r.failure = Some((
                                "InitContainerFailed".to_string(),
                                format!("init container exited with code {code}"),
                            ))
                        });
                        return;
                    }
                    None => return,
                }
            }
            self.shared.update(|r| r.initialized = true);
            let runs = main_plans
                .into_iter()
                .enumerate()
                .map(|(i, plan)| self.run_container(Slot::Main(i), plan, &policy, &self.stop));
            futures::future::join_all(runs).await;
        };
        let sidecars = async {
            let mut running = futures::stream::FuturesUnordered::new();
            loop {
                tokio::select! {
                    next = sidecar_rx.recv() => match next {
                        Some((i, plan)) => running.push(self.run_container(Slot::Init(i), plan, "Always", &sidecar_stop)),
                        None => break,
                    },
                    Some(_) = futures::StreamExt::next(&mut running), if !running.is_empty() => {}
                }
            }
            while futures::StreamExt::next(&mut running).await.is_some() {}
        };
        let sequence = async {
            sequence.await;
            sidecar_stop.cancel();
        };
        futures::future::join(sequence, sidecars).await;
    }

    /// Fetches what the pod refers to, writes its volumes and plans every container.
    /// Err is (waiting reason, message).
    #[allow(clippy::type_complexity)]
    async fn prepare(&self) -> Result<(Vec<Plan>, Vec<Plan>), (String, String)> {
        let (namespace, _) = pod_key(&self.pod);
        let pod = self.with_api_access(&namespace).await?;
        let spec = pod.spec.clone().unwrap_or_default();
        let inits: Vec<Container> = spec.init_containers.clone().unwrap_or_default();
        let all: Vec<&Container> = inits.iter().chain(spec.containers.iter()).collect();

        let (mut cms, mut secrets) = volumes::referenced(&pod);
        for c in &all {
            let (c_cms, c_secrets) = env::referenced_sources(c);
            cms.extend(c_cms);
            secrets.extend(c_secrets);
        }
        let mut sources = self.fetch(&namespace, &cms, &secrets).await?;
        sources.tokens = self.tokens(&pod).await?;
        let ip = self.ip.to_string();
        let vols = volumes::materialize(&pod, &self.dirs, &self.kubelet.work_dir, &sources, &ip)
            .map_err(|e| ("ContainerCreating".to_string(), e))?;
        let images = Images::load(self.kubelet.images.as_deref()).map_err(|e| ("ErrImagePull".to_string(), e))?;

        let mut plans = Vec::new();
        for c in &all {
            plans.push(self.plan(c, &sources, &vols, &images, &ip)?);
        }
        let mains = plans.split_off(inits.len());
        Ok((plans, mains))
    }

    /// The pod with the service-account volume that admission would have added.
    async fn with_api_access(&self, namespace: &str) -> Result<Pod, (String, String)> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.kubelet.client.clone(), namespace);
        let account = accounts
            .get_opt(&service_account::account_name(&self.pod))
            .await
            .map_err(|e| ("CreateContainerConfigError".to_string(), e.to_string()))?;
        let automount = account.and_then(|a| a.automount_service_account_token);
        Ok(service_account::with_api_access(&self.pod, automount))
    }

    /// Bound tokens for the pod's projected service-account tokens, asked for as the kubelet does
    /// (TokenRequest for the pod's service account, bound to the pod).
    async fn tokens(&self, pod: &Pod) -> Result<BTreeMap<TokenKey, String>, (String, String)> {
        let (namespace, name) = pod_key(pod);
        let account = service_account::account_name(pod);
        let accounts: Api<ServiceAccount> = Api::namespaced(self.kubelet.client.clone(), &namespace);
        let mut out = BTreeMap::new();
        for (audience, expiration) in volumes::token_requests(pod) {
            let audiences: Vec<&str> = if audience.is_empty() { Vec::new() } else { vec![&audience] };
            let request = json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": audiences, "expirationSeconds": expiration,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod.metadata.uid}}
            });
            let issued: serde_json::Value = accounts
                .create_subresource("token", &account, &PostParams::default(), &request)
                .await
                .map_err(|e| {
                    (
                        "ContainerCreating".to_string(),
                        format!("failed to fetch token for service account {account:?}: {e}"),
                    )
                })?;
            let token = issued.pointer("/status/token").and_then(|t| t.as_str()).unwrap_or_default().to_string();
            out.insert((audience, expiration), token);
        }
        Ok(out)
    }

    async fn fetch(
        &self,
        namespace: &str,
        cms: &[(String, bool)],
        secrets: &[(String, bool)],
    ) -> Result<Sources, (String, String)> {
        let client = self.kubelet.client.clone();
        let mut sources = Sources::default();
        let err = |e: kube::Error| ("CreateContainerConfigError".to_string(), e.to_string());
        let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        for (name, _optional) in cms {
            if sources.config_maps.contains_key(name) {
                continue;
            }
            // Missing objects are judged later, where it is known whether they were optional.
            if let Some(cm) = cm_api.get_opt(name).await.map_err(err)? {
                sources.config_maps.insert(name.clone(), cm);
            }
        }
        let secret_api: Api<Secret> = Api::namespaced(client, namespace);
        for (name, _optional) in secrets {
            if sources.secrets.contains_key(name) {
                continue;
            }
            if let Some(s) = secret_api.get_opt(name).await.map_err(err)? {
                sources.secrets.insert(name.clone(), s);
            }
        }
        Ok(sources)
    }

    fn plan(
        &self,
        c: &Container,
        sources: &Sources,
        vols: &BTreeMap<String, PathBuf>,
        images: &Images,
        ip: &str,
    ) -> Result<Plan, (String, String)> {
        let config_err = |e: String| ("CreateContainerConfigError".to_string(), e);
        if !super::paths::safe_segment(&c.name) {
            return Err(config_err(format!("invalid container name {:?}", c.name)));
        }
        let (_, pod_name) = pod_key(&self.pod);
        let hostname = self.pod.spec.as_ref().and_then(|s| s.hostname.clone()).unwrap_or(pod_name);
        let paths: PathMap = container_path_map(&self.dirs, c, &|v| vols.get(v).cloned());

        // Only a few host variables pass through: PATH so that `sh`, `python3` are found, and
        // the locale. Everything else comes from the pod spec, as in a container.
        let mut base = EnvList::default();
        for key in ["PATH", "LANG", "LC_ALL", "TZ"] {
            if let Ok(v) = std::env::var(key) {
                base.set(key, v);
            }
        }
        if base.get("PATH").is_none() {
            base.set("PATH", "/usr/local/bin:/usr/bin:/bin");
        }
        base.set("HOSTNAME", hostname);
        base.set("POD_IP", ip);
        base.set("HOME", self.dirs.work(&c.name).to_string_lossy());
        if let Some(api) = &self.kubelet.api_server {
            for (name, value) in env::api_server_env(&api.host, api.port) {
                base.set(name, value);
            }
        }
        let mut env = env::container_env(&self.pod, c, ip, sources, &base).map_err(|e| config_err(e.to_string()))?;
        let image = c.image.as_deref().unwrap_or_default();
        let argv = env::command_line(c, images.lookup(image), &env)
            .map_err(|e| ("ErrImagePull".to_string(), e.to_string()))?;
        let argv: Vec<String> = argv.iter().map(|a| paths.rewrite(a)).collect();
        // The kubelet's own values (HOME, PATH) are host paths already, not container paths:
        // rewriting them would take a HOME under a /tmp work dir for a file of the pod's /tmp
        // volume, as a read-only-root pod mounts one. Only what the pod set is rewritten.
        let kubelet_values: Vec<(String, String)> = base
            .iter()
            .filter(|(name, value)| env.get(name) == Some(*value))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        env.map_values(|v| paths.rewrite(v));
        for (name, value) in kubelet_values {
            env.set(name, value);
        }

        let container_dir = self.dirs.container(&c.name);
        let work = self.dirs.work(&c.name);
        std::fs::create_dir_all(&work).map_err(|e| config_err(e.to_string()))?;
        let work_dir = match c.working_dir.as_deref().filter(|w| !w.is_empty()) {
            None => work,
            Some(w) => match paths.resolve(w) {
                Some(host) => host,
                // A workingDir that is no mounted path is made inside the container's directory.
                None => work.join(w.trim_start_matches('/')),
            },
        };
        std::fs::create_dir_all(&work_dir).map_err(|e| config_err(e.to_string()))?;
        std::fs::create_dir_all(&container_dir).map_err(|e| config_err(e.to_string()))?;

        let env_vec: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let pod_ip = IpAddr::V4(self.ip);
        let exec = |cmd: &[String]| -> Vec<String> { cmd.iter().map(|a| paths.rewrite(a)).collect() };
        let probe_of = |p: Option<&k8s_openapi::api::core::v1::Probe>| {
            p.map(|p| {
                probe::check(p, c, pod_ip, exec)
                    .map(|check| (check, probe::timing(p)))
                    .map_err(|e| config_err(format!("probe: {e}")))
            })
            .transpose()
        };
        Ok(Plan {
            name: c.name.clone(),
            launch: Launch { argv, env: env_vec, work_dir, log: self.dirs.log() },
            term_file: self.dirs.termination_log(&c.name),
            fallback_to_logs: c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError"),
            sidecar: c.restart_policy.as_deref() == Some("Always"),
            readiness: probe_of(c.readiness_probe.as_ref())?,
            liveness: probe_of(c.liveness_probe.as_ref())?,
            pre_stop: lifecycle::pre_stop(c, pod_ip, exec).map_err(config_err)?,
        })
    }

    /// Runs one container with restarts; returns its final exit code, or None if stopped.
    async fn run_container(&self, slot: Slot, plan: Plan, policy: &str, stop: &CancellationToken) -> Option<i32> {
        let mut backoff = RESTART_BACKOFF_START;
        loop {
            if stop.is_cancelled() {
                return None;
            }
            let _ = std::fs::write(&plan.term_file, b"");
            let started = Instant::now();
            let started_at = Timestamp::now();
            let (code, reason, message) = match self.start(&plan) {
                Err(message) => (128, "StartError".to_string(), Some(message)),
                Ok(mut process) => {
                    tracing::info!(
                        pod = %pod_key(&self.pod).1, container = %plan.name, pid = ?process.pid(),
                        argv = ?plan.launch.argv, "container started"
                    );
                    self.shared.update(|r| {
                        if let Some(c) = container_mut(r, slot) {
                            c.state = RunState::Running { started_at };
                            c.ever_started = true;
                            c.ready = plan.readiness.is_none();
                            c.container_id = process.pid().map(|p| format!("localplane://{p}"));
                        }
                    });
                    let probes = stop.child_token();
                    let unhealthy = CancellationToken::new();
                    if let Some((check, timing)) = plan.readiness.clone() {
                        tokio::spawn(readiness_loop(
                            self.shared.clone(),
                            slot,
                            check,
                            timing,
                            plan.launch.env.clone(),
                            probes.clone(),
                        ));
                    }
                    if let Some((check, timing)) = plan.liveness.clone() {
                        tokio::spawn(liveness_loop(
                            check,
                            timing,
                            plan.launch.env.clone(),
                            probes.clone(),
                            unhealthy.clone(),
                        ));
                    }
                    let status = tokio::select! {
                        s = process.wait() => s,
                        _ = stop.cancelled() => self.kill(&mut process, &plan).await,
                        _ = unhealthy.cancelled() => self.kill(&mut process, &plan).await,
                    };
                    probes.cancel();
                    let code = status.as_ref().map(exit_code).unwrap_or(255);
                    tracing::info!(
                        pod = %pod_key(&self.pod).1, container = %plan.name, exit_code = code, "container exited"
                    );
                    let message =
                        logs::termination_message(&plan.term_file, &plan.launch.log, plan.fallback_to_logs, code);
                    let reason = if code == 0 { "Completed" } else { "Error" };
                    (code, reason.to_string(), Some(message))
                }
            };
            let stopping = stop.is_cancelled();
            let restart = !stopping
                && match policy {
                    "Always" => true,
                    "OnFailure" => code != 0,
                    _ => false,
                };
            if started.elapsed() > BACKOFF_RESET_AFTER {
                backoff = RESTART_BACKOFF_START;
            }
            let terminated = RunState::Terminated {
                exit_code: code,
                reason,
                message,
                started_at: Some(started_at),
                finished_at: Timestamp::now(),
            };
            let pod_name = pod_key(&self.pod).1;
            self.shared.update(|r| {
                if let Some(c) = container_mut(r, slot) {
                    c.ready = false;
                    if restart {
                        c.restart_count += 1;
                        c.last_state = Some(terminated);
                        c.state = RunState::waiting(
                            "CrashLoopBackOff",
                            Some(format!(
                                "back-off {}s restarting failed container={} pod={}",
                                backoff.as_secs(),
                                plan.name,
                                pod_name
                            )),
                        );
                    } else {
                        c.state = terminated;
                        c.finished = true;
                    }
                }
            });
            if !restart {
                return (!stopping).then_some(code);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.cancelled() => {
                    self.shared.update(|r| {
                        if let Some(c) = container_mut(r, slot) {
                            if let Some(last) = c.last_state.clone() { c.state = last; }
                            c.finished = true;
                        }
                    });
                    return None;
                }
            }
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
        }
    }

    /// Stops a running container as the kubelet kills one: its preStop hook first (not when
    /// localplane itself shuts down), then SIGTERM, then SIGKILL after what is left of the grace.
    async fn kill(&self, process: &mut Process, plan: &Plan) -> std::io::Result<std::process::ExitStatus> {
        let mut grace = self.shared.grace.lock().map(|g| *g).unwrap_or(SHUTDOWN_GRACE);
        if let Some(hook) = &plan.pre_stop
            && !self.kubelet.shutdown.is_cancelled()
        {
            let hook_run = lifecycle::run_pre_stop(hook, grace, &plan.launch.env);
            // The process may exit during the hook; then there is nothing left to signal.
            tokio::select! {
                left = hook_run => grace = left,
                status = process.wait() => return status,
                _ = self.kubelet.shutdown.cancelled() => grace = grace.min(SHUTDOWN_GRACE),
            }
        }
        process.terminate(grace).await
    }

    fn start(&self, plan: &Plan) -> Result<Process, String> {
        let program = plan.launch.argv.first().cloned().unwrap_or_default();
        let path_var = plan.launch.env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str());
        if find_executable(&program, path_var, &plan.launch.work_dir).is_none() {
            return Err(if program.contains('/') {
                format!("exec: {program:?}: no such executable file (check the images file)")
            } else {
                format!("exec: {program:?}: executable file not found in $PATH")
            });
        }
        Process::start(&plan.launch).map_err(|e| format!("failed to start {program:?}: {e}"))
    }
}

/// Probes readiness and records it on the container.
async fn readiness_loop(
    shared: Arc<Shared>,
    slot: Slot,
    check: probe::Check,
    timing: probe::Timing,
    env: Vec<(String, String)>,
    stop: CancellationToken,
) {
    tokio::select! {
        _ = tokio::time::sleep(timing.initial_delay) => {}
        _ = stop.cancelled() => return,
    }
    let (mut successes, mut failures) = (0u32, 0u32);
    let mut ready = false;
    loop {
        match probe::run(&check, timing.timeout, &env).await {
            Ok(()) => {
                successes += 1;
                failures = 0;
            }
            Err(_) => {
                failures += 1;
                successes = 0;
            }
        }
        let now_ready = if successes >= timing.success_threshold {
            true
        } else if failures >= timing.failure_threshold {
            false
        } else {
            ready
        };
        if now_ready != ready && !stop.is_cancelled() {
            ready = now_ready;
            shared.update(|r| {
                if let Some(c) = container_mut(r, slot) {
                    c.ready = ready;
                }
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(timing.period) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Probes liveness; cancels `unhealthy` (which restarts the container) after too many failures.
async fn liveness_loop(
    check: probe::Check,
    timing: probe::Timing,
    env: Vec<(String, String)>,
    stop: CancellationToken,
    unhealthy: CancellationToken,
) {
    tokio::select! {
        _ = tokio::time::sleep(timing.initial_delay) => {}
        _ = stop.cancelled() => return,
    }
    let mut failures = 0u32;
    loop {
        match probe::run(&check, timing.timeout, &env).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures >= timing.failure_threshold {
                    tracing::info!(error = %e, "liveness probe failed; restarting container");
                    unhealthy.cancel();
                    return;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(timing.period) => {}
            _ = stop.cancelled() => return,
        }
    }
}

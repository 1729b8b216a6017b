//! The process kubelet: runs every pod bound to this node (or to no node: there is no scheduler)
//! as local processes, one worker task per pod.
//!
//! Pod deletion semantics: the kubelet stops a pod's processes gracefully (SIGTERM to the process
//! group, the grace period, then SIGKILL) in two cases:
//! - the pod gets a `deletionTimestamp` (a server that waits for the kubelet, or finalizers):
//!   the kubelet stops the processes, writes the final status, then deletes the object with
//!   `gracePeriodSeconds=0` (and a UID precondition) so the server can remove it;
//! - the pod is DELETED outright (localplane's server removes pods at once): the processes are
//!   stopped the same way, and nothing more is written about the gone object.
//!
//! Either way the grace period is the deletion's `deletionGracePeriodSeconds` when the server
//! recorded one (> 0), else the pod's `terminationGracePeriodSeconds`, else 30 seconds.
//!
//! Supported: command/args/`$(VAR)` rules, env and envFrom (ConfigMap, Secret, fieldRef,
//! resourceFieldRef), ConfigMap/Secret/emptyDir/hostPath/PVC/downwardAPI/projected volumes,
//! container path rewriting (`paths`), init containers, native sidecars (init containers with
//! restartPolicy Always), restartPolicy with back-off (1s doubling to 30s; real kubelets use 10s
//! to 5 min), httpGet/tcpSocket/exec readiness and liveness probes, readiness gates, preStop hooks
//! (sleep, httpGet, exec: `lifecycle`), termination messages.
//! Not supported: startup probes (ignored), postStart hooks, resource limits, security contexts,
//! ConfigMap updates after a pod started, ephemeral containers. Each container runs with a
//! clean environment except PATH, LANG, LC_ALL and TZ from the host.

pub mod env;
pub mod images;
pub mod ip;
pub mod lifecycle;
pub mod logs;
pub mod node;
pub mod paths;
pub mod pod;
pub mod probe;
pub mod runtime;
pub mod server;
pub mod service_account;
pub mod status;
pub mod volumes;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use ip::IpPool;
use pod::StopSignal;

/// The one node of localplane.
pub const NODE_NAME: &str = "localplane";
/// The node's address (status.hostIP).
pub const HOST_IP: &str = "127.0.0.1";

/// The kubelet's shared context.
pub struct Kubelet {
    pub client: Client,
    pub work_dir: PathBuf,
    pub images: Option<PathBuf>,
    /// Where pods reach the API server (KUBERNETES_SERVICE_HOST/PORT) and its CA.
    pub api_server: Option<super::ApiServer>,
    pub shutdown: CancellationToken,
    /// The Node it runs pods for.
    pub node: String,
    /// Whether it also takes pods bound to no node: localplane has no scheduler; on a cluster
    /// with one, unbound pods are the scheduler's to place.
    pub binds_unbound: bool,
    ips: Mutex<IpPool>,
}

impl Kubelet {
    pub fn new(
        client: Client,
        work_dir: PathBuf,
        images: Option<PathBuf>,
        api_server: Option<super::ApiServer>,
        shutdown: CancellationToken,
    ) -> Kubelet {
        Kubelet {
            client,
            work_dir,
            images,
            api_server,
            shutdown,
            node: NODE_NAME.to_string(),
            binds_unbound: true,
            ips: Mutex::new(IpPool::new(0)),
        }
    }

    /// A kubelet joining another API server (the real control plane) as the Node `node`: it
    /// runs only the pods the scheduler binds to it.
    pub fn joining(self, node: &str) -> Kubelet {
        Kubelet { node: node.to_string(), binds_unbound: false, ..self }
    }

    /// Whether `pod` is this kubelet's to run.
    fn is_ours(&self, pod: &Pod) -> bool {
        match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            None | Some("") => self.binds_unbound,
            Some(node) => node == self.node,
        }
    }

    /// The pod's IP: the one its status already records if still free, else a new one.
    fn claim_ip(&self, pod: &Pod) -> Option<Ipv4Addr> {
        let mut pool = self.ips.lock().ok()?;
        let recorded = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse::<Ipv4Addr>().ok());
        if let Some(ip) = recorded
            && pool.claim(ip)
        {
            return Some(ip);
        }
        pool.allocate()
    }

    fn release_ip(&self, ip: Ipv4Addr) {
        if let Ok(mut pool) = self.ips.lock() {
            pool.release(ip);
        }
    }
}

struct Worker {
    updates: watch::Sender<Pod>,
    signal: StopSignal,
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded") | Some("Failed"))
}

/// Runs the kubelet until `shutdown` is cancelled; then stops every process it started.
pub async fn run(kubelet: Arc<Kubelet>) {
    let tracker = TaskTracker::new();
    let mut workers: HashMap<String, Worker> = HashMap::new();
    let mut init_seen: HashSet<String> = HashSet::new();
    let api: Api<Pod> = Api::all(kubelet.client.clone());
    // A kubelet of a cluster watches only its node's pods; localplane's also takes unbound ones.
    let config = match kubelet.binds_unbound {
        true => watcher::Config::default(),
        false => watcher::Config::default().fields(&format!("spec.nodeName={}", kubelet.node)),
    };
    let mut events = std::pin::pin!(watcher(api, config).default_backoff());
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            _ = kubelet.shutdown.cancelled() => break,
        };
        let Some(event) = event else { break };
        match event {
            Ok(watcher::Event::Init) => init_seen.clear(),
            Ok(watcher::Event::InitApply(pod)) => {
                if let Some(uid) = pod.metadata.uid.clone() {
                    init_seen.insert(uid);
                }
                on_pod(&kubelet, &tracker, &mut workers, pod);
            }
            Ok(watcher::Event::InitDone) => {
                // Pods deleted while the watch was down: stop them as deleted.
                let gone: Vec<String> = workers.keys().filter(|uid| !init_seen.contains(*uid)).cloned().collect();
                for uid in gone {
                    if let Some(w) = workers.remove(&uid) {
                        w.signal.gone.store(true, Ordering::SeqCst);
                        w.signal.stop.cancel();
                    }
                }
            }
            Ok(watcher::Event::Apply(pod)) => on_pod(&kubelet, &tracker, &mut workers, pod),
            Ok(watcher::Event::Delete(pod)) => {
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                if let Some(w) = workers.remove(&uid) {
                    let _ = w.updates.send(pod);
                    w.signal.gone.store(true, Ordering::SeqCst);
                    w.signal.stop.cancel();
                }
            }
            Err(e) => tracing::debug!(error = %e, "kubelet pod watch error"),
        }
    }
    // Workers see the same shutdown token and stop their processes; wait for them, bounded.
    kubelet.shutdown.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await;
}

fn on_pod(kubelet: &Arc<Kubelet>, tracker: &TaskTracker, workers: &mut HashMap<String, Worker>, pod: Pod) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    if !kubelet.is_ours(&pod) {
        return;
    }
    if let Some(w) = workers.get(&uid) {
        let _ = w.updates.send(pod);
        return;
    }
    let (namespace, name) = paths::pod_key(&pod);
    if !paths::safe_segment(&namespace) || !paths::safe_segment(&name) {
        tracing::warn!(pod = %name, "pod name unusable as a directory; not running it");
        return;
    }
    // A pod being deleted that runs nothing here only needs its object removed.
    if pod.metadata.deletion_timestamp.is_some() {
        tracker.spawn(pod::remove(kubelet.client.clone(), pod));
        return;
    }
    // A pod that already finished (e.g. before a restart of localplane) is not run again.
    if is_terminal(&pod) {
        return;
    }
    let (tx, rx) = watch::channel(pod.clone());
    let signal = StopSignal::default();
    tracker.spawn(pod::run(kubelet.clone(), pod, rx, signal.clone()));
    workers.insert(uid, Worker { updates: tx, signal });
}

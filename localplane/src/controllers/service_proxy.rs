//! Services: every Service with a cluster IP gets a TCP proxy on that loopback IP for each of its
//! ports, forwarding each connection to the targetPort of a ready pod matching the selector
//! (round robin). The API server allocates cluster IPs (from its service range, see
//! `store/cluster_ips.rs`); a Service without one yet is picked up when the API server's write
//! of it comes back as a watch event.
//! Listeners stop when the Service is deleted or its IP/ports change.
//! Not implemented: UDP/SCTP ports, Services without selectors (manual Endpoints), session
//! affinity, NodePorts; Endpoints/EndpointSlice objects are not written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::util;

/// One port of a Service: where it listens, and what it forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub port: u16,
    pub target: Option<IntOrString>,
}

/// The running proxy of one Service.
struct Proxy {
    ip: Ipv4Addr,
    ports: Vec<PortSpec>,
    /// Namespace and selector, read at each connection so selector edits apply at once.
    selector: Arc<RwLock<(String, BTreeMap<String, String>)>>,
    stop: CancellationToken,
}

/// The loopback cluster IP a Service uses, if any ("None" = headless; ExternalName has none).
fn cluster_ip(svc: &Service) -> Result<Option<Ipv4Addr>, String> {
    let spec = svc.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
        return Ok(None);
    }
    match spec.and_then(|s| s.cluster_ip.as_deref()) {
        None | Some("") => Err("unset".into()),
        Some("None") => Ok(None),
        Some(ip) => match ip.parse::<Ipv4Addr>() {
            Ok(ip) if ip.is_loopback() => Ok(Some(ip)),
            _ => Ok(None),
        },
    }
}

fn tcp_ports(svc: &Service) -> Vec<PortSpec> {
    svc.spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .filter(|p| p.protocol.as_deref().is_none_or(|pr| pr == "TCP"))
        .filter_map(|p| Some(PortSpec { port: u16::try_from(p.port).ok()?, target: p.target_port.clone() }))
        .collect()
}

/// The port to reach on `pod` for a Service port.
pub fn target_port(pod: &Pod, port: u16, target: Option<&IntOrString>) -> Option<u16> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => u16::try_from(*n).ok(),
        Some(IntOrString::String(name)) => pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// The ready endpoints for a Service port: pod IP and target port, sorted for stable rotation.
pub fn endpoints(
    pods: &[Arc<Pod>],
    namespace: &str,
    selector: &BTreeMap<String, String>,
    port: &PortSpec,
) -> Vec<SocketAddr> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<SocketAddr> = pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .filter(|p| util::is_ready(p) && !util::is_deleting(p) && !util::is_terminal(p))
        .filter_map(|p| {
            let ip: IpAddr = p.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
            let port = target_port(p, port.port, port.target.as_ref())?;
            Some(SocketAddr::new(ip, port))
        })
        .collect();
    out.sort();
    out
}

async fn serve_port(
    listener: TcpListener,
    port: PortSpec,
    pods: Store<Pod>,
    selector: Arc<RwLock<(String, BTreeMap<String, String>)>>,
    stop: CancellationToken,
) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => return,
        };
        let Ok((mut inbound, _)) = accepted else {
            continue;
        };
        let (namespace, sel) = match selector.read() {
            Ok(s) => s.clone(),
            Err(_) => return,
        };
        let targets = endpoints(&pods.state(), &namespace, &sel, &port);
        if targets.is_empty() {
            // No ready endpoint: the client sees the connection close, as with a real proxy.
            continue;
        }
        let start = next.fetch_add(1, Ordering::Relaxed);
        let stop = stop.clone();
        tokio::spawn(async move {
            // Try each endpoint once, starting at the round-robin position.
            for i in 0..targets.len() {
                let target = targets[(start + i) % targets.len()];
                let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(target));
                if let Ok(Ok(mut outbound)) = connect.await {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = stop.cancelled() => {}
                    }
                    return;
                }
            }
        });
    }
}

struct ProxyManager {
    pods: Store<Pod>,
    proxies: HashMap<String, Proxy>,
}

impl ProxyManager {
    async fn ensure(&mut self, svc: Service) {
        let Some(uid) = svc.metadata.uid.clone() else {
            return;
        };
        let namespace = svc.namespace().unwrap_or_else(|| "default".into());
        let ip = match cluster_ip(&svc) {
            Ok(Some(ip)) => ip,
            Ok(None) => {
                self.remove(&uid);
                return;
            }
            Err(_) => return,
        };
        let ports = tcp_ports(&svc);
        let selector = svc.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
        if let Some(p) = self.proxies.get(&uid)
            && p.ip == ip
            && p.ports == ports
        {
            if let Ok(mut s) = p.selector.write() {
                *s = (namespace, selector);
            }
            return;
        }
        self.remove(&uid);
        let stop = CancellationToken::new();
        let shared = Arc::new(RwLock::new((namespace, selector)));
        for port in &ports {
            match TcpListener::bind((ip, port.port)).await {
                Ok(listener) => {
                    tokio::spawn(serve_port(listener, port.clone(), self.pods.clone(), shared.clone(), stop.clone()));
                }
                Err(e) => tracing::warn!(
                    service = %svc.name_any(), %ip, port = port.port, error = %e,
                    "cannot listen for Service port"
                ),
            }
        }
        self.proxies.insert(uid, Proxy { ip, ports, selector: shared, stop });
    }

    fn remove(&mut self, uid: &str) {
        if let Some(p) = self.proxies.remove(uid) {
            p.stop.cancel();
        }
    }
}

/// Runs the Service proxies until `shutdown` is cancelled.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let (reader, writer) = reflector::store::<Pod>();
    let pod_events = reflector::reflector(writer, watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()))
        .default_backoff();
    let pod_shutdown = shutdown.clone();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(pod_events);
        loop {
            tokio::select! {
                e = events.next() => if e.is_none() { break },
                _ = pod_shutdown.cancelled() => break,
            }
        }
    });

    let mut manager = ProxyManager { pods: reader, proxies: HashMap::new() };
    let mut seen: HashSet<String> = HashSet::new();
    let mut events = std::pin::pin!(watcher(Api::<Service>::all(client), watcher::Config::default()).default_backoff());
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            _ = shutdown.cancelled() => break,
        };
        let Some(event) = event else { break };
        match event {
            Ok(watcher::Event::Init) => seen.clear(),
            Ok(watcher::Event::InitApply(svc)) => {
                seen.extend(svc.metadata.uid.clone());
                manager.ensure(svc).await;
            }
            Ok(watcher::Event::InitDone) => {
                let gone: Vec<String> = manager.proxies.keys().filter(|uid| !seen.contains(*uid)).cloned().collect();
                for uid in gone {
                    manager.remove(&uid);
                }
            }
            Ok(watcher::Event::Apply(svc)) => manager.ensure(svc).await,
            Ok(watcher::Event::Delete(svc)) => {
                if let Some(uid) = svc.metadata.uid.as_deref() {
                    manager.remove(uid);
                }
            }
            Err(e) => tracing::debug!(error = %e, "service watch error"),
        }
    }
    for (_, p) in manager.proxies.drain() {
        p.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };
    use kube::api::ObjectMeta;

    fn pod(name: &str, ip: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("http".into()),
                        container_port: 8000,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some(ip.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn endpoints_are_ready_matching_pods_at_the_target_port() {
        let pods = vec![pod("a", "127.0.1.5", true), pod("b", "127.0.1.3", true), pod("c", "127.0.1.4", false)];
        let selector: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let port = PortSpec { port: 80, target: Some(IntOrString::String("http".into())) };
        let eps = endpoints(&pods, "ns", &selector, &port);
        assert_eq!(eps, vec!["127.0.1.3:8000".parse().unwrap(), "127.0.1.5:8000".parse().unwrap()]);
        assert!(endpoints(&pods, "other", &selector, &port).is_empty());
        assert!(endpoints(&pods, "ns", &BTreeMap::new(), &port).is_empty());
        let plain = PortSpec { port: 81, target: None };
        assert_eq!(endpoints(&pods, "ns", &selector, &plain)[0].port(), 81);
    }

    #[test]
    fn cluster_ips_and_ports() {
        let svc = |ip: Option<&str>, type_: Option<&str>| Service {
            spec: Some(ServiceSpec {
                cluster_ip: ip.map(str::to_string),
                type_: type_.map(str::to_string),
                ports: Some(vec![
                    ServicePort { port: 80, ..Default::default() },
                    ServicePort { port: 53, protocol: Some("UDP".into()), ..Default::default() },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(cluster_ip(&svc(Some("127.10.0.1"), None)), Ok(Some(Ipv4Addr::new(127, 10, 0, 1))));
        assert_eq!(cluster_ip(&svc(Some("None"), None)), Ok(None));
        assert_eq!(cluster_ip(&svc(Some("10.0.0.1"), None)), Ok(None));
        assert!(cluster_ip(&svc(None, None)).is_err());
        assert_eq!(cluster_ip(&svc(None, Some("ExternalName"))), Ok(None));
        assert_eq!(tcp_ports(&svc(None, None)).len(), 1);
    }
}

//! The kubelet's Node: the object it registers (Ready, with this machine's CPUs and memory) and
//! the heartbeat that keeps it alive on a real API server (its Lease in `kube-node-lease`,
//! renewed every 10 seconds, as kubelets do since Kubernetes 1.17).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::time::now_rfc3339;

/// Where node Leases live, and how long one holds without renewal.
const LEASE_NAMESPACE: &str = "kube-node-lease";
const LEASE_SECONDS: u64 = 40;
const RENEW_EVERY: Duration = Duration::from_secs(10);
const FIELD_MANAGER: &str = "localplane-kubelet";

/// The Node `name`: Ready, with this machine's CPUs and memory, its kubelet's endpoint at
/// [`super::HOST_IP`]:`port` (0: none).
pub fn object(name: &str, port: u16) -> Value {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = mem_total_kib().map_or_else(|| "0".to_string(), |k| format!("{k}Ki"));
    let resources = json!({"cpu": cpus.to_string(), "memory": memory, "pods": "110"});
    let now = now_rfc3339();
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let arch = go_arch();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": std::env::consts::OS,
            "kubernetes.io/arch": arch, "beta.kubernetes.io/os": std::env::consts::OS, "beta.kubernetes.io/arch": arch}},
        "spec": {},
        "status": {
            "capacity": resources, "allocatable": resources,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": super::HOST_IP},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "nodeInfo": {
                "kubeletVersion": crate::server::discovery::GIT_VERSION, "kubeProxyVersion": "",
                "operatingSystem": std::env::consts::OS, "architecture": arch,
                "containerRuntimeVersion": "localplane://processes",
                "kernelVersion": read_trimmed("/proc/sys/kernel/osrelease"),
                "osImage": os_image(), "machineID": read_trimmed("/etc/machine-id"),
                "systemUUID": "", "bootID": read_trimmed("/proc/sys/kernel/random/boot_id")
            }
        }
    })
}

/// Registers the Node `name` with the API server, as a kubelet does at start: created with its
/// status, or, when it already exists (a restarted kubelet), its status brought up to date.
pub async fn register(client: &Client, name: &str, port: u16) -> kube::Result<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(object(name, port)).map_err(kube::Error::SerdeError)?;
    match nodes.create(&PostParams::default(), &node).await {
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let status = json!({"status": object(name, port)["status"]});
            nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await
        }
        created => created,
    }
}

/// Renews the Node's Lease every [`RENEW_EVERY`] until `shutdown`: what tells the control plane
/// this node is alive.
pub async fn heartbeat(client: Client, node: Node, shutdown: CancellationToken) {
    let leases: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let name = node.metadata.name.clone().unwrap_or_default();
    let owner = json!({"apiVersion": "v1", "kind": "Node", "name": name, "uid": node.metadata.uid});
    let params = PatchParams::apply(FIELD_MANAGER).force();
    loop {
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "ownerReferences": [owner]},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": micro_time_now()}
        });
        if let Err(e) = leases.patch(&name, &params, &Patch::Apply(&lease)).await {
            tracing::warn!(node = %name, error = %e, "could not renew the node's lease");
        }
        tokio::select! {
            _ = tokio::time::sleep(RENEW_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Now as a `MicroTime` (the API server requires its six fractional digits).
fn micro_time_now() -> String {
    now_rfc3339().replace('Z', ".000000Z")
}

/// Go's name for this architecture, as Kubernetes labels use it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

fn mem_total_kib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn os_image() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| std::env::consts::OS.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_reports_the_machine() {
        let n = object("n1", 10250);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()).to_string();
        assert_eq!(n["metadata"]["name"], "n1");
        assert_eq!(n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
        assert_eq!(n["status"]["capacity"]["cpu"], json!(cpus));
        assert!(n["status"]["capacity"]["memory"].as_str().is_some_and(|m| m.ends_with("Ki") && m != "0Ki"));
        assert_eq!(n["status"]["conditions"][3]["status"], "True");
    }

    #[test]
    fn lease_times_carry_microseconds() {
        let t = micro_time_now();
        assert!(t.ends_with(".000000Z") && t.len() == "2026-11-30T23:00:00.000000Z".len(), "{t}");
    }
}

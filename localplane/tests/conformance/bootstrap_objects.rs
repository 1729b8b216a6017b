//! What a cluster always has: the `kubernetes` Service and its EndpointSlice, a Ready Node with
//! the machine's capacity, the default ClusterRoles and the system namespaces.

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;

use crate::common::{self, Kubectl};

#[tokio::test]
async fn a_fresh_plane_has_what_every_cluster_has() {
    let plane = common::start().await;
    let k = Kubectl::new(&plane);

    let nodes = k.ok(&["get", "nodes"], None).await;
    let lines: Vec<&str> = nodes.lines().collect();
    assert!(lines[0].split_whitespace().eq(["NAME", "STATUS", "AGE", "VERSION"]), "{nodes}");
    assert!(lines[1].split_whitespace().take(2).eq(["localplane", "Ready"]), "{nodes}");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()).to_string();
    let capacity = k.ok(&["get", "node", "localplane", "-o", "jsonpath={.status.capacity.cpu}"], None).await;
    assert_eq!(capacity, cpus);
    let client = plane.client().await.expect("client");
    let node = Api::<Node>::all(client.clone()).get("localplane").await.unwrap();
    assert!(node.status.and_then(|s| s.allocatable).is_some_and(|a| a.contains_key("memory")));

    let svc =
        k.ok(&["get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.ports[0].port}"], None).await;
    assert_eq!(svc, "443");
    let port = plane.url().rsplit(':').next().unwrap().to_string();
    let slice = Api::<EndpointSlice>::namespaced(client, "default").get("kubernetes").await.unwrap();
    assert_eq!(slice.endpoints.unwrap()[0].addresses, vec!["127.0.0.1".to_string()]);
    assert_eq!(slice.ports.unwrap()[0].port.map(|p| p.to_string()), Some(port));
    let slices = k.ok(&["get", "endpointslices", "-n", "default", "-o", "name"], None).await;
    assert!(slices.contains("endpointslice.discovery.k8s.io/kubernetes"), "{slices}");

    let roles = k.ok(&["get", "clusterroles", "cluster-admin", "admin", "edit", "view", "-o", "name"], None).await;
    assert_eq!(roles.lines().count(), 4, "{roles}");
    let ns = k.ok(&["get", "namespaces", "-o", "name"], None).await;
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&format!("namespace/{n}\n")), "{ns}");
    }
    plane.shutdown().await;
}

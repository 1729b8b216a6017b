//! Pod readiness gates (`spec.readinessGates`): the kubelet reports Ready True only when the
//! containers are ready and every gate's condition is True, in the real kubelet's words; the
//! conditions another client writes through `pods/status` (kubectl patch, server-side apply)
//! survive the kubelet's own writes, and a change to them moves Ready at once; a Service routes
//! only to Ready pods.

use std::time::Instant;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{self, Kubectl, eventually, http_get, pod_condition, pod_condition_is, wait_for};

const GATE: &str = "example.com/load-balancer";

fn ready_reason(pod: &Pod) -> (String, Option<String>, Option<String>) {
    let c = pod_condition(pod, "Ready").cloned().unwrap_or_default();
    (c.status, c.reason, c.message)
}

#[tokio::test]
async fn ready_waits_for_every_gate_and_services_follow_ready() {
    let dir = common::scratch_dir("gates");
    let plane = common::start_in(&dir).await;
    let client = plane.client().await.expect("client");
    let k = Kubectl::new(&plane);
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    // The server is ready (its probe passes) while /www/ready exists, which the test controls.
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "gated", "labels": {"app": "gated"}},
        "spec": {
            "readinessGates": [{"conditionType": GATE}],
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "www", "emptyDir": {}}],
            "containers": [{
                "name": "server", "image": "example/server:1",
                "command": ["python3", "-m", "http.server", "8000", "--bind", "$(POD_IP)", "--directory", "/www"],
                "ports": [{"name": "http", "containerPort": 8000}],
                "volumeMounts": [{"name": "www", "mountPath": "/www"}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1, "failureThreshold": 1},
            }]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "gated"},
        "spec": {"selector": {"app": "gated"}, "ports": [{"port": 8080, "targetPort": "http"}]}
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    let running = wait_for(&pods, "gated", "Running", |p| common_phase(p) == "Running").await;
    assert_eq!(ready_reason(&running).1.as_deref(), Some("ContainersNotReady"), "containers speak first");
    let ready_file = dir.join("pods/default/gated/volumes/www/ready");
    std::fs::write(&ready_file, "ok\n").unwrap();

    // Containers ready, no condition for the gate yet.
    let p = wait_for(&pods, "gated", "containers ready", |p| pod_condition_is(p, "ContainersReady", "True")).await;
    let missing = format!("corresponding condition of pod readiness gate \"{GATE}\" does not exist.");
    assert_eq!(ready_reason(&p), ("False".into(), Some("ReadinessGatesNotReady".into()), Some(missing)));
    let svc = services.get("gated").await.unwrap();
    let addr = format!("{}:8080", svc.spec.and_then(|s| s.cluster_ip).unwrap());
    assert_eq!(http_get(&addr, "/ready").await, None, "a pod held back by its gate gets no traffic");

    // kubectl patch --subresource=status (strategic merge): the gate False.
    let patch = json!({"status": {"conditions": [{"type": GATE, "status": "False", "reason": "Registering"}]}});
    k.ok(&["patch", "pod", "gated", "--subresource=status", "-p", &patch.to_string()], None).await;
    let not_true = format!("the status of pod readiness gate \"{GATE}\" is not \"True\", but False");
    wait_for(&pods, "gated", "held back by a False gate", |p| ready_reason(p).2.as_deref() == Some(&not_true)).await;

    // Server-side apply by a load-balancer controller: the gate True moves Ready at once.
    let apply = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gated"},
        "status": {"conditions": [{"type": GATE, "status": "True", "reason": "Registered"}]}
    });
    let params = PatchParams::apply("lb-controller").force();
    let sent = Instant::now();
    pods.patch_status("gated", &params, &Patch::Apply(&apply)).await.unwrap();
    let p = wait_for(&pods, "gated", "Ready", |p| pod_condition_is(p, "Ready", "True")).await;
    eprintln!("gate True -> Ready True seen by a watcher in {} ms", sent.elapsed().as_millis());
    assert_eq!(ready_reason(&p), ("True".into(), None, None));
    assert_eq!(eventually(30, "an answer through the Service", || http_get(&addr, "/ready")).await, "ok\n");

    // The kubelet writes status again (the probe fails, then passes): the gate survives both.
    std::fs::remove_file(&ready_file).unwrap();
    let p = wait_for(&pods, "gated", "unready", |p| pod_condition_is(p, "ContainersReady", "False")).await;
    assert_eq!(ready_reason(&p).1.as_deref(), Some("ContainersNotReady"));
    assert!(pod_condition_is(&p, GATE, "True"), "the gate's condition survives the kubelet's write: {p:#?}");
    std::fs::write(&ready_file, "ok\n").unwrap();
    let p = wait_for(&pods, "gated", "Ready again", |p| pod_condition_is(p, "Ready", "True")).await;
    assert_eq!(pod_condition(&p, GATE).and_then(|c| c.reason.as_deref()), Some("Registered"));

    // The gate False again takes the pod out of the Service.
    k.ok(&["patch", "pod", "gated", "--subresource=status", "-p", &patch.to_string()], None).await;
    wait_for(&pods, "gated", "held back again", |p| pod_condition_is(p, "Ready", "False")).await;
    eventually(30, "the Service to stop routing to the pod", || async {
        http_get(&addr, "/ready").await.is_none().then_some(())
    })
    .await;
    plane.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn common_phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending")
}

//! Rollouts that drop nothing: with RollingUpdate maxUnavailable 0 no old pod goes before a new
//! one is Ready (readiness gates included); a deleted pod leaves the Service at once while
//! the connections already forwarded to it finish; `lifecycle.preStop` (sleep, httpGet) runs
//! before SIGTERM.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::common::{self, eventually, http_get, pod_condition, pod_condition_is, wait_for};

const GATE: &str = "example.com/registered";

/// A pod template: python's http.server answering `/version` with `$VERSION`, ready through
/// an httpGet probe and the readiness gate, with a preStop sleep.
fn server_template(version: &str) -> serde_json::Value {
    json!({
        "metadata": {"labels": {"app": "model"}},
        "spec": {
            "readinessGates": [{"conditionType": GATE}],
            "terminationGracePeriodSeconds": 10,
            "volumes": [{"name": "www", "emptyDir": {}}],
            "containers": [{
                "name": "server", "image": "example/model-server:1",
                "env": [{"name": "VERSION", "value": version}],
                "command": ["sh", "-c", "echo $VERSION > /www/version && exec python3 -m http.server 8000 --bind $POD_IP --directory /www"],
                "ports": [{"name": "http", "containerPort": 8000}],
                "volumeMounts": [{"name": "www", "mountPath": "/www"}],
                "readinessProbe": {"httpGet": {"path": "/version", "port": "http"}, "periodSeconds": 1},
                "lifecycle": {"preStop": {"sleep": {"seconds": 2}}},
            }]
        }
    })
}

fn deployment(version: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "model"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "model"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": server_template(version),
        }
    }))
    .unwrap()
}

fn service() -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "model"},
        "spec": {"selector": {"app": "model"}, "ports": [{"port": 8080, "targetPort": "http"}]}
    }))
    .unwrap()
}

/// Plays the controller behind the readiness gate (a load balancer registering pods): sets the
/// gate True, by server-side apply, on every pod whose containers are ready.
async fn approve_gates(pods: Api<Pod>, stop: CancellationToken) {
    let mut events =
        std::pin::pin!(watcher(pods.clone(), watcher::Config::default()).applied_objects().default_backoff());
    loop {
        let pod = tokio::select! {
            e = events.next() => match e { Some(Ok(p)) => p, Some(Err(_)) => continue, None => return },
            _ = stop.cancelled() => return,
        };
        if pod_condition_is(&pod, "ContainersReady", "True")
            && pod_condition(&pod, GATE).is_none()
            && pod.metadata.deletion_timestamp.is_none()
        {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let apply = json!({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "status": {"conditions": [{"type": GATE, "status": "True"}]}
            });
            let _ = pods.patch_status(&name, &PatchParams::apply("registrar").force(), &Patch::Apply(&apply)).await;
        }
    }
}

/// Watches the pods and records the fewest Ready pods seen at any event.
async fn fewest_ready(pods: Api<Pod>, stop: CancellationToken, fewest: Arc<Mutex<usize>>) {
    let mut seen: HashMap<String, bool> = HashMap::new();
    let mut listing = true;
    let mut events = std::pin::pin!(watcher(pods, watcher::Config::default()).default_backoff());
    loop {
        let event = tokio::select! {
            e = events.next() => match e { Some(Ok(e)) => e, Some(Err(_)) => continue, None => return },
            _ = stop.cancelled() => return,
        };
        match event {
            watcher::Event::Init => {
                seen.clear();
                listing = true;
            }
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                let ready = pod_condition_is(&p, "Ready", "True") && p.metadata.deletion_timestamp.is_none();
                seen.insert(p.metadata.uid.clone().unwrap_or_default(), ready);
            }
            watcher::Event::Delete(p) => {
                seen.remove(&p.metadata.uid.clone().unwrap_or_default());
            }
            watcher::Event::InitDone => listing = false,
        }
        if listing {
            continue;
        }
        let ready = seen.values().filter(|r| **r).count();
        if let Ok(mut f) = fewest.lock() {
            *f = (*f).min(ready);
        }
    }
}

/// Clients sending requests through the Service until stopped: answers per body, and failures.
async fn traffic(addr: String, stop: CancellationToken) -> (BTreeMap<String, u64>, u64) {
    let client = |addr: String, stop: CancellationToken| async move {
        let (mut answers, mut failures) = (BTreeMap::<String, u64>::new(), 0u64);
        while !stop.is_cancelled() {
            match http_get(&addr, "/version").await {
                Some(body) => *answers.entry(body.trim().to_string()).or_default() += 1,
                None => failures += 1,
            }
        }
        (answers, failures)
    };
    let clients = (0..4).map(|_| tokio::spawn(client(addr.clone(), stop.clone())));
    let mut total = (BTreeMap::new(), 0);
    for c in futures::future::join_all(clients).await {
        let (answers, failures) = c.expect("traffic client");
        for (k, v) in answers {
            *total.0.entry(k).or_default() += v;
        }
        total.1 += failures;
    }
    total
}

fn rolled_out(generation: i64) -> impl Fn(&Deployment) -> bool {
    move |d| {
        let Some(s) = d.status.as_ref() else { return false };
        s.observed_generation >= Some(generation)
            && (s.replicas, s.updated_replicas, s.available_replicas) == (Some(2), Some(2), Some(2))
            && s.conditions.iter().flatten().any(|c| c.reason.as_deref() == Some("NewReplicaSetAvailable"))
    }
}

#[tokio::test]
async fn a_rollout_with_max_unavailable_zero_drops_no_request() {
    let plane = common::start().await;
    let client = plane.client().await.expect("client");
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let stop = CancellationToken::new();
    let registrar = tokio::spawn(approve_gates(pods.clone(), stop.clone()));
    deployments.create(&PostParams::default(), &deployment("1")).await.unwrap();
    let svc = services.create(&PostParams::default(), &service()).await.unwrap();
    wait_for(&deployments, "model", "rolled out", rolled_out(1)).await;
    let addr = format!("{}:8080", svc.spec.and_then(|s| s.cluster_ip).unwrap());
    assert_eq!(eventually(30, "an answer", || http_get(&addr, "/version")).await, "1\n");

    let fewest = Arc::new(Mutex::new(usize::MAX));
    let monitor = tokio::spawn(fewest_ready(pods.clone(), stop.clone(), fewest.clone()));
    let load_stop = CancellationToken::new();
    let load = tokio::spawn(traffic(addr.clone(), load_stop.clone()));
    let started = Instant::now();
    let v2 = json!({"spec": {"template": server_template("2")}});
    deployments.patch("model", &PatchParams::default(), &Patch::Strategic(&v2)).await.unwrap();
    wait_for(&deployments, "model", "rolled out to version 2", rolled_out(2)).await;
    let rollout = started.elapsed();
    // Requests keep going until the last old pod's preStop sleep has surely ended.
    eventually(30, "only version 2 answering", || async {
        (http_get(&addr, "/version").await.as_deref() == Some("2\n")).then_some(())
    })
    .await;
    load_stop.cancel();
    let (answers, failures) = load.await.unwrap();
    stop.cancel();
    let _ = tokio::join!(registrar, monitor);
    let fewest = *fewest.lock().unwrap();
    eprintln!(
        "rollout of 2 replicas in {rollout:?}: answers {answers:?}, failed requests {failures}, fewest ready pods {fewest}"
    );
    assert_eq!(failures, 0, "no request fails during the rollout (answers: {answers:?})");
    assert!(answers.get("1").is_some_and(|n| *n > 0) && answers.get("2").is_some_and(|n| *n > 0), "{answers:?}");
    assert_eq!(fewest, 2, "never fewer Ready pods than replicas with maxUnavailable 0");
    let left = pods.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(left.len(), 2, "the old pods are gone");
    plane.shutdown().await;
}

/// Sends one keep-alive HTTP/1.1 GET on `s`; the body of a 200 answer.
async fn keep_alive_get(s: &mut TcpStream, path: &str) -> Option<String> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: model\r\n\r\n").as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))?
        .parse()
        .ok()?;
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).await.ok()?;
    head.starts_with("HTTP/1.1 200").then(|| String::from_utf8_lossy(&body).to_string())
}

#[tokio::test]
async fn a_deleted_pod_leaves_the_service_at_once_and_finishes_forwarded_connections() {
    let dir = common::scratch_dir("drain");
    let plane = common::start_in(&dir).await;
    let client = plane.client().await.expect("client");
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    // Keep-alive HTTP/1.1, a 3 s preStop sleep; a second pod drains by preStop httpGet.
    let pod = |name: &str, pre_stop: serde_json::Value| -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "terminationGracePeriodSeconds": 10,
                "volumes": [{"name": "www", "emptyDir": {}}],
                "containers": [{
                    "name": "server", "image": "example/model-server:1",
                    "command": ["sh", "-c", "echo 1 > /www/version && exec python3 -m http.server 8000 --protocol HTTP/1.1 --bind $POD_IP --directory /www"],
                    "ports": [{"name": "http", "containerPort": 8000}],
                    "volumeMounts": [{"name": "www", "mountPath": "/www"}],
                    "readinessProbe": {"httpGet": {"path": "/version", "port": "http"}, "periodSeconds": 1},
                    "lifecycle": {"preStop": pre_stop},
                }]
            }
        }))
        .unwrap()
    };
    pods.create(&PostParams::default(), &pod("sleeper", json!({"sleep": {"seconds": 3}}))).await.unwrap();
    let drain = json!({"httpGet": {"path": "/drain", "port": "http"}});
    pods.create(&PostParams::default(), &pod("drainer", drain)).await.unwrap();
    let mut svc = service();
    svc.metadata.name = Some("sleeper".into());
    svc.spec.as_mut().unwrap().selector = Some([("app".to_string(), "sleeper".to_string())].into());
    let svc = services.create(&PostParams::default(), &svc).await.unwrap();
    let addr = format!("{}:8080", svc.spec.and_then(|s| s.cluster_ip).unwrap());
    for name in ["sleeper", "drainer"] {
        wait_for(&pods, name, "Ready", |p| pod_condition_is(p, "Ready", "True")).await;
    }

    // A connection forwarded before the deletion.
    let mut kept = eventually(30, "a forwarded keep-alive connection", || async {
        let mut s = TcpStream::connect(&addr).await.ok()?;
        (keep_alive_get(&mut s, "/version").await.as_deref() == Some("1\n")).then_some(s)
    })
    .await;
    let deleted = Instant::now();
    pods.delete("sleeper", &DeleteParams::default()).await.unwrap();
    eventually(5, "the deleted pod to leave the Service", || async {
        http_get(&addr, "/version").await.is_none().then_some(())
    })
    .await;
    let left_service = deleted.elapsed();
    assert_eq!(keep_alive_get(&mut kept, "/version").await.as_deref(), Some("1\n"), "the kept connection still works");
    // The backend closes it once SIGTERM comes, after the preStop sleep.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), kept.read_to_end(&mut rest)).await.expect("closed in time").ok();
    let closed = deleted.elapsed();
    eprintln!("deleted pod: out of the Service after {left_service:?}, its kept connection closed after {closed:?}");
    assert!(left_service < Duration::from_secs(1), "{left_service:?}");
    assert!(closed >= Duration::from_secs(3) && closed < Duration::from_secs(10), "{closed:?}");

    pods.delete("drainer", &DeleteParams::default()).await.unwrap();
    let log = dir.join("pods/default/drainer/log");
    eventually(15, "the preStop httpGet in the server's log", || async {
        std::fs::read_to_string(&log).ok().filter(|l| l.contains("\"GET /drain HTTP/1.1\"")).map(|_| ())
    })
    .await;
    plane.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

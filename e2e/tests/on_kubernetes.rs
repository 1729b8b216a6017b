//! Training on the real Kubernetes control plane: localplane's kubelet joins it as a node, the
//! real scheduler places the trainer's pod there, the real Job controller counts it, and the
//! operator runs as the chart's ServiceAccount (`Plane::operator_config`), so every call it makes
//! passes real RBAC with the chart's rules. Pod logs reach clients through the API server from the kubelet's endpoint.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use trainloop::api::{GateOutcome, RunPhase, TrainingPipeline, TrainingRun};
use trainloop::controllers::{self, Context, Metrics, Settings};
use trainloop_e2e::planes::{NODE, Plane};
use trainloop_e2e::{TIMEOUT, install_crds};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A pipeline whose trainer reports an auc of 0.95 and an artifact in its run's folder.
fn pipeline() -> TrainingPipeline {
    let script = format!(
        r#"printf '{{"metrics":{{"auc":0.95}},"artifact":{{"uri":"%smodel.json","digest":"{DIGEST}"}},"dataDigest":"{DIGEST}","profile":"%sprofile.json"}}' "$TRAINLOOP_ARTIFACT_URI" "$TRAINLOOP_ARTIFACT_URI" > /dev/termination-log"#
    );
    serde_json::from_value(json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingPipeline",
        "metadata": {"name": "on-kubernetes", "namespace": "default"},
        "spec": {
            "template": {"image": "shell", "command": ["sh", "-c", script]},
            "data": {"uri": "file:///dev/null"},
            "features": [{"name": "age", "type": "number"}],
            "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9}]}
        }
    }))
    .expect("a pipeline")
}

#[tokio::test]
async fn a_pipeline_trains_on_the_real_control_plane_under_the_charts_rbac() {
    // localplane's kubelet joins as a node: registered Ready and schedulable, its Lease renewed.
    let work_dir = tempfile::tempdir().unwrap();
    let Some(plane) = Plane::real_with_node(work_dir.path().join("node"), None).await.unwrap() else { return };
    let admin = plane.client().await.unwrap();
    let stop = CancellationToken::new();
    let leases: Api<Lease> = Api::namespaced(admin.clone(), "kube-node-lease");
    let lease = tokio::time::timeout(TIMEOUT, await_condition(leases, NODE, |l: Option<&Lease>| l.is_some()))
        .await
        .expect("the node's lease in time")
        .unwrap()
        .unwrap();
    assert_eq!(lease.spec.and_then(|s| s.holder_identity).as_deref(), Some(NODE));

    // The operator, authorized as the chart's ServiceAccount.
    install_crds(&admin).await.unwrap();
    let config = plane.operator_config().await.unwrap();
    let mut registry = Registry::default();
    let settings = Settings {
        watch_restart_after: Duration::from_secs(3),
        // The joined kubelet runs pods as processes on this host.
        local_files: true,
        ..Settings::new(format!("file://{}/artifacts", work_dir.path().display()))
    };
    let http = trainloop::triggers::http_client().unwrap();
    let ctx =
        Arc::new(Context::new(Client::try_from(config).unwrap(), Metrics::register(&mut registry), settings, http));
    let operator = tokio::spawn(controllers::run(ctx, stop.clone(), controllers::WatchHealth::default()));

    let pipelines: Api<TrainingPipeline> = Api::namespaced(admin.clone(), "default");
    pipelines.create(&PostParams::default(), &pipeline()).await.unwrap();
    let runs: Api<TrainingRun> = Api::namespaced(admin.clone(), "default");
    let judged = |run: Option<&TrainingRun>| {
        run.and_then(|r| r.status.as_ref()).is_some_and(|s| s.phase == RunPhase::Succeeded && s.evaluation.is_some())
    };
    let run = match tokio::time::timeout(TIMEOUT, await_condition(runs.clone(), "on-kubernetes-1", judged)).await {
        Ok(run) => run.unwrap().unwrap(),
        Err(_) => panic!("the run was not judged in time: {}", explain(&admin).await),
    };
    let status = run.status.unwrap();
    assert_eq!(status.evaluation.map(|e| e.result), Some(GateOutcome::Passed));

    // The real Job controller counted the pod the real scheduler bound to the joined node.
    let job_name = status.job_name.expect("the run names its Job");
    let job = Api::<Job>::namespaced(admin.clone(), "default").get(&job_name).await.unwrap();
    assert_eq!(job.status.and_then(|s| s.succeeded), Some(1), "one pod succeeded");
    let events: Api<Event> = Api::namespaced(admin.clone(), "default");
    let scheduled = events.list(&ListParams::default()).await.unwrap();
    let bound = scheduled
        .items
        .iter()
        .any(|e| e.reason.as_deref() == Some("Scheduled") && e.note.as_deref().is_some_and(|n| n.contains(NODE)));
    assert!(bound, "the scheduler bound the trainer's pod to {NODE}");
    // The operator's own events passed RBAC too (an event it may not create is dropped silently).
    let reported = scheduled.items.iter().any(|e| e.reporting_controller.as_deref() == Some("trainloop"));
    assert!(reported, "the operator's events were created");

    // Logs come through the API server from the kubelet's own endpoint, as on any cluster.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let hello: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello"},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "hello", "image": "shell", "command": ["sh", "-c", "echo one; echo two"]}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &hello).await.unwrap();
    let succeeded =
        |pod: Option<&Pod>| pod.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref()) == Some("Succeeded");
    tokio::time::timeout(TIMEOUT, await_condition(pods.clone(), "hello", succeeded))
        .await
        .expect("the pod finishes in time")
        .unwrap();
    assert_eq!(pods.logs("hello", &Default::default()).await.unwrap(), "one\ntwo\n");
    let last = kube::api::LogParams { tail_lines: Some(1), ..Default::default() };
    assert_eq!(pods.logs("hello", &last).await.unwrap(), "two\n");

    stop.cancel();
    let _ = operator.await;
    plane.shutdown().await.unwrap();
}

/// The runs, Jobs and pods as they are: what a test that timed out shows.
async fn explain(admin: &Client) -> String {
    format!(
        "runs {:#}\njobs {:#}\npods {:#}",
        statuses::<TrainingRun>(admin).await,
        statuses::<Job>(admin).await,
        statuses::<Pod>(admin).await
    )
}

async fn statuses<K>(admin: &Client) -> Value
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let items = Api::<K>::namespaced(admin.clone(), "default").list(&ListParams::default()).await;
    let items = items.map(|l| l.items).unwrap_or_default();
    let items = items.iter().filter_map(|o| serde_json::to_value(o).ok());
    items.map(|o| json!({"name": o["metadata"]["name"], "status": o["status"]})).collect()
}

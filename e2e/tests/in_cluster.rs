//! The operator running as a pod on localplane, as the Helm chart will install it: it builds its
//! client from the in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT, its service account's
//! token and ca.crt) and reconciles. localplane refuses anonymous callers everywhere but the
//! health endpoints, so a ready operator has listed and watched with its token.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::wait::await_condition;
use localplane::{Config, LocalPlane};
use serde_json::json;
use trainloop::api::{TrainingPipeline, TrainingRun};

#[tokio::test]
async fn the_operator_runs_as_a_pod_with_its_service_account_token() {
    let plane = LocalPlane::start(Config::default()).await.unwrap();
    let client = plane.client().await.unwrap();
    trainloop_e2e::install_crds(&client).await.unwrap();
    let artifacts = tempfile::tempdir().unwrap();
    let operator: Pod = serde_json::from_value(json!({
        "metadata": {"name": "trainloop"},
        "spec": {"containers": [{
            "name": "operator", "image": "trainloop",
            "command": [env!("CARGO_BIN_EXE_trainloop-operator"), "$(POD_IP):8080",
                        format!("file://{}", artifacts.path().display()),
                        // Rewritten by the kubelet to this pod's service-account volume.
                        "/var/run/secrets/kubernetes.io/serviceaccount"],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1}
        }]}
    }))
    .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &operator).await.unwrap();
    let ready = |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let waited = tokio::time::timeout(Duration::from_secs(60), await_condition(pods.clone(), "trainloop", ready)).await;
    let logs = pods.logs("trainloop", &Default::default()).await.unwrap_or_default();
    assert!(matches!(waited, Ok(Ok(Some(_)))), "the operator pod never became ready; its log:\n{logs}");

    // It writes too: a pipeline gets its first run.
    let pipeline: TrainingPipeline = serde_json::from_value(json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingPipeline",
        "metadata": {"name": "inside", "namespace": "default"},
        "spec": {
            "template": {"image": "shell", "command": ["sh", "-c", "exit 1"]},
            "data": {"uri": "file:///dev/null"},
            "features": [{"name": "age", "type": "number", "min": 0}],
            "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9}]}
        }
    }))
    .unwrap();
    Api::<TrainingPipeline>::default_namespaced(client.clone())
        .create(&PostParams::default(), &pipeline)
        .await
        .unwrap();
    let runs: Api<TrainingRun> = Api::default_namespaced(client.clone());
    let created = tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(runs, "inside-1", |r: Option<&TrainingRun>| r.is_some()),
    )
    .await;
    let logs = pods.logs("trainloop", &Default::default()).await.unwrap_or_default();
    assert!(matches!(created, Ok(Ok(Some(_)))), "the operator pod created no run; its log:\n{logs}");
    plane.shutdown().await;
}

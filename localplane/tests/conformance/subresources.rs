//! `scale` (built-in workloads and a CRD declaring it, through `kubectl scale`),
//! `pods/eviction` honouring a PodDisruptionBudget, and TokenRequest tokens that TokenReview
//! verifies.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, DynamicObject, EvictParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use crate::common::{self, Kubectl};

const TRAINERS_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: trainers.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: trainers, singular: trainer, kind: Trainer}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.workers, statusReplicasPath: .status.workers, labelSelectorPath: .status.selector}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {workers: {type: integer}}}
          status: {type: object, properties: {workers: {type: integer}, selector: {type: string}}}
"#;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeName: elsewhere
      containers: [{name: c, image: x}]
"#;

#[tokio::test]
async fn kubectl_scale_works_on_workloads_and_custom_resources() {
    let plane = common::start().await;
    let k = Kubectl::new(&plane);
    k.ok(&["apply", "-f", "-"], Some(DEPLOYMENT)).await;
    k.ok(&["scale", "deployment/web", "--replicas=3"], None).await;
    let replicas = k.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"], None).await;
    assert_eq!(replicas, "3");
    let scale = k.ok(&["get", "--raw", "/apis/apps/v1/namespaces/default/deployments/web/scale"], None).await;
    let scale: serde_json::Value = serde_json::from_str(&scale).unwrap();
    assert_eq!((scale["kind"].as_str(), scale["status"]["selector"].as_str()), (Some("Scale"), Some("app=web")));

    k.ok(&["apply", "-f", "-"], Some(TRAINERS_CRD)).await;
    k.ok(&["wait", "--for=condition=Established", "crd/trainers.example.com", "--timeout=20s"], None).await;
    let trainer = "apiVersion: example.com/v1\nkind: Trainer\nmetadata: {name: t1}\nspec: {workers: 1}\n";
    k.ok(&["apply", "-f", "-"], Some(trainer)).await;
    let out = k.ok(&["scale", "trainer/t1", "--replicas=5"], None).await;
    assert!(out.contains("scaled"), "{out}");
    assert_eq!(k.ok(&["get", "trainer", "t1", "-o", "jsonpath={.spec.workers}"], None).await, "5");
    // --current-replicas is a precondition checked against the Scale.
    let err = k.fails(&["scale", "trainer/t1", "--current-replicas=2", "--replicas=1"], None).await;
    assert!(err.contains("Expected replicas to be 2, was 5"), "{err}");
    plane.shutdown().await;
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "db"}},
        "spec": {"nodeName": "elsewhere", "containers": [{"name": "c", "image": "x"}]}}))
    .unwrap()
}

async fn make_ready(pods: &Api<Pod>, name: &str) {
    pods.create(&PostParams::default(), &pod(name)).await.unwrap();
    let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
}

#[tokio::test]
async fn eviction_honours_pod_disruption_budgets() {
    let plane = common::start().await;
    // A refusal is a 429 (as from a real server), which kube retries 15 times by default.
    let mut config = plane.client_config().unwrap();
    config.default_namespace = "default".into();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pdbs = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("policy", "v1", "PodDisruptionBudget"),
            "poddisruptionbudgets",
        ),
    );
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}});
    pdbs.create(&PostParams::default(), &serde_json::from_value(pdb).unwrap()).await.unwrap();
    make_ready(&pods, "db-0").await;
    make_ready(&pods, "db-1").await;

    pods.evict("db-0", &EvictParams::default()).await.expect("one of two may go");
    assert!(pods.get_opt("db-0").await.unwrap().is_none());
    let refused = pods.evict("db-1", &EvictParams::default()).await.unwrap_err();
    match refused {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (429, "TooManyRequests"));
            assert!(s.message.contains("disruption budget"), "{}", s.message);
        }
        other => panic!("expected 429, got {other:?}"),
    }
    assert!(pods.get_opt("db-1").await.unwrap().is_some());
    // A pending pod is not protected by the budget.
    pods.create(&PostParams::default(), &pod("db-2")).await.unwrap();
    pods.evict("db-2", &EvictParams::default()).await.expect("pending pods are evicted");
    plane.shutdown().await;
}

fn review(token: &str) -> String {
    format!("apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: \"{token}\"\n")
}

#[tokio::test]
async fn issued_tokens_pass_token_review() {
    let plane = common::start().await;
    let k = Kubectl::new(&plane);
    k.ok(&["create", "serviceaccount", "builder"], None).await;
    let token = k.ok(&["create", "token", "builder", "--duration=1h"], None).await.trim().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let who = ["create", "-f", "-", "-o", "jsonpath={.status.authenticated} {.status.user.username}"];
    let ok = k.ok(&who, Some(&review(&token))).await;
    assert_eq!(ok, "true system:serviceaccount:default:builder");
    let mut forged = token.clone();
    forged.push('x');
    let bad = k.ok(&["create", "-f", "-", "-o", "jsonpath={.status.error}"], Some(&review(&forged))).await;
    assert!(bad.contains("invalid bearer token"), "{bad}");

    // A token outlives nothing: once its service account is gone, it no longer authenticates.
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::default_namespaced(plane.client().await.unwrap());
    sas.delete("builder", &DeleteParams::default()).await.unwrap();
    let gone = k.ok(&["create", "-f", "-", "-o", "jsonpath={.status.authenticated}"], Some(&review(&token))).await;
    assert_eq!(gone, "");
    plane.shutdown().await;
}

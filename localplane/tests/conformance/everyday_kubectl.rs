//! Smaller things clients run into: `kubectl apply -f` of a `kind: List`, `kubectl create job`
//! (a protobuf body), the real field order, garbage collection of a child created after its
//! owner was deleted, and discovery that changes (new ETag) when CRDs are applied.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::common::{self, CRD, Kubectl, eventually};

const LIST: &str = r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: listed}
  data: {k: v}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: reader}
  rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
"#;

#[tokio::test]
async fn kubectl_applies_lists_and_creates_jobs() {
    let plane = common::start().await;
    let k = Kubectl::new(&plane);
    let out = k.ok(&["apply", "-f", "-"], Some(LIST)).await;
    assert!(
        out.contains("configmap/listed created") && out.contains("role.rbac.authorization.k8s.io/reader created"),
        "{out}"
    );
    let again = k.ok(&["apply", "-f", "-"], Some(LIST)).await;
    assert!(again.contains("configmap/listed unchanged"), "{again}");
    // The usual round trip: what `get -o yaml` prints is itself a List.
    let dumped = k.ok(&["get", "configmap/listed", "role/reader", "-o", "yaml"], None).await;
    k.ok(&["apply", "-f", "-"], Some(&dumped)).await;

    k.ok(&["create", "job", "once", "--image=busybox", "--", "echo", "hi"], None).await;
    let jobs: Api<Job> = Api::default_namespaced(plane.client().await.expect("client"));
    let job = jobs.get("once").await.unwrap();
    let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(
        (container.image.as_deref(), container.command.clone()),
        (Some("busybox"), Some(vec!["echo".into(), "hi".into()]))
    );
    plane.shutdown().await;
}

#[tokio::test]
async fn objects_come_in_the_real_field_order() {
    let plane = common::start().await;
    let client = plane.client().await.expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "b"}})).unwrap(),
    )
    .await
    .unwrap();
    let req = axum::http::Request::get("/api/v1/namespaces/default/configmaps/c").body(vec![]).unwrap();
    let text = client.request_text(req).await.unwrap();
    assert!(text.starts_with(r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"#), "{text}");
    plane.shutdown().await;
}

#[tokio::test]
async fn a_child_created_after_its_owner_is_gone_is_collected() {
    let plane = common::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(plane.client().await.expect("client"));
    let pp = PostParams::default();
    let owner =
        cms.create(&pp, &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap()).await.unwrap();
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    let late: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "late", "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid, "controller": true}]}}))
    .unwrap();
    cms.create(&pp, &late).await.expect("the create itself succeeds");
    // The real collector is asynchronous: wait for the end state.
    eventually(10, "the orphan collected", || {
        let cms = cms.clone();
        async move { cms.get_opt("late").await.ok().flatten().is_none().then_some(()) }
    })
    .await;
    plane.shutdown().await;
}

/// The ETag of the aggregated `/apis` document.
async fn apis_etag(client: &kube::Client) -> String {
    let req = axum::http::Request::get("/apis")
        .header("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    resp.headers()["etag"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn discovery_changes_when_crds_are_applied() {
    let plane = common::start().await;
    let client = plane.client().await.expect("client");
    let k = Kubectl::new(&plane);
    k.ok(&["get", "pods"], None).await; // kubectl's discovery cache is now warm
    let before = apis_etag(&client).await;
    let with_category = CRD.replace("shortNames: [wd]", "shortNames: [wd]\n    categories: [trainloop]");
    k.ok(&["apply", "-f", "-"], Some(&with_category)).await;
    k.ok(&["wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s"], None).await;
    assert_ne!(apis_etag(&client).await, before, "a new group changes the discovery ETag");
    // kubectl expands a category from its disk cache (6 h TTL) before asking the server, so
    // with a cache warmed before the CRD existed its first attempt fails and invalidates the
    // cache (kubernetes/kubernetes#65517, the same on a real cluster); the next one succeeds.
    let first = k.run(&["get", "trainloop"], None).await;
    if !first.status.success() {
        assert!(String::from_utf8_lossy(&first.stderr).contains("doesn't have a resource type \"trainloop\""));
    }
    k.ok(&["get", "trainloop"], None).await;
    plane.shutdown().await;
}

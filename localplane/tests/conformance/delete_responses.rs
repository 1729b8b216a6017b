//! DELETE answers a `Status` for an object removed at once and the object itself while
//! finalizers keep it; pods answer with the pod, as the real registry does.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::common::{self, Kubectl};

#[tokio::test]
async fn removed_objects_answer_status_and_kept_objects_answer_themselves() {
    let plane = common::start().await;
    let client = plane.client().await.expect("client");
    let pp = PostParams::default();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());

    let plain =
        cms.create(&pp, &serde_json::from_value(json!({"metadata": {"name": "plain"}})).unwrap()).await.unwrap();
    let status = cms.delete("plain", &DeleteParams::default()).await.unwrap().right().expect("a Status");
    assert_eq!(status.status, Some(kube::core::response::StatusSummary::Success));
    let details = status.details.expect("details");
    assert_eq!((details.name.as_str(), details.kind.as_str(), details.group.as_str()), ("plain", "configmaps", ""));
    assert_eq!(Some(details.uid), plain.metadata.uid);
    assert!(cms.get_opt("plain").await.unwrap().is_none());

    // Dry run answers as the real delete would, and removes nothing.
    cms.create(&pp, &serde_json::from_value(json!({"metadata": {"name": "kept"}})).unwrap()).await.unwrap();
    let dry = cms.delete("kept", &DeleteParams { dry_run: true, ..Default::default() }).await.unwrap();
    assert!(dry.is_right(), "{dry:?}");
    assert!(cms.get_opt("kept").await.unwrap().is_some());

    let held: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})).unwrap();
    cms.create(&pp, &held).await.unwrap();
    let marked = cms.delete("held", &DeleteParams::default()).await.unwrap().left().expect("the object");
    assert!(marked.metadata.deletion_timestamp.is_some());

    let deploys: Api<Deployment> = Api::default_namespaced(client.clone());
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {
        "replicas": 0, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}))
    .unwrap();
    deploys.create(&pp, &d).await.unwrap();
    let status = deploys.delete("web", &DeleteParams::background()).await.unwrap().right().expect("a Status");
    assert_eq!(status.details.expect("details").group, "apps");

    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
        "nodeName": "elsewhere", "containers": [{"name": "c", "image": "x"}]}}))
    .unwrap();
    pods.create(&pp, &p).await.unwrap();
    let gone = pods.delete("p", &DeleteParams::default()).await.unwrap();
    assert!(gone.is_left(), "pods answer with the pod: {gone:?}");

    // kubectl reads the UID from the Status to wait for the deletion.
    let k = Kubectl::new(&plane);
    let out = k.ok(&["delete", "configmap", "kept", "--wait=true", "--timeout=20s"], None).await;
    assert!(out.contains("configmap \"kept\" deleted"), "{out}");
    plane.shutdown().await;
}

//! PATCH and PUT answer `PartialObjectMetadata` when Accept asks for it (kube's
//! `patch_metadata`, controllers that only touch labels, annotations or finalizers).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common;

const META: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

#[tokio::test]
async fn patch_and_put_honour_partial_object_metadata() {
    let plane = common::start().await;
    let client = plane.client().await.expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"secret-ish": "v"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();

    let patched = cms
        .patch_metadata("c", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})))
        .await
        .unwrap();
    assert_eq!(patched.types.as_ref().map(|t| t.kind.as_str()), Some("PartialObjectMetadata"));
    assert_eq!(patched.metadata.labels.unwrap()["a"], "b");

    // PUT with the same Accept, through a raw request (kube has no replace_metadata).
    let mut full = cms.get("c").await.unwrap();
    full.metadata.annotations = Some([("x".to_string(), "y".to_string())].into());
    let req = axum::http::Request::put("/api/v1/namespaces/default/configmaps/c")
        .header("Accept", META)
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&full).unwrap())
        .unwrap();
    let body: Value = serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap();
    assert_eq!(body["kind"], "PartialObjectMetadata", "{body}");
    assert_eq!(body["metadata"]["annotations"]["x"], "y");
    assert!(body.get("data").is_none(), "{body}");
    plane.shutdown().await;
}

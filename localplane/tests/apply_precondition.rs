//! A resourceVersion in a server-side apply configuration is a precondition, as on the real API
//! server: controllers use it so that a write computed from a stale cache fails with 409.

mod common;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

#[tokio::test]
async fn apply_with_a_stale_resource_version_conflicts() {
    let plane = common::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(plane.client().await.expect("client"));
    let params = PatchParams::apply("test").force();
    let config = |rv: Option<&str>, value: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "c", "resourceVersion": rv}, "data": {"k": value}})
    };
    let first = cms.patch("c", &params, &Patch::Apply(config(None, "1"))).await.expect("create");
    let read = first.resource_version().expect("a resourceVersion");
    let second = cms.patch("c", &params, &Patch::Apply(config(Some(&read), "2"))).await.expect("fresh apply");
    let error = cms.patch("c", &params, &Patch::Apply(config(Some(&read), "3"))).await.expect_err("stale apply");
    assert!(matches!(&error, kube::Error::Api(status) if status.code == 409), "{error:?}");
    let now = cms.get("c").await.expect("get");
    assert_eq!(now.data.unwrap()["k"], "2", "the stale write changed nothing");
    assert_eq!(now.metadata.resource_version, second.metadata.resource_version);
    plane.shutdown().await;
}

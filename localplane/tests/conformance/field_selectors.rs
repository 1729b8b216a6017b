//! Field selectors compare an absent field with its zero value, as the real server's typed
//! field sets do: `spec.unschedulable==false` matches a node without that field.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use crate::common::{self, Kubectl};

#[tokio::test]
async fn absent_fields_compare_as_their_zero_value() {
    let plane = common::start().await;
    let k = Kubectl::new(&plane);
    let schedulable =
        k.ok(&["get", "nodes", "--field-selector", "spec.unschedulable==false", "-o", "name"], None).await;
    assert_eq!(schedulable, "node/localplane\n");
    let cordoned = k.ok(&["get", "nodes", "--field-selector", "spec.unschedulable=true", "-o", "name"], None).await;
    assert_eq!(cordoned, "");

    // kubectl cordon sets the field; the selectors follow.
    k.ok(&["cordon", "localplane"], None).await;
    let nodes: Api<Node> = Api::all(plane.client().await.expect("client"));
    let cordoned = nodes.list(&ListParams::default().fields("spec.unschedulable=true")).await.unwrap();
    assert_eq!(cordoned.items.len(), 1);
    let schedulable = nodes.list(&ListParams::default().fields("spec.unschedulable!=true")).await.unwrap();
    assert!(schedulable.items.is_empty());
    plane.shutdown().await;
}

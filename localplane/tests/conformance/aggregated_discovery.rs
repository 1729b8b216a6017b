//! Aggregated discovery: kube's `Discovery::run_aggregated` and kubectl 1.32 (which asks for
//! apidiscovery v2 first) see every group, including CRDs added after start.

use std::collections::BTreeSet;

use kube::discovery::Discovery;

use crate::common::{self, Kubectl};

fn resources(d: &Discovery) -> BTreeSet<(String, String, String)> {
    d.groups()
        .flat_map(|g| {
            g.recommended_resources()
                .into_iter()
                .map(|(ar, _)| (ar.group.clone(), ar.version.clone(), ar.plural.clone()))
        })
        .collect()
}

#[tokio::test]
async fn aggregated_and_legacy_discovery_agree() {
    let plane = common::start().await;
    let client = plane.client().await.expect("client");
    common::install_crd(&client).await;
    let aggregated = Discovery::new(client.clone()).run_aggregated().await.expect("aggregated discovery is served");
    let legacy = Discovery::new(client.clone()).run().await.expect("legacy discovery");
    let (a, l) = (resources(&aggregated), resources(&legacy));
    assert_eq!(a, l);
    assert!(a.contains(&("example.com".into(), "v1".into(), "widgets".into())));
    assert!(a.contains(&("".into(), "v1".into(), "pods".into())));
    let (ar, caps) = aggregated.resolve_gvk(&kube::core::GroupVersionKind::gvk("apps", "v1", "Deployment")).unwrap();
    assert_eq!(ar.plural, "deployments");
    assert!(
        caps.subresources.iter().any(|(sub, _)| sub.plural == "deployments/scale" || sub.plural == "scale"),
        "{caps:?}"
    );

    // kubectl reads the aggregated document (it asks for it first) and finds the CRD's kind.
    let k = Kubectl::new(&plane);
    let out = k.ok(&["api-resources", "--api-group=example.com", "-o", "name"], None).await;
    assert_eq!(out, "widgets.example.com\n");
    k.ok(&["get", "widgets"], None).await;
    plane.shutdown().await;
}

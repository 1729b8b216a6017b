//! Services' ClusterIPs as the real API server allocates them: from the plane's service range,
//! an address named explicitly refused when another Service holds it or it lies outside the
//! range (the words of kube-apiserver 1.33), freed when its Service is deleted, never held by a
//! dry run, and immutable.

mod common;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn service(name: &str, cluster_ip: Option<&str>) -> Service {
    let mut spec = json!({"ports": [{"port": 80}]});
    if let Some(ip) = cluster_ip {
        spec["clusterIP"] = json!(ip);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn cluster_ip(svc: &Service) -> String {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.clone()).unwrap()
}

/// The 422 a refused create answers, as (message, cause field).
async fn refused(api: &Api<Service>, svc: &Service) -> (String, String) {
    match api.create(&PostParams::default(), svc).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{s:?}");
            let causes = s.details.as_ref().map(|d| d.causes.clone()).unwrap_or_default();
            assert_eq!(causes.len(), 1, "{s:?}");
            assert_eq!(causes[0].reason, "FieldValueInvalid");
            (s.message, causes[0].field.clone())
        }
        other => panic!("expected 422 Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn explicit_cluster_ips_are_refused_when_taken_or_out_of_range_and_freed_on_delete() {
    let plane = common::start().await;
    let api: Api<Service> = Api::namespaced(plane.client().await.unwrap(), "default");
    let pp = PostParams::default();

    // The kubernetes Service has the range's first address; others are allocated inside it.
    let first = cluster_ip(&api.get("kubernetes").await.unwrap());
    let a = cluster_ip(&api.create(&pp, &service("a", None)).await.unwrap());
    let prefix = |ip: &str| ip.split('.').take(2).collect::<Vec<_>>().join(".");
    assert!(first.ends_with(".0.1"), "{first}");
    assert_eq!(prefix(&a), prefix(&first));

    // Taken: by another Service, and by the kubernetes Service.
    for taken in [&a, &first] {
        let (message, field) = refused(&api, &service("b", Some(taken))).await;
        assert_eq!(
            message,
            format!(
                "Service \"b\" is invalid: spec.clusterIPs: Invalid value: []string{{\"{taken}\"}}: \
                 failed to allocate IP {taken}: provided IP is already allocated"
            )
        );
        assert_eq!(field, "spec.clusterIPs");
    }

    // Outside the range: another /16 of loopback, and the range's own network address.
    let second: u8 = first.split('.').nth(1).unwrap().parse().unwrap();
    for outside in [format!("127.{}.0.5", second ^ 1), format!("{}.0.0", prefix(&first))] {
        let (message, _) = refused(&api, &service("c", Some(&outside))).await;
        assert_eq!(
            message,
            format!(
                "Service \"c\" is invalid: spec.clusterIPs: Invalid value: []string{{\"{outside}\"}}: \
                 failed to allocate IP {outside}: the provided network does not match the current range"
            )
        );
    }
    let (message, field) = refused(&api, &service("d", Some("bogus"))).await;
    assert_eq!(
        message,
        "Service \"d\" is invalid: spec.clusterIPs[0]: Invalid value: \"bogus\": must be a valid IP address, \
         (e.g. 10.9.8.7 or 2001:db8::ffff)"
    );
    assert_eq!(field, "spec.clusterIPs[0]");

    // A free address named explicitly is granted; a dry run holds none.
    let chosen = format!("{}.200.9", prefix(&first));
    let dry = PostParams { dry_run: true, ..Default::default() };
    assert_eq!(cluster_ip(&api.create(&dry, &service("e", Some(&chosen))).await.unwrap()), chosen);
    let e = api.create(&pp, &service("e", Some(&chosen))).await.unwrap();
    assert_eq!(e.spec.as_ref().and_then(|s| s.cluster_ips.clone()), Some(vec![chosen.clone()]));
    let headless = api.create(&pp, &service("h", Some("None"))).await.unwrap();
    assert_eq!(cluster_ip(&headless), "None");

    // A Service's address cannot change.
    let change = Patch::Merge(json!({"spec": {"clusterIP": format!("{}.200.10", prefix(&first))}}));
    match api.patch("e", &PatchParams::default(), &change).await {
        Err(kube::Error::Api(s)) => assert!(s.message.ends_with("may not change once set"), "{}", s.message),
        other => panic!("expected 422, got {other:?}"),
    }

    // A deleted Service frees its address.
    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(cluster_ip(&api.create(&pp, &service("b", Some(&a))).await.unwrap()), a);
    plane.shutdown().await;
}

#[tokio::test]
async fn two_planes_never_share_a_cluster_ip() {
    let (one, two) = (common::start().await, common::start().await);
    let mut seen = std::collections::HashSet::new();
    for plane in [&one, &two] {
        let api: Api<Service> = Api::namespaced(plane.client().await.unwrap(), "default");
        for i in 0..20 {
            let svc = api.create(&PostParams::default(), &service(&format!("s{i}"), None)).await.unwrap();
            assert!(seen.insert(cluster_ip(&svc)), "{} given twice", cluster_ip(&svc));
        }
    }
    one.shutdown().await;
    two.shutdown().await;
}

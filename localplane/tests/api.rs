//! API semantics through kube-rs: resourceVersions, conflicts, no-op writes, generation,
//! status separation, finalizers, garbage collection, the four patch types and error shapes.

mod common;

use std::time::Duration;

use axum::http::Request;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn widgets(client: &kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    Api::namespaced_with(client.clone(), "default", &ar)
}

fn widget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}),
    )
    .expect("widget")
}

fn cm(name: &str, data: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).expect("cm")
}

fn api_err(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn rv<K: kube::Resource>(o: &K) -> u64 {
    o.meta().resource_version.as_deref().and_then(|r| r.parse().ok()).expect("numeric resourceVersion")
}

#[tokio::test]
async fn versions_conflicts_and_noops() {
    let plane = common::start().await;
    let client = plane.client().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();
    let a = api.create(&pp, &cm("a", json!({"k": "1"}))).await.unwrap();
    let b = api.create(&pp, &cm("b", json!({"k": "1"}))).await.unwrap();
    assert!(rv(&b) > rv(&a), "one global increasing resourceVersion");

    let e = api_err(api.create(&pp, &cm("a", json!({}))).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, "configmaps \"a\" already exists");

    let mut changed = a.clone();
    changed.data = Some([("k".to_string(), "2".to_string())].into());
    let a2 = api.replace("a", &pp, &changed).await.unwrap();
    assert!(rv(&a2) > rv(&b));
    // `changed` still carries the old resourceVersion: a stale write.
    let e = api_err(api.replace("a", &pp, &changed).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(
        e.message
            .contains("the object has been modified; please apply your changes to the latest version and try again"),
        "{}",
        e.message
    );

    // A write that changes nothing bumps nothing.
    let same = api.replace("a", &pp, &a2).await.unwrap();
    assert_eq!(rv(&same), rv(&a2));
    let same = api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "2"}}))).await.unwrap();
    assert_eq!(rv(&same), rv(&a2));

    // generateName appends five characters.
    let mut g = cm("", json!({}));
    g.metadata.name = None;
    g.metadata.generate_name = Some("gen-".into());
    let made = api.create(&pp, &g).await.unwrap();
    let name = made.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    plane.shutdown().await;
}

#[tokio::test]
async fn generation_status_and_finalizers() {
    let plane = common::start().await;
    let client = plane.client().await.unwrap();
    common::install_crd(&client).await;
    let api = widgets(&client);
    let pp = PostParams::default();
    let mut w = widget("w", json!({"size": 1}));
    w.data["status"] = json!({"ignored": true});
    let w = api.create(&pp, &w).await.unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    assert!(w.data.get("status").is_none(), "status is dropped on create");
    assert_eq!(w.data["spec"]["maxSize"], 10, "defaulted");

    let s = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}, "spec": {"size": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(s.metadata.generation, Some(1), "status writes do not bump generation");
    assert_eq!(s.data["spec"]["size"], 1, "status writes do not change spec");
    let l = api
        .patch("w", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})))
        .await
        .unwrap();
    assert_eq!(l.metadata.generation, Some(1), "metadata changes do not bump generation");
    let m = api
        .patch("w", &PatchParams::default(), &Patch::Merge(json!({"spec": {"size": 2}, "status": {"phase": "X"}})))
        .await
        .unwrap();
    assert_eq!(m.metadata.generation, Some(2));
    assert_eq!(m.data["status"]["phase"], "Ready", "main writes keep the stored status");

    // kube's finalizer(): a JSON patch whose `test` for null passes on a missing path.
    let add = json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                     {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/f"]}]);
    api.patch("w", &PatchParams::default(), &Patch::Json::<()>(serde_json::from_value(add).unwrap())).await.unwrap();
    let deleting =
        api.delete("w", &DeleteParams::default()).await.unwrap().left().expect("object returned while finalizing");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(deleting.metadata.generation, Some(3), "+1 when deletionTimestamp is set");
    let e = api_err(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/f", "new"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    api.patch("w", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert!(api.get_opt("w").await.unwrap().is_none(), "removed with the last finalizer");
    plane.shutdown().await;
}

fn owned_cm(name: &str, owner: &ConfigMap, block: bool) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid,
        "blockOwnerDeletion": block, "controller": true}]}}))
    .unwrap()
}

#[tokio::test]
async fn garbage_collection() {
    let plane = common::start().await;
    let client = plane.client().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();

    // Background: dependents go with the owner.
    let owner = api.create(&pp, &cm("owner", json!({}))).await.unwrap();
    api.create(&pp, &owned_cm("dep", &owner, false)).await.unwrap();
    api.delete("owner", &DeleteParams::background()).await.unwrap();
    assert!(api.get_opt("dep").await.unwrap().is_none());

    // Orphan: dependents stay, without the reference.
    let owner = api.create(&pp, &cm("owner2", json!({}))).await.unwrap();
    api.create(&pp, &owned_cm("dep2", &owner, false)).await.unwrap();
    api.delete("owner2", &DeleteParams::orphan()).await.unwrap();
    let dep = api.get("dep2").await.unwrap();
    assert!(dep.metadata.owner_references.is_none());

    // Foreground: the owner waits for blocking dependents (held here by a finalizer).
    let owner = api.create(&pp, &cm("owner3", json!({}))).await.unwrap();
    let mut dep = owned_cm("dep3", &owner, true);
    dep.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&pp, &dep).await.unwrap();
    api.delete("owner3", &DeleteParams::foreground()).await.unwrap();
    let waiting = api.get("owner3").await.unwrap();
    assert_eq!(waiting.metadata.finalizers, Some(vec!["foregroundDeletion".to_string()]));
    assert!(api.get("dep3").await.unwrap().metadata.deletion_timestamp.is_some());
    api.patch("dep3", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert!(api.get_opt("dep3").await.unwrap().is_none());
    assert!(api.get_opt("owner3").await.unwrap().is_none(), "owner goes once dependents are gone");

    // Deleting a CRD deletes its resources (and stops serving them).
    common::install_crd(&client).await;
    let w = widgets(&client);
    w.create(&pp, &widget("w", json!({"size": 1}))).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default()).await.unwrap();
    let e = api_err(w.get("w").await.unwrap_err());
    assert_eq!(e.code, 404);
    plane.shutdown().await;
}

#[tokio::test]
async fn patch_types() {
    let plane = common::start().await;
    let client = plane.client().await.unwrap();
    common::install_crd(&client).await;
    let w = widgets(&client);
    let pp = PostParams::default();
    w.create(&pp, &widget("w", json!({"size": 1, "tags": ["a"]}))).await.unwrap();

    // Strategic merge is refused for custom resources, as by the real server.
    let e = api_err(
        w.patch("w", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"size": 2}}))).await.unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (415, "UnsupportedMediaType"));

    // ... and merges containers by name for built-ins.
    let deploys: Api<Deployment> = Api::default_namespaced(client.clone());
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"nodeName": "elsewhere", "containers": [
            {"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}}))
    .unwrap();
    deploys.create(&pp, &d).await.unwrap();
    let patched = deploys
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "z"}]}}}})),
        )
        .await
        .unwrap();
    let cs = patched.spec.template.spec.expect("pod spec").containers;
    assert_eq!(
        cs.iter().map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or(""))).collect::<Vec<_>>(),
        [("a", "x"), ("b", "z")]
    );

    // Server-side apply: create (201), ownership, conflicts, force, removal of dropped fields.
    let apply = |m: &str| PatchParams::apply(m);
    let cfg = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"},
                     "spec": {"size": 1, "ports": [{"name": "http", "port": 80}]}});
    let s = w.patch("s", &apply("one"), &Patch::Apply(&cfg)).await.unwrap();
    assert_eq!(s.metadata.managed_fields.as_ref().map(Vec::len), Some(1));
    let e = api_err(
        w.patch("s", &apply("two"), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"}, "spec": {"size": 2}})))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(e.message.contains("conflict with \"one\"") && e.message.contains(".spec.size"), "{}", e.message);
    // A list-type=map list merges entries from two managers.
    w.patch(
        "s",
        &apply("two").force(),
        &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"},
        "spec": {"size": 2, "ports": [{"name": "grpc", "port": 90}]}})),
    )
    .await
    .unwrap();
    let s = w.get("s").await.unwrap();
    assert_eq!(s.data["spec"]["size"], 2);
    assert_eq!(s.data["spec"]["ports"].as_array().map(Vec::len), Some(2));
    // "one" drops its port: removed, since nobody else owns it.
    let s = w
        .patch(
            "s",
            &apply("one"),
            &Patch::Apply(
                json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"}, "spec": {}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(s.data["spec"]["ports"], json!([{"name": "grpc", "port": 90}]));
    // Applying the same again is a no-op.
    let again = w
        .patch(
            "s",
            &apply("one"),
            &Patch::Apply(
                json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"}, "spec": {}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(rv(&again), rv(&s));
    // Status apply.
    let st = w
        .patch_status("s", &apply("ctl").force(), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"}, "status": {"ok": true}})))
        .await
        .unwrap();
    assert_eq!(st.data["status"]["ok"], true);
    // Apply without a field manager is refused.
    let e = raw(
        &client,
        "PATCH",
        "/apis/example.com/v1/namespaces/default/widgets/s",
        "application/apply-patch+yaml",
        serde_json::to_vec(&cfg).unwrap(),
    )
    .await;
    assert_eq!(e.code, 400);
    plane.shutdown().await;
}

async fn raw(client: &kube::Client, method: &str, path: &str, ct: &str, body: Vec<u8>) -> kube::core::Status {
    let req = Request::builder().method(method).uri(path).header("content-type", ct).body(body).unwrap();
    *api_err(client.request::<Value>(req).await.expect_err("request must fail"))
}

#[tokio::test]
async fn bad_requests_get_status_errors() {
    let plane = common::start().await;
    let client = plane.client().await.unwrap();
    let cms = "/api/v1/namespaces/default/configmaps";
    let e = raw(&client, "POST", cms, "application/json", b"{not json".to_vec()).await;
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    let e = raw(&client, "POST", cms, "application/json", b"[1,2]".to_vec()).await;
    assert_eq!(e.code, 400);
    let e = raw(&client, "GET", "/apis/nope.example.com/v1/things", "application/json", vec![]).await;
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    let huge = format!("{{\"metadata\":{{\"name\":\"h\"}},\"data\":{{\"k\":\"{}\"}}}}", "x".repeat(4 << 20));
    let e = raw(&client, "POST", cms, "application/json", huge.into_bytes()).await;
    assert_eq!(e.code, 413);
    let e = raw(&client, "GET", &format!("{cms}?labelSelector=a%20in%20(x"), "application/json", vec![]).await;
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    let e = raw(&client, "GET", &format!("{cms}?fieldSelector=nonsense"), "application/json", vec![]).await;
    assert_eq!(e.code, 400);
    let e = raw(&client, "POST", &format!("{cms}/x"), "application/json", b"{}".to_vec()).await;
    assert_eq!(e.code, 405);
    let e = raw(&client, "PATCH", &format!("{cms}/x"), "application/bogus", b"{}".to_vec()).await;
    assert_eq!(e.code, 415);
    let e = raw(
        &client,
        "POST",
        "/api/v1/namespaces/nope/configmaps",
        "application/json",
        br#"{"metadata":{"name":"a"}}"#.to_vec(),
    )
    .await;
    assert_eq!(e.code, 404);
    let e = raw(&client, "POST", cms, "application/json", br#"{"metadata":{"name":"Bad_Name"}}"#.to_vec()).await;
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let e = raw(&client, "GET", &format!("{cms}?watch=true&resourceVersion=abc"), "application/json", vec![]).await;
    assert_eq!(e.code, 400);
    // The server is still fine.
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &cm("ok", json!({}))).await.unwrap();
    plane.shutdown().await;
}

#[tokio::test]
async fn pod_logs_are_read_from_the_work_dir() {
    let work = common::scratch_dir("work");
    let plane =
        localplane::LocalPlane::start(localplane::Config { work_dir: Some(work.clone()), ..Default::default() })
            .await
            .unwrap();
    let client = plane.client().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    // Bound to another node, so no kubelet runs it: this test owns the log file.
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"nodeName": "elsewhere",
        "containers": [{"name": "c", "image": "busybox"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let dir = work.join("pods/default/p");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("log"), "one\ntwo\nthree\n").unwrap();
    assert_eq!(pods.logs("p", &Default::default()).await.unwrap(), "one\ntwo\nthree\n");
    let lp = kube::api::LogParams { tail_lines: Some(2), ..Default::default() };
    assert_eq!(pods.logs("p", &lp).await.unwrap(), "two\nthree\n");
    let e = api_err(pods.logs("missing", &Default::default()).await.unwrap_err());
    assert_eq!(e.code, 404);

    // follow=true streams appended lines until the pod finishes.
    pods.patch_status("p", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Running"}})))
        .await
        .unwrap();
    let lp = kube::api::LogParams { follow: true, tail_lines: Some(1), ..Default::default() };
    let stream = pods.log_stream("p", &lp).await.unwrap();
    let mut lines = futures::AsyncBufReadExt::lines(stream);
    use futures::StreamExt;
    assert_eq!(lines.next().await.unwrap().unwrap(), "three");
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("log"))
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(b"four\n")
        })
        .unwrap();
    assert_eq!(lines.next().await.unwrap().unwrap(), "four");
    pods.patch_status("p", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Succeeded"}})))
        .await
        .unwrap();
    let rest: Vec<_> =
        tokio::time::timeout(Duration::from_secs(10), lines.collect::<Vec<_>>()).await.expect("stream ends");
    assert!(rest.is_empty(), "{rest:?}");
    plane.shutdown().await;
}

#[tokio::test]
async fn fault_injection_switches_at_run_time() {
    let plane = common::start().await;
    let client = plane.client().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let set = |cfg: Value| {
        let client = client.clone();
        async move {
            let req = Request::post("/localplane/faults")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&cfg).unwrap())
                .unwrap();
            client.request::<Value>(req).await.expect("fault endpoint")
        }
    };
    set(json!({"errors": {"create": {"rate": 1.0, "code": 500}}})).await;
    let e = api_err(api.create(&PostParams::default(), &cm("x", json!({}))).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    api.list(&Default::default()).await.expect("other verbs unaffected");
    set(json!({"errors": {"*": {"rate": 1.0, "code": 429}}})).await;
    // kube retries 429s by default; a client without retries sees them.
    let mut cfg = plane.client_config().unwrap();
    cfg.default_retry = false;
    let no_retry: Api<ConfigMap> = Api::default_namespaced(kube::Client::try_from(cfg).unwrap());
    let e = api_err(no_retry.list(&Default::default()).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (429, "TooManyRequests"));
    set(json!({"latencyMs": 300})).await;
    let t = std::time::Instant::now();
    api.create(&PostParams::default(), &cm("x", json!({}))).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    let off = set(json!({})).await;
    assert_eq!(off["latencyMs"], 0);
    let req = Request::post("/localplane/faults")
        .header("content-type", "application/json")
        .body(b"{\"nope\":1}".to_vec())
        .unwrap();
    assert_eq!(api_err(client.request::<Value>(req).await.unwrap_err()).code, 400);
    plane.shutdown().await;
}

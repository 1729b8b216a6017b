//! The real kubectl against localplane: apply (client- and server-side), re-apply, get with
//! printer columns, wait, patch --subresource=status, delete with a finalizer, and rejections.

mod common;

use common::{CRD, Kubectl, eventually, start};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};

fn widget(name: &str, size: i64) -> String {
    format!("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\nspec:\n  size: {size}\n")
}

fn widgets(client: kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    Api::namespaced_with(client, "default", &ar)
}

#[tokio::test]
async fn apply_get_wait_patch_delete() {
    let plane = start().await;
    let k = Kubectl::new(&plane);
    assert!(k.ok(&["apply", "-f", "-"], Some(CRD)).await.contains("created"));
    k.ok(&["wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s"], None).await;

    // Client-side apply, then re-apply after a change (a merge patch).
    assert!(k.ok(&["apply", "-f", "-"], Some(&widget("w1", 3))).await.contains("widget.example.com/w1 created"));
    assert!(k.ok(&["apply", "-f", "-"], Some(&widget("w1", 4))).await.contains("configured"));
    assert!(k.ok(&["apply", "-f", "-"], Some(&widget("w1", 4))).await.contains("unchanged"));

    // Server-side apply: create, change, no-op.
    let out = k.ok(&["apply", "--server-side", "-f", "-"], Some(&widget("w2", 7))).await;
    assert!(out.contains("serverside-applied"), "{out}");
    k.ok(&["apply", "--server-side", "-f", "-"], Some(&widget("w2", 8))).await;
    // The CRD itself can be re-applied server-side.
    k.ok(&["apply", "--server-side", "--force-conflicts", "-f", "-"], Some(CRD)).await;

    // get shows the printer columns, pre-formatted.
    let table = k.ok(&["get", "widgets"], None).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].split_whitespace().eq(["NAME", "SIZE", "READY", "AGE"]), "{table}");
    assert!(lines[1].starts_with("w1") && lines[1].contains(" 4 "), "{table}");
    assert!(lines[2].starts_with("w2") && lines[2].contains(" 8 "), "{table}");
    let short = k.ok(&["get", "wd", "w2", "-o", "jsonpath={.spec.size} {.spec.maxSize} {.spec.color}"], None).await;
    assert_eq!(short, "8 10 red", "defaults applied");

    // Status through the subresource, then wait for the condition.
    let status = r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Ok","message":"ok","lastTransitionTime":"2024-01-01T00:00:00Z"}]}}"#;
    k.ok(&["patch", "widget", "w1", "--subresource=status", "--type=merge", "-p", status], None).await;
    k.ok(&["wait", "--for=condition=Ready", "widget/w1", "--timeout=20s"], None).await;
    let table = k.ok(&["get", "widget", "w1"], None).await;
    assert!(table.lines().nth(1).is_some_and(|l| l.contains("True")), "{table}");

    // Delete of an object with a finalizer: kubectl waits until a kube-rs client removes it.
    let api = widgets(plane.client().await.expect("client"));
    api.patch(
        "w2",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"finalizers": ["example.com/cleanup"]}})),
    )
    .await
    .expect("add finalizer");
    let kubeconfig = k.kubeconfig().to_path_buf();
    let deleter = tokio::spawn(async move {
        let cache = common::scratch_dir("kubectl-cache2");
        tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(cache)
            .args(["delete", "widget", "w2", "--timeout=30s"])
            .output()
            .await
            .expect("kubectl delete runs")
    });
    let marked = eventually(20, "deletionTimestamp on w2", || {
        let api = api.clone();
        async move { api.get("w2").await.ok().filter(|o| o.metadata.deletion_timestamp.is_some()) }
    })
    .await;
    assert!(!deleter.is_finished(), "kubectl delete must wait for the finalizer");
    let fins = marked.metadata.finalizers.clone().unwrap_or_default();
    assert_eq!(fins, vec!["example.com/cleanup".to_string()]);
    api.patch(
        "w2",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(serde_json::json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "example.com/cleanup"},
        {"op": "remove", "path": "/metadata/finalizers/0"}]))
            .expect("json patch"),
        ),
    )
    .await
    .expect("remove finalizer");
    let out = deleter.await.expect("join");
    assert!(out.status.success(), "kubectl delete: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("deleted"));
    k.ok(&["wait", "--for=delete", "widget/w2", "--timeout=5s"], None).await;
    plane.shutdown().await;
}

#[tokio::test]
async fn rejections_are_real_status_errors() {
    let plane = start().await;
    let k = Kubectl::new(&plane);
    k.ok(&["apply", "-f", "-"], Some(CRD)).await;
    k.ok(&["wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s"], None).await;

    // Schema violation: 422 with the field path.
    let err = k.fails(&["apply", "-f", "-"], Some(&widget("bad", -1))).await;
    assert!(err.contains("is invalid") && err.contains("spec.size"), "{err}");
    let err = k
        .fails(
            &["create", "-f", "-"],
            Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\nspec: {size: big}\n"),
        )
        .await;
    assert!(err.contains("spec.size") && err.contains("integer"), "{err}");
    // CEL rule violation.
    let err = k.fails(&["apply", "-f", "-"], Some(&widget("big", 20))).await;
    assert!(err.contains("size must not exceed maxSize"), "{err}");
    // CEL transition rule (oldSelf).
    k.ok(&["apply", "-f", "-"], Some(&widget("w", 1))).await;
    let err = k.fails(&["patch", "widget", "w", "--type=merge", "-p", r#"{"spec":{"color":"blue"}}"#], None).await;
    assert!(err.contains("color is immutable"), "{err}");
    // Unknown fields with kubectl's default fieldValidation=Strict.
    let err = k
        .fails(
            &["apply", "-f", "-"],
            Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\nspec: {size: 1, bogus: true}\n"),
        )
        .await;
    assert!(err.contains("unknown field \"spec.bogus\""), "{err}");
    // ... pruned when validation is off.
    k.ok(
        &["apply", "--validate=false", "-f", "-"],
        Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\nspec: {size: 1, bogus: true}\n"),
    )
    .await;
    let spec = k.ok(&["get", "widget", "x", "-o", "jsonpath={.spec}"], None).await;
    assert!(!spec.contains("bogus"), "{spec}");
    // Not found.
    let err = k.fails(&["get", "widget", "nope"], None).await;
    assert!(err.contains("widgets.example.com \"nope\" not found"), "{err}");
    plane.shutdown().await;
}

#[tokio::test]
async fn built_in_kinds_apply_and_reapply() {
    let plane = start().await;
    let k = Kubectl::new(&plane);
    let cm = |v: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\ndata:\n  a: \"{v}\"\n");
    k.ok(&["apply", "-f", "-"], Some(&cm("1"))).await;
    // Re-apply of a built-in kind uses a strategic merge patch.
    assert!(k.ok(&["apply", "-f", "-"], Some(&cm("2"))).await.contains("configured"));
    assert_eq!(k.ok(&["get", "cm", "c1", "-o", "jsonpath={.data.a}"], None).await, "2");
    let ns = k.ok(&["get", "namespaces"], None).await;
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(n), "{ns}");
    }
    // Imperative `kubectl create <kind>` sends protobuf bodies (decoded for these kinds).
    k.ok(&["create", "namespace", "team"], None).await;
    k.ok(&["-n", "team", "create", "secret", "generic", "s", "--from-literal=k=v"], None).await;
    k.ok(&["-n", "team", "create", "serviceaccount", "robot"], None).await;
    k.ok(&["-n", "team", "create", "configmap", "c", "--from-literal=a=b"], None).await;
    assert_eq!(k.ok(&["-n", "team", "get", "secret", "s", "-o", "jsonpath={.data.k}"], None).await, "dg==");
    assert_eq!(k.ok(&["-n", "team", "get", "secret", "s", "-o", "jsonpath={.type}"], None).await, "Opaque");
    k.ok(&["delete", "namespace", "team", "--timeout=20s"], None).await;
    let err = k.fails(&["-n", "team", "get", "secret", "s"], None).await;
    assert!(err.contains("not found"), "{err}");
    plane.shutdown().await;
}

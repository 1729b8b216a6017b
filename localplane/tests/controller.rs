//! A kube-rs Controller with `owns()` against localplane: it keeps one ConfigMap per Widget,
//! recreates it when deleted (metadata watch on the child), and garbage collection removes it
//! with its owner.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReconcileError(#[from] kube::Error);

struct Ctx {
    client: kube::Client,
    ar: ApiResource,
}

async fn reconcile(w: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let ns = w.namespace().unwrap_or_default();
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let owner = w.controller_owner_ref(&ctx.ar).expect("widgets have a uid");
    let child = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("{}-child", w.name_any()), "ownerReferences": [owner]},
        "data": {"size": w.data["spec"]["size"].to_string()}
    });
    cms.patch(
        &format!("{}-child", w.name_any()),
        &PatchParams::apply("widget-controller").force(),
        &Patch::Apply(&child),
    )
    .await?;
    let widgets: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ctx.ar);
    let status = json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"observedGeneration": w.meta().generation}});
    widgets
        .patch_status(&w.name_any(), &PatchParams::apply("widget-controller").force(), &Patch::Apply(&status))
        .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<DynamicObject>, _: &ReconcileError, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(200))
}

#[tokio::test]
async fn controller_with_owns() {
    let plane = common::start().await;
    let client = plane.client().await.unwrap();
    common::install_crd(&client).await;
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());

    let ctx = Arc::new(Ctx { client: client.clone(), ar: ar.clone() });
    let controller = Controller::new_with(widgets.clone(), watcher::Config::default(), ar.clone())
        .owns(cms.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    let w: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": 3}}))
    .unwrap();
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let child = common::eventually(15, "child ConfigMap", || {
        let cms = cms.clone();
        async move { cms.get_opt("w-child").await.ok().flatten() }
    })
    .await;
    assert_eq!(child.data.unwrap()["size"], "3");
    assert_eq!(child.metadata.owner_references.unwrap()[0].kind, "Widget");
    common::eventually(15, "observedGeneration", || {
        let widgets = widgets.clone();
        async move { widgets.get("w").await.ok().filter(|w| w.data["status"]["observedGeneration"] == 1) }
    })
    .await;

    // Deleting the child triggers the owner (metadata watch via owns()).
    cms.delete("w-child", &DeleteParams::default()).await.unwrap();
    common::eventually(15, "child recreated", || {
        let cms = cms.clone();
        async move { cms.get_opt("w-child").await.ok().flatten() }
    })
    .await;

    // A spec change reaches the child.
    widgets.patch("w", &PatchParams::default(), &Patch::Merge(json!({"spec": {"size": 5}}))).await.unwrap();
    common::eventually(15, "child updated", || {
        let cms = cms.clone();
        async move {
            cms.get_opt("w-child").await.ok().flatten().filter(|c| c.data.as_ref().is_some_and(|d| d["size"] == "5"))
        }
    })
    .await;

    // Owner deleted: garbage collection takes the child.
    widgets.delete("w", &DeleteParams::default()).await.unwrap();
    common::eventually(15, "child collected", || {
        let cms = cms.clone();
        async move { cms.get_opt("w-child").await.ok().and_then(|c| c.is_none().then_some(())) }
    })
    .await;
    handle.abort();
    plane.shutdown().await;
}

//! Watch semantics through kube-rs: replay from a resourceVersion, in-stream 410 after
//! compaction, streaming lists, metadata watches, and a watcher that survives dropped
//! streams and forced compaction (via the fault-injection endpoint).

mod common;

use std::time::Duration;

use axum::http::Request;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PartialObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

async fn faults(client: &kube::Client, cfg: Value) {
    let req = Request::post("/localplane/faults")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&cfg).unwrap())
        .unwrap();
    client.request::<Value>(req).await.expect("fault endpoint");
}

/// Receives watcher events until one satisfies `pred`, failing after 15 seconds.
async fn until(
    rx: &mut mpsc::UnboundedReceiver<Event<ConfigMap>>,
    what: &str,
    pred: impl Fn(&Event<ConfigMap>) -> bool,
) -> Vec<String> {
    let mut seen = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {seen:?}"))
            .expect("watcher alive");
        seen.push(match &ev {
            Event::Apply(o) | Event::InitApply(o) | Event::Delete(o) => o.metadata.name.clone().unwrap_or_default(),
            Event::Init => "<init>".into(),
            Event::InitDone => "<init-done>".into(),
        });
        if pred(&ev) {
            return seen;
        }
    }
}

fn applied(name: &'static str) -> impl Fn(&Event<ConfigMap>) -> bool {
    move |e| matches!(e, Event::Apply(o) | Event::InitApply(o) if o.metadata.name.as_deref() == Some(name))
}

fn spawn_watcher(api: Api<ConfigMap>, cfg: watcher::Config) -> mpsc::UnboundedReceiver<Event<ConfigMap>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut s = watcher::watcher(api, cfg).boxed();
        while let Some(ev) = s.next().await {
            // Errors are retried by the watcher itself; only events are forwarded.
            if let Ok(ev) = ev
                && tx.send(ev).is_err()
            {
                return;
            }
        }
    });
    rx
}

#[tokio::test]
async fn watcher_survives_dropped_streams_and_forced_410() {
    let plane = common::start().await;
    let client = plane.client().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();
    let mut rx = spawn_watcher(api.clone(), watcher::Config::default());
    until(&mut rx, "initial list", |e| matches!(e, Event::InitDone)).await;
    api.create(&pp, &cm("a")).await.unwrap();
    until(&mut rx, "a", applied("a")).await;

    // The stream ends: the watcher re-watches from its last resourceVersion, no relist.
    faults(&client, json!({"dropWatches": true})).await;
    api.create(&pp, &cm("b")).await.unwrap();
    let seen = until(&mut rx, "b after a dropped stream", applied("b")).await;
    assert!(!seen.contains(&"<init>".to_string()), "no relist needed: {seen:?}");

    // Forced compaction: the open watch gets an in-stream 410 and the watcher relists.
    faults(&client, json!({"compact": true})).await;
    api.create(&pp, &cm("c")).await.unwrap();
    let seen = until(&mut rx, "c after a 410", applied("c")).await;
    assert!(seen.contains(&"<init>".to_string()), "a 410 forces a relist: {seen:?}");

    // Watches capped in length by fault injection keep working too.
    faults(&client, json!({"watchMaxSeconds": 1})).await;
    api.create(&pp, &cm("d")).await.unwrap();
    until(&mut rx, "d", applied("d")).await;
    faults(&client, json!({})).await;
    plane.shutdown().await;
}

#[tokio::test]
async fn replay_expiry_and_bookmarks() {
    let plane = common::start().await;
    let client = plane.client().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    // The namespace's own ConfigMap (the cluster CA) is written at start: let it come first.
    common::eventually(30, "kube-root-ca.crt", || async { api.get_opt("kube-root-ca.crt").await.unwrap() }).await;
    let pp = PostParams::default();
    let a = api.create(&pp, &cm("a")).await.unwrap();
    api.create(&pp, &cm("b")).await.unwrap();
    let rv = a.metadata.resource_version.clone().unwrap();

    // Replay strictly after the given resourceVersion.
    let wp = WatchParams::default().timeout(2);
    let events: Vec<WatchEvent<ConfigMap>> = api.watch(&wp, &rv).await.unwrap().try_collect().await.unwrap();
    let names: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(o) => o.metadata.name.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["b"], "replay after {rv}; timeoutSeconds closes the stream");

    // Field selectors apply to watches (kubectl wait / await_condition).
    let wp = WatchParams::default().fields("metadata.name=a").timeout(2);
    let events: Vec<WatchEvent<ConfigMap>> = api.watch(&wp, "0").await.unwrap().try_collect().await.unwrap();
    assert_eq!(events.len(), 1);

    // After compaction an old resourceVersion is an in-stream ERROR 410 Expired.
    faults(&client, json!({"compact": true})).await;
    let mut s = api.watch(&WatchParams::default().timeout(5), &rv).await.unwrap().boxed();
    match s.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }

    // Bookmarks carry the latest resourceVersion.
    let latest = api.list(&Default::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut s = api.watch(&WatchParams::default().timeout(30), &latest).await.unwrap().boxed();
    let ev = tokio::time::timeout(Duration::from_secs(15), s.try_next()).await.expect("a bookmark in time").unwrap();
    match ev {
        Some(WatchEvent::Bookmark(b)) => assert_eq!(b.metadata.resource_version, latest),
        other => panic!("expected a bookmark, got {other:?}"),
    }
    plane.shutdown().await;
}

#[tokio::test]
async fn streaming_lists_and_metadata_watches() {
    let plane = common::start().await;
    let client = plane.client().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();
    api.create(&pp, &cm("before")).await.unwrap();

    let mut rx = spawn_watcher(api.clone(), watcher::Config::default().streaming_lists());
    let seen = until(&mut rx, "initial events end", |e| matches!(e, Event::InitDone)).await;
    assert!(seen.contains(&"before".to_string()), "{seen:?}");
    api.create(&pp, &cm("after")).await.unwrap();
    until(&mut rx, "after", applied("after")).await;

    let (tx, mut mrx) = mpsc::unbounded_channel();
    // Api<PartialObjectMeta<K>> lists and watches with `as=PartialObjectMetadata(List)`.
    let meta_api: Api<PartialObjectMeta<ConfigMap>> = Api::default_namespaced(client.clone());
    tokio::spawn(async move {
        let mut s = watcher::watcher(meta_api, watcher::Config::default()).boxed();
        while let Some(ev) = s.next().await {
            if let Ok(Event::Apply(m) | Event::InitApply(m)) = ev
                && tx.send(m).is_err()
            {
                return;
            }
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(10), mrx.recv()).await.unwrap().unwrap();
    assert!(first.metadata.resource_version.is_some());
    api.create(&pp, &cm("meta")).await.unwrap();
    common::eventually(10, "metadata event for meta", || {
        let got = mrx.try_recv().ok().filter(|m| m.metadata.name.as_deref() == Some("meta"));
        async move { got }
    })
    .await;
    plane.shutdown().await;
}

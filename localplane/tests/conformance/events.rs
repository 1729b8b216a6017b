//! Events are one store seen through two group versions, as on a real server: kube-rs's
//! `Recorder` writes `events.k8s.io/v1`, kubectl reads core `v1` (`kubectl get events`, and
//! `kubectl describe`, which lists them with `involvedObject.*` field selectors).

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::api::events::v1::Event as EventsV1;
use kube::Resource;
use kube::api::{Api, DynamicObject, ListParams, PostParams, WatchEvent, WatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;

use crate::common::{self, Kubectl};

async fn widget(api: &Api<DynamicObject>, name: &str) -> ObjectReference {
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name, "namespace": "default"}, "spec": {"size": 1}
    }))
    .unwrap();
    let w = api.create(&PostParams::default(), &w).await.expect("create widget");
    w.object_ref(&ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget")))
}

fn event(type_: EventType, reason: &str, note: &str) -> Event {
    Event { type_, reason: reason.into(), note: Some(note.into()), action: "Reconcile".into(), secondary: None }
}

#[tokio::test]
async fn recorder_events_show_in_kubectl_get_and_describe() {
    let plane = common::start().await;
    let client = plane.client().await.expect("client");
    common::install_crd(&client).await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget")),
    );
    let w1 = widget(&widgets, "w1").await;
    let w2 = widget(&widgets, "w2").await;

    let recorder = Recorder::new(client.clone(), Reporter { controller: "trainloop".into(), instance: None });
    let started = event(EventType::Normal, "RunStarted", "run w1-1 started");
    recorder.publish(&started, &w1).await.expect("publish");
    // The same event again: the Recorder merge-patches its series on events.k8s.io/v1.
    recorder.publish(&started, &w1).await.expect("publish again");
    recorder.publish(&event(EventType::Warning, "InvalidSpec", "spec.size: too big"), &w1).await.expect("publish");
    recorder.publish(&event(EventType::Normal, "OtherWidget", "about w2"), &w2).await.expect("publish");

    let k = Kubectl::new(&plane);
    let all = k.ok(&["get", "events", "-n", "default"], None).await;
    let header: Vec<&str> = all.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], "the real columns:\n{all}");
    let run = all.lines().find(|l| l.contains("RunStarted")).unwrap_or_else(|| panic!("a RunStarted row:\n{all}"));
    assert!(run.contains("widget/w1") && run.contains("run w1-1 started"), "object and message: {run}");
    for shown in ["InvalidSpec", "OtherWidget"] {
        assert!(all.contains(shown), "`kubectl get events` shows {shown}:\n{all}");
    }
    let wide = k.ok(&["get", "events", "-n", "default", "-o", "wide"], None).await;
    let run = wide.lines().find(|l| l.contains("RunStarted")).unwrap_or_else(|| panic!("a RunStarted row:\n{wide}"));
    assert!(run.contains("trainloop"), "the source column: {run}");

    let described = k.ok(&["describe", "widget", "w1", "-n", "default"], None).await;
    let events = described.split("Events:").nth(1).unwrap_or_else(|| panic!("an Events section:\n{described}"));
    let row = |reason: &str| {
        events
            .lines()
            .find(|l| l.contains(reason))
            .unwrap_or_else(|| panic!("a {reason} row:\n{described}"))
            .to_string()
    };
    let run = row("RunStarted");
    assert!(run.trim_start().starts_with("Normal"), "type first: {run}");
    assert!(run.contains("(x2 over"), "the series count: {run}");
    assert!(run.contains("trainloop") && run.contains("run w1-1 started"), "source and message: {run}");
    assert!(row("InvalidSpec").trim_start().starts_with("Warning"));
    assert!(!events.contains("OtherWidget"), "another object's event is filtered out:\n{events}");

    // `kubectl events --for` selects by the object's kind and name.
    let for_w1 = k.ok(&["events", "-n", "default", "--for", "widget/w1"], None).await;
    assert!(for_w1.contains("RunStarted") && for_w1.contains("InvalidSpec"), "{for_w1}");
    assert!(!for_w1.contains("OtherWidget"), "{for_w1}");

    // The selectors kubectl describe sends, through kube-rs on the core view.
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let uid = w1.uid.clone().unwrap_or_default();
    let selected = core
        .list(&ListParams::default().fields(&format!(
            "involvedObject.name=w1,involvedObject.namespace=default,involvedObject.kind=Widget,involvedObject.uid={uid}"
        )))
        .await
        .unwrap();
    let mut reasons: Vec<_> = selected.items.iter().filter_map(|e| e.reason.clone()).collect();
    reasons.sort();
    assert_eq!(reasons, ["InvalidSpec", "RunStarted"]);
    let run = selected.items.iter().find(|e| e.reason.as_deref() == Some("RunStarted")).unwrap();
    assert_eq!(run.message.as_deref(), Some("run w1-1 started"));
    assert_eq!(run.reporting_component.as_deref(), Some("trainloop"));
    assert_eq!(run.series.as_ref().and_then(|s| s.count), Some(2));
    let other_uid = core.list(&ListParams::default().fields("involvedObject.uid=not-a-uid")).await.unwrap();
    assert!(other_uid.items.is_empty());

    // The events.k8s.io view selects with its own field names.
    let v1: Api<EventsV1> = Api::namespaced(client.clone(), "default");
    let about_w2 = v1.list(&ListParams::default().fields("regarding.name=w2")).await.unwrap();
    assert_eq!(about_w2.items.len(), 1);
    assert_eq!(about_w2.items[0].note.as_deref(), Some("about w2"));
    assert_eq!(about_w2.items[0].reporting_controller.as_deref(), Some("trainloop"));
    plane.shutdown().await;
}

#[tokio::test]
async fn one_write_is_seen_through_both_versions_by_get_and_watch() {
    let plane = common::start().await;
    let client = plane.client().await.expect("client");
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let v1: Api<EventsV1> = Api::namespaced(client.clone(), "default");
    let rv = v1.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap_or_default();
    let mut v1_watch = v1.watch(&WatchParams::default(), &rv).await.expect("watch events.k8s.io").boxed();

    // Written through core v1 (kubectl's and client-go's old recorder's version).
    let written: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "cm.1"},
        "involvedObject": {"kind": "ConfigMap", "name": "cm", "namespace": "default"},
        "reason": "Synced", "message": "synced 3 keys", "type": "Normal",
        "source": {"component": "kubelet"}, "count": 4,
        "firstTimestamp": "2026-11-30T10:00:00Z", "lastTimestamp": "2026-11-30T10:05:00Z"
    }))
    .unwrap();
    core.create(&PostParams::default(), &written).await.expect("create core event");

    let first_added = async {
        loop {
            match v1_watch.try_next().await.expect("watch stream").expect("an event") {
                WatchEvent::Added(e) => break e,
                WatchEvent::Bookmark(_) => continue,
                other => panic!("unexpected watch event {other:?}"),
            }
        }
    };
    let seen = tokio::time::timeout(Duration::from_secs(10), first_added)
        .await
        .expect("the events.k8s.io watch sees the core write");
    assert_eq!(seen.note.as_deref(), Some("synced 3 keys"));
    assert_eq!(seen.regarding.as_ref().and_then(|r| r.name.as_deref()), Some("cm"));
    assert_eq!(seen.deprecated_count, Some(4));
    assert_eq!(seen.deprecated_source.as_ref().and_then(|s| s.component.as_deref()), Some("kubelet"));
    assert!(seen.deprecated_last_timestamp.is_some());

    // The same object (name, uid, resourceVersion) through both versions.
    let through_v1 = v1.get("cm.1").await.expect("get events.k8s.io");
    let through_core = core.get("cm.1").await.expect("get core");
    assert_eq!(through_v1.metadata.uid, through_core.metadata.uid);
    assert_eq!(through_v1.metadata.resource_version, through_core.metadata.resource_version);

    // A merge patch in events.k8s.io terms changes the core fields; a delete removes both.
    let patch = json!({"note": "synced 5 keys", "deprecatedCount": 5});
    v1.patch("cm.1", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.expect("patch");
    let patched = core.get("cm.1").await.unwrap();
    assert_eq!((patched.message.as_deref(), patched.count), (Some("synced 5 keys"), Some(5)));
    v1.delete("cm.1", &Default::default()).await.expect("delete");
    assert!(core.get_opt("cm.1").await.unwrap().is_none());
    plane.shutdown().await;
}

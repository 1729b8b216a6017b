//! Publishes events.k8s.io Events. An event that happens again within a few minutes becomes a
//! series on the first one (count and last time seen, as Kubernetes' own components do) instead
//! of a new object. Unlike kube's `Recorder`, "again" means the same note too: the recorder folds
//! every event with the same object, reason and action into the first one's note, so a user who
//! fixed one problem in a spec and made another would be shown the first problem's words.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::Mutex;

/// How long an event stays open for a repeat to join its series (as kube's recorder and
/// client-go's event broadcaster).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// What makes two events the same happening.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    regarding: (Option<String>, Option<String>, Option<String>, Option<String>),
    related: Option<(Option<String>, Option<String>, Option<String>)>,
    warning: bool,
    reason: String,
    action: String,
    note: String,
}

/// An event that was published: its name and how often it happened.
struct Published {
    name: String,
    count: i32,
    last: Timestamp,
}

pub struct Events {
    client: Client,
    controller: String,
    instance: String,
    published: Mutex<HashMap<Key, Published>>,
}

impl Events {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        let instance = instance.unwrap_or_else(|| controller.to_owned());
        Events { client, controller: controller.to_owned(), instance, published: Mutex::default() }
    }

    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        related: Option<ObjectReference>,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = Key {
            regarding: (
                regarding.kind.clone(),
                regarding.namespace.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
            ),
            related: related.as_ref().map(|r| (r.kind.clone(), r.name.clone(), r.uid.clone())),
            warning,
            reason: reason.to_owned(),
            action: action.to_owned(),
            note: note.clone(),
        };
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api = Api::<Event>::namespaced(self.client.clone(), namespace);
        // Decided under the lock, sent without it: publishing must not queue every controller
        // behind one request (two identical events at once may both be created: harmless).
        let repeat = {
            let mut published = self.published.lock().await;
            published.retain(|_, seen| seen.last + SERIES_WINDOW > now);
            published.get_mut(&key).map(|seen| {
                seen.count += 1;
                seen.last = now;
                (seen.name.clone(), seen.count)
            })
        };
        if let Some((name, count)) = repeat {
            let series = EventSeries { count, last_observed_time: MicroTime(now) };
            api.patch(&name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"series": series}))).await?;
            return Ok(());
        }
        let name = format!("{}.{:x}", regarding.name.as_deref().unwrap_or(&self.controller), now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            reason: Some(reason.to_owned()),
            action: Some(action.to_owned()),
            note: Some(note),
            regarding: Some(regarding.clone()),
            related,
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        api.create(&PostParams::default(), &event).await?;
        self.published.lock().await.insert(key, Published { name, count: 1, last: now });
        Ok(())
    }
}

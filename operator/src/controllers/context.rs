//! What every reconcile shares: the client, the event recorder, metrics and settings.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client,
    runtime::events::{Event, EventType, Recorder, Reporter},
};

use super::metrics::Metrics;
use crate::triggers::DataPoller;

/// Operator-wide settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where trainers write artifacts: `<root>/<namespace>/<run>/`. A `file://` root must be
    /// reachable by trainers and model servers alike (a shared volume, or the local plane).
    pub artifact_root: String,
}

/// Shared by all reconciles.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub settings: Settings,
    /// For data fingerprints and model servers.
    pub http: reqwest::Client,
    /// Reads the data of pipelines with `onDataChange`, off the reconcile path.
    pub data: DataPoller,
}

impl Context {
    pub fn new(client: Client, metrics: Metrics, settings: Settings, http: reqwest::Client) -> Self {
        let reporter = Reporter { controller: "trainloop".into(), instance: std::env::var("POD_NAME").ok() };
        let data = DataPoller::new(http.clone());
        Context { recorder: Recorder::new(client.clone(), reporter), client, metrics, settings, http, data }
    }

    /// Publish an event; a failure to publish is logged, never fatal.
    pub async fn event(&self, reference: &ObjectReference, warning: bool, reason: &str, note: String) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: reason.into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, reference).await {
            tracing::warn!(%error, reason, "could not publish event");
        }
    }
}

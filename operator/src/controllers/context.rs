//! What every reconcile shares: the client, the event publisher, metrics and settings, and the
//! caches of the current controller life.

use std::sync::Arc;

use crate::monitors::webhook::Firings;
use crate::server::alertmanager::LatestPolicies;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;

use trainloop_storage::StorageConfig;

use super::caches::Caches;
use super::drift::acknowledged::Acknowledged;
use super::events::Events;
use super::failures::Failures;
use super::metrics::Metrics;
use crate::triggers::DataPoller;

/// Where `--data-volume` is mounted unless `--data-dir` says otherwise: the example pipeline's
/// data URI is `file:///var/lib/trainloop/data/...`.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/trainloop/data";

/// Operator-wide settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where trainers write artifacts: `<root>/<namespace>/<run>/`. A `file://` root must be
    /// reachable by trainers and model servers alike (a shared volume, or the local plane).
    pub artifact_root: String,
    /// A PersistentVolumeClaim (in each namespace with runs) mounted at a `file://` root's path
    /// in trainer and server pods: how a `file://` root works on a real cluster.
    pub artifact_volume: Option<String>,
    /// A PersistentVolumeClaim (in each namespace with runs) mounted read-only at `data_dir` in
    /// trainer pods: how `file://` data URIs work on a real cluster.
    pub data_volume: Option<String>,
    /// Where `data_volume` is mounted: `file://<data_dir>/...` data URIs read from it.
    pub data_dir: String,
    /// Pods see the operator's host filesystem (localplane's process kubelet), so `file://`
    /// URIs need no shared volume. Off on a real cluster: there a run whose `file://` artifact
    /// root or data URI no volume covers is stalled rather than losing its model.
    pub local_files: bool,
    /// How long a watch may fail without a break before the controllers restart and relist.
    pub watch_restart_after: std::time::Duration,
    /// The namespaces to reconcile; empty: every namespace.
    pub namespaces: Vec<String>,
    /// The operator's own storage credentials (its `AWS_*`, `GOOGLE_*`, `AZURE_*` variables):
    /// for the versions of object-store data and for reference profiles. Trainers and servers
    /// get theirs from the Secret their resource names.
    pub storage: StorageConfig,
}

impl Settings {
    /// The settings for `artifact_root`, with the defaults for everything else.
    pub fn new(artifact_root: impl Into<String>) -> Self {
        Settings {
            artifact_root: artifact_root.into(),
            artifact_volume: None,
            data_volume: None,
            data_dir: DEFAULT_DATA_DIR.into(),
            local_files: false,
            watch_restart_after: std::time::Duration::from_secs(60),
            namespaces: Vec::new(),
            storage: StorageConfig::default(),
        }
    }
}

/// Shared by all reconciles.
pub struct Context {
    pub client: Client,
    pub events: Events,
    pub metrics: Metrics,
    pub settings: Settings,
    /// For data fingerprints and model servers.
    pub http: reqwest::Client,
    /// Reads the data of pipelines with `onDataChange`, off the reconcile path.
    pub data: DataPoller,
    /// Consecutive reconcile failures, to report the ones that repeat.
    pub failures: Failures,
    /// Alertmanager's firings of webhook monitors, recorded by the receiver (`server::alertmanager`)
    /// and taken by the DriftPolicy controller.
    pub firings: Firings,
    /// The DriftPolicy cache of the controllers' current life, for the receiver.
    pub policies: LatestPolicies,
    /// The profile cursors the DriftPolicy controller acknowledged to model server pods (kept
    /// across lives of the controllers; a new process acknowledges again what statuses record).
    pub acknowledged: Acknowledged,
}

impl Context {
    pub fn new(client: Client, metrics: Metrics, settings: Settings, http: reqwest::Client) -> Self {
        let data = DataPoller::new(http.clone(), settings.storage.clone());
        Context {
            events: Events::new(client.clone(), "trainloop", std::env::var("POD_NAME").ok()),
            client,
            metrics,
            settings,
            http,
            data,
            failures: Failures::default(),
            firings: Firings::default(),
            policies: LatestPolicies::default(),
            acknowledged: Acknowledged::default(),
        }
    }

    /// Publish an event: `reason` says what happened (PascalCase, stable), `action` what the
    /// operator was doing (e.g. `CreateJob`). A failure to publish is logged, never fatal.
    pub async fn event(&self, reference: &ObjectReference, warning: bool, reason: &str, action: &str, note: String) {
        self.event_related(reference, None, warning, reason, action, note).await;
    }

    /// [`Context::event`] about `reference` and a second object (`related`: the run a deployment
    /// promotes, say), which `kubectl get events` shows beside it.
    pub async fn event_related(
        &self,
        reference: &ObjectReference,
        related: Option<ObjectReference>,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let note = note.chars().take(1000).collect();
        if let Err(error) = self.events.publish(reference, related, warning, reason, action, note).await {
            tracing::warn!(%error, reason, "could not publish event");
        }
    }
}

/// What a reconcile gets: the operator-wide context, and the caches of its scope in the current
/// controller life (a restart of the controllers relists into new ones). Derefs to [`Context`].
pub struct Life {
    pub ctx: Arc<Context>,
    pub caches: Caches,
}

impl Life {
    /// A life whose caches hold nothing, for a reconcile called by hand (a test's): it reads
    /// what it needs fresh, as a reconcile does when its cache is behind.
    pub fn uncached(ctx: Arc<Context>) -> Arc<Self> {
        Arc::new(Life { ctx, caches: Caches::empty() })
    }
}

impl std::ops::Deref for Life {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}

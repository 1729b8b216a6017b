//! State shared by all requests: the model once loaded, its live profile and the metrics.

use std::sync::OnceLock;

use prometheus_client::metrics::counter::Counter;

use crate::live_profile::LiveProfile;
use crate::load::LoadedModel;
use crate::metrics::{ClassLabel, ServerMetrics};

/// The model, the live profile binned on its reference bins, and the
/// predicted-class counters (looked up once here, not per prediction).
pub struct Served {
    pub model: LoadedModel,
    pub live: LiveProfile,
    /// One counter per class of `target.classes`, in that order.
    pub class_counters: [Counter; 2],
}

impl Served {
    pub fn new(model: LoadedModel, metrics: &ServerMetrics) -> Self {
        let live = LiveProfile::new(&model.artifact.profile);
        let class_counters = model
            .artifact
            .target
            .classes
            .clone()
            .map(|class| metrics.predicted_class.get_or_create(&ClassLabel { class }).clone());
        Served { model, live, class_counters }
    }
}

pub struct AppState {
    pub model_name: String,
    served: OnceLock<Served>,
    pub metrics: ServerMetrics,
}

impl AppState {
    pub fn new(model_name: impl Into<String>) -> Self {
        AppState { model_name: model_name.into(), served: OnceLock::new(), metrics: ServerMetrics::default() }
    }

    /// Makes the model available; the server turns ready from here on.
    pub fn set_model(&self, model: LoadedModel) {
        // Only the start-up task loads, once; a second call would be a bug, and is ignored.
        let _ = self.served.set(Served::new(model, &self.metrics));
    }

    pub fn served(&self) -> Option<&Served> {
        self.served.get()
    }
}

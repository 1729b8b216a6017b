//! State shared by all requests: the model once loaded, its live profile and the metrics.

use std::sync::{Mutex, OnceLock, PoisonError};

use trainloop::artifact::FeatureProfile;

use crate::load::LoadedModel;
use crate::metrics::ServerMetrics;

/// The model and the live profile binned on its reference bins.
pub struct Served {
    pub model: LoadedModel,
    live: Mutex<FeatureProfile>,
}

impl Served {
    pub fn new(model: LoadedModel) -> Self {
        let live = Mutex::new(model.artifact.profile.empty_like());
        Served { model, live }
    }

    /// Runs `f` on the live profile. A panic elsewhere cannot leave counts
    /// half-written (each update is a few increments), so a poisoned lock is
    /// still safe to use.
    pub fn with_live<T>(&self, f: impl FnOnce(&mut FeatureProfile) -> T) -> T {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut live)
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
        let _ = self.served.set(Served::new(model));
    }

    pub fn served(&self) -> Option<&Served> {
        self.served.get()
    }
}

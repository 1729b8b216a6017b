//! State shared by all requests: the model once loaded, its live profile and the metrics.

use std::sync::OnceLock;

use crate::live_profile::LiveProfile;
use crate::load::LoadedModel;
use crate::metrics::ServerMetrics;
use crate::protocol_v1::{AnswerPieces, FeatureKeys};

/// The model, the live profile binned on its reference bins, the lookup of
/// V1's feature keys and the pieces of its answers.
pub struct Served {
    pub model: LoadedModel,
    pub live: LiveProfile,
    pub keys: FeatureKeys,
    pub answer_pieces: AnswerPieces,
}

impl Served {
    pub fn new(model: LoadedModel, metrics: &ServerMetrics) -> Self {
        let live = LiveProfile::new(&model.artifact.profile);
        let keys = FeatureKeys::new(&model.artifact.features);
        let answer_pieces = AnswerPieces::new(&model.artifact.target.classes);
        metrics.name_classes(model.artifact.target.classes.clone());
        Served { model, live, keys, answer_pieces }
    }
}

pub struct AppState {
    pub model_name: String,
    /// `/v1/models/{model_name}:predict`: a request to exactly this path
    /// needs no decoding of its name.
    pub v1_predict_path: String,
    served: OnceLock<Served>,
    pub metrics: ServerMetrics,
}

impl AppState {
    pub fn new(model_name: impl Into<String>) -> Self {
        let model_name = model_name.into();
        let v1_predict_path = format!("/v1/models/{model_name}:predict");
        AppState { model_name, v1_predict_path, served: OnceLock::new(), metrics: ServerMetrics::default() }
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

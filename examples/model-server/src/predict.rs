//! The prediction shared by both protocols: the artifact's own preprocessing
//! and model, plus the bookkeeping every prediction needs (metrics, live profile).

use trainloop::artifact::FeatureValue;

use crate::metrics::ClassLabel;
use crate::state::{AppState, Served};

#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub label: String,
    /// Probability of the positive class (`target.classes[1]`).
    pub probability: f64,
}

/// Predicts checked rows (schema order) and records them.
pub fn predict_rows(state: &AppState, served: &Served, rows: &[Vec<FeatureValue>]) -> Vec<Prediction> {
    let artifact = &served.model.artifact;
    let predictions: Vec<Prediction> = rows
        .iter()
        .map(|row| {
            let probability = artifact.predict_proba(row);
            Prediction { label: artifact.class_of(probability).to_string(), probability }
        })
        .collect();
    served.with_live(|live| rows.iter().for_each(|row| live.observe(row)));
    state.metrics.predictions.inc_by(rows.len() as u64);
    for prediction in &predictions {
        state.metrics.predicted_class.get_or_create(&ClassLabel { class: prediction.label.clone() }).inc();
    }
    predictions
}

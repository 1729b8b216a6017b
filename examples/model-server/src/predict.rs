//! The prediction shared by both protocols: the artifact's own preprocessing
//! and model, plus the bookkeeping every prediction needs (metrics, live profile).

use serde::Serialize;

use crate::rows::Rows;
use crate::state::{AppState, Served};

/// One row's answer. Fields in alphabetical order: the order the answers had
/// when they were built as `serde_json::Value` maps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Prediction<'a> {
    /// The predicted class, borrowed from the artifact.
    pub label: &'a str,
    /// Probability of the positive class (`target.classes[1]`).
    pub probability: f64,
}

/// About how many bytes an answer of `rows` predictions takes, to allocate
/// it once: a probability (up to 24 characters), a label, some JSON.
pub fn answer_size(rows: usize) -> usize {
    128 + 64 * rows
}

/// Predicts checked rows and records them.
pub fn predict_rows<'a>(state: &AppState, served: &'a Served, rows: &Rows) -> Vec<Prediction<'a>> {
    let artifact = &served.model.artifact;
    // One buffer of model inputs for all rows, not one allocation per row.
    let mut inputs = Vec::with_capacity(artifact.model.weights.len());
    let predictions: Vec<Prediction> = rows
        .iter()
        .map(|row| {
            let probability = artifact.predict_proba_with(row, &mut inputs);
            Prediction { label: artifact.class_of(probability), probability }
        })
        .collect();
    served.live.record(&rows.values, rows.width);
    state.metrics.predictions.inc_by(rows.len() as u64);
    let mut per_class = [0u64; 2];
    for prediction in &predictions {
        if let Some(class) = artifact.target.classes.iter().position(|c| c == prediction.label) {
            per_class[class] += 1;
        }
    }
    for (counter, predicted) in served.class_counters.iter().zip(per_class) {
        if predicted > 0 {
            counter.inc_by(predicted);
        }
    }
    predictions
}

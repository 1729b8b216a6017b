//! The prediction shared by both protocols: the artifact's own preprocessing
//! and model, plus the bookkeeping every prediction needs (metrics, live profile).

use std::cell::Cell;

use crate::rows::Rows;
use crate::scratch::with_scratch;
use crate::state::{AppState, Served};

/// One row's answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction<'a> {
    /// The predicted class's index in `target.classes`.
    pub class: usize,
    /// The predicted class, borrowed from the artifact.
    pub label: &'a str,
    /// Probability of the positive class (`target.classes[1]`).
    pub probability: f64,
}

thread_local! {
    /// One row's model inputs, reused by every prediction on the thread.
    static INPUTS: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

/// Predicts checked rows, hands each prediction to `answer` in row order, and
/// records the rows (live profile, metrics).
pub fn predict_rows<'a>(state: &AppState, served: &'a Served, rows: &Rows, mut answer: impl FnMut(Prediction<'a>)) {
    let artifact = &served.model.artifact;
    let mut per_class = [0u64; 2];
    with_scratch(&INPUTS, |inputs| {
        for row in rows.iter() {
            let probability = artifact.predict_proba_with(row, inputs);
            let class = artifact.class_index_of(probability);
            per_class[class] += 1;
            answer(Prediction { class, label: &artifact.target.classes[class], probability });
        }
    });
    served.live.record(&rows.values, rows.width);
    state.metrics.count_predictions(per_class);
}

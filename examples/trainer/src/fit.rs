//! Fits the linear model with linfa's L2-regularised logistic regression.

use linfa::Dataset;
use linfa::traits::Fit;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use trainloop_contract::LinearModel;

use crate::error::TrainError;

/// Fits `P(label) = sigmoid(intercept + w · x)` on preprocessed inputs.
/// linfa picks the rarer class as its positive one; the result is turned
/// around when needed so that `true` labels are always the positive class.
pub fn fit_logistic(
    inputs: &[Vec<f64>],
    labels: &[bool],
    l2: f64,
    max_iterations: u64,
) -> Result<LinearModel, TrainError> {
    let width = inputs.first().map_or(0, Vec::len);
    let flat: Vec<f64> = inputs.iter().flatten().copied().collect();
    let records = Array2::from_shape_vec((inputs.len(), width), flat).map_err(|e| TrainError::Fit(e.to_string()))?;
    let targets: Array1<bool> = labels.iter().copied().collect();
    let dataset = Dataset::new(records, targets);
    let fitted = LogisticRegression::default()
        .alpha(l2)
        .max_iterations(max_iterations)
        .fit(&dataset)
        .map_err(|e| TrainError::Fit(e.to_string()))?;
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    Ok(LinearModel {
        intercept: sign * fitted.intercept(),
        weights: fitted.params().iter().map(|w| sign * w).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use trainloop_contract::model::sigmoid;

    #[test]
    fn learns_a_separable_direction_whichever_class_is_rarer() {
        // Positives are the majority here, so linfa's internal positive is `false`.
        let inputs: Vec<Vec<f64>> = (-5..=10).map(|i| vec![f64::from(i)]).collect();
        let labels: Vec<bool> = (-5..=10).map(|i| i > 0).collect();
        let model = fit_logistic(&inputs, &labels, 0.1, 100).unwrap();
        assert!(model.weights[0] > 0.0);
        assert!(sigmoid(model.intercept + model.weights[0] * 8.0) > 0.9);
        assert!(sigmoid(model.intercept + model.weights[0] * -4.0) < 0.1);
    }

    #[test]
    fn one_class_is_an_error_not_a_panic() {
        let err = fit_logistic(&[vec![1.0], vec![2.0]], &[true, true], 0.1, 10).unwrap_err();
        assert!(matches!(err, TrainError::Fit(_)));
    }
}

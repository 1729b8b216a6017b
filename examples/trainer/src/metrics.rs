//! Held-out metrics of a binary classifier: accuracy, AUC, F1, log loss.

use std::collections::BTreeMap;

/// Probabilities are clipped this far from 0 and 1 so log loss stays finite.
const PROBABILITY_CLIP: f64 = 1e-15;

/// Metrics by name, as reported in the trainer result. `labels[i]` is true for
/// the positive class; empty input gives an empty map.
pub fn evaluate(probabilities: &[f64], labels: &[bool]) -> BTreeMap<String, f64> {
    let n = probabilities.len().min(labels.len());
    if n == 0 {
        return BTreeMap::new();
    }
    let (p, y) = (&probabilities[..n], &labels[..n]);
    let predicted: Vec<bool> = p.iter().map(|p| *p >= 0.5).collect();
    let tp = count(&predicted, y, true, true);
    let fp = count(&predicted, y, true, false);
    let fn_ = count(&predicted, y, false, true);
    let correct = predicted.iter().zip(y).filter(|(a, b)| a == b).count();
    let f1 = if tp == 0 { 0.0 } else { 2.0 * tp as f64 / (2 * tp + fp + fn_) as f64 };
    let log_loss = p
        .iter()
        .zip(y)
        .map(|(p, y)| {
            let p = p.clamp(PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP);
            if *y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum::<f64>()
        / n as f64;
    let mut metrics = BTreeMap::from([
        ("accuracy".to_string(), correct as f64 / n as f64),
        ("f1".to_string(), f1),
        ("logLoss".to_string(), log_loss),
    ]);
    if let Some(auc) = auc(p, y) {
        metrics.insert("auc".to_string(), auc);
    }
    metrics
}

fn count(predicted: &[bool], actual: &[bool], p: bool, a: bool) -> usize {
    predicted.iter().zip(actual).filter(|(x, y)| **x == p && **y == a).count()
}

/// Area under the ROC curve as the Mann–Whitney statistic: the chance that a
/// random positive scores above a random negative, ties counting one half.
/// `None` when one class is absent.
pub fn auc(probabilities: &[f64], labels: &[bool]) -> Option<f64> {
    let mut scored: Vec<(f64, bool)> = probabilities.iter().copied().zip(labels.iter().copied()).collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = labels.iter().filter(|y| **y).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < scored.len() {
        let mut end = start;
        while end < scored.len() && scored[end].0 == scored[start].0 {
            end += 1;
        }
        let average_rank = (start + 1 + end) as f64 / 2.0;
        rank_sum += average_rank * scored[start..end].iter().filter(|(_, y)| *y).count() as f64;
        start = end;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_ranking_has_auc_one_and_reversed_zero() {
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]), Some(1.0));
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auc(&[0.5, 0.6], &[true, true]), None);
    }

    #[test]
    fn hand_computed_metrics() {
        // predictions: T F T F; labels: T T F F -> tp 1, fn 1, fp 1, tn 1
        let m = evaluate(&[0.9, 0.4, 0.6, 0.1], &[true, true, false, false]);
        assert_eq!(m["accuracy"], 0.5);
        assert_eq!(m["f1"], 0.5);
        assert_eq!(m["auc"], 0.75);
        let expected = -(0.9f64.ln() + 0.4f64.ln() + 0.4f64.ln() + 0.9f64.ln()) / 4.0;
        assert!((m["logLoss"] - expected).abs() < 1e-12);
    }

    #[test]
    fn log_loss_stays_finite_for_confident_mistakes() {
        let m = evaluate(&[1.0, 0.0], &[false, true]);
        assert!(m["logLoss"].is_finite());
        assert!(evaluate(&[], &[]).is_empty());
    }
}

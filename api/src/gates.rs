//! Pure: judge a run's metrics against its gates and the champion's metrics.

use std::collections::BTreeMap;

use crate::{Evaluation, EvaluationResult, Gate, GateOutcome, GateResult, Goal, TrainingRun};

/// The run a new run must beat, with its metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct Champion {
    pub name: String,
    pub metrics: BTreeMap<String, f64>,
}

/// Judge `metrics` by every gate; a run with no gates passes only with `passWithoutGates`.
/// Returns the evidence and a one-line summary for the condition message.
pub fn judge(
    evaluation: &Evaluation,
    metrics: &BTreeMap<String, f64>,
    champion: Option<&Champion>,
) -> (EvaluationResult, String) {
    if evaluation.gates.is_empty() {
        let result = if evaluation.pass_without_gates { GateOutcome::Passed } else { GateOutcome::Rejected };
        let summary = if evaluation.pass_without_gates {
            "no gates; passWithoutGates is set".to_string()
        } else {
            "no gates declared and passWithoutGates is not set".to_string()
        };
        return (EvaluationResult { result, champion: None, gates: Vec::new() }, summary);
    }
    let mut gates = Vec::new();
    let mut notes = Vec::new();
    for gate in &evaluation.gates {
        let (result, note) = judge_gate(gate, metrics, champion);
        gates.push(result);
        notes.push(note);
    }
    let result = if gates.iter().all(|g| g.pass) { GateOutcome::Passed } else { GateOutcome::Rejected };
    let summary = notes.join("; ");
    (EvaluationResult { result, champion: champion.map(|c| c.name.clone()), gates }, summary)
}

fn judge_gate(gate: &Gate, metrics: &BTreeMap<String, f64>, champion: Option<&Champion>) -> (GateResult, String) {
    let metric = &gate.metric;
    let mut evidence = GateResult {
        metric: metric.clone(),
        value: None,
        threshold: gate.threshold,
        champion_value: None,
        delta: None,
        pass: false,
    };
    let Some(&value) = metrics.get(metric) else {
        let reported: Vec<&str> = metrics.keys().map(String::as_str).collect();
        return (evidence, format!("{metric} was not reported (the trainer reported: {})", reported.join(", ")));
    };
    evidence.value = Some(value);
    let (meets, op) = match gate.goal {
        Goal::Maximize => (value >= gate.threshold, if value >= gate.threshold { ">=" } else { "<" }),
        Goal::Minimize => (value <= gate.threshold, if value <= gate.threshold { "<=" } else { ">" }),
    };
    let mut note = format!("{metric}={} {op} {}", round(value), round(gate.threshold));
    let mut improves = true;
    if let Some(champion) = champion
        && let Some(&best) = champion.metrics.get(metric)
    {
        // Positive delta means better, whatever the goal.
        let delta = match gate.goal {
            Goal::Maximize => value - best,
            Goal::Minimize => best - value,
        };
        evidence.champion_value = Some(best);
        evidence.delta = Some(delta);
        if let Some(min) = gate.min_improvement {
            improves = delta >= min;
            let verdict = if improves { "at least" } else { "below the required" };
            note.push_str(&format!(", {:+} over champion {} ({verdict} {})", round(delta), champion.name, round(min)));
        }
    }
    evidence.pass = meets && improves;
    (evidence, note)
}

fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// The best earlier passing run, by the first gate: the champion when no deployment serves one.
pub fn best_passing<'a>(
    runs: impl IntoIterator<Item = &'a TrainingRun>,
    evaluation: &Evaluation,
    exclude: &str,
) -> Option<Champion> {
    let gate = evaluation.gates.first()?;
    runs.into_iter()
        .filter(|run| run.metadata.name.as_deref() != Some(exclude))
        .filter_map(|run| {
            let status = run.status.as_ref()?;
            if status.evaluation.as_ref()?.result != GateOutcome::Passed {
                return None;
            }
            let value = *status.metrics.get(&gate.metric)?;
            Some((value, run))
        })
        .max_by(|(a, _), (b, _)| match gate.goal {
            Goal::Maximize => a.total_cmp(b),
            Goal::Minimize => b.total_cmp(a),
        })
        .map(|(_, run)| Champion {
            name: run.metadata.name.clone().unwrap_or_default(),
            metrics: run.status.as_ref().map(|s| s.metrics.clone()).unwrap_or_default(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates(list: Vec<Gate>) -> Evaluation {
        Evaluation { gates: list, pass_without_gates: false }
    }

    fn gate(metric: &str, goal: Goal, threshold: f64, min_improvement: Option<f64>) -> Gate {
        Gate { metric: metric.into(), goal, threshold, min_improvement }
    }

    fn metrics(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn thresholds_respect_the_goal() {
        let eval = gates(vec![gate("auc", Goal::Maximize, 0.9, None), gate("logLoss", Goal::Minimize, 0.5, None)]);
        let (pass, _) = judge(&eval, &metrics(&[("auc", 0.91), ("logLoss", 0.4)]), None);
        assert_eq!(pass.result, GateOutcome::Passed);
        let (fail, summary) = judge(&eval, &metrics(&[("auc", 0.91), ("logLoss", 0.6)]), None);
        assert_eq!(fail.result, GateOutcome::Rejected);
        assert!(summary.contains("logLoss=0.6 > 0.5"), "{summary}");
        assert!(fail.gates[0].pass && !fail.gates[1].pass);
    }

    #[test]
    fn min_improvement_is_measured_against_the_champion() {
        let eval = gates(vec![gate("auc", Goal::Maximize, 0.8, Some(0.01))]);
        let champion = Champion { name: "churn-2".into(), metrics: metrics(&[("auc", 0.90)]) };
        let (small, summary) = judge(&eval, &metrics(&[("auc", 0.905)]), Some(&champion));
        assert_eq!(small.result, GateOutcome::Rejected, "{summary}");
        assert_eq!(small.champion.as_deref(), Some("churn-2"));
        assert!((small.gates[0].delta.unwrap() - 0.005).abs() < 1e-9);
        let (big, _) = judge(&eval, &metrics(&[("auc", 0.92)]), Some(&champion));
        assert_eq!(big.result, GateOutcome::Passed);
        let (first, _) = judge(&eval, &metrics(&[("auc", 0.85)]), None);
        assert_eq!(first.result, GateOutcome::Passed, "without a champion only the threshold counts");
    }

    #[test]
    fn minimize_delta_is_positive_when_better() {
        let eval = gates(vec![gate("logLoss", Goal::Minimize, 1.0, Some(0.05))]);
        let champion = Champion { name: "c".into(), metrics: metrics(&[("logLoss", 0.5)]) };
        let (result, _) = judge(&eval, &metrics(&[("logLoss", 0.4)]), Some(&champion));
        assert_eq!(result.result, GateOutcome::Passed);
        assert!((result.gates[0].delta.unwrap() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn a_metric_the_trainer_never_reports_fails_its_gate_by_name() {
        let eval = gates(vec![gate("f2", Goal::Maximize, 0.5, None)]);
        let (result, summary) = judge(&eval, &metrics(&[("auc", 0.9)]), None);
        assert_eq!(result.result, GateOutcome::Rejected);
        assert!(summary.contains("f2 was not reported") && summary.contains("auc"), "{summary}");
    }

    #[test]
    fn no_gates_pass_only_when_explicit() {
        let (rejected, _) = judge(&gates(vec![]), &metrics(&[]), None);
        assert_eq!(rejected.result, GateOutcome::Rejected);
        let explicit = Evaluation { gates: vec![], pass_without_gates: true };
        assert_eq!(judge(&explicit, &metrics(&[]), None).0.result, GateOutcome::Passed);
    }
}

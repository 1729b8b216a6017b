//! Runs and deployments as the operator leaves them, for the formatting tests.

use serde_json::json;
use trainloop_api::{ModelDeployment, TrainingRun};

/// A run of `pipeline` created at `created`; finished with `(gate verdict, auc)`, else running.
pub fn run(name: &str, pipeline: &str, created: &str, outcome: Option<(&str, f64)>) -> TrainingRun {
    let status = match outcome {
        Some((verdict, auc)) => json!({
            "phase": "Succeeded", "metrics": {"auc": auc, "accuracy": 0.9}, "headline": format!("auc={auc:.3}"),
            "evaluation": {"result": verdict, "gates": []},
            "artifact": {"uri": format!("file:///artifacts/default/{name}/model.json"), "digest": digest('1')},
            "dataDigest": digest('2')
        }),
        None => json!({"phase": "Running"}),
    };
    serde_json::from_value(json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingRun",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": created,
                     "annotations": {"trainloop.dev/handled": "{\"runIndex\":2,\"generation\":3}"}},
        "spec": {
            "pipeline": pipeline,
            "trigger": {"type": "Drift", "reason": "psi(age)=0.31 > 0.20 in DriftPolicy churn"},
            "image": "trainer:1",
            "hyperparameters": {"C": "1.0", "max_iter": "100"},
            "configHash": digest('3'),
            "features": [{"name": "age", "type": "number", "min": 0.0}],
            "data": {"uri": "file:///data/churn.csv", "version": "2026-11"},
            "seed": 7,
            "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9}]}
        },
        "status": status
    }))
    .unwrap()
}

/// A deployment serving `current` after `previous` (newest first), following `pipeline` or,
/// without one, pinned to `current`.
pub fn deployment(name: &str, pipeline: Option<&str>, current: &str, previous: &[&str]) -> ModelDeployment {
    let model = |run: &str| {
        json!({"run": run, "artifactUri": format!("file:///artifacts/default/{run}/model.json"),
               "artifactDigest": digest('1'), "promotedAt": "2026-11-30T11:40:00Z"})
    };
    let source = match pipeline {
        Some(p) => json!({"pipelineRef": {"name": p}}),
        None => json!({"runRef": {"name": current}}),
    };
    serde_json::from_value(json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"source": source, "serving": {"image": "server:1"}},
        "status": {"currentModel": model(current), "previousModels": previous.iter().map(|r| model(r)).collect::<Vec<_>>()}
    }))
    .unwrap()
}

/// A well-formed digest of one repeated hex digit.
pub fn digest(digit: char) -> String {
    format!("sha256:{}", digit.to_string().repeat(64))
}

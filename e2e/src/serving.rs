//! What the serving tests and the promotion benchmark share: the example trainer and model
//! server on localplane, a pipeline of the Breast Cancer data and a deployment that follows it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use trainloop::api::ModelDeployment;

use crate::Env;

pub const SERVER_IMAGE: &str = "trainloop/example-model-server:0.1";

/// The example trainer (at `$TRAINER`) behind a shell, so that a pipeline can ask it to report a
/// digest that is not its artifact's (`BREAK_DIGEST=1`): a model the server must refuse.
const TRAINER_SCRIPT: &str = r#"out=$(mktemp); TRAINLOOP_TERMINATION_LOG=$out "$TRAINER"; code=$?
if [ -n "$BREAK_DIGEST" ]; then sed -i 's/"digest":"sha256:[0-9a-f]*"/"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"/' "$out"; fi
cat "$out" > /dev/termination-log; exit $code"#;

/// One row of the ten features, as a KServe V1 request.
pub const ROW: &str = r#"{"instances": [{"mean_radius": 14.1, "mean_texture": 19.3, "mean_perimeter": 92.0, "mean_area": 655.0, "mean_smoothness": 0.096, "mean_compactness": 0.104, "mean_concavity": 0.089, "mean_concave_points": 0.049, "mean_symmetry": 0.181, "mean_fractal_dimension": 0.063}]}"#;

/// An environment whose kubelet runs the example model server (`server`: its executable).
pub async fn start(server: &str) -> anyhow::Result<Env> {
    Env::start_with_images(&[(SERVER_IMAGE, server)]).await
}

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data").join(file)
}

/// A pipeline training the example trainer (`trainer`: its executable) on the Breast Cancer data,
/// passing runs with an AUC of at least 0.9; `extra_env` goes to the trainer.
pub fn pipeline(name: &str, trainer: &str, extra_env: &[(&str, &str)]) -> anyhow::Result<Value> {
    let features: Value = serde_json::from_slice(&std::fs::read(data("breast_cancer_features.json"))?)?;
    let config: Value = serde_json::from_slice(&std::fs::read(data("breast_cancer_config.json"))?)?;
    let csv = data("breast_cancer_wisconsin.csv").canonicalize()?;
    let mut env = vec![json!({"name": "TRAINER", "value": trainer})];
    env.extend(extra_env.iter().map(|(name, value)| json!({"name": name, "value": value})));
    Ok(json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingPipeline",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "template": {"image": "shell", "command": ["sh", "-c", TRAINER_SCRIPT], "env": env},
            "data": {"uri": format!("file://{}", csv.display())},
            "features": features,
            "hyperparameters": config,
            "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9}]}
        }
    }))
}

/// A deployment of two example servers serving what `source` asks for.
pub fn model_deployment(name: &str, source: Value) -> Value {
    json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"source": source, "serving": {"image": SERVER_IMAGE, "port": 8080, "replicas": 2},
                 "rollout": {"progressDeadlineSeconds": 60}}
    })
}

/// The deployment serves `run` on all its replicas, with no rollout under way.
pub fn serves(run: &str) -> impl Fn(Option<&ModelDeployment>) -> bool + use<> {
    let run = run.to_string();
    move |md: Option<&ModelDeployment>| {
        md.and_then(|md| md.status.as_ref()).is_some_and(|s| {
            s.current_model.as_ref().is_some_and(|m| m.run == run)
                && s.rollout.is_none()
                && s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
        })
    }
}

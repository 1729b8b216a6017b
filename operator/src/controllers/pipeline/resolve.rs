//! Pure: turn a pipeline and a trigger into the next run, with every input frozen.

use std::collections::BTreeMap;

use kube::Resource;

use crate::api::{HandledTriggers, TrainingPipeline, TrainingRun, TrainingRunSpec, Trigger};
use crate::artifact::sha256_digest;
use crate::controllers::labels;
use crate::controllers::run::build::config_json;

/// The name of the pipeline's `index`th run.
pub fn run_name(pipeline: &str, index: i64) -> String {
    format!("{pipeline}-{index}")
}

/// The run index of a run created by the pipeline controller, from its label.
pub fn run_index(run: &TrainingRun) -> Option<i64> {
    run.metadata.labels.as_ref()?.get(labels::RUN_INDEX)?.parse().ok()
}

/// The pipeline's spec, resolved into a run spec.
pub fn run_spec(pipeline: &TrainingPipeline, trigger: Trigger) -> TrainingRunSpec {
    let spec = &pipeline.spec;
    let template = &spec.template;
    TrainingRunSpec {
        pipeline: pipeline.metadata.name.clone(),
        trigger,
        image: template.image.clone(),
        command: template.command.clone(),
        args: template.args.clone(),
        env: template.env.clone(),
        pod: template.pod.clone(),
        hyperparameters: spec.hyperparameters.clone(),
        config_hash: Some(sha256_digest(config_json(&spec.hyperparameters).as_bytes())),
        features: spec.features.clone(),
        data: spec.data.clone(),
        storage: spec.storage.clone(),
        seed: spec.seed,
        evaluation: spec.evaluation.clone(),
        backoff_limit: spec.backoff_limit,
        active_deadline_seconds: spec.active_deadline_seconds,
        start_timeout_seconds: spec.start_timeout_seconds,
        queue_name: spec.queue_name.clone(),
    }
}

/// The run object: owned by the pipeline, labelled, and carrying the handled triggers it
/// consumed so that a crash before the pipeline's status write cannot start it twice.
pub fn run_object(pipeline: &TrainingPipeline, index: i64, trigger: Trigger, handled: &HandledTriggers) -> TrainingRun {
    let name = pipeline.metadata.name.clone().unwrap_or_default();
    let mut run = TrainingRun::new(&run_name(&name, index), run_spec(pipeline, trigger));
    run.metadata.namespace = pipeline.metadata.namespace.clone();
    run.metadata.labels = Some(BTreeMap::from([
        (labels::PIPELINE.to_string(), name),
        (labels::RUN_INDEX.to_string(), index.to_string()),
        (labels::MANAGED_BY.to_string(), "trainloop".to_string()),
    ]));
    run.metadata.annotations =
        Some(BTreeMap::from([(labels::HANDLED.to_string(), serde_json::to_string(handled).unwrap_or_default())]));
    run.metadata.owner_references = pipeline.controller_owner_ref(&()).map(|o| vec![o]);
    run
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::TriggerType;

    #[test]
    fn the_pod_template_is_frozen_into_the_run() {
        let pipeline: TrainingPipeline = serde_json::from_value(json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingPipeline",
            "metadata": {"name": "churn", "namespace": "ml", "uid": "u1"},
            "spec": {"template": {"image": "t:1", "priorityClassName": "training",
                                  "resources": {"limits": {"nvidia.com/gpu": "2"}},
                                  "envFrom": [{"configMapRef": {"name": "settings"}}],
                                  "volumes": [{"name": "data", "configMap": {"name": "data"}}],
                                  "volumeMounts": [{"name": "data", "mountPath": "/mnt/data"}]},
                     "data": {"uri": "file:///mnt/data/d.csv"},
                     "features": [{"name": "age", "type": "number"}],
                     "evaluation": {"passWithoutGates": true}}
        }))
        .unwrap();
        let trigger = Trigger { trigger_type: TriggerType::SpecChange, reason: String::new() };
        let run = run_object(&pipeline, 1, trigger, &HandledTriggers::default());
        assert_eq!(run.spec.pod, pipeline.spec.template.pod);
        let frozen = serde_json::to_value(&run.spec).unwrap();
        assert_eq!(frozen["priorityClassName"], "training", "flat in the run's spec, as in the template");
        assert_eq!(frozen["resources"]["limits"]["nvidia.com/gpu"], "2");
        assert_eq!(frozen["volumeMounts"][0]["mountPath"], "/mnt/data");
    }
}

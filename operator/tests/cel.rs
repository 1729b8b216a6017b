//! CEL rules that need more than one object: transition rules and defaulting.

mod support;

use serde_json::json;
use support::{cel_problems, documents, schema_of, workspace_root};

fn example(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(workspace_root().join("examples/manifests").join(file)).unwrap();
    documents(&text).remove(0)
}

#[test]
fn training_run_spec_is_immutable() {
    let (_, schema) = schema_of("TrainingRun").unwrap();
    let old = example("run.yaml");
    assert!(cel_problems(&schema, &old, Some(&old)).is_empty(), "an unchanged run must pass");

    let mut status_only = old.clone();
    status_only["status"] = json!({"phase": "Running"});
    assert!(cel_problems(&schema, &status_only, Some(&old)).is_empty(), "status may change");

    let mut changed = old.clone();
    changed["spec"]["seed"] = json!(8);
    let problems = cel_problems(&schema, &changed, Some(&old));
    assert!(problems.iter().any(|p| p.contains("TrainingRun spec is immutable")), "{problems:#?}");
}

#[test]
fn durations_below_their_minimum_are_rejected_and_above_accepted() {
    let (_, schema) = schema_of("DriftPolicy").unwrap();
    let mut policy = example("driftpolicy.yaml");
    for (interval, ok) in [("4s", false), ("4999ms", false), ("5s", true), ("1h30m", true)] {
        policy["spec"]["interval"] = json!(interval);
        assert_eq!(cel_problems(&schema, &policy, None).is_empty(), ok, "interval {interval}");
    }
}

#[test]
fn schema_defaults_fill_what_users_leave_out() {
    let (_, schema) = schema_of("ModelDeployment").unwrap();
    let minimal = json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "m"},
        "spec": {"source": {"runRef": {"name": "r-1"}}, "serving": {"image": "server:1"}}
    });
    let defaulted = kube::core::cel::apply_defaults(&schema, &minimal);
    assert_eq!(defaulted["spec"]["serving"]["port"], 8080);
    assert_eq!(defaulted["spec"]["serving"]["replicas"], 1);
    let typed: trainloop::api::ModelDeployment = serde_json::from_value(minimal).unwrap();
    assert_eq!(typed.spec.rollout.keep_previous, 3, "serde defaults agree with the schema");
}

#[test]
fn cron_fields_are_checked_in_range_and_macros_accepted() {
    let (_, schema) = schema_of("TrainingPipeline").unwrap();
    let mut pipeline = example("pipeline.yaml");
    let cases = [
        ("0 3 * * *", true),
        ("*/15 9-17 * * MON-FRI", true),
        ("0 0 1,15 JAN,jul ?", true),
        ("59 23 31 12 7", true),
        ("@daily", true),
        ("@Hourly", true),
        ("61 25 * * *", false),
        ("0 0 32 * *", false),
        ("0 0 * 13 *", false),
        ("0 0 * * 8", false),
        ("0 3 * *", false),
        ("0 0 3 * * *", false),
        ("@fortnightly", false),
        ("every night", false),
    ];
    for (cron, ok) in cases {
        pipeline["spec"]["triggers"]["schedule"] = json!({"cron": cron});
        let problems = cel_problems(&schema, &pipeline, None);
        assert_eq!(problems.is_empty(), ok, "cron {cron:?}: {problems:#?}");
    }
}

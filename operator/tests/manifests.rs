//! Every example manifest is accepted, and every manifest under `tests/invalid/` is rejected
//! with a message naming the offending field.

mod support;

use serde_json::{Value, json};
use support::{documents, validate, workspace_root, yaml_files};

fn example(file: &str) -> Value {
    let text = std::fs::read_to_string(workspace_root().join("examples/manifests").join(file)).unwrap();
    documents(&text).remove(0)
}

/// Every field of the pod template, as a GPU training or serving workload sets them.
fn full_pod_template() -> Value {
    json!({
        "resources": {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"nvidia.com/gpu": 1}},
        "envFrom": [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "tokens", "optional": true}}],
        "volumes": [{"name": "data", "configMap": {"name": "data", "items": [{"key": "d.csv", "path": "d.csv"}]}},
                    {"name": "shared", "persistentVolumeClaim": {"claimName": "features", "readOnly": true}},
                    {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}],
        "volumeMounts": [{"name": "data", "mountPath": "/mnt/data", "readOnly": true},
                         {"name": "scratch", "mountPath": "/scratch"}],
        "serviceAccountName": "ml-workload",
        "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["europe-west4-a"]}]}]}},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "x"}}}}]}},
        "imagePullSecrets": [{"name": "registry"}],
        "priorityClassName": "ml-high"
    })
}

/// Each resource with the whole pod template: the trainer's in a pipeline and in a run, the
/// server's in a deployment.
fn with_full_pod_template() -> Vec<(Value, &'static str)> {
    let mut out = Vec::new();
    for (file, field) in [("pipeline.yaml", "template"), ("run.yaml", ""), ("deployment.yaml", "serving")] {
        let mut doc = example(file);
        let target = if field.is_empty() { &mut doc["spec"] } else { &mut doc["spec"][field] };
        for (key, value) in full_pod_template().as_object().unwrap() {
            target[key] = value.clone();
        }
        out.push((doc, field));
    }
    out
}

#[test]
fn the_whole_pod_template_is_accepted_and_the_operators_names_are_refused() {
    for (doc, field) in with_full_pod_template() {
        let problems = validate(&doc);
        assert!(problems.is_empty(), "{}: {problems:#?}", doc["kind"]);
        let at = if field.is_empty() { "spec".to_string() } else { format!("spec.{field}") };
        let clashes = [
            (
                "volumes",
                json!([{"name": "trainloop-artifacts", "emptyDir": {}}]),
                "reserved for the operator's own volumes",
            ),
            (
                "volumeMounts",
                json!([{"name": "trainloop-config", "mountPath": "/x"}]),
                "reserved for the operator's own volumes",
            ),
            ("volumeMounts", json!([{"name": "data", "mountPath": "/etc/trainloop/"}]), "/etc/trainloop is reserved"),
        ];
        for (key, value, message) in clashes {
            let mut clash = doc.clone();
            let target = if field.is_empty() { &mut clash["spec"] } else { &mut clash["spec"][field] };
            target[key] = value;
            let problems = validate(&clash);
            assert!(
                problems.iter().any(|p| p.starts_with(&format!("{at}.{key}")) && p.contains(message)),
                "{}: expected {at}.{key} refused saying {message:?}, got {problems:#?}",
                doc["kind"]
            );
        }
    }
}

#[test]
fn every_example_manifest_is_valid() {
    let mut checked = 0;
    for file in yaml_files(&workspace_root().join("examples")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in documents(&text) {
            if !doc["apiVersion"].as_str().is_some_and(|v| v.starts_with("trainloop.dev/")) {
                continue;
            }
            let problems = validate(&doc);
            assert!(problems.is_empty(), "{}: {problems:#?}", file.display());
            checked += 1;
        }
    }
    assert!(checked >= 4, "expected an example of each resource, found {checked} manifests");
}

/// Each invalid manifest starts with `# field: <path>` and `# message: <text>`: the rejection
/// must name that field and say that text.
#[test]
fn every_invalid_manifest_is_rejected_naming_its_field() {
    let files = yaml_files(&workspace_root().join("operator/tests/invalid"));
    assert!(files.len() >= 10, "expected the invalid-manifest corpus, found {}", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let header = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("# {key}: ")))
                .unwrap_or_else(|| panic!("{} lacks a `# {key}:` line", file.display()))
                .to_owned()
        };
        let (field, message) = (header("field"), header("message"));
        let docs = documents(&text);
        assert_eq!(docs.len(), 1, "{}: one manifest per file", file.display());
        let problems = validate(&docs[0]);
        assert!(
            problems.iter().any(|p| p.starts_with(&field) && p.contains(&message)),
            "{}: expected a problem at {field:?} saying {message:?}, got {problems:#?}",
            file.display()
        );
    }
}

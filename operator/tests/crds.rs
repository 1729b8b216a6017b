//! The checked-in CRDs are exactly what the Rust types generate, and they follow the
//! Kubernetes structural-schema rules that the API server enforces.

mod support;

use serde_json::Value;
use support::workspace_root;
use trainloop::api;

#[test]
fn checked_in_crds_match_the_types() {
    for crd in api::crds() {
        let name = crd.metadata.name.clone().unwrap();
        let path = workspace_root().join("crds").join(format!("{name}.yaml"));
        let on_disk =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make crds`", path.display()));
        let generated = serde_saphyr::to_string(&crd).unwrap();
        assert!(on_disk == generated, "{} is stale: run `make crds`", path.display());
    }
}

#[test]
fn the_charts_crds_match_the_types_and_are_kept_on_uninstall() {
    for crd in trainloop::cli::chart_crds() {
        let name = crd.metadata.name.clone().unwrap();
        let keep = crd.metadata.annotations.as_ref().and_then(|a| a.get("helm.sh/resource-policy"));
        assert_eq!(keep.map(String::as_str), Some("keep"), "{name}");
        let path = workspace_root().join("charts/trainloop/files/crds").join(format!("{name}.yaml"));
        let on_disk =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make crds`", path.display()));
        let generated = serde_saphyr::to_string(&crd).unwrap();
        assert!(on_disk == generated, "{} is stale: run `make crds`", path.display());
    }
}

#[test]
fn crds_yaml_holds_every_crd() {
    let yaml = trainloop::cli::crds_yaml().unwrap();
    let docs = support::documents(&yaml);
    let names: Vec<&str> = docs.iter().map(|d| d["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "trainingpipelines.trainloop.dev",
            "trainingruns.trainloop.dev",
            "modeldeployments.trainloop.dev",
            "driftpolicies.trainloop.dev"
        ]
    );
}

#[test]
fn crds_are_structural() {
    for crd in api::crds() {
        let name = crd.metadata.name.clone().unwrap();
        assert_eq!(crd.spec.names.categories.as_deref(), Some(&["trainloop".to_string()][..]), "{name}");
        assert_eq!(crd.spec.names.short_names.as_ref().map(Vec::len), Some(1), "{name}");
        assert_eq!(crd.spec.versions.len(), 1, "{name}");
        let version = &crd.spec.versions[0];
        assert!(version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(), "{name}: status subresource");
        assert!(version.additional_printer_columns.as_ref().is_some_and(|c| c.len() >= 3), "{name}: printer columns");
        let schema =
            serde_json::to_value(version.schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap();
        let mut problems = Vec::new();
        check_structural(&schema, &name, false, &mut problems);
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

/// The rules of https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema
/// that our generated schemas could break, plus Kubernetes' ban on unsigned formats.
fn check_structural(schema: &Value, path: &str, inside_junctor: bool, problems: &mut Vec<String>) {
    let Some(node) = schema.as_object() else {
        problems.push(format!("{path}: schema is not an object"));
        return;
    };
    let flag = |key: &str| node.get(key) == Some(&Value::Bool(true));
    if node.contains_key("$ref") {
        problems.push(format!("{path}: $ref is not allowed"));
    }
    if inside_junctor {
        for key in ["type", "description", "default", "additionalProperties", "nullable"] {
            if node.contains_key(key) {
                problems.push(format!("{path}: {key} inside anyOf/allOf/oneOf/not"));
            }
        }
    } else if !node.contains_key("type")
        && !flag("x-kubernetes-int-or-string")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        problems.push(format!("{path}: no type"));
    }
    if let Some(format) = node.get("format").and_then(Value::as_str)
        && format.starts_with("uint")
    {
        problems.push(format!("{path}: unsigned format {format}"));
    }
    if node.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
        let keys: Vec<&str> = node
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if keys.is_empty() {
            problems.push(format!("{path}: list-type map without list-map-keys"));
        }
        let item = &node["items"];
        let required: Vec<&str> =
            item["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        for key in keys {
            if !required.contains(&key) && item["properties"][key].get("default").is_none() {
                problems.push(format!("{path}: list-map key {key} is neither required nor defaulted"));
            }
        }
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, sub) in properties {
            check_structural(sub, &format!("{path}.{name}"), inside_junctor, problems);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = node.get(key).filter(|s| s.is_object()) {
            check_structural(sub, &format!("{path}[{key}]"), inside_junctor, problems);
        }
    }
    for key in ["anyOf", "allOf", "oneOf"] {
        for (i, sub) in node.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
            check_structural(sub, &format!("{path}.{key}[{i}]"), true, problems);
        }
    }
}

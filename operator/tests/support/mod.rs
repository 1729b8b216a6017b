//! Validates manifests the way an API server does, without one: the CRD's OpenAPI schema,
//! strict unknown-field checks (what `kubectl apply` asks for), the CEL rules, and finally the
//! Rust types the operator reads them into.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use trainloop::api::{self, DriftPolicy, ModelDeployment, TrainingPipeline, TrainingRun};

/// Generated cases per run: `default`, or proptest's own `PROPTEST_CASES` when set (`make fuzz`
/// explores with many more than `make test` runs).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(default)
}

/// `python3` from the pinned virtual environment, once it is checked to import `modules`
/// (e.g. `"numpy, scipy"`): the reference computations some tests compare with.
pub fn python3_with(modules: &str) -> &'static str {
    let check = std::process::Command::new("python3").args(["-c", &format!("import {modules}")]).output();
    assert!(
        check.as_ref().is_ok_and(|out| out.status.success()),
        "python3 with {modules} is required: run `make test`, or `bash scripts/python-env.sh` and put \
         .venv/bin first on PATH ({check:?})"
    );
    "python3"
}

/// Every YAML document in `text`, as JSON values.
pub fn documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text).expect("valid YAML").into_iter().filter(|doc| !doc.is_null()).collect()
}

/// The root schema of the CRD for `kind`.
pub fn schema_of(kind: &str) -> Option<(CustomResourceDefinition, Value)> {
    // Generated once: the fuzz tests validate thousands of documents.
    static CRDS: LazyLock<Vec<CustomResourceDefinition>> = LazyLock::new(api::crds);
    let crd = CRDS.iter().find(|crd| crd.spec.names.kind == kind)?.clone();
    let schema = serde_json::to_value(crd.spec.versions[0].schema.as_ref()?.open_api_v3_schema.as_ref()?).ok()?;
    Some((crd, schema))
}

/// Every problem the API server would report for `doc`, then every problem reading it into the
/// operator's Rust type, each starting with its field path.
pub fn validate(doc: &Value) -> Vec<String> {
    let mut problems = server_problems(doc);
    if problems.is_empty() {
        problems.extend(typed_problems(doc["kind"].as_str().unwrap_or_default(), doc));
    }
    problems
}

/// Every problem the API server would report for `doc`, each starting with its field path.
pub fn server_problems(doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let Some((crd, schema)) = schema_of(kind) else {
        return vec![format!("kind: unknown kind {kind:?}")];
    };
    let expected_api_version = format!("{}/{}", crd.spec.group, crd.spec.versions[0].name);
    if doc["apiVersion"] != expected_api_version.as_str() {
        return vec![format!("apiVersion: expected {expected_api_version}")];
    }
    let mut problems = metadata_problems(doc);
    problems.extend(schema_problems(&schema, doc));
    unknown_fields(&schema, doc, "", &mut problems);
    duplicate_keys(&schema, doc, "", &mut problems);
    if problems.is_empty() {
        problems.extend(cel_problems(&schema, doc, None));
    }
    problems
}

/// The name every object needs: a DNS-1123 subdomain, as the API server requires of custom
/// resources.
fn metadata_problems(doc: &Value) -> Vec<String> {
    match doc["metadata"]["name"].as_str() {
        None => vec!["metadata.name: Required value: name is required".into()],
        Some(name) if !is_subdomain(name) => vec![format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case \
             alphanumeric characters, '-' or '.', start and end with an alphanumeric character, and have at most \
             253 characters"
        )],
        Some(_) => Vec::new(),
    }
}

/// A DNS-1123 subdomain: what object names must be.
pub fn is_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// A DNS-1123 label, without the length limit (the subdomain's applies).
fn is_dns_label(label: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !label.is_empty()
        && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && edge(label.chars().next())
        && edge(label.chars().last())
}

/// A label value: at most 63 characters, alphanumerics, `-`, `_` and `.`, alphanumeric at both
/// ends (or empty).
pub fn is_label_value(value: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    value.is_empty()
        || (value.len() <= 63
            && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && edge(value.chars().next())
            && edge(value.chars().last()))
}

/// OpenAPI checks: types, required, enums, patterns, ranges, lengths.
pub fn schema_problems(schema: &Value, doc: &Value) -> Vec<String> {
    // Compiled once per schema: the fuzz tests validate thousands of documents.
    static VALIDATORS: LazyLock<Mutex<BTreeMap<String, Arc<jsonschema::Validator>>>> = LazyLock::new(Default::default);
    let validator = VALIDATORS
        .lock()
        .unwrap()
        .entry(schema.to_string())
        .or_insert_with(|| {
            Arc::new(
                jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft4)
                    .build(schema)
                    .expect("the generated schema compiles"),
            )
        })
        .clone();
    validator
        .iter_errors(doc)
        .map(|error| {
            let mut path = dotted(&error.instance_path().to_string());
            // A missing field is reported at its parent; name the field itself, as the API server does.
            if let jsonschema::error::ValidationErrorKind::Required { property: Value::String(field) } = error.kind() {
                path = if path.is_empty() { field.clone() } else { format!("{path}.{field}") };
            }
            format!("{path}: {error}")
        })
        .collect()
}

/// CEL `x-kubernetes-validations`, with `old` for transition rules.
pub fn cel_problems(schema: &Value, doc: &Value, old: Option<&Value>) -> Vec<String> {
    match kube::core::cel::Validator::new().validate(schema, doc, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| format!("{}: {}", e.field_path, e.message)).collect(),
    }
}

/// Lists of `x-kubernetes-list-type: map` are keyed by their map keys: a key given twice is a
/// duplicate, as the API server says.
fn duplicate_keys(schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                if let Some(sub) = schema.get("properties").and_then(|p| p.get(name)) {
                    let child = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                    duplicate_keys(sub, field, &child, problems);
                }
            }
        }
        Value::Array(items) => {
            if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
                let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
                    .as_array()
                    .map(|k| k.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let key = |item: &Value| keys.iter().map(|k| item[*k].clone()).collect::<Vec<_>>();
                let mut seen = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    if !seen.insert(serde_json::to_string(&key(item)).unwrap_or_default()) {
                        problems.push(format!("{path}[{i}]: Duplicate value: {:?}", key(item)));
                    }
                }
            }
            if let Some(sub) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    duplicate_keys(sub, item, &format!("{path}[{i}]"), problems);
                }
            }
        }
        _ => {}
    }
}

/// `fieldValidation=Strict`: fields the schema does not know are errors, not silently dropped.
fn unknown_fields(schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (name, field) in fields {
                let child = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                if path.is_empty() && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                match (properties.and_then(|p| p.get(name)), additional) {
                    (Some(sub), _) | (None, Some(sub)) => unknown_fields(sub, field, &child, problems),
                    (None, None) if properties.is_some() => problems.push(format!("{child}: unknown field {name:?}")),
                    (None, None) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    unknown_fields(item_schema, item, &format!("{path}[{i}]"), problems);
                }
            }
        }
        _ => {}
    }
}

fn typed_problems(kind: &str, doc: &Value) -> Vec<String> {
    let result = match kind {
        "TrainingPipeline" => serde_json::from_value::<TrainingPipeline>(doc.clone()).map(drop),
        "TrainingRun" => serde_json::from_value::<TrainingRun>(doc.clone()).map(drop),
        "ModelDeployment" => serde_json::from_value::<ModelDeployment>(doc.clone()).map(drop),
        "DriftPolicy" => serde_json::from_value::<DriftPolicy>(doc.clone()).map(drop),
        other => return vec![format!("kind: no Rust type for {other}")],
    };
    result.err().map(|e| format!("spec: {e}")).into_iter().collect()
}

/// `/spec/source` -> `spec.source`, `/spec/features/0` -> `spec.features[0]`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        if segment.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("operator/ has a parent").to_path_buf()
}

/// Every `*.yaml` file under `dir`, recursively, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

//! `/scale` (autoscaling/v1 Scale) for Deployments, ReplicaSets, StatefulSets and custom
//! resources whose CRD declares `subresources.scale`: a view of the parent's replicas and
//! selector; writes change only the parent's replicas (what `kubectl scale` and autoscalers do).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::patch::{json as jsonpatch, merge};
use crate::registry::{ResourceType, ScalePaths};
use crate::schema::FieldValidation;
use crate::server::errors::{ApiError, ApiResult, Cause};
use crate::store::State;
use crate::store::write::WriteOpts;

/// `.spec.replicas` -> `/spec/replicas`
fn pointer(path: &str) -> String {
    path.trim_start_matches('.').split('.').fold(String::new(), |acc, seg| format!("{acc}/{seg}"))
}

/// A label selector object (`matchLabels`, `matchExpressions`) as the string Scale carries.
pub fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    for e in sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> =
            e.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        parts.push(match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "DoesNotExist" => format!("!{key}"),
            _ => key.to_string(),
        });
    }
    parts.join(",")
}

/// The Scale view of `obj`.
pub fn view(paths: &ScalePaths, obj: &Value) -> Value {
    let md = obj.get("metadata").cloned().unwrap_or(json!({}));
    let keep = ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"];
    let metadata: serde_json::Map<String, Value> =
        keep.iter().filter_map(|k| md.get(*k).map(|v| (k.to_string(), v.clone()))).collect();
    let replicas = |path: &str| obj.pointer(&pointer(path)).and_then(Value::as_i64).unwrap_or(0);
    let selector = match &paths.label_selector {
        Some(path) => obj.pointer(&pointer(path)).and_then(Value::as_str).map(str::to_string),
        None => obj.pointer("/spec/selector").map(selector_string),
    };
    let mut status = json!({"replicas": replicas(&paths.status_replicas)});
    if let Some(s) = selector.filter(|s| !s.is_empty()) {
        status["selector"] = json!(s);
    }
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": metadata,
        "spec": {"replicas": replicas(&paths.spec_replicas)}, "status": status
    })
}

/// GET, PUT (`body` is a Scale) or PATCH (`body` is the patch, `media` its type) of `/scale`.
pub fn handle(
    st: &mut State,
    rt: &Arc<ResourceType>,
    ns: &str,
    name: &str,
    write: Option<(&str, Value)>,
    dry_run: bool,
) -> ApiResult<Value> {
    let Some(paths) = rt.scale.clone() else {
        return Err(ApiError::not_found_path(&format!("{}/scale", rt.plural)));
    };
    let parent = st.get(rt, ns, name).ok_or_else(|| ApiError::not_found(&rt.qualified(), name))?;
    let current = view(&paths, &parent);
    let Some((media, body)) = write else {
        return Ok(current);
    };
    let wanted = match media {
        "update" => body,
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            merge::merge_patch(&current, &body)
        }
        "application/json-patch+json" => jsonpatch::json_patch(&current, &body).map_err(|e| {
            ApiError::new(
                422,
                "Invalid",
                format!("the server rejected our request due to an error in our request: {e}"),
            )
        })?,
        _ => return Err(ApiError::unsupported_patch()),
    };
    let invalid = |message: String| {
        ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            vec![Cause { reason: "FieldValueInvalid", message, field: "spec.replicas".into() }],
        )
    };
    let replicas = match wanted.pointer("/spec/replicas") {
        Some(Value::Number(n)) => n.as_i64().filter(|r| *r >= 0 && *r <= i64::from(i32::MAX)),
        None => Some(0),
        Some(_) => None,
    }
    .ok_or_else(|| {
        invalid(format!("Invalid value: {}: must be greater than or equal to 0", wanted["spec"]["replicas"]))
    })?;
    let mut updated = (*parent).clone();
    let rv = wanted.pointer("/metadata/resourceVersion").and_then(Value::as_str).filter(|r| !r.is_empty());
    updated["metadata"]["resourceVersion"] =
        json!(rv.unwrap_or_else(|| parent["metadata"]["resourceVersion"].as_str().unwrap_or("")));
    set(&mut updated, &pointer(&paths.spec_replicas), json!(replicas));
    let written = st.update(rt, ns, name, updated, false, WriteOpts { fv: FieldValidation::Ignore, dry_run })?;
    Ok(view(&paths, &written))
}

/// Sets the value at a JSON pointer, creating objects on the way.
fn set(obj: &mut Value, pointer: &str, value: Value) {
    let mut cur = obj;
    let segs: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i + 1 == segs.len() {
            cur[*seg] = value;
            return;
        }
        cur = &mut cur[*seg];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_built_in_and_custom_paths() {
        let builtin = ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        };
        let d = json!({"metadata": {"name": "web", "resourceVersion": "7", "labels": {"x": "y"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}},
            "status": {"replicas": 2}});
        let v = view(&builtin, &d);
        assert_eq!(v["spec"]["replicas"], 3);
        assert_eq!(v["status"], json!({"replicas": 2, "selector": "app=web,tier in (a,b)"}));
        assert_eq!(v["metadata"], json!({"name": "web", "resourceVersion": "7"}));
        let custom = ScalePaths {
            spec_replicas: ".spec.workers".into(),
            status_replicas: ".status.workers".into(),
            label_selector: Some(".status.selector".into()),
        };
        let w = json!({"metadata": {"name": "w"}, "spec": {"workers": 4}, "status": {"selector": "a=b"}});
        assert_eq!(view(&custom, &w)["spec"]["replicas"], 4);
        assert_eq!(view(&custom, &w)["status"], json!({"replicas": 0, "selector": "a=b"}));
        let mut o = json!({});
        set(&mut o, "/spec/workers", json!(5));
        assert_eq!(o, json!({"spec": {"workers": 5}}));
    }
}

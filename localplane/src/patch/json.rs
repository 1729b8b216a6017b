//! JSON patch (RFC 6902), with one leniency the API server has and kube relies on:
//! `{"op": "test", "path": "/metadata/finalizers", "value": null}` passes when the path is missing
//! (kube-runtime's `finalizer()` sends it before adding the first finalizer).

use serde_json::Value;

pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, String> {
    let ops = patch.as_array().ok_or("json patch must be an array of operations")?;
    let kept: Vec<Value> = ops
        .iter()
        .filter(|op| {
            let is_null_test =
                op.get("op").and_then(Value::as_str) == Some("test") && op.get("value").is_some_and(Value::is_null);
            let missing = op.get("path").and_then(Value::as_str).is_some_and(|p| target.pointer(p).is_none());
            !(is_null_test && missing)
        })
        .cloned()
        .collect();
    let parsed: json_patch::Patch =
        serde_json::from_value(Value::Array(kept)).map_err(|e| format!("invalid json patch: {e}"))?;
    let mut out = target.clone();
    json_patch::patch(&mut out, &parsed).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_test_on_missing_path_passes() {
        let t = json!({"metadata": {"name": "a"}});
        let p = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x"]}
        ]);
        assert_eq!(json_patch(&t, &p).unwrap(), json!({"metadata": {"name": "a", "finalizers": ["x"]}}));
    }

    #[test]
    fn failing_test_fails() {
        let t = json!({"metadata": {"finalizers": ["x"]}});
        let p = json!([{"op": "test", "path": "/metadata/finalizers", "value": null}]);
        assert!(json_patch(&t, &p).is_err());
        let p = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "x"},
                       {"op": "remove", "path": "/metadata/finalizers/0"}]);
        assert_eq!(json_patch(&t, &p).unwrap(), json!({"metadata": {"finalizers": []}}));
        assert!(json_patch(&t, &json!({"op": "add"})).is_err());
    }
}

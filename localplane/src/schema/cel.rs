//! CEL `x-kubernetes-validations` rules, evaluated with the `cel` crate (not the Kubernetes CEL
//! libraries: standard functions and macros only). `self` is the value at the rule's node;
//! rules that mention `oldSelf` are transition rules, run only on updates where an old value
//! exists at the same place.

use serde_json::Value;

use crate::server::errors::Cause;

/// Compiles every rule in a schema (at CRD create), returning causes for the broken ones.
pub fn compile_rules(schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(rules) = schema.get("x-kubernetes-validations").and_then(Value::as_array) {
        for (i, r) in rules.iter().enumerate() {
            let Some(rule) = r.get("rule").and_then(Value::as_str) else {
                causes.push(Cause {
                    reason: "FieldValueRequired",
                    message: "Required value".into(),
                    field: format!("{path}.x-kubernetes-validations[{i}].rule"),
                });
                continue;
            };
            if let Err(e) = cel::Program::compile(rule) {
                causes.push(Cause {
                    reason: "FieldValueInvalid",
                    message: format!("Invalid value: {rule:?}: compilation failed: {e}"),
                    field: format!("{path}.x-kubernetes-validations[{i}].rule"),
                });
            }
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, s) in props {
            compile_rules(s, &format!("{path}.properties[{k}]"), causes);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(s @ Value::Object(_)) = schema.get(key) {
            compile_rules(s, &format!("{path}.{key}"), causes);
        }
    }
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() { k.to_string() } else { format!("{path}.{k}") }
}

/// Evaluates the rules of `schema` on `v` (and its children), with `old` for transition rules.
pub fn check_rules(v: &Value, old: Option<&Value>, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(rules) = schema.get("x-kubernetes-validations").and_then(Value::as_array) {
        for r in rules {
            if let Some(c) = eval_rule(r, v, old, path) {
                causes.push(c);
            }
        }
    }
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, child) in m {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let old_child = old.and_then(|o| o.get(k));
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    check_rules(child, old_child, s, &join(path, k), causes);
                } else if let Some(s @ Value::Object(_)) = schema.get("additionalProperties") {
                    check_rules(child, old_child, s, &format!("{path}[{k}]"), causes);
                }
            }
        }
        Value::Array(items) => {
            let Some(s) = schema.get("items") else { return };
            // Old items correlate only for list-type=map (by key), as in Kubernetes.
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let old_items = old.and_then(Value::as_array);
            for (i, item) in items.iter().enumerate() {
                let old_item = if keys.is_empty() {
                    None
                } else {
                    old_items.and_then(|o| o.iter().find(|x| keys.iter().all(|k| x.get(*k) == item.get(*k))))
                };
                check_rules(item, old_item, s, &format!("{path}[{i}]"), causes);
            }
        }
        _ => {}
    }
}

fn eval_rule(r: &Value, v: &Value, old: Option<&Value>, path: &str) -> Option<Cause> {
    let rule = r.get("rule").and_then(Value::as_str)?;
    let program = match cel::Program::compile(rule) {
        Ok(p) => p,
        Err(e) => return Some(cause(r, path, v, format!("compilation failed: {e}"))),
    };
    let transition = program.references().has_variable("oldSelf");
    if transition && old.is_none() {
        return None;
    }
    let mut ctx = cel::Context::default();
    let self_val = cel::to_value(v).ok()?;
    ctx.add_variable_from_value("self", self_val);
    if let Some(o) = old
        && let Ok(ov) = cel::to_value(o)
    {
        ctx.add_variable_from_value("oldSelf", ov);
    }
    match program.execute(&ctx) {
        Ok(cel::Value::Bool(true)) => None,
        Ok(cel::Value::Bool(false)) => {
            let msg = r
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("failed rule: {rule}"));
            Some(cause(r, path, v, msg))
        }
        Ok(other) => Some(cause(r, path, v, format!("rule {rule:?} did not evaluate to a bool: {other:?}"))),
        Err(e) => Some(cause(r, path, v, format!("rule {rule:?} failed to evaluate: {e}"))),
    }
}

fn cause(r: &Value, path: &str, v: &Value, msg: String) -> Cause {
    let field = match r.get("fieldPath").and_then(Value::as_str) {
        Some(fp) => format!("{path}{fp}"),
        None => path.to_string(),
    };
    let reason = match r.get("reason").and_then(Value::as_str) {
        Some("FieldValueForbidden") => "FieldValueForbidden",
        Some("FieldValueRequired") => "FieldValueRequired",
        Some("FieldValueDuplicate") => "FieldValueDuplicate",
        _ => "FieldValueInvalid",
    };
    let shown = match v {
        Value::Object(_) => "\"object\"".to_string(),
        Value::Array(_) => "\"array\"".to_string(),
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    Cause { reason, message: format!("Invalid value: {shown}: {msg}"), field }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.min <= self.max", "message": "min must not exceed max"},
                {"rule": "self.mode == oldSelf.mode", "message": "mode is immutable"}],
            "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}, "mode": {"type": "string"}}}}})
    }

    #[test]
    fn rules_and_transition_rules() {
        let mut c = vec![];
        check_rules(&json!({"spec": {"min": 1, "max": 2, "mode": "a"}}), None, &schema(), "", &mut c);
        assert!(c.is_empty(), "{c:?}");
        check_rules(&json!({"spec": {"min": 3, "max": 2, "mode": "a"}}), None, &schema(), "", &mut c);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "spec");
        assert_eq!(c[0].message, "Invalid value: \"object\": min must not exceed max");
        let mut c = vec![];
        let old = json!({"spec": {"min": 1, "max": 2, "mode": "a"}});
        check_rules(&json!({"spec": {"min": 1, "max": 2, "mode": "b"}}), Some(&old), &schema(), "", &mut c);
        assert_eq!(c.len(), 1);
        assert!(c[0].message.contains("mode is immutable"));
    }

    #[test]
    fn compile_errors_are_reported() {
        let s = json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.a >"}]});
        let mut c = vec![];
        compile_rules(&s, "spec.versions[0].schema.openAPIV3Schema", &mut c);
        assert_eq!(c.len(), 1);
    }
}

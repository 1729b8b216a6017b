//! Pruning of fields a structural schema does not specify (kept where the schema says
//! `x-kubernetes-preserve-unknown-fields`). Returns the pruned paths so Strict can reject them.

use serde_json::Value;

/// Prunes `obj` (a whole object: apiVersion, kind and metadata are always kept).
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut removed = vec![];
    if let Value::Object(m) = obj {
        let props = schema.get("properties").and_then(Value::as_object);
        let preserve = preserves(schema);
        let keys: Vec<String> = m.keys().cloned().collect();
        for k in keys {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match props.and_then(|p| p.get(&k)) {
                Some(s) => {
                    if let Some(child) = m.get_mut(&k) {
                        walk(child, s, &k, &mut removed);
                    }
                }
                None if preserve => {}
                None => {
                    m.remove(&k);
                    removed.push(k);
                }
            }
        }
    }
    removed
}

fn preserves(schema: &Value) -> bool {
    schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool).unwrap_or(false)
}

fn walk(v: &mut Value, schema: &Value, path: &str, removed: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if schema.get("x-kubernetes-embedded-resource").and_then(Value::as_bool).unwrap_or(false) {
                // Embedded objects keep their own apiVersion/kind/metadata.
                let mut copy = Value::Object(std::mem::take(m));
                for p in prune(&mut copy, schema) {
                    removed.push(format!("{path}.{p}"));
                }
                if let Value::Object(back) = copy {
                    *m = back;
                }
                return;
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let preserve = preserves(schema);
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let child_path = format!("{path}.{k}");
                let s = props.and_then(|p| p.get(&k)).or(match additional {
                    Some(Value::Object(_)) => additional,
                    _ => None,
                });
                match s {
                    Some(s) => {
                        if let Some(child) = m.get_mut(&k) {
                            walk(child, s, &child_path, removed);
                        }
                    }
                    None if preserve || additional == Some(&Value::Bool(true)) => {}
                    None => {
                        m.remove(&k);
                        removed.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, s, &format!("{path}[{i}]"), removed);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_unknown_but_preserves_where_asked() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"},
                      "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}});
        let mut obj = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a"},
            "spec": {"size": 1, "extra": true, "labels": {"a": "b"}}, "status": {"anything": 1}, "top": 1});
        let removed = prune(&mut obj, &schema);
        assert_eq!(removed, vec!["spec.extra".to_string(), "top".to_string()]);
        assert_eq!(obj["spec"], json!({"size": 1, "labels": {"a": "b"}}));
        assert_eq!(obj["status"], json!({"anything": 1}));
    }
}

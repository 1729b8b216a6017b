//! Defaulting from `default` in the schema: missing properties get their default, recursively
//! (a defaulted object is then itself walked, so nested defaults apply too).

use serde_json::Value;

pub fn apply_defaults(v: &mut Value, schema: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if !m.contains_key(k)
                        && let Some(d) = s.get("default")
                    {
                        m.insert(k.clone(), d.clone());
                    }
                    if let Some(child) = m.get_mut(k) {
                        apply_defaults(child, s);
                    }
                }
            }
            if let Some(s @ Value::Object(_)) = schema.get("additionalProperties") {
                let props = schema.get("properties").and_then(Value::as_object);
                for (k, child) in m.iter_mut() {
                    if props.is_none_or(|p| !p.contains_key(k)) {
                        apply_defaults(child, s);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for item in items {
                    apply_defaults(item, s);
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
    fn defaults_nested_fields() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "default": {},
            "properties": {"size": {"type": "integer", "default": 3},
                           "items": {"type": "array", "items": {"type": "object",
                               "properties": {"mode": {"type": "string", "default": "fast"}}}}}}}});
        let mut obj = json!({"metadata": {}});
        apply_defaults(&mut obj, &schema);
        assert_eq!(obj["spec"], json!({"size": 3}));
        let mut obj = json!({"spec": {"size": 5, "items": [{}]}});
        apply_defaults(&mut obj, &schema);
        assert_eq!(obj["spec"], json!({"size": 5, "items": [{"mode": "fast"}]}));
    }
}

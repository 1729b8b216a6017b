//! The structural-schema check done when a CRD is created or updated: every node specifies a
//! type (unless int-or-string or preserve-unknown-fields), arrays specify items, properties and
//! additionalProperties are exclusive, and root metadata may only constrain name/generateName.

use serde_json::Value;

use crate::server::errors::Cause;

pub fn check(schema: &Value, path: &str) -> Vec<Cause> {
    let mut causes = vec![];
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        causes.push(Cause {
            reason: "FieldValueInvalid",
            message: "Invalid value: \"\": must be object at the root".into(),
            field: format!("{path}.type"),
        });
    }
    if let Some(md) = schema.pointer("/properties/metadata/properties").and_then(Value::as_object) {
        for k in md.keys().filter(|k| !matches!(k.as_str(), "name" | "generateName")) {
            causes.push(Cause {
                reason: "FieldValueForbidden",
                message: "Forbidden: must not be specified".into(),
                field: format!("{path}.properties[metadata].properties[{k}]"),
            });
        }
    }
    node(schema, path, &mut causes);
    super::cel::compile_rules(schema, path, &mut causes);
    causes
}

fn node(s: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(m) = s.as_object() else {
        causes.push(Cause {
            reason: "FieldValueInvalid",
            message: "Invalid value: must be an object".into(),
            field: path.to_string(),
        });
        return;
    };
    let flag = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
    let typ = m.get("type").and_then(Value::as_str);
    if typ.is_none() && !flag("x-kubernetes-int-or-string") && !flag("x-kubernetes-preserve-unknown-fields") {
        causes.push(Cause {
            reason: "FieldValueRequired",
            message: "Required value: must not be empty for specified object fields".into(),
            field: format!("{path}.type"),
        });
    }
    if let Some(t) = typ
        && !matches!(t, "object" | "array" | "string" | "integer" | "number" | "boolean")
    {
        causes.push(Cause {
            reason: "FieldValueNotSupported",
            message: format!("Unsupported value: {t:?}"),
            field: format!("{path}.type"),
        });
    }
    if typ == Some("array") && !m.contains_key("items") {
        causes.push(Cause {
            reason: "FieldValueRequired",
            message: "Required value: must be specified".into(),
            field: format!("{path}.items"),
        });
    }
    if m.contains_key("properties") && matches!(m.get("additionalProperties"), Some(Value::Object(_))) {
        causes.push(Cause {
            reason: "FieldValueForbidden",
            message: "Forbidden: additionalProperties and properties are mutual exclusive".into(),
            field: format!("{path}.additionalProperties"),
        });
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            node(p, &format!("{path}.properties[{k}]"), causes);
        }
    }
    if let Some(items) = m.get("items") {
        node(items, &format!("{path}.items"), causes);
    }
    if let Some(ap @ Value::Object(_)) = m.get("additionalProperties") {
        node(ap, &format!("{path}.additionalProperties"), causes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_missing_types() {
        let good = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"type": "array", "items": {"type": "string"}},
                           "p": {"x-kubernetes-int-or-string": true}}}}});
        assert!(check(&good, "s").is_empty());
        let bad = json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "array"}}}}});
        let fields: Vec<String> = check(&bad, "s").into_iter().map(|c| c.field).collect();
        assert_eq!(fields, vec!["s.properties[spec].type", "s.properties[spec].properties[a].items"]);
    }
}

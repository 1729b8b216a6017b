//! OpenAPI v3 value validation (the subset CRDs use), producing field causes shaped like the
//! real server's: `spec.size: Invalid value: "string": spec.size in body must be of type integer`.

use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

use crate::server::errors::Cause;

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) | Value::Array(_) | Value::Null => format!("\"{}\"", type_name(v)),
        other => other.to_string(),
    }
}

fn invalid(path: &str, v: &Value, detail: String) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {}: {detail}", shown(v)),
        field: path.to_string(),
    }
}

fn child(path: &str, k: &str) -> String {
    if path.is_empty() { k.to_string() } else { format!("{path}.{k}") }
}

fn body_path(path: &str) -> String {
    if path.is_empty() { "body".into() } else { format!("{path} in body") }
}

/// Compiled `pattern` regexes, cached: schemas are re-used for every write.
fn regex_matches(pattern: &str, s: &str) -> Option<bool> {
    static CACHE: OnceLock<Mutex<std::collections::HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut guard = cache.lock().ok()?;
    let re = guard.entry(pattern.to_string()).or_insert_with(|| regex::Regex::new(pattern).ok());
    re.as_ref().map(|r| r.is_match(s))
}

/// Validates `v` against `schema`; `root` skips apiVersion/kind/metadata (the server owns them).
pub fn validate(v: &Value, schema: &Value, path: &str, causes: &mut Vec<Cause>, root: bool) {
    if v.is_null() {
        if !schema.get("nullable").and_then(Value::as_bool).unwrap_or(false) && schema.get("type").is_some() {
            let t = schema.get("type").and_then(Value::as_str).unwrap_or("object");
            causes.push(Cause {
                reason: "FieldValueTypeInvalid",
                message: format!("Invalid value: \"null\": {} must be of type {t}", body_path(path)),
                field: path.to_string(),
            });
        }
        return;
    }
    let int_or_string = schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool).unwrap_or(false);
    if int_or_string {
        if !matches!(type_name(v), "integer" | "string") {
            causes.push(Cause {
                reason: "FieldValueTypeInvalid",
                message: format!("Invalid value: {}: {} must be of type integer or string", shown(v), body_path(path)),
                field: path.to_string(),
            });
            return;
        }
    } else if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(v);
        let ok = actual == t || (t == "number" && actual == "integer");
        if !ok {
            causes.push(Cause {
                reason: "FieldValueTypeInvalid",
                message: format!("Invalid value: \"{actual}\": {} must be of type {t}", body_path(path)),
                field: path.to_string(),
            });
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list = allowed.iter().map(shown).collect::<Vec<_>>().join(", ");
        causes.push(Cause {
            reason: "FieldValueNotSupported",
            message: format!("Unsupported value: {}: supported values: {list}", shown(v)),
            field: path.to_string(),
        });
    }
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    let int = |k: &str| schema.get(k).and_then(Value::as_u64);
    let flag = |k: &str| schema.get(k).and_then(Value::as_bool).unwrap_or(false);
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = num("minimum") {
                let excl = flag("exclusiveMinimum");
                if x < min || (excl && x == min) {
                    let op = if excl { "greater than" } else { "greater than or equal to" };
                    causes.push(invalid(path, v, format!("{} should be {op} {}", body_path(path), fmt_num(min))));
                }
            }
            if let Some(max) = num("maximum") {
                let excl = flag("exclusiveMaximum");
                if x > max || (excl && x == max) {
                    let op = if excl { "less than" } else { "less than or equal to" };
                    causes.push(invalid(path, v, format!("{} should be {op} {}", body_path(path), fmt_num(max))));
                }
            }
            if let Some(m) = num("multipleOf")
                && m > 0.0
                && (x / m).fract().abs() > 1e-9
            {
                causes.push(invalid(path, v, format!("{} should be a multiple of {}", body_path(path), fmt_num(m))));
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = int("minLength")
                && len < min
            {
                causes.push(invalid(path, v, format!("{} should be at least {min} chars long", body_path(path))));
            }
            if let Some(max) = int("maxLength")
                && len > max
            {
                causes.push(Cause {
                    reason: "FieldValueTooLong",
                    message: format!("Too long: may not be more than {max} bytes"),
                    field: path.to_string(),
                });
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                && regex_matches(p, s) == Some(false)
            {
                causes.push(invalid(path, v, format!("{} should match '{p}'", body_path(path))));
            }
            if let Some(f) = schema.get("format").and_then(Value::as_str)
                && !format_ok(f, s)
            {
                causes.push(invalid(path, v, format!("{} must be of type {f}", body_path(path))));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = int("minItems")
                && n < min
            {
                causes.push(invalid(path, v, format!("{} should have at least {min} items", body_path(path))));
            }
            if let Some(max) = int("maxItems")
                && n > max
            {
                causes.push(Cause {
                    reason: "FieldValueTooMany",
                    message: format!("Too many: {n}: must have at most {max} items"),
                    field: path.to_string(),
                });
            }
            if flag("uniqueItems") {
                for (i, a) in items.iter().enumerate() {
                    if items[..i].contains(a) {
                        causes.push(Cause {
                            reason: "FieldValueDuplicate",
                            message: format!("Duplicate value: {}", shown(a)),
                            field: format!("{path}[{i}]"),
                        });
                    }
                }
            }
            // A list of type map is keyed by its map keys, a set by its values: a key or value
            // given twice is a duplicate, as the real server says.
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| keys.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let identity = |item: &Value| match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("map") => Some(Value::Object(keys.iter().map(|k| (k.to_string(), item[*k].clone())).collect())),
                Some("set") => Some(item.clone()),
                _ => None,
            };
            let identities: Vec<Option<Value>> = items.iter().map(identity).collect();
            for (i, id) in identities.iter().enumerate() {
                if let Some(id) = id
                    && identities[..i].contains(&Some(id.clone()))
                {
                    causes.push(Cause {
                        reason: "FieldValueDuplicate",
                        message: match id {
                            Value::Object(key) => format!("Duplicate value: map[string]interface {{}}{}", json!(key)),
                            value => format!("Duplicate value: {}", shown(value)),
                        },
                        field: format!("{path}[{i}]"),
                    });
                }
            }
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(item, s, &format!("{path}[{i}]"), causes, false);
                }
            }
        }
        Value::Object(m) => {
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !m.contains_key(r) {
                        causes.push(Cause {
                            reason: "FieldValueRequired",
                            message: "Required value".into(),
                            field: child(path, r),
                        });
                    }
                }
            }
            let n = m.len() as u64;
            if let Some(min) = int("minProperties")
                && n < min
            {
                causes.push(invalid(path, v, format!("{} should have at least {min} properties", body_path(path))));
            }
            if let Some(max) = int("maxProperties")
                && n > max
            {
                causes.push(invalid(path, v, format!("{} should have at most {max} properties", body_path(path))));
            }
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, child_v) in m {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    validate(child_v, s, &child(path, k), causes, false);
                } else if let Some(s @ Value::Object(_)) = schema.get("additionalProperties") {
                    validate(child_v, s, &format!("{path}[{k}]"), causes, false);
                }
            }
        }
        _ => {}
    }
    combinators(v, schema, path, causes);
}

fn combinators(v: &Value, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    let passes = |s: &Value| {
        let mut c = vec![];
        validate(v, s, path, &mut c, false);
        c.is_empty()
    };
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(v, s, path, causes, false);
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(passes)
    {
        causes.push(invalid(path, v, "must validate at least one schema (anyOf)".into()));
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let n = one.iter().filter(|s| passes(s)).count();
        if n != 1 {
            causes.push(invalid(path, v, "must validate one and only one schema (oneOf)".into()));
        }
    }
    if let Some(not) = schema.get("not")
        && passes(not)
    {
        causes.push(invalid(path, v, "must not validate the schema (not)".into()));
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { x.to_string() }
}

fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" => crate::time::parse_rfc3339(s).is_some(),
        "date" => s.len() == 10 && crate::time::parse_rfc3339(&format!("{s}T00:00:00Z")).is_some(),
        "byte" => s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')),
        "uuid" => s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(v: Value, schema: Value) -> Vec<Cause> {
        let mut c = vec![];
        validate(&v, &schema, "", &mut c, true);
        c
    }

    #[test]
    fn keys_of_map_lists_and_values_of_set_lists_are_unique() {
        let schema = json!({"type": "object", "properties": {
            "features": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                         "items": {"type": "object", "properties": {"name": {"type": "string"}, "min": {"type": "number"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "plain": {"type": "array", "items": {"type": "string"}}}});
        let ok = json!({"features": [{"name": "a"}, {"name": "b"}], "tags": ["x", "y"], "plain": ["z", "z"]});
        assert!(run(ok, schema.clone()).is_empty());
        let c =
            run(json!({"features": [{"name": "a", "min": 1}, {"name": "a", "min": 2}], "tags": ["x", "x"]}), schema);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!((c[0].field.as_str(), c[0].reason), ("features[1]", "FieldValueDuplicate"));
        assert_eq!(c[0].message, r#"Duplicate value: map[string]interface {}{"name":"a"}"#);
        assert_eq!((c[1].field.as_str(), c[1].message.as_str()), ("tags[1]", r#"Duplicate value: "x""#));
    }

    #[test]
    fn types_ranges_and_required() {
        let schema = json!({"type": "object", "required": ["spec"], "properties": {"spec": {
            "type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
                "port": {"x-kubernetes-int-or-string": true}}}}});
        assert!(run(json!({"metadata": {"name": 1}, "spec": {"size": 3, "port": "http"}}), schema.clone()).is_empty());
        let c = run(json!({"spec": {"size": "x"}}), schema.clone());
        assert_eq!(c[0].field, "spec.size");
        assert_eq!(c[0].message, "Invalid value: \"string\": spec.size in body must be of type integer");
        let c = run(json!({"spec": {"size": 11, "mode": "c", "name": "ABCDEFG", "tags": ["a", 2]}}), schema.clone());
        let fields: Vec<&str> = c.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.mode", "spec.name", "spec.name", "spec.size", "spec.tags", "spec.tags[1]"]);
        assert!(c.iter().any(|c| c.message.contains("less than or equal to 10")));
        let c = run(json!({"spec": {}}), schema.clone());
        assert_eq!((c[0].field.as_str(), c[0].reason), ("spec.size", "FieldValueRequired"));
        assert_eq!(run(json!({}), schema)[0].field, "spec");
    }

    #[test]
    fn nullable_and_one_of() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "string", "nullable": true},
            "b": {"type": "string"},
            "c": {"type": "object", "oneOf": [{"required": ["x"]}, {"required": ["y"]}]}}});
        assert!(run(json!({"a": null, "c": {"x": 1}}), schema.clone()).is_empty());
        assert_eq!(run(json!({"b": null}), schema.clone())[0].field, "b");
        assert_eq!(run(json!({"c": {"x": 1, "y": 2}}), schema)[0].field, "c");
    }
}

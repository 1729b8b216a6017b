//! CRD openAPIV3Schema handling: structural check at CRD create, then for each write of a custom
//! resource: unknown fields (rejected under fieldValidation=Strict, else pruned), defaulting,
//! OpenAPI validation and CEL rules. Errors name field paths the way the real server does.

pub mod cel;
pub mod default;
pub mod prune;
pub mod structural;
pub mod validate;

use serde_json::Value;

use crate::server::errors::{ApiError, Cause};

/// What a write asks of unknown fields (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s.unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(ApiError::bad_request(format!("fieldValidation parameter unsupported: {other}"))),
        }
    }
}

/// Runs pruning, defaulting and validation of a custom resource against its schema.
pub fn admit(
    schema: &Value,
    obj: Value,
    old: Option<&Value>,
    fv: FieldValidation,
    kind: &str,
    group: &str,
) -> Result<Value, ApiError> {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let mut obj = obj;
    let unknown = prune::prune(&mut obj, schema);
    if fv == FieldValidation::Strict && !unknown.is_empty() {
        let list = unknown.iter().map(|p| format!("unknown field \"{p}\"")).collect::<Vec<_>>().join(", ");
        return Err(ApiError::bad_request(format!("strict decoding error: {list}")));
    }
    default::apply_defaults(&mut obj, schema);
    let mut causes: Vec<Cause> = vec![];
    validate::validate(&obj, schema, "", &mut causes, true);
    if causes.is_empty() {
        cel::check_rules(&obj, old, schema, "", &mut causes);
    }
    if causes.is_empty() { Ok(obj) } else { Err(ApiError::invalid(kind, group, &name, causes)) }
}

/// The list type (`x-kubernetes-list-type`) of the list at this path of field names.
pub fn list_type(schema: &Value, names: &[String]) -> crate::patch::apply::ListType {
    use crate::patch::apply::ListType;
    let mut cur = schema;
    for n in names {
        if cur.get("type").and_then(Value::as_str) == Some("array")
            && let Some(items) = cur.get("items")
        {
            cur = items;
        }
        let next = cur
            .get("properties")
            .and_then(|p| p.get(n))
            .or_else(|| cur.get("additionalProperties").filter(|a| a.is_object()));
        match next {
            Some(s) => cur = s,
            None => return ListType::Atomic,
        }
    }
    match cur.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") => ListType::Map(
            cur.get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
        ),
        Some("set") => ListType::Set,
        _ => ListType::Atomic,
    }
}

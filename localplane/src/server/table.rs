//! `as=Table` responses for kubectl get: Name, the printer columns (cells pre-formatted, as the
//! real server does), then Age. Rows carry PartialObjectMetadata.

use serde_json::{Value, json};

use crate::registry::{PrinterColumn, ResourceType};
use crate::time::{human_duration, now_secs, parse_rfc3339};

/// Evaluates the simple JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[*].b`,
/// `.a[?(@.type=="Ready")].status`. Returns every match.
pub fn json_path<'v>(obj: &'v Value, path: &str) -> Vec<&'v Value> {
    let p = path.trim().trim_start_matches('{').trim_end_matches('}').trim_start_matches('$');
    let mut cur: Vec<&Value> = vec![obj];
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let field = &r[..end];
            if !field.is_empty() {
                cur = cur.into_iter().filter_map(|v| v.get(field)).collect();
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(close) = find_close(r) else { return vec![] };
            let inner = &r[..close];
            rest = &r[close + 1..];
            cur = cur.into_iter().flat_map(|v| select(v, inner)).collect();
        } else {
            return vec![];
        }
    }
    cur
}

fn find_close(s: &str) -> Option<usize> {
    let mut depth = 0;
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ']') if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

fn select<'v>(v: &'v Value, inner: &str) -> Vec<&'v Value> {
    let Some(items) = v.as_array() else {
        return v.get(inner.trim_matches(['\'', '"'])).into_iter().collect();
    };
    if inner == "*" {
        return items.iter().collect();
    }
    if let Ok(i) = inner.parse::<i64>() {
        let idx = if i < 0 { items.len() as i64 + i } else { i };
        return usize::try_from(idx).ok().and_then(|i| items.get(i)).into_iter().collect();
    }
    if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
        let (lhs, neg, rhs) = if let Some((l, r)) = filter.split_once("!=") {
            (l, true, r)
        } else if let Some((l, r)) = filter.split_once("==") {
            (l, false, r)
        } else {
            return vec![];
        };
        let field = lhs.trim().trim_start_matches('@');
        let want = rhs.trim().trim_matches(['\'', '"']);
        return items
            .iter()
            .filter(|it| {
                let got = json_path(it, field).first().map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                (got.as_deref() == Some(want)) != neg
            })
            .collect();
    }
    vec![]
}

fn format_cell(col: &PrinterColumn, values: &[&Value]) -> Value {
    if values.is_empty() {
        return json!("<none>");
    }
    let one = |v: &Value| -> String {
        match (col.type_.as_str(), v) {
            ("date", Value::String(s)) => {
                parse_rfc3339(s).map(|t| human_duration(now_secs() - t)).unwrap_or_else(|| s.clone())
            }
            (_, Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        }
    };
    if values.len() == 1 {
        match (col.type_.as_str(), values[0]) {
            ("integer" | "number" | "boolean", v @ (Value::Number(_) | Value::Bool(_))) => v.clone(),
            (_, v) => json!(one(v)),
        }
    } else {
        json!(values.iter().map(|v| one(v)).collect::<Vec<_>>().join(","))
    }
}

pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))
    })
}

/// Name, the printer columns, then Age (unless a column already shows the creation time).
fn column_definitions(rt: &ResourceType) -> Vec<Value> {
    let mut cols = vec![json!({"name": "Name", "type": "string", "format": "name",
        "description": "Name must be unique within a namespace.", "priority": 0})];
    for c in &rt.printer_columns {
        cols.push(json!({"name": c.name, "type": c.type_, "format": c.format,
                         "description": c.description, "priority": c.priority}));
    }
    if !has_age_column(rt) {
        cols.push(json!({"name": "Age", "type": "date", "format": "",
            "description": "CreationTimestamp is a timestamp representing the server time when this object was created.",
            "priority": 0}));
    }
    cols
}

fn has_age_column(rt: &ResourceType) -> bool {
    rt.printer_columns.iter().any(|c| c.json_path == ".metadata.creationTimestamp")
}

fn cells(rt: &ResourceType, o: &Value) -> Vec<Value> {
    let mut cells = vec![json!(o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(""))];
    for c in &rt.printer_columns {
        cells.push(format_cell(c, &json_path(o, &c.json_path)));
    }
    if !has_age_column(rt) {
        let age = o
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
            .map(|t| human_duration(now_secs() - t))
            .unwrap_or_else(|| "<unknown>".into());
        cells.push(json!(age));
    }
    cells
}

pub fn table(rt: &ResourceType, objs: &[&Value], rv: &str, include_object: &str) -> Value {
    // Core Events have the real server's computed columns.
    let events = rt.group.is_empty() && rt.kind == "Event";
    let cols = if events { super::event_table::columns() } else { column_definitions(rt) };
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let cells = if events { super::event_table::cells(o) } else { cells(rt, o) };
            let object = match include_object {
                "None" => Value::Null,
                "Object" => (*o).clone(),
                _ => partial_metadata(o),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": cols,
        "rows": rows
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let o = json!({"spec": {"size": 3, "items": [{"n": 1}, {"n": 2}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}]}});
        assert_eq!(json_path(&o, ".spec.size"), vec![&json!(3)]);
        assert_eq!(json_path(&o, ".spec.items[1].n"), vec![&json!(2)]);
        assert_eq!(json_path(&o, ".spec.items[*].n").len(), 2);
        assert_eq!(json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"), vec![&json!("True")]);
        assert!(json_path(&o, ".missing.x").is_empty());
        assert!(json_path(&o, ".spec.items[").is_empty());
    }

    #[test]
    fn cells_are_formatted() {
        let col = |t: &str| PrinterColumn {
            name: "c".into(),
            type_: t.into(),
            format: String::new(),
            json_path: String::new(),
            description: String::new(),
            priority: 0,
        };
        assert_eq!(format_cell(&col("integer"), &[&json!(3)]), json!(3));
        assert_eq!(format_cell(&col("string"), &[]), json!("<none>"));
        let ts = json!(crate::time::format_rfc3339(now_secs() - 300));
        assert_eq!(format_cell(&col("date"), &[&ts]), json!("5m"));
    }
}

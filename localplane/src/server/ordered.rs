//! JSON the way the real server writes it: `kind`, `apiVersion`, `metadata` first (Go's field
//! order for typed objects, lists, Status and Table), then the other fields; items of lists
//! and the object of a watch event likewise. serde_json's map sorts keys, which would put
//! `data` before `kind`.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

const HEAD: [&str; 3] = ["kind", "apiVersion", "metadata"];

/// An object written with the head fields first; nested `items` and `object` likewise.
pub struct Ordered<'a>(pub &'a Value);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(m) = self.0 else {
            return self.0.serialize(s);
        };
        let mut map = s.serialize_map(Some(m.len()))?;
        for k in HEAD {
            if let Some(v) = m.get(k) {
                map.serialize_entry(k, v)?;
            }
        }
        for (k, v) in m.iter().filter(|(k, _)| !HEAD.contains(&k.as_str())) {
            match (k.as_str(), v) {
                ("items", Value::Array(items)) => {
                    let items: Vec<Ordered<'_>> = items.iter().map(Ordered).collect();
                    map.serialize_entry(k, &items)?;
                }
                _ => map.serialize_entry(k, v)?,
            }
        }
        map.end()
    }
}

/// A watch event line: `type` then `object`, as the real server writes it.
pub struct Event<'a> {
    pub etype: &'a str,
    pub object: &'a Value,
}

impl Serialize for Event<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("type", self.etype)?;
        map.serialize_entry("object", &Ordered(self.object))?;
        map.end()
    }
}

pub fn to_string(v: &Value) -> String {
    serde_json::to_string(&Ordered(v)).unwrap_or_else(|_| v.to_string())
}

pub fn event_line(etype: &str, object: &Value) -> String {
    serde_json::to_string(&Event { etype, object }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn head_fields_come_first() {
        let cm = json!({"apiVersion": "v1", "data": {"a": "1"}, "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(
            to_string(&cm),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"},"data":{"a":"1"}}"#
        );
        let list = json!({"apiVersion": "v1", "items": [cm], "kind": "ConfigMapList", "metadata": {}});
        assert!(
            to_string(&list)
                .starts_with(r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":[{"kind":"ConfigMap""#)
        );
        assert!(
            event_line("ADDED", &json!({"apiVersion": "v1", "kind": "X"}))
                .starts_with(r#"{"type":"ADDED","object":{"kind":"X""#)
        );
    }
}

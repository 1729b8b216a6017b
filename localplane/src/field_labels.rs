//! What a field selector's label means for a kind: the JSON path it reads and the value it has
//! when the field is absent. The real server builds field sets from typed objects, so an absent
//! bool reads "false" and an absent number "0" (`spec.unschedulable==false` matches a node
//! without the field); a few labels also differ from the JSON path (`status.successful`).
//! Those of built-in kinds are their strategies' `field_labels`.

use serde_json::Value;

use crate::registry::ResourceType;

/// The JSON path a label reads, and the value an absent field compares as. For a converted
/// view (events.k8s.io Events) the path is in the stored object, which is what is matched.
pub fn resolve(rt: &ResourceType, label: &str) -> (String, String) {
    let (strategy, label) = match rt.conversion {
        Some(c) => {
            let (g, k) = c.stored_group_kind();
            (crate::strategy::builtin(g, k), c.stored_field_label(label))
        }
        None => (rt.strategy, label.to_string()),
    };
    if let Some(known) = strategy.field_labels().iter().find(|l| l.label == label) {
        return (known.path.to_string(), known.zero.to_string());
    }
    let zero = rt.schema.as_deref().map(|s| schema_zero(s, &label)).unwrap_or_default();
    (label, zero.to_string())
}

/// The zero value of the field at `label` in a custom resource's schema.
fn schema_zero(schema: &Value, label: &str) -> &'static str {
    let mut node = schema;
    for seg in label.split('.') {
        match node.pointer(&format!("/properties/{seg}")) {
            Some(next) => node = next,
            None => return "",
        }
    }
    match node.get("type").and_then(Value::as_str) {
        Some("boolean") => "false",
        Some("integer" | "number") => "0",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn zero_values_come_from_the_kind() {
        let r = Registry::with_builtins();
        let nodes = r.lookup("", "v1", "nodes").unwrap();
        assert_eq!(resolve(&nodes, "spec.unschedulable"), ("spec.unschedulable".into(), "false".into()));
        assert_eq!(resolve(&nodes, "metadata.name").1, "");
        let jobs = r.lookup("batch", "v1", "jobs").unwrap();
        assert_eq!(resolve(&jobs, "status.successful"), ("status.succeeded".into(), "0".into()));
        let events = r.lookup("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(resolve(&events, "regarding.name").0, "involvedObject.name");
        assert_eq!(resolve(&events, "source").0, "source.component");
        let mut custom = (*nodes).clone();
        custom.schema = Some(Arc::new(json!({"properties": {"spec": {"properties": {
            "on": {"type": "boolean"}, "size": {"type": "integer"}, "name": {"type": "string"}}}}})));
        assert_eq!(resolve(&custom, "spec.on").1, "false");
        assert_eq!(resolve(&custom, "spec.size").1, "0");
        assert_eq!(resolve(&custom, "spec.name").1, "");
    }
}

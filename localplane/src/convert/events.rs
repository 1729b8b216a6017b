//! core `v1` Event <-> `events.k8s.io/v1` Event. The two are views of one object on a real
//! server (k8s.io/kubernetes `pkg/apis/events/v1/conversion.go`): the events API renamed the
//! fields below and kept the rest (`metadata`, `eventTime`, `series`, `action`, `reason`,
//! `related`, `type`, `reportingInstance`). Fields the target version does not have are
//! dropped, as a typed conversion drops them.

use serde_json::{Map, Value};

/// (core v1 field, events.k8s.io/v1 field).
const RENAMED: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

const SHARED: &[&str] =
    &["metadata", "eventTime", "series", "action", "reason", "related", "type", "reportingInstance"];

/// Renames the fields of `obj` from one side of `RENAMED` to the other and sets the type.
fn convert(obj: &Value, to_events: bool, api_version: &str) -> Value {
    let Some(fields) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    out.insert("kind".into(), Value::from("Event"));
    out.insert("apiVersion".into(), Value::from(api_version));
    for (k, v) in fields {
        let renamed = RENAMED.iter().find_map(|(core, events)| match to_events {
            true if k == core => Some(*events),
            false if k == events => Some(*core),
            _ => None,
        });
        match renamed {
            Some(name) => {
                out.insert(name.into(), v.clone());
            }
            None if SHARED.contains(&k.as_str()) => {
                out.insert(k.clone(), v.clone());
            }
            None => {}
        }
    }
    Value::Object(out)
}

pub fn core_to_events_v1(core: &Value) -> Value {
    convert(core, true, "events.k8s.io/v1")
}

/// A body sent to `events.k8s.io/v1`. One that names another type is left as it is, so the
/// store refuses it with the usual type mismatch.
pub fn events_v1_to_core(events: Value) -> Value {
    let names_other_type =
        |field: &str, want: &str| events.get(field).and_then(Value::as_str).is_some_and(|v| v != want);
    if !events.is_object() || names_other_type("apiVersion", "events.k8s.io/v1") || names_other_type("kind", "Event") {
        return events;
    }
    convert(&events, false, "v1")
}

/// The core field selector label for an events.k8s.io/v1 one (`regarding.name` ->
/// `involvedObject.name`, `reportingController` -> `reportingComponent`).
pub fn core_field_label(label: &str) -> String {
    if let Some(rest) = label.strip_prefix("regarding.") {
        return format!("involvedObject.{rest}");
    }
    if label == "reportingController" {
        return "reportingComponent".into();
    }
    label.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn recorder_event() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "p.1", "namespace": "ns"},
            "eventTime": "2026-11-30T10:00:00.000000Z",
            "series": {"count": 3, "lastObservedTime": "2026-11-30T10:05:00.000000Z"},
            "regarding": {"kind": "TrainingPipeline", "name": "p", "namespace": "ns", "uid": "u"},
            "related": {"kind": "Job", "name": "p-1"},
            "note": "run p-1 started", "reason": "RunStarted", "action": "Reconcile", "type": "Normal",
            "reportingController": "trainloop", "reportingInstance": "trainloop-0",
            "deprecatedSource": {"component": "trainloop"},
            "deprecatedFirstTimestamp": "2026-11-30T10:00:00Z",
            "deprecatedLastTimestamp": "2026-11-30T10:05:00Z",
            "deprecatedCount": 3
        })
    }

    #[test]
    fn events_v1_fields_land_on_their_core_names() {
        let core = events_v1_to_core(recorder_event());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "run p-1 started");
        assert_eq!(core["reportingComponent"], "trainloop");
        assert_eq!(core["source"]["component"], "trainloop");
        assert_eq!(core["firstTimestamp"], "2026-11-30T10:00:00Z");
        assert_eq!(core["lastTimestamp"], "2026-11-30T10:05:00Z");
        assert_eq!(core["count"], 3);
        for shared in ["eventTime", "series", "related", "reason", "action", "type", "reportingInstance"] {
            assert_eq!(core[shared], recorder_event()[shared], "{shared} is kept");
        }
        assert!(core.get("note").is_none() && core.get("regarding").is_none());
    }

    #[test]
    fn a_round_trip_returns_the_same_object() {
        let ev = recorder_event();
        assert_eq!(core_to_events_v1(&events_v1_to_core(ev.clone())), ev);
    }

    #[test]
    fn fields_of_the_other_version_are_dropped() {
        let core = events_v1_to_core(json!({"metadata": {"name": "x"}, "message": "core name", "note": "n"}));
        assert_eq!(core["message"], "n");
        let served = core_to_events_v1(&json!({"metadata": {"name": "x"}, "note": "not core", "message": "m"}));
        assert_eq!(served["note"], "m");
    }

    #[test]
    fn a_body_of_another_type_is_left_for_the_store_to_refuse() {
        let core_body = json!({"apiVersion": "v1", "kind": "Event", "message": "m"});
        assert_eq!(events_v1_to_core(core_body.clone()), core_body);
    }

    #[test]
    fn field_labels_follow_the_renames() {
        assert_eq!(core_field_label("regarding.name"), "involvedObject.name");
        assert_eq!(core_field_label("regarding.uid"), "involvedObject.uid");
        assert_eq!(core_field_label("reportingController"), "reportingComponent");
        assert_eq!(core_field_label("reason"), "reason");
    }
}

//! The Table of core Events, as the real server prints them (`printEvent` in
//! k8s.io/kubernetes `pkg/printers/internalversion`): its cells are computed from several
//! fields (the last time comes from the series, the last timestamp or the event time; the
//! object is `kind/name`), which printer columns' JSON paths cannot express. Columns with
//! priority 1 show with `kubectl get events -o wide`.

use serde_json::{Value, json};

use crate::time::{human_duration, now_secs, parse_rfc3339};

const COLUMNS: &[(&str, &str, i64)] = &[
    ("Last Seen", "string", 0),
    ("Type", "string", 0),
    ("Reason", "string", 0),
    ("Object", "string", 0),
    ("Subobject", "string", 1),
    ("Source", "string", 1),
    ("Message", "string", 0),
    ("First Seen", "string", 1),
    ("Count", "integer", 1),
    ("Name", "string", 1),
];

pub fn columns() -> Vec<Value> {
    COLUMNS
        .iter()
        .map(|(name, type_, priority)| {
            let format = if *name == "Name" { "name" } else { "" };
            json!({"name": name, "type": type_, "format": format, "description": "", "priority": priority})
        })
        .collect()
}

fn text<'v>(e: &'v Value, path: &str) -> &'v str {
    e.pointer(path).and_then(Value::as_str).unwrap_or("")
}

/// kubectl's "time since", `<unknown>` for an absent time.
fn since(time: &str) -> String {
    parse_rfc3339(time).map(|t| human_duration(now_secs() - t)).unwrap_or_else(|| "<unknown>".into())
}

pub fn cells(e: &Value) -> Vec<Value> {
    let first = match text(e, "/firstTimestamp") {
        "" => since(text(e, "/eventTime")),
        t => since(t),
    };
    let mut last = match text(e, "/lastTimestamp") {
        "" => first.clone(),
        t => since(t),
    };
    let mut count = e.get("count").and_then(Value::as_i64).unwrap_or(0);
    if e.get("series").is_some_and(Value::is_object) {
        last = since(text(e, "/series/lastObservedTime"));
        count = e.pointer("/series/count").and_then(Value::as_i64).unwrap_or(0);
    } else if count == 0 {
        // Events of the events.k8s.io API carry no count when they happened once.
        count = 1;
    }
    let kind = text(e, "/involvedObject/kind").to_lowercase();
    let object = match text(e, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let mut source = match text(e, "/source/component") {
        "" => text(e, "/reportingComponent").to_string(),
        c => c.to_string(),
    };
    let host = match text(e, "/source/host") {
        "" => text(e, "/reportingInstance"),
        h => h,
    };
    if !host.is_empty() {
        source = format!("{source}, {host}");
    }
    vec![
        json!(last),
        json!(text(e, "/type")),
        json!(text(e, "/reason")),
        json!(object),
        json!(text(e, "/involvedObject/fieldPath")),
        json!(source),
        json!(text(e, "/message").trim()),
        json!(first),
        json!(count),
        json!(text(e, "/metadata/name")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339;

    #[test]
    fn a_recorder_series_prints_its_last_time_and_count() {
        let e = json!({
            "metadata": {"name": "p.1"},
            "eventTime": format_rfc3339(now_secs() - 600),
            "series": {"count": 3, "lastObservedTime": format_rfc3339(now_secs() - 60)},
            "involvedObject": {"kind": "TrainingPipeline", "name": "p"},
            "type": "Normal", "reason": "RunStarted", "message": " run p-1 started\n",
            "reportingComponent": "trainloop", "reportingInstance": "trainloop-0"
        });
        assert_eq!(
            cells(&e),
            vec![
                json!("60s"),
                json!("Normal"),
                json!("RunStarted"),
                json!("trainingpipeline/p"),
                json!(""),
                json!("trainloop, trainloop-0"),
                json!("run p-1 started"),
                json!("10m"),
                json!(3),
                json!("p.1")
            ]
        );
        assert_eq!(columns().len(), cells(&e).len());
    }

    #[test]
    fn a_core_event_uses_its_timestamps_source_and_count() {
        let e = json!({
            "firstTimestamp": format_rfc3339(now_secs() - 300), "lastTimestamp": format_rfc3339(now_secs() - 5),
            "count": 4, "involvedObject": {"kind": "Pod", "name": "x", "fieldPath": "spec.containers{c}"},
            "source": {"component": "kubelet", "host": "localplane"}
        });
        let c = cells(&e);
        assert_eq!(
            (&c[0], &c[4], &c[5], &c[7], &c[8]),
            (&json!("5s"), &json!("spec.containers{c}"), &json!("kubelet, localplane"), &json!("5m"), &json!(4))
        );
        assert_eq!(cells(&json!({}))[0], json!("<unknown>"));
        assert_eq!(cells(&json!({}))[8], json!(1), "a single event counts once");
    }
}

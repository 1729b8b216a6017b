//! `pods/<name>/eviction`: deletes a pod unless a PodDisruptionBudget forbids it, with the real
//! server's rules: pods that are pending, finished or already deleting are evicted regardless;
//! more than one matching budget is an error; otherwise the budget's healthy count must stay at
//! or above what it needs. localplane has no disruption controller, so the budget's numbers are
//! computed from the pods at the time of the request rather than read from its status.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::server::errors::{ApiError, ApiResult};
use crate::store::State;
use crate::store::write::DeleteOptions;

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending")
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| {
        cs.iter()
            .any(|c| c.get("type").and_then(Value::as_str) == Some("Ready") && c.get("status") == Some(&json!("True")))
    })
}

fn deleting(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_some()
}

/// Whether a label selector object matches `labels` (policy/v1: an empty selector matches all).
pub fn selector_matches(sel: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let by_labels =
        sel.get("matchLabels").and_then(Value::as_object).is_none_or(|m| m.iter().all(|(k, v)| get(k) == v.as_str()));
    let by_expressions = sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten().all(|e| {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> =
            e.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

/// An int-or-percent of `total`, rounded up as the disruption controller does.
fn scaled(v: &Value, total: i64) -> i64 {
    match v {
        Value::String(s) => {
            let pct = s.trim_end_matches('%').parse::<i64>().unwrap_or(0);
            (pct * total + 99) / 100
        }
        other => other.as_i64().unwrap_or(0),
    }
}

/// (healthy, desired healthy) for a budget over its matching pods.
fn budget_counts(pdb: &Value, pods: &[Arc<Value>]) -> (i64, i64) {
    let expected = pods.iter().filter(|p| !matches!(phase(p), "Succeeded" | "Failed")).count() as i64;
    let healthy = pods.iter().filter(|p| is_ready(p) && !deleting(p)).count() as i64;
    let desired = if let Some(min) = pdb.pointer("/spec/minAvailable") {
        scaled(min, expected)
    } else if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
        (expected - scaled(max, expected)).max(0)
    } else {
        0
    };
    (healthy, desired)
}

/// Evicts `name` in `ns`; the answer is a Success Status (HTTP 201), as from the real server.
pub fn evict(st: &mut State, ns: &str, name: &str, opts: &DeleteOptions) -> ApiResult<Value> {
    let pods_type = st.registry.get_key("/pods").ok_or_else(|| ApiError::internal("no pods"))?;
    let pod = st.get(&pods_type, ns, name).ok_or_else(|| ApiError::not_found("pods", name))?;
    let exempt = matches!(phase(&pod), "Pending" | "Succeeded" | "Failed") || deleting(&pod);
    if !exempt && let Some(pdb_type) = st.registry.get_key("policy/poddisruptionbudgets") {
        let labels = pod.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
        let budgets: Vec<Arc<Value>> = st
            .list(&pdb_type, Some(ns))
            .into_iter()
            .filter(|b| b.pointer("/spec/selector").is_some_and(|s| selector_matches(s, &labels)))
            .collect();
        if budgets.len() > 1 {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some(pdb) = budgets.first() {
            let selector = pdb.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            let covered: Vec<Arc<Value>> = st
                .list(&pods_type, Some(ns))
                .into_iter()
                .filter(|p| selector_matches(&selector, p.pointer("/metadata/labels").unwrap_or(&json!({}))))
                .collect();
            let (healthy, desired) = budget_counts(pdb, &covered);
            let always = pdb.pointer("/spec/unhealthyPodEvictionPolicy").and_then(Value::as_str) == Some("AlwaysAllow");
            let allowed = if is_ready(&pod) { healthy > desired } else { always || healthy >= desired };
            if !allowed {
                let mut e = ApiError::new(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                );
                e.details = Some(json!({"causes": [{"reason": "DisruptionBudget", "message": format!(
                    "The disruption budget {} needs {desired} healthy pods and has {healthy} currently",
                    crate::store::name_of(pdb))}]}));
                return Err(e);
            }
        }
    }
    st.delete(&pods_type, ns, name, opts)?;
    Ok(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_and_budget_arithmetic() {
        let labels = json!({"app": "web", "tier": "a"});
        assert!(selector_matches(&json!({}), &labels));
        assert!(selector_matches(&json!({"matchLabels": {"app": "web"}}), &labels));
        assert!(!selector_matches(&json!({"matchLabels": {"app": "db"}}), &labels));
        assert!(selector_matches(
            &json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}),
            &labels
        ));
        assert_eq!(scaled(&json!("50%"), 3), 2);
        assert_eq!(scaled(&json!(1), 3), 1);
        let ready =
            Arc::new(json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}));
        let pods = vec![ready.clone(), ready];
        assert_eq!(budget_counts(&json!({"spec": {"minAvailable": 1}}), &pods), (2, 1));
        assert_eq!(budget_counts(&json!({"spec": {"maxUnavailable": "50%"}}), &pods), (2, 1));
    }
}

//! Rollout history annotations, as the real Deployment controller keeps them
//! (pkg/controller/deployment/util `SetNewReplicaSetAnnotations`): the ReplicaSet of the current
//! template carries `deployment.kubernetes.io/revision` = the highest revision of the other
//! ReplicaSets + 1 (so a template that returns to an old ReplicaSet gives it a new number, its
//! former ones kept in `revision-history`), the Deployment's own annotations (such as
//! `kubernetes.io/change-cause`), and at creation the desired and max replicas. The Deployment
//! carries the revision of its current ReplicaSet. `kubectl rollout history` reads these.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// Deployment annotations that are not copied to its ReplicaSets.
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// A ReplicaSet's revision (0 when it has none or it does not parse).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// The annotations of the new ReplicaSet that must change (all of them for one not created yet,
/// `existing` None). `revision` is the highest revision of the old ReplicaSets + 1; `replicas`
/// the desired and max replicas, recorded at creation only.
pub fn new_set_annotations(
    d: &Deployment,
    existing: Option<&ReplicaSet>,
    revision: i64,
    replicas: (i32, i32),
) -> BTreeMap<String, String> {
    let current = existing.and_then(|rs| rs.metadata.annotations.clone()).unwrap_or_default();
    let mut changes = BTreeMap::new();
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if !NOT_COPIED.contains(&k.as_str()) && current.get(k) != Some(v) {
            changes.insert(k.clone(), v.clone());
        }
    }
    let old = current.get(REVISION);
    let old_number = match old.map(|r| r.parse::<i64>()) {
        Some(Err(_)) => return changes, // as the real controller: an unreadable revision stays
        Some(Ok(n)) => n,
        None => 0,
    };
    if old_number < revision {
        changes.insert(REVISION.to_string(), revision.to_string());
        // Rolled back to this ReplicaSet: its former revision joins the history.
        if let Some(old) = old {
            let history = match current.get(REVISION_HISTORY).filter(|h| !h.is_empty()) {
                Some(h) => format!("{h},{old}"),
                None => old.clone(),
            };
            changes.insert(REVISION_HISTORY.to_string(), history);
        }
    }
    if existing.is_none() {
        changes.insert(DESIRED_REPLICAS.to_string(), replicas.0.to_string());
        changes.insert(MAX_REPLICAS.to_string(), replicas.1.to_string());
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn annotated(pairs: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            annotations: Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn a_returning_template_takes_the_next_revision_and_keeps_its_old_one() {
        let d = Deployment {
            metadata: annotated(&[
                ("kubernetes.io/change-cause", "back to v1"),
                ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
                (REVISION, "2"),
            ]),
            ..Default::default()
        };
        let created = new_set_annotations(&d, None, 1, (2, 3));
        assert_eq!(created.get(REVISION).map(String::as_str), Some("1"));
        assert_eq!(created.get("kubernetes.io/change-cause").map(String::as_str), Some("back to v1"));
        assert_eq!((created.get(DESIRED_REPLICAS), created.get(MAX_REPLICAS)), (Some(&"2".into()), Some(&"3".into())));
        assert!(!created.contains_key("kubectl.kubernetes.io/last-applied-configuration"));

        let old = ReplicaSet {
            metadata: annotated(&[(REVISION, "1"), ("kubernetes.io/change-cause", "v1")]),
            ..Default::default()
        };
        let changes = new_set_annotations(&d, Some(&old), 3, (2, 3));
        assert_eq!(changes.get(REVISION).map(String::as_str), Some("3"));
        assert_eq!(changes.get(REVISION_HISTORY).map(String::as_str), Some("1"));
        assert_eq!(changes.get("kubernetes.io/change-cause").map(String::as_str), Some("back to v1"));
        assert!(!changes.contains_key(DESIRED_REPLICAS));
        let again = ReplicaSet { metadata: annotated(&[(REVISION, "3"), (REVISION_HISTORY, "1")]), ..old };
        assert_eq!(new_set_annotations(&d, Some(&again), 5, (2, 3)).get(REVISION_HISTORY).unwrap(), "1,3");
        let current = ReplicaSet {
            metadata: annotated(&[(REVISION, "3"), ("kubernetes.io/change-cause", "back to v1")]),
            ..Default::default()
        };
        assert!(new_set_annotations(&d, Some(&current), 3, (2, 3)).is_empty(), "nothing to write");
    }
}

//! What a DELETE answers. A real API server answers an object removed at once with a `Status`
//! (`status: Success`, details naming it and its UID), and an object that stays (finalizers,
//! a foreground deletion waiting for dependents) with the object itself: clients tell "gone"
//! from "still deleting" by the kind of the body. Some stores always answer with the object
//! (`ReturnDeletedObject` in the real registries of pods, services and service accounts;
//! namespaces are always finalized), and so does localplane for those kinds (their strategies
//! say so).

use serde_json::{Map, Value, json};

use crate::registry::ResourceType;
use crate::store::write::Deletion;

/// The `Status` of an object removed at once; `details.kind` is the resource (plural), as the
/// real server sets it.
pub fn success_status(rt: &ResourceType, gone: &Value) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), json!(crate::store::name_of(gone)));
    if !rt.group.is_empty() {
        details.insert("group".into(), json!(rt.group));
    }
    details.insert("kind".into(), json!(rt.plural));
    details.insert("uid".into(), json!(crate::store::uid_of(gone)));
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// The body of a DELETE response: the object while it is kept, else a Status (or the object,
/// for the kinds above).
pub fn body(rt: &ResourceType, outcome: &Deletion) -> Option<Value> {
    match outcome {
        Deletion::Pending(_) => None,
        Deletion::Removed(_) if rt.strategy.returns_deleted_object() => None,
        Deletion::Removed(gone) => Some(success_status(rt, gone)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use std::sync::Arc;

    #[test]
    fn removed_objects_answer_with_a_status_naming_them() {
        let r = Registry::with_builtins();
        let deploys = r.lookup("apps", "v1", "deployments").unwrap();
        let obj = Arc::new(json!({"metadata": {"name": "web", "uid": "u1"}}));
        let s = body(&deploys, &Deletion::Removed(obj.clone())).unwrap();
        assert_eq!(s["status"], "Success");
        assert_eq!(s["details"], json!({"name": "web", "group": "apps", "kind": "deployments", "uid": "u1"}));
        assert!(body(&deploys, &Deletion::Pending(obj.clone())).is_none(), "kept objects answer with themselves");
        let pods = r.lookup("", "v1", "pods").unwrap();
        assert!(body(&pods, &Deletion::Removed(obj)).is_none(), "pods answer with the pod");
        let cms = r.lookup("", "v1", "configmaps").unwrap();
        let s = success_status(&cms, &json!({"metadata": {"name": "c", "uid": "u2"}}));
        assert!(s["details"].get("group").is_none(), "no group for the core group");
    }
}

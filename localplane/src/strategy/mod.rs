//! Per-kind strategies, as kube-apiserver's registries have them: what a kind does beyond the
//! generic store's rules (defaults, server-set fields and checks on create and update, what a
//! write keeps beside the object, what a delete takes along or frees, how a DELETE answers,
//! field-selector labels). Each kind's strategy is a small file; `builtin` is the one table that
//! names them, read once when the registry builds a type, so the store, the server and the
//! selectors call `rt.strategy` and never branch on a kind's name.

mod crd;
mod deployment;
mod event;
mod job;
mod namespace;
mod node;
mod pod;
mod replica_set;
mod secret;
mod service;
mod service_account;

use serde_json::Value;

use crate::server::errors::ApiResult;
use crate::store::State;

/// A field-selector label whose path or zero value is not "same path, empty string".
pub struct FieldLabel {
    pub label: &'static str,
    /// Where the label reads in the stored object.
    pub path: &'static str,
    /// What an absent field compares as (the real server builds field sets from typed objects).
    pub zero: &'static str,
}

/// The hooks the generic store and server call; each defaults to "nothing special".
pub trait Strategy: Send + Sync {
    /// Defaults set on create and update of a built-in kind (custom resources are defaulted by
    /// their schema instead).
    fn default_fields(&self, _obj: &mut Value) {}

    /// PrepareForCreate (`old` None) / PrepareForUpdate and Validate: checks and server-set
    /// fields, under the store lock, before the write. Holds nothing: a dry run stores nothing.
    fn prepare(&self, _state: &mut State, _obj: &mut Value, _old: Option<&Value>) -> ApiResult<()> {
        Ok(())
    }

    /// After the object was stored (create or update): what the store keeps beside it.
    fn stored(&self, _state: &mut State, _obj: &Value) {}

    /// Before an object whose finalizers are all gone leaves the store: what goes with it.
    fn removing(&self, _state: &mut State, _old: &Value) {}

    /// After the object left the store: what it held is free again.
    fn removed(&self, _state: &mut State, _old: &Value) {}

    /// A DELETE that removes the object answers with the object rather than a `Status` (the
    /// real registries' `ReturnDeletedObject`).
    fn returns_deleted_object(&self) -> bool {
        false
    }

    /// Whether DELETE on the whole collection is served.
    fn deletes_collections(&self) -> bool {
        true
    }

    fn field_labels(&self) -> &'static [FieldLabel] {
        &[]
    }
}

/// Kinds with nothing special (custom resources among them).
pub struct Generic;
impl Strategy for Generic {}

/// Every built-in kind with a strategy of its own: `(group, kind, strategy)`.
const BUILTIN: &[(&str, &str, &dyn Strategy)] = &[
    ("", "Event", &event::Event),
    ("", "Namespace", &namespace::Namespace),
    ("", "Node", &node::Node),
    ("", "Pod", &pod::Pod),
    ("", "Secret", &secret::Secret),
    ("", "Service", &service::Service),
    ("", "ServiceAccount", &service_account::ServiceAccount),
    ("apps", "Deployment", &deployment::Deployment),
    ("apps", "ReplicaSet", &replica_set::ReplicaSet),
    ("batch", "Job", &job::Job),
    ("apiextensions.k8s.io", "CustomResourceDefinition", &crd::CustomResourceDefinition),
];

/// The strategy of a built-in kind (`Generic` for the rest).
pub fn builtin(group: &str, kind: &str) -> &'static dyn Strategy {
    BUILTIN.iter().find(|(g, k, _)| *g == group && *k == kind).map_or(&Generic, |(_, _, s)| *s)
}

impl std::fmt::Debug for dyn Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Strategy")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn every_strategy_of_the_table_is_a_served_type_s() {
        let registry = Registry::with_builtins();
        for (group, kind, strategy) in BUILTIN {
            let rt = registry.all().find(|t| t.group == *group && t.kind == *kind);
            let rt = rt.unwrap_or_else(|| panic!("{group}/{kind} is not served"));
            assert!(std::ptr::addr_eq(rt.strategy, *strategy), "{group}/{kind} has another strategy");
        }
        let cms = registry.lookup("", "v1", "configmaps").unwrap();
        assert!(std::ptr::addr_eq(cms.strategy, &Generic as &dyn Strategy));
    }

    #[test]
    fn what_a_delete_answers_and_which_collections_can_be_deleted() {
        let registry = Registry::with_builtins();
        let strategy = |plural: &str| {
            let group = if plural == "deployments" { "apps" } else { "" };
            registry.lookup(group, "v1", plural).unwrap().strategy
        };
        for plural in ["pods", "services", "serviceaccounts", "namespaces"] {
            assert!(strategy(plural).returns_deleted_object(), "{plural}");
        }
        assert!(!strategy("deployments").returns_deleted_object());
        assert!(!strategy("configmaps").returns_deleted_object());
        assert!(!strategy("namespaces").deletes_collections());
        assert!(strategy("pods").deletes_collections());
        let labels = |s: &dyn Strategy| s.field_labels().iter().map(|l| (l.label, l.zero)).collect::<Vec<_>>();
        assert_eq!(labels(strategy("pods")), [("spec.hostNetwork", "false")]);
        assert_eq!(labels(builtin("apps", "ReplicaSet")), [("status.replicas", "0")]);
        assert!(labels(strategy("configmaps")).is_empty());
    }
}

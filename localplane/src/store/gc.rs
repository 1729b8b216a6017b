//! Owner-reference garbage collection, done synchronously inside the write that removes an
//! owner (the real collector is asynchronous; clients only observe the same end states sooner).
//! Background: dependents with no remaining owner are deleted, others lose the dangling
//! reference. Foreground: the owner waits (finalizer `foregroundDeletion`) until no dependent
//! with `blockOwnerDeletion` remains. Orphan: dependents lose their reference to the owner.

use std::sync::Arc;

use serde_json::{Value, json};

use super::write::Propagation;
use super::{EventType, State, owner_uids, uid_of};

impl State {
    /// Called after `gone` was removed from the store.
    pub fn collect_garbage(&mut self, gone: &Value) {
        let uid = uid_of(gone).to_string();
        for dep_uid in self.dependents_of(&uid) {
            let Some((rt, dep)) = self.locate(&dep_uid) else {
                continue;
            };
            let live_owners = owner_uids(&dep).into_iter().filter(|o| *o != uid && self.locate(o).is_some()).count();
            if live_owners == 0 {
                self.delete_object(&rt, &dep, Propagation::Background);
            } else {
                self.drop_owner_ref(&rt, &dep, &uid);
            }
        }
        // An owner deleted in the foreground may have been waiting for this dependent.
        for owner in owner_uids(gone) {
            self.finish_foreground(&owner);
        }
    }

    /// A dependent created after all its owners were deleted: the real collector finds its
    /// owners absent and deletes it (in the background; here at once, after the create).
    pub fn collect_if_orphaned(&mut self, rt: &Arc<crate::registry::ResourceType>, obj: &Arc<Value>) {
        let owners = owner_uids(obj);
        if !owners.is_empty() && owners.iter().all(|o| self.locate(o).is_none()) {
            self.delete_object(rt, obj, Propagation::Background);
        }
    }

    fn drop_owner_ref(&mut self, rt: &Arc<crate::registry::ResourceType>, dep: &Value, owner: &str) {
        let mut d = dep.clone();
        if let Some(refs) = d.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
            refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner));
            if refs.is_empty()
                && let Some(m) = d.get_mut("metadata").and_then(Value::as_object_mut)
            {
                m.remove("ownerReferences");
            }
        }
        self.put(rt, d, EventType::Modified);
    }

    pub fn orphan_dependents(&mut self, owner: &str) {
        for dep_uid in self.dependents_of(owner) {
            if let Some((rt, dep)) = self.locate(&dep_uid) {
                self.drop_owner_ref(&rt, &dep, owner);
            }
        }
    }

    pub fn delete_dependents(&mut self, owner: &str) {
        for dep_uid in self.dependents_of(owner) {
            if let Some((rt, dep)) = self.locate(&dep_uid)
                && dep.pointer("/metadata/deletionTimestamp").is_none()
            {
                self.delete_object(&rt, &dep, Propagation::Background);
            }
        }
    }

    /// Removes `foregroundDeletion` from `owner` once no blocking dependent remains.
    pub fn finish_foreground(&mut self, owner: &str) {
        let Some((rt, obj)) = self.locate(owner) else {
            return;
        };
        let fins: Vec<String> = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if obj.pointer("/metadata/deletionTimestamp").is_none() || !fins.iter().any(|f| f == "foregroundDeletion") {
            return;
        }
        let blocked = self.dependents_of(owner).iter().any(|d| {
            self.locate(d).is_some_and(|(_, dep)| {
                dep.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|refs| {
                    refs.iter().any(|r| {
                        r.get("uid").and_then(Value::as_str) == Some(owner)
                            && r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true)
                    })
                })
            })
        });
        if blocked {
            return;
        }
        let rest: Vec<String> = fins.into_iter().filter(|f| f != "foregroundDeletion").collect();
        let ns = super::namespace_of(&obj).to_string();
        let name = super::name_of(&obj).to_string();
        if rest.is_empty() {
            if let Some(gone) = self.remove(&rt, &ns, &name) {
                self.collect_garbage(&gone);
            }
        } else {
            let mut o = (*obj).clone();
            o["metadata"]["finalizers"] = json!(rest);
            self.put(&rt, o, EventType::Modified);
        }
    }
}

//! The versions of objects that the operator's own writes have replaced, so that a reconcile of
//! an object whose cache has not yet seen the operator's last write waits for it instead of
//! acting on what it already changed (a second write that says the same, or a 409).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use kube::api::ObjectMeta;

/// Per object (by uid): the resourceVersions it had before each of the operator's writes since
/// its cache last caught up. Only equality of resourceVersions is used, as the API allows.
/// Also the uids of the objects it deleted, until their watch says they are gone: a cache that
/// still shows one must not make it delete it again.
#[derive(Default)]
pub struct OwnWrites {
    replaced: Mutex<HashMap<String, HashSet<String>>>,
    deleted: Mutex<HashSet<String>>,
}

impl OwnWrites {
    /// The operator wrote `before` (as its cache had it); the write returned `after`.
    pub fn wrote(&self, before: &ObjectMeta, after: &ObjectMeta) {
        let (Some(uid), Some(old), Some(new)) = (&before.uid, &before.resource_version, &after.resource_version) else {
            return;
        };
        if old != new {
            let mut replaced = self.replaced.lock().unwrap_or_else(PoisonError::into_inner);
            replaced.entry(uid.clone()).or_default().insert(old.clone());
        }
    }

    /// The operator deleted the object of `meta`.
    pub fn deleted(&self, meta: &ObjectMeta) {
        if let Some(uid) = &meta.uid {
            self.deleted.lock().unwrap_or_else(PoisonError::into_inner).insert(uid.clone());
        }
    }

    /// Whether the operator already deleted the object of `cached`.
    pub fn is_deleted(&self, cached: &ObjectMeta) -> bool {
        cached.uid.as_ref().is_some_and(|uid| self.deleted.lock().unwrap_or_else(PoisonError::into_inner).contains(uid))
    }

    /// The watch says the object of `meta` is gone.
    pub fn gone(&self, meta: &ObjectMeta) {
        if let Some(uid) = &meta.uid {
            self.deleted.lock().unwrap_or_else(PoisonError::into_inner).remove(uid);
        }
    }

    /// Whether `cached` is a version one of the operator's writes has already replaced: the
    /// watch will bring the newer one, and with it another reconcile. Any other version means
    /// the cache has moved on, and the object is forgotten.
    pub fn is_behind(&self, cached: &ObjectMeta) -> bool {
        let (Some(uid), Some(version)) = (&cached.uid, &cached.resource_version) else { return false };
        let mut replaced = self.replaced.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(versions) = replaced.get(uid) else { return false };
        if versions.contains(version) {
            return true;
        }
        replaced.remove(uid);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(version: &str) -> ObjectMeta {
        ObjectMeta { uid: Some("u1".into()), resource_version: Some(version.into()), ..ObjectMeta::default() }
    }

    #[test]
    fn a_cache_is_behind_until_it_shows_a_version_the_operator_did_not_replace() {
        let writes = OwnWrites::default();
        assert!(!writes.is_behind(&meta("5")), "nothing written yet");
        writes.wrote(&meta("5"), &meta("6"));
        writes.wrote(&meta("6"), &meta("7"));
        assert!(writes.is_behind(&meta("5")));
        assert!(writes.is_behind(&meta("6")), "the first write's result is replaced by the second");
        assert!(!writes.is_behind(&meta("7")));
        assert!(!writes.is_behind(&meta("5")), "caught up once: forgotten");
    }

    #[test]
    fn a_deleted_object_is_remembered_until_its_watch_says_it_is_gone() {
        let writes = OwnWrites::default();
        assert!(!writes.is_deleted(&meta("5")));
        writes.deleted(&meta("5"));
        assert!(writes.is_deleted(&meta("5")));
        writes.gone(&meta("5"));
        assert!(!writes.is_deleted(&meta("5")));
    }

    #[test]
    fn objects_are_told_apart_by_uid() {
        let writes = OwnWrites::default();
        writes.wrote(&meta("5"), &meta("6"));
        let other = ObjectMeta { uid: Some("u2".into()), ..meta("5") };
        assert!(!writes.is_behind(&other));
    }
}

//! Which objects have a key (a label's value, the pipeline a DriftPolicy's retrain request
//! names), per namespace: the owner index the stores lack (a kube `Store` can only scan every
//! object, and 10,000 pipelines scanning 10,000 runs each is 10^8).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use kube::runtime::reflector::{Lookup, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

/// Names by `(namespace, key)`. Fed by the watch before its store, so it always holds every name
/// the store holds: a superset (a name stays when its object vanished during a relist, or under
/// its former key when the key changed), which is why a lookup reads each object from the store
/// and checks its key again.
pub struct KeyIndex<K> {
    key: fn(&K) -> Option<&str>,
    names: RwLock<HashMap<(String, String), BTreeSet<String>>>,
}

/// The value of `label` on `object`: a key for [`KeyIndex`].
pub fn label<'a, K: Resource>(object: &'a K, label: &str) -> Option<&'a str> {
    object.meta().labels.as_ref()?.get(label).map(String::as_str)
}

impl<K: Resource> KeyIndex<K> {
    /// An index by `key` (a function, not a closure: the index is built before any object).
    pub fn new(key: fn(&K) -> Option<&str>) -> Self {
        KeyIndex { key, names: RwLock::default() }
    }

    /// Follow one event of the watch.
    pub fn observe(&self, event: &watcher::Event<K>) {
        let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                if let Some(key) = self.key(object) {
                    names.entry(key).or_default().insert(object.name_any());
                }
            }
            watcher::Event::Delete(object) => {
                if let Some(key) = self.key(object)
                    && let Some(set) = names.get_mut(&key)
                {
                    set.remove(&object.name_any());
                    if set.is_empty() {
                        names.remove(&key);
                    }
                }
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }

    fn key(&self, object: &K) -> Option<(String, String)> {
        let value = (self.key)(object)?;
        Some((object.meta().namespace.clone().unwrap_or_default(), value.to_string()))
    }

    /// The objects of `store` in `namespace` whose key is `value`.
    pub fn lookup(&self, store: &Store<K>, namespace: &str, value: &str) -> Vec<Arc<K>>
    where
        K: Lookup<DynamicType = ()> + Clone + 'static,
    {
        let names = self.names.read().unwrap_or_else(PoisonError::into_inner);
        let Some(set) = names.get(&(namespace.to_string(), value.to_string())) else { return Vec::new() };
        set.iter()
            .filter_map(|name| store.get(&ObjectRef::new(name).within(namespace)))
            .filter(|object| (self.key)(object) == Some(value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::store;

    fn object(name: &str, namespace: &str, owner: &str) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.name = Some(name.into());
        object.metadata.namespace = Some(namespace.into());
        object.metadata.labels = Some([("owner".to_string(), owner.to_string())].into());
        object
    }

    fn owner(object: &ConfigMap) -> Option<&str> {
        label(object, "owner")
    }

    /// A watch as `run_controllers` wires it: the index first, then the store.
    fn feed(index: &KeyIndex<ConfigMap>, writer: &mut store::Writer<ConfigMap>, event: watcher::Event<ConfigMap>) {
        index.observe(&event);
        writer.apply_watcher_event(&event);
    }

    fn names(objects: Vec<Arc<ConfigMap>>) -> Vec<String> {
        objects.iter().map(|o| o.name_any()).collect()
    }

    #[test]
    fn finds_by_namespace_and_label_and_forgets_deleted_objects() {
        let index = KeyIndex::new(owner);
        let (reader, mut writer) = store::<ConfigMap>();
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(object("a-1", "ml", "a")),
            watcher::Event::InitApply(object("a-1", "other", "a")),
            watcher::Event::InitApply(object("b-1", "ml", "b")),
            watcher::Event::InitDone,
            watcher::Event::Apply(object("a-2", "ml", "a")),
        ] {
            feed(&index, &mut writer, event);
        }
        assert_eq!(names(index.lookup(&reader, "ml", "a")), ["a-1", "a-2"]);
        feed(&index, &mut writer, watcher::Event::Delete(object("a-1", "ml", "a")));
        assert_eq!(names(index.lookup(&reader, "ml", "a")), ["a-2"]);
        assert_eq!(names(index.lookup(&reader, "ml", "c")), Vec::<String>::new());
    }

    #[test]
    fn an_object_relabelled_or_gone_in_a_relist_is_not_returned() {
        let index = KeyIndex::new(owner);
        let (reader, mut writer) = store::<ConfigMap>();
        feed(&index, &mut writer, watcher::Event::Apply(object("a-1", "ml", "a")));
        feed(&index, &mut writer, watcher::Event::Apply(object("a-2", "ml", "a")));
        // a-1 now belongs to b; a-2 was deleted while the watch was down, so the relist omits it.
        feed(&index, &mut writer, watcher::Event::Init);
        feed(&index, &mut writer, watcher::Event::InitApply(object("a-1", "ml", "b")));
        feed(&index, &mut writer, watcher::Event::InitDone);
        assert_eq!(names(index.lookup(&reader, "ml", "a")), Vec::<String>::new());
        assert_eq!(names(index.lookup(&reader, "ml", "b")), ["a-1"]);
    }
}

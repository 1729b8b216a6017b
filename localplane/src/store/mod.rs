//! The object store: every object as JSON, one global resourceVersion counter, the event
//! history and the live event broadcast. All writes happen under one lock, so a write, its
//! resourceVersion and its event are one atomic step and watchers never see gaps.

pub mod bootstrap;
pub mod builtin_defaults;
pub mod cluster_ips;
pub mod gc;
pub mod history;
pub mod write;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::registry::{Registry, ResourceType};
use cluster_ips::ServiceRange;
pub use history::{Event, EventType, History};

/// How many events a watch can resume across, and how far a slow watcher may lag.
pub const HISTORY_EVENTS: usize = 20_000;
const BROADCAST_CAPACITY: usize = 65_536;

/// `(namespace, name)`: namespace is empty for cluster-scoped objects.
pub type ObjKey = (String, String);

pub struct State {
    pub rv: u64,
    pub registry: Registry,
    objects: HashMap<String, BTreeMap<ObjKey, Arc<Value>>>,
    /// uid -> where the object lives, for garbage collection.
    uids: HashMap<String, (String, ObjKey)>,
    /// owner uid -> dependent uids.
    dependents: HashMap<String, HashSet<String>>,
    pub history: History,
    tx: broadcast::Sender<Arc<Event>>,
    /// Services' ClusterIPs: this plane's own range, which no other plane on the machine holds.
    pub(crate) cluster_ips: ServiceRange,
}

pub struct Store {
    state: Mutex<State>,
    tx: broadcast::Sender<Arc<Event>>,
    /// Bumped by forced compaction: open watches end with an in-stream 410.
    pub compactions: tokio::sync::watch::Sender<u64>,
}

fn meta_str<'v>(obj: &'v Value, field: &str) -> Option<&'v str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name_of(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn namespace_of(obj: &Value) -> &str {
    meta_str(obj, "namespace").unwrap_or("")
}

pub fn uid_of(obj: &Value) -> &str {
    meta_str(obj, "uid").unwrap_or("")
}

pub fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| refs.iter().filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default()
}

impl Store {
    /// A store with the system namespaces; fails when no service range can be reserved.
    pub fn new() -> std::io::Result<Arc<Store>> {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        let mut state = State {
            rv: 0,
            registry: Registry::with_builtins(),
            objects: HashMap::new(),
            uids: HashMap::new(),
            dependents: HashMap::new(),
            history: History::new(HISTORY_EVENTS),
            tx: tx.clone(),
            cluster_ips: ServiceRange::reserve()?,
        };
        state.seed_namespaces();
        Ok(Arc::new(Store { state: Mutex::new(state), tx, compactions: tokio::sync::watch::channel(0).0 }))
    }

    /// The lock: a poisoned lock still holds consistent data (writes are built before commit).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to live events. Take it while holding the lock to get no gap with a snapshot.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Writes the objects a cluster always has that need the API server's port.
    pub fn bootstrap(&self, api_port: u16) {
        self.lock().bootstrap(api_port);
    }

    /// Forgets all history: watches resuming from any earlier resourceVersion get 410 Expired.
    pub fn compact(&self) {
        let mut st = self.lock();
        let rv = st.rv;
        st.history.compact(rv);
        drop(st);
        self.compactions.send_modify(|n| *n += 1);
    }
}

impl State {
    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.objects.get(&rt.key())?.get(&(ns.to_string(), name.to_string())).cloned()
    }

    /// Objects of a type, in one namespace or all, ordered by namespace and name.
    pub fn list(&self, rt: &ResourceType, ns: Option<&str>) -> Vec<Arc<Value>> {
        let Some(m) = self.objects.get(&rt.key()) else {
            return vec![];
        };
        match ns {
            Some(ns) => m
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
            None => m.values().cloned().collect(),
        }
    }

    pub fn count(&self, rt: &ResourceType) -> usize {
        self.objects.get(&rt.key()).map_or(0, |m| m.len())
    }

    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.objects.get("/namespaces").is_some_and(|m| m.contains_key(&(String::new(), ns.to_string())))
    }

    pub fn locate(&self, uid: &str) -> Option<(Arc<ResourceType>, Arc<Value>)> {
        let (key, (ns, name)) = self.uids.get(uid)?;
        let rt = self.registry.get_key(key)?;
        let obj = self.get(&rt, ns, name)?;
        Some((rt, obj))
    }

    pub fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents.get(uid).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    fn emit(&mut self, etype: EventType, rt: &ResourceType, ns: &str, object: Arc<Value>) {
        let e = Arc::new(Event { rv: self.rv, etype, key: rt.key(), namespace: ns.to_string(), object });
        self.history.push(e.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(e);
    }

    /// Stores `obj` at a new resourceVersion and emits `etype`.
    pub fn put(&mut self, rt: &ResourceType, mut obj: Value, etype: EventType) -> Arc<Value> {
        self.rv += 1;
        if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            md.insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        }
        let ns = namespace_of(&obj).to_string();
        let name = name_of(&obj).to_string();
        let uid = uid_of(&obj).to_string();
        let obj = Arc::new(obj);
        let key = (ns.clone(), name);
        let previous = self.objects.entry(rt.key()).or_default().insert(key.clone(), obj.clone());
        if let Some(prev) = previous {
            self.unindex_owners(&prev);
        }
        self.uids.insert(uid.clone(), (rt.key(), key));
        for owner in owner_uids(&obj) {
            self.dependents.entry(owner).or_default().insert(uid.clone());
        }
        self.emit(etype, rt, &ns, obj.clone());
        obj
    }

    fn unindex_owners(&mut self, obj: &Value) {
        let uid = uid_of(obj);
        for owner in owner_uids(obj) {
            if let Some(set) = self.dependents.get_mut(&owner) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&owner);
                }
            }
        }
    }

    /// Removes an object at a new resourceVersion and emits DELETED (no garbage collection).
    pub fn remove(&mut self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        let old = self.objects.get_mut(&rt.key())?.remove(&(ns.to_string(), name.to_string()))?;
        self.unindex_owners(&old);
        rt.strategy.removed(self, &old);
        self.uids.remove(uid_of(&old));
        self.rv += 1;
        let mut gone = (*old).clone();
        if let Some(md) = gone.get_mut("metadata").and_then(Value::as_object_mut) {
            md.insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        }
        let gone = Arc::new(gone);
        self.emit(EventType::Deleted, rt, ns, gone.clone());
        Some(gone)
    }

    /// Drops every object of a type (its CRD was deleted), emitting DELETED for each.
    pub fn remove_all(&mut self, rt: &ResourceType) -> Vec<Arc<Value>> {
        let keys: Vec<ObjKey> = self.objects.get(&rt.key()).map(|m| m.keys().cloned().collect()).unwrap_or_default();
        keys.into_iter().filter_map(|(ns, name)| self.remove(rt, &ns, &name)).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::Ipv4Addr;

    use serde_json::json;

    use super::*;
    use crate::schema::FieldValidation;

    fn cluster_ip(svc: &Value) -> Ipv4Addr {
        svc.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap().parse().unwrap()
    }

    fn create_services(store: &Store, count: usize) -> Vec<Ipv4Addr> {
        let mut state = store.lock();
        let rt = state.registry.by_kind("v1", "Service").unwrap();
        (0..count)
            .map(|i| {
                let svc = json!({"metadata": {"name": format!("s{i}")}, "spec": {"ports": [{"port": 80}]}});
                cluster_ip(&state.create(&rt, "default", svc, FieldValidation::Strict, false).unwrap())
            })
            .collect()
    }

    #[test]
    fn two_planes_in_one_process_have_ranges_of_their_own() {
        let (a, b) = (Store::new().unwrap(), Store::new().unwrap());
        let (range_a, range_b) = (a.lock().cluster_ips.cidr(), b.lock().cluster_ips.cidr());
        assert_ne!(range_a, range_b);
        let from_a: BTreeSet<Ipv4Addr> = create_services(&a, 200).into_iter().collect();
        let from_b: BTreeSet<Ipv4Addr> = create_services(&b, 200).into_iter().collect();
        assert_eq!((from_a.len(), from_b.len()), (200, 200));
        assert!(from_a.is_disjoint(&from_b));
        let second = |range: &str| range.split('.').nth(1).unwrap().parse::<u8>().unwrap();
        assert!(from_a.iter().all(|ip| ip.octets()[1] == second(&range_a)));
        assert!(from_b.iter().all(|ip| ip.octets()[1] == second(&range_b)));
    }

    #[test]
    fn the_kubernetes_service_has_the_first_address_of_the_range() {
        let store = Store::new().unwrap();
        store.bootstrap(6443);
        let state = store.lock();
        let rt = state.registry.by_kind("v1", "Service").unwrap();
        let kubernetes = state.get(&rt, "default", "kubernetes").unwrap();
        assert_eq!(cluster_ip(&kubernetes), state.cluster_ips.first());
        assert_eq!(kubernetes["spec"]["clusterIPs"], json!([state.cluster_ips.first().to_string()]));
    }
}

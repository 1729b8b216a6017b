//! Small helpers shared by the controllers.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Five random characters, as `generateName` and the workload controllers append.
pub fn random_suffix() -> String {
    uuid::Uuid::new_v4().as_bytes()[..5].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// Encodes a hash with the same alphabet (the pod-template-hash label value).
pub fn safe_encode(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(ALPHABET[(n % ALPHABET.len() as u64) as usize]);
        n /= ALPHABET.len() as u64;
        if n == 0 || out.len() >= 10 {
            break;
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// FNV-1a, stable across runs and versions (std's hasher is not).
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// A controller owner reference to `owner`.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> Option<OwnerReference> {
    owner.controller_owner_ref(&())
}

/// Whether `obj` is controlled by the object with `uid`.
pub fn controlled_by(refs: Option<&Vec<OwnerReference>>, uid: &str) -> bool {
    refs.into_iter().flatten().any(|r| r.controller == Some(true) && r.uid == uid)
}

/// Maps a child to its controller of kind `K` (for `Controller::watches`).
pub fn owner_of<K: Resource<DynamicType = ()>>(
    refs: Option<&Vec<OwnerReference>>,
    namespace: Option<&str>,
) -> Option<ObjectRef<K>> {
    let kind = K::kind(&());
    let api_version = K::api_version(&());
    refs.into_iter()
        .flatten()
        .find(|r| r.controller == Some(true) && r.kind == kind && r.api_version == api_version)
        .map(|r| {
            let mut o = ObjectRef::new(&r.name);
            if let Some(ns) = namespace {
                o = o.within(ns);
            }
            o
        })
}

/// A Controller of every `K` that also reconciles a `K` when a child `C` it controls changes.
///
/// Each watch backs off on its own and starts over after any successful list or event; the
/// Controller's trigger stream does not back off again. kube's `Controller::new` backs off the
/// merged trigger stream instead, where an empty relist yields nothing to reset it: under
/// repeated 410 Gone its pause grows to 30 s and holds every trigger (a new Job waited that long
/// for its pod), which no real controller does.
pub fn controller_with_children<K, C>(client: &kube::Client) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    C: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let parents = watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let children =
        watcher(Api::<C>::all(client.clone()), watcher::Config::default()).default_backoff().touched_objects();
    Controller::for_stream(parents, store)
        .watches_stream(children, |child: C| {
            owner_of::<K>(child.meta().owner_references.as_ref(), child.meta().namespace.as_deref())
        })
        .trigger_backoff(NoBackoff)
}

/// No pause at all: for a stream whose sources back off themselves.
struct NoBackoff;

impl Iterator for NoBackoff {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<std::time::Duration> {
        Some(std::time::Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for NoBackoff {
    fn reset(&mut self) {}
}

/// A label selector (matchLabels and matchExpressions) as a query string.
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending")
}

pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

pub fn is_deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Whether a pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When the pod became ready, if it is.
pub fn ready_since(pod: &Pod) -> Option<k8s_openapi::jiff::Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0).unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))
}

/// Whether the pod is available: ready for at least `min_ready_seconds`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: k8s_openapi::jiff::Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(since) => now.as_second() - since.as_second() >= min_ready_seconds as i64,
    }
}

/// Whether an error is "not found": the object is gone, so there is nothing left to do to it.
/// A conflict is not benign: nothing may wake the controller again, so it is retried like any
/// other error (the real controllers requeue with backoff).
pub fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether the owner still exists as this very object (same UID) and is not being deleted.
/// Checked with a fresh GET before creating children: the controller's cache may still hold an
/// owner that was just deleted, and children created for it would be orphans the garbage
/// collector never sees (it collects when the owner goes, which already happened).
pub async fn owner_is_live<K>(api: &kube::Api<K>, name: &str, uid: &str) -> Result<bool, kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api
        .get_opt(name)
        .await?
        .is_some_and(|o| o.meta().uid.as_deref() == Some(uid) && o.meta().deletion_timestamp.is_none()))
}

/// A requeue after `d`, capped at an hour: kube-runtime's scheduler panics on delays too far in
/// the future, and a spec value (activeDeadlineSeconds, ttlSecondsAfterFinished) may be huge.
pub fn requeue(d: std::time::Duration) -> kube::runtime::controller::Action {
    kube::runtime::controller::Action::requeue(d.min(std::time::Duration::from_secs(3600)))
}

/// Ok for success and for an object already gone (`is_gone`).
pub fn tolerate<T>(r: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn names_hashes_and_selectors() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| ALPHABET.contains(&b)));
        assert_eq!(safe_encode(fnv1a(b"x")), safe_encode(fnv1a(b"x")));
        assert_ne!(safe_encode(fnv1a(b"x")), safe_encode(fnv1a(b"y")));
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        };
        assert_eq!(selector_string(&sel), "app=web,tier in (a,b)");
    }
}

//! Server-side apply of a child only when it would change something: a reconcile that finds its
//! children as it wants them writes nothing, so a steady state costs the API server no writes.
//!
//! What the cache shows is compared two ways. The desired object must be contained in the cached
//! one (every field it sets has that value; the server only adds defaults), which catches hand
//! edits of the fields the operator manages. And the cached object carries the digest of the
//! last desired object applied, which catches fields the operator stopped setting (containment
//! cannot: the cached object still has them until an apply removes them).

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Life, error::Result, labels};

/// The annotation holding the digest of the object as the operator last applied it.
pub const APPLIED_DIGEST: &str = "trainloop.dev/applied-digest";

/// Apply `desired` (named and namespaced) unless `cached`, the object as the cache shows it,
/// already is what it would make. Returns whether it wrote.
pub async fn apply<K>(ctx: &Life, desired: &K, cached: Option<&K>) -> Result<bool>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let desired = with_digest(desired);
    if cached.is_some_and(|cached| unchanged(&desired, cached)) {
        return Ok(false);
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &desired.namespace().unwrap_or_default());
    let params = PatchParams::apply(labels::FIELD_MANAGER).force();
    api.patch(&desired.name_any(), &params, &Patch::Apply(&desired)).await?;
    Ok(true)
}

/// `desired` with the digest of itself under [`APPLIED_DIGEST`].
fn with_digest<K: Resource + Clone + Serialize>(desired: &K) -> K {
    let digest = serde_json::to_vec(desired).map(|bytes| format!("{:x}", Sha256::digest(bytes))).unwrap_or_default();
    let mut desired = desired.clone();
    desired.meta_mut().annotations.get_or_insert_with(Default::default).insert(APPLIED_DIGEST.into(), digest);
    desired
}

/// Whether applying `desired` (with its digest) to `cached` would change nothing.
fn unchanged<K: Serialize>(desired: &K, cached: &K) -> bool {
    match (serde_json::to_value(desired), serde_json::to_value(cached)) {
        (Ok(desired), Ok(cached)) => contains(&cached, &desired),
        _ => false,
    }
}

/// Whether every field `part` sets has the same value in `whole`. Lists match item by item and
/// must be as long: an item too many or too few is a change.
fn contains(whole: &Value, part: &Value) -> bool {
    match (whole, part) {
        (Value::Object(whole), Value::Object(part)) => {
            part.iter().all(|(key, value)| whole.get(key).is_some_and(|w| contains(w, value)))
        }
        (Value::Array(whole), Value::Array(part)) => {
            whole.len() == part.len() && whole.iter().zip(part).all(|(w, p)| contains(w, p))
        }
        _ => whole == part,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;
    use serde_json::json;

    fn service(spec: Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "s", "namespace": "ml"}, "spec": spec})).unwrap()
    }

    /// `desired` as the API server would keep it after an apply: with defaults of its own.
    fn as_stored(desired: &Service) -> Service {
        let mut stored = serde_json::to_value(with_digest(desired)).unwrap();
        stored["metadata"]["uid"] = json!("u1");
        stored["spec"]["clusterIP"] = json!("10.0.0.7");
        stored["spec"]["ports"][0]["protocol"] = json!("TCP");
        serde_json::from_value(stored).unwrap()
    }

    #[test]
    fn what_was_applied_with_server_defaults_is_unchanged() {
        let desired = service(json!({"ports": [{"port": 80}], "selector": {"app": "a"}}));
        assert!(unchanged(&with_digest(&desired), &as_stored(&desired)));
    }

    #[test]
    fn a_hand_edit_of_a_managed_field_is_a_change() {
        let desired = service(json!({"ports": [{"port": 80}], "selector": {"app": "a"}}));
        let mut edited = as_stored(&desired);
        edited.spec.as_mut().unwrap().selector = Some([("app".to_string(), "b".to_string())].into());
        assert!(!unchanged(&with_digest(&desired), &edited));
    }

    #[test]
    fn a_field_the_operator_stopped_setting_is_a_change() {
        let before = service(json!({"ports": [{"port": 80}], "selector": {"app": "a", "tier": "web"}}));
        let after = service(json!({"ports": [{"port": 80}], "selector": {"app": "a"}}));
        assert!(!unchanged(&with_digest(&after), &as_stored(&before)), "only the digest tells");
    }

    #[test]
    fn a_list_item_more_or_less_is_a_change() {
        let one = service(json!({"ports": [{"port": 80}]}));
        let two = service(json!({"ports": [{"port": 80}, {"port": 81}]}));
        assert!(!contains(&serde_json::to_value(as_stored(&one)).unwrap(), &serde_json::to_value(&two).unwrap()));
        assert!(!contains(&serde_json::to_value(as_stored(&two)).unwrap(), &serde_json::to_value(&one).unwrap()));
    }
}

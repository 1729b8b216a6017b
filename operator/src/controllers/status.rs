//! The one way the operator writes a status: server-side apply with its field manager.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Life, error::Result, labels};

/// Apply `status` to `object` and return the object as written; only over the version of
/// `object` (its resourceVersion): a status computed from a cache that is behind fails with 409
/// and is computed again on fresh data, so it can never roll a recorded state back (a
/// pipeline's run numbers and handled triggers, a run's outcome). Until the cache shows the
/// write, reconciles of `object` wait for it.
pub async fn apply<K>(ctx: &Life, object: &K, status: &impl Serialize) -> Result<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": K::api_version(&()), "kind": K::kind(&()),
        "metadata": {"resourceVersion": object.resource_version()},
        "status": status,
    });
    let params = PatchParams::apply(labels::FIELD_MANAGER).force();
    let written = api.patch_status(&object.name_any(), &params, &Patch::Apply(patch)).await?;
    ctx.caches.own_writes.wrote(object.meta(), written.meta());
    Ok(written)
}

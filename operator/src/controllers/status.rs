//! The one way the operator writes a status: server-side apply with its field manager.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Context, error::Result, labels};

/// Whether a status write requires the object to be the version the reconcile read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// For a status that is a record (a pipeline's run numbers and handled triggers): a write
    /// computed from a stale cache fails with 409 and is retried on fresh data, so it can never
    /// roll the record back.
    VersionRead,
    /// For a status computed from fresh observations (a run's, from its Job), where a write from
    /// a stale cache says the same again: no 409 to wait out.
    None,
}

/// Apply `status` to `object` and return the object as written.
pub async fn apply<K>(ctx: &Context, object: &K, status: &impl Serialize, precondition: Precondition) -> Result<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let mut patch = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status});
    if precondition == Precondition::VersionRead {
        patch["metadata"] = json!({"resourceVersion": object.resource_version()});
    }
    let params = PatchParams::apply(labels::FIELD_MANAGER).force();
    Ok(api.patch_status(&object.name_any(), &params, &Patch::Apply(patch)).await?)
}

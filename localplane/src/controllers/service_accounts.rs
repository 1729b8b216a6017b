//! What kube-controller-manager's serviceaccount and root-ca-cert-publisher controllers keep in
//! every active namespace: the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap with
//! the API server's CA (what a pod's service-account volume projects as `ca.crt`). Both are put
//! back when a namespace event comes; a deleted one returns at the namespace's next event or at
//! the next start, not at once as on a real cluster.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The ConfigMap every namespace gets with the cluster's CA.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
const MANAGER: &str = "root-ca-cert-publisher";

/// Runs until `shutdown` is cancelled.
pub async fn run(client: Client, ca_pem: String, shutdown: CancellationToken) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut events =
        std::pin::pin!(watcher(namespaces, watcher::Config::default()).default_backoff().applied_objects());
    loop {
        let next = tokio::select! {
            n = events.next() => n,
            _ = shutdown.cancelled() => return,
        };
        match next {
            None => return,
            Some(Err(e)) => tracing::debug!(error = %e, "namespace watch error"),
            Some(Ok(ns)) => {
                if ns.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let name = ns.name_any();
                // A request in flight must not hold up shutdown.
                let written = tokio::select! {
                    r = ensure(&client, &name, &ca_pem) => r,
                    _ = shutdown.cancelled() => return,
                };
                if let Err(e) = written {
                    tracing::warn!(namespace = %name, error = %e, "cannot write the default service account");
                }
            }
        }
    }
}

async fn ensure(client: &Client, namespace: &str, ca_pem: &str) -> Result<(), kube::Error> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    if accounts.get_opt("default").await?.is_none() {
        let sa = ServiceAccount {
            metadata: kube::api::ObjectMeta { name: Some("default".into()), ..Default::default() },
            ..Default::default()
        };
        match accounts.create(&PostParams::default(), &sa).await {
            Ok(_) => {}
            // Created meanwhile (or the namespace is going away): nothing to do.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 => {}
            Err(e) => return Err(e),
        }
    }
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let current = maps.get_opt(ROOT_CA_CONFIG_MAP).await?;
    if current.and_then(|c| c.data).and_then(|d| d.get("ca.crt").cloned()).as_deref() == Some(ca_pem) {
        return Ok(());
    }
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": ROOT_CA_CONFIG_MAP,
                     "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
        "data": {"ca.crt": ca_pem}
    });
    match maps.patch(ROOT_CA_CONFIG_MAP, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&cm)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 403 || e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

//! Where the operator finds its cluster: a kubeconfig when there is one (`KUBECONFIG` or
//! `~/.kube/config`), else the in-cluster configuration: `KUBERNETES_SERVICE_HOST`/`_PORT`, and the
//! service account's `token`, `ca.crt` and `namespace` read from a directory. On a real cluster
//! that is the standard `/var/run/secrets/kubernetes.io/serviceaccount`, as `Config::infer()`
//! reads it. kube-rs reads that path from a constant, which a pod on localplane (a host process)
//! cannot have; naming the directory on the command line lets localplane's kubelet rewrite it to
//! the pod's own service-account volume, as it rewrites every mount path in a pod's arguments.

use std::path::Path;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The standard mount path of a pod's service-account volume.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The client configuration: a kubeconfig if one is found, else in-cluster from `service_account_dir`.
pub async fn cluster_config(service_account_dir: &Path) -> anyhow::Result<kube::Config> {
    let kubeconfig_error = match kube::Config::from_kubeconfig(&KubeConfigOptions::default()).await {
        Ok(config) => return Ok(config),
        Err(error) => error,
    };
    in_cluster_config(service_account_dir)
        .await
        .with_context(|| format!("cannot reach a cluster: no kubeconfig ({kubeconfig_error}), and not inside a pod"))
}

/// The in-cluster configuration, with the service account's files read from `dir`. The token is
/// named as a file, so kube re-reads it when the kubelet rotates it.
pub async fn in_cluster_config(dir: &Path) -> anyhow::Result<kube::Config> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST").context("KUBERNETES_SERVICE_HOST is not set")?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT").context("KUBERNETES_SERVICE_PORT is not set")?;
    // An IPv6 address needs brackets in a URL.
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let namespace_file = dir.join("namespace");
    let namespace =
        std::fs::read_to_string(&namespace_file).with_context(|| format!("reading {}", namespace_file.display()))?;
    let kubeconfig: Kubeconfig = serde_json::from_value(serde_json::json!({
        "clusters": [{"name": "in-cluster", "cluster": {
            "server": format!("https://{host}:{port}"),
            "certificate-authority": dir.join("ca.crt")}}],
        "users": [{"name": "service-account", "user": {"tokenFile": dir.join("token")}}],
        "contexts": [{"name": "in-cluster", "context": {
            "cluster": "in-cluster", "user": "service-account", "namespace": namespace.trim()}}],
        "current-context": "in-cluster"
    }))
    .context("building the in-cluster configuration")?;
    Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
}

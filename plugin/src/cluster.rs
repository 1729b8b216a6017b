//! The connection, made from the kubeconfig as kubectl makes it, and errors a user can act on.

use anyhow::{Context as _, anyhow};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use trainloop_api::{ModelDeployment, TrainingPipeline, TrainingRun};

use crate::args::ClusterArgs;

/// A client for the chosen context, and the namespace the commands act in.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
    /// The API server's URL, to name in errors.
    pub url: String,
}

impl Cluster {
    pub async fn connect(args: &ClusterArgs) -> anyhow::Result<Cluster> {
        let kubeconfig = match &args.kubeconfig {
            Some(path) => Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?,
            None => Kubeconfig::read()
                .context("no cluster configured: set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config")?,
        };
        let options = KubeConfigOptions { context: args.context.clone(), ..KubeConfigOptions::default() };
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.context("reading the kubeconfig")?;
        let namespace = args.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
        let url = config.cluster_url.to_string();
        let client = Client::try_from(config).context("building a client from the kubeconfig")?;
        Ok(Cluster { client, namespace, url })
    }

    pub fn api<K: Kind>(&self) -> Api<K> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// One object, or an error naming what is missing where.
    pub async fn get<K: Kind>(&self, name: &str) -> anyhow::Result<K> {
        match self.api::<K>().get(name).await {
            Ok(object) => Ok(object),
            Err(kube::Error::Api(status)) if status.is_not_found() => {
                Err(anyhow!("{}/{name} not found in namespace {}", K::SHORT, self.namespace))
            }
            Err(error) => Err(self.explain(error)),
        }
    }

    /// Every object of a kind in the namespace.
    pub async fn list<K: Kind>(&self) -> anyhow::Result<Vec<K>> {
        let api = self.api::<K>();
        Ok(api.list(&Default::default()).await.map_err(|e| self.explain(e))?.items)
    }

    /// A failed request, said in the user's terms: no cluster, no CRDs, or what the server said.
    pub fn explain(&self, error: kube::Error) -> anyhow::Error {
        match error {
            kube::Error::Api(status) if status.is_not_found() => {
                anyhow!("the trainloop CRDs are not installed on {} ({})", self.url, status.message)
            }
            kube::Error::Api(status) => anyhow!("the API server at {} refused: {}", self.url, status.message),
            other @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => {
                anyhow!("cannot reach the cluster at {}: {}", self.url, chain(&other))
            }
            other => anyhow!("talking to {}: {}", self.url, chain(&other)),
        }
    }
}

/// An error with its causes, as `a: b: c`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // hyper's errors repeat their source in their own message.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    text
}

/// A trainloop resource the plugin reads, with the short name users type.
pub trait Kind:
    kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
{
    const SHORT: &'static str;
}

impl Kind for TrainingRun {
    const SHORT: &'static str = "tr";
}

impl Kind for ModelDeployment {
    const SHORT: &'static str = "md";
}

impl Kind for TrainingPipeline {
    const SHORT: &'static str = "tp";
}

//! How a workload controller (Job, ReplicaSet, Deployment) is run: a parent kind, the children
//! it controls, a reconcile, the shared retry policy and the shutdown, wired once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::util;
use crate::Error;

/// A failed reconcile is retried after this long (a local tool retries sooner than a cluster's
/// exponential backoff, and its failures are transient API errors).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Runs `reconcile` for every `K` (and whenever a child `C` it controls changes) until
/// `shutdown` is cancelled.
pub async fn run_controller<K, C, F, Fut>(client: Client, shutdown: CancellationToken, reconcile: F)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    C: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    F: FnMut(Arc<K>, Arc<Client>) -> Fut,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    util::controller_with_children::<K, C>(&client)
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile, error_policy::<K>, Arc::new(client))
        .for_each(|_| futures::future::ready(()))
        .await;
}

fn error_policy<K: Resource<DynamicType = ()>>(_object: Arc<K>, error: &Error, _client: Arc<Client>) -> Action {
    tracing::debug!(kind = %K::kind(&()), %error, "reconcile failed");
    Action::requeue(RETRY_AFTER)
}

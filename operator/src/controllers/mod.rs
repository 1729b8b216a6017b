//! The controllers and what they share. Each controller is one folder with the same steps:
//! gather -> validate -> build -> apply -> status.

pub mod client;
pub mod conditions;
mod context;
pub mod error;
pub mod labels;
pub mod metrics;
pub mod pipeline;
pub mod run;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::{
    Api,
    runtime::{Controller, reflector::Store, watcher},
};

use tokio_util::sync::CancellationToken;

use crate::api::{TrainingPipeline, TrainingRun};

pub use context::{Context, Settings};
pub use metrics::Metrics;

/// Run every controller until `shutdown` resolves; `ready` is called once the caches have synced.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken, ready: impl FnOnce() + Send + 'static) {
    let client = ctx.client.clone();
    let runs = Controller::new(Api::<TrainingRun>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Job>::all(client.clone()), watcher::Config::default());
    let mut pipelines = Controller::new(Api::<TrainingPipeline>::all(client.clone()), watcher::Config::default())
        .owns(Api::<TrainingRun>::all(client.clone()), watcher::Config::default());
    if let Some(wakeups) = ctx.data.take_wakeups() {
        let changed = futures::stream::unfold(wakeups, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) });
        pipelines = pipelines.reconcile_on(changed);
    }
    let (run_store, pipeline_store) = (runs.store(), pipelines.store());
    tokio::spawn(async move {
        if synced(&run_store).await && synced(&pipeline_store).await {
            ready();
        }
    });
    let runs = runs
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(timed("trainingrun", run::reconcile), run::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let pipelines = pipelines
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(timed("trainingpipeline", pipeline::reconcile), pipeline::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    futures::join!(runs, pipelines);
}

/// Whether the cache behind `store` finished its first list.
///
/// kube-runtime's readiness signal wakes only the last of several waiters (a oneshot channel
/// keeps one waker) and each controller waits on its own store too, so poll it again until it
/// resolves rather than wait once.
async fn synced<K: kube::runtime::reflector::Lookup + Clone + 'static>(store: &Store<K>) -> bool
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        if let Ok(result) = tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()).await {
            return result.is_ok();
        }
    }
}

/// Wrap a reconciler to count it and time it.
fn timed<K, F, Fut>(
    controller: &'static str,
    reconcile: F,
) -> impl FnMut(Arc<K>, Arc<Context>) -> futures::future::BoxFuture<'static, error::Result<kube::runtime::controller::Action>>
where
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = error::Result<kube::runtime::controller::Action>> + Send + 'static,
    K: Send + Sync + 'static,
{
    move |object, ctx| {
        Box::pin(async move {
            let start = std::time::Instant::now();
            let result = reconcile(object, ctx.clone()).await;
            ctx.metrics.reconciled(controller, start.elapsed());
            result
        })
    }
}

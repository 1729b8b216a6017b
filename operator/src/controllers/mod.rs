//! The controllers and what they share. Each controller is one folder with the same steps:
//! gather -> validate -> build -> apply -> status.

pub mod artifact_volume;
pub mod client;
pub mod conditions;
mod context;
pub mod deployment;
pub mod drift;
pub mod error;
pub mod failures;
pub mod health;
pub mod labels;
pub mod metrics;
pub mod pipeline;
pub mod run;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use kube::{
    Api, ResourceExt,
    core::{DeserializeGuard, PartialObjectMeta},
    runtime::{
        Controller, WatchStreamExt,
        controller::{self, Action},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};

use tokio_util::sync::CancellationToken;

use crate::api::{DriftPolicy, ModelDeployment, TrainingPipeline, TrainingRun};

pub use context::{Context, Settings};
pub use health::WatchHealth;
pub use metrics::Metrics;

/// Run every controller until `shutdown` resolves. `health` learns when the caches have synced
/// and whether the watches are failing; watches that fail without a break for
/// `settings.watch_restart_after` restart the controllers, which relist everything: what recovers
/// an operator whose API server lost its state.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken, health: WatchHealth) {
    loop {
        let round = shutdown.child_token();
        let controllers = run_controllers(ctx.clone(), round.clone(), health.clone());
        let watchdog = async {
            while !health.failing_longer_than(ctx.settings.watch_restart_after) {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        tokio::select! {
            () = controllers => return,
            () = watchdog => {
                tracing::warn!(problem = health.check().err(), "watches keep failing: restarting the controllers to relist");
                ctx.metrics.controller_restarts.inc();
                round.cancel();
                health.reset();
            }
        }
    }
}

/// How many objects of one kind are reconciled at once.
const RECONCILE_CONCURRENCY: u16 = 16;

/// One life of the controllers: over every namespace, or one set per watched namespace (each
/// with its own caches: a namespaced install has no right to list cluster-wide).
async fn run_controllers(ctx: Arc<Context>, shutdown: CancellationToken, health: WatchHealth) {
    let scopes: Vec<Option<String>> = match ctx.settings.namespaces.as_slice() {
        [] => vec![None],
        namespaces => namespaces.iter().cloned().map(Some).collect(),
    };
    let unsynced = Arc::new(std::sync::atomic::AtomicUsize::new(scopes.len()));
    let mut wakeups = std::collections::HashMap::new();
    let sets: Vec<_> = scopes
        .into_iter()
        .map(|namespace| {
            let (tx, rx) = futures::channel::mpsc::unbounded();
            wakeups.insert(namespace.clone(), tx);
            let scope = Scope { namespace, data_changed: rx, unsynced: unsynced.clone() };
            run_scope(ctx.clone(), shutdown.clone(), health.clone(), scope)
        })
        .collect();
    // The data poller is shared: route each wakeup to the set that watches its namespace.
    let routing = ctx.data.wakeups().for_each(move |pipeline| {
        let set = if wakeups.contains_key(&None) { None } else { pipeline.namespace.clone() };
        if let Some(tx) = wakeups.get(&set) {
            let _ = tx.unbounded_send(pipeline);
        }
        futures::future::ready(())
    });
    // The controllers' end ends this life, never the router's.
    let route = async move {
        routing.await;
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = futures::future::join_all(sets) => {}
        () = route => {}
    }
}

/// Where one set of controllers looks, and what it shares with the others.
struct Scope {
    /// `None`: every namespace.
    namespace: Option<String>,
    data_changed: futures::channel::mpsc::UnboundedReceiver<ObjectRef<TrainingPipeline>>,
    /// Sets whose caches have not synced yet: the operator is ready when none is left.
    unsynced: Arc<std::sync::atomic::AtomicUsize>,
}

impl Scope {
    fn api<K>(&self, client: &kube::Client) -> Api<K>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match &self.namespace {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        }
    }

    /// A watch's name in `/readyz`, with its namespace when the set watches one.
    fn name(&self, watch: &str) -> String {
        match &self.namespace {
            Some(namespace) => format!("{watch} in {namespace}"),
            None => watch.to_string(),
        }
    }
}

/// The watches (owned ones filtered to what trainloop manages), caches and the reconcile loops
/// of one scope.
async fn run_scope(ctx: Arc<Context>, shutdown: CancellationToken, health: WatchHealth, scope: Scope) {
    let client = ctx.client.clone();
    let managed = watcher::Config::default().labels(&format!("{}=trainloop", labels::MANAGED_BY));
    let (runs, run_store) = watch(
        scope.api::<Guarded<TrainingRun>>(&client),
        watcher::Config::default(),
        &health,
        scope.name("trainingruns"),
    );
    let (pipelines, pipeline_store) = watch(
        scope.api::<Guarded<TrainingPipeline>>(&client),
        watcher::Config::default(),
        &health,
        scope.name("trainingpipelines"),
    );
    let jobs = watch_owned(scope.api::<PartialObjectMeta<Job>>(&client), managed.clone(), &health, scope.name("jobs"));
    let owned_runs = watch_owned(
        scope.api::<PartialObjectMeta<TrainingRun>>(&client),
        managed.clone(),
        &health,
        scope.name("trainingruns (owned)"),
    );
    // A trainer pod's state (an image that cannot be pulled, a crash) does not always change its
    // Job: the run controller watches the pods too, by the run label they carry.
    let pods = watch_owned(scope.api::<PartialObjectMeta<Pod>>(&client), managed, &health, scope.name("pods"));
    // Bounded: a burst of ten thousand objects must not become ten thousand requests at once.
    let bounded = controller::Config::default().concurrency(RECONCILE_CONCURRENCY);
    let run_controller = Controller::for_stream(runs, run_store.clone())
        .with_config(bounded.clone())
        .trigger_backoff(NoBackoff)
        .owns_stream(jobs)
        .watches_stream(pods, |pod| {
            let namespace = pod.namespace().unwrap_or_default();
            pod.labels().get(labels::RUN).map(|run| ObjectRef::<Guarded<TrainingRun>>::new(run).within(&namespace))
        });
    let (deployment_controller, deployment_store) = deployment_controller(&client, &health, &scope);
    let (policies, policy_store) = watch(
        scope.api::<Guarded<DriftPolicy>>(&client),
        watcher::Config::default(),
        &health,
        scope.name("driftpolicies"),
    );
    ctx.policies.set(policy_store.clone());
    // An alert for a webhook monitor is judged at once, not at the policy's next interval.
    let alerted = ctx.firings.wakeups().map(|policy| policy.object_ref::<Guarded<DriftPolicy>>());
    let drift_controller =
        Controller::for_stream(policies, policy_store.clone()).with_config(bounded.clone()).reconcile_on(alerted);
    // A DriftPolicy's retrain request wakes the pipeline it names (a watch of its own: a
    // controller's stream has one consumer).
    let observe = health.observe(scope.name("driftpolicies (retrain requests)"));
    let requests = watcher(scope.api::<Guarded<DriftPolicy>>(&client), watcher::Config::default())
        .default_backoff()
        .inspect(move |event| observe(event))
        .touched_objects();
    let data_changed = scope.data_changed.map(|pipeline| {
        let namespace = pipeline.namespace.clone().unwrap_or_default();
        ObjectRef::<Guarded<TrainingPipeline>>::new(&pipeline.name).within(&namespace)
    });
    let pipeline_controller = Controller::for_stream(pipelines, pipeline_store.clone())
        .with_config(bounded.clone())
        .trigger_backoff(NoBackoff)
        .owns_stream(owned_runs)
        .watches_stream(requests, |guard| {
            let policy = guard.0.ok()?;
            let namespace = policy.namespace().unwrap_or_default();
            let pipeline = policy.status?.retrain_request?.pipeline;
            Some(ObjectRef::<Guarded<TrainingPipeline>>::new(&pipeline).within(&namespace))
        })
        .reconcile_on(data_changed);
    let synced_health = health.clone();
    let unsynced = scope.unsynced;
    tokio::spawn(async move {
        if synced(&run_store).await
            && synced(&pipeline_store).await
            && synced(&deployment_store).await
            && synced(&policy_store).await
            && unsynced.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1
        {
            synced_health.set_synced();
        }
    });
    let runs = run_controller
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(guarded("trainingrun", run::reconcile), failures::error_policy("trainingrun"), ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let pipelines = pipeline_controller
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(guarded("trainingpipeline", pipeline::reconcile), failures::error_policy("trainingpipeline"), ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let deployments = deployment_controller
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(guarded("modeldeployment", deployment::reconcile), failures::error_policy("modeldeployment"), ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let policies = drift_controller
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(guarded("driftpolicy", drift::reconcile), failures::error_policy("driftpolicy"), ctx.clone())
        .for_each(|_| futures::future::ready(()));
    futures::join!(runs, pipelines, deployments, policies);
}

/// The ModelDeployment controller and its cache. It is woken by its Deployments, Services and
/// server pods (metadata-only, by the deployment label they carry), and by every run of a
/// pipeline it follows or the run it pins, so a run that passes is rolled out at once.
fn deployment_controller(
    client: &kube::Client,
    health: &WatchHealth,
    scope: &Scope,
) -> (Controller<Guarded<ModelDeployment>>, Store<Guarded<ModelDeployment>>) {
    let serving =
        watcher::Config::default().labels(&format!("{}=trainloop,{}", labels::MANAGED_BY, labels::DEPLOYMENT));
    let (deployments, store) = watch(
        scope.api::<Guarded<ModelDeployment>>(client),
        watcher::Config::default(),
        health,
        scope.name("modeldeployments"),
    );
    let workloads = watch_owned(
        scope.api::<PartialObjectMeta<Deployment>>(client),
        serving.clone(),
        health,
        scope.name("deployments"),
    );
    let services =
        watch_owned(scope.api::<PartialObjectMeta<Service>>(client), serving.clone(), health, scope.name("services"));
    let pods = watch_owned(scope.api::<PartialObjectMeta<Pod>>(client), serving, health, scope.name("server pods"));
    let runs = watch_owned(
        scope.api::<PartialObjectMeta<TrainingRun>>(client),
        watcher::Config::default(),
        health,
        scope.name("trainingruns (served)"),
    );
    let owner = |meta: &kube::api::ObjectMeta| {
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.labels.as_ref()?.get(labels::DEPLOYMENT)?;
        Some(ObjectRef::<Guarded<ModelDeployment>>::new(name).within(&namespace))
    };
    let followers = store.clone();
    let controller = Controller::for_stream(deployments, store.clone())
        .with_config(controller::Config::default().concurrency(RECONCILE_CONCURRENCY))
        .watches_stream(workloads, move |d| owner(&d.metadata))
        .watches_stream(services, move |s| owner(&s.metadata))
        .watches_stream(pods, move |p| owner(&p.metadata))
        .watches_stream(runs, move |run| {
            let namespace = run.namespace().unwrap_or_default();
            let pipeline = run.labels().get(labels::PIPELINE).cloned();
            let name = run.name_any();
            followers
                .state()
                .into_iter()
                .filter_map(|guard| guard.0.as_ref().ok().cloned())
                .filter(|md| md.namespace().as_deref() == Some(namespace.as_str()))
                .filter(|md| {
                    let source = &md.spec.source;
                    source.pipeline_ref.as_ref().is_some_and(|p| Some(&p.name) == pipeline.as_ref())
                        || source.run_ref.as_ref().is_some_and(|r| r.name == name)
                })
                .map(|md| ObjectRef::<Guarded<ModelDeployment>>::new(&md.name_any()).within(&namespace))
                .collect::<Vec<_>>()
        });
    (controller, store)
}

/// No pause on a controller's merged trigger stream: each watch backs off on its own (`watch`,
/// `watch_owned`) and starts over after any successful list. kube's default backs off the
/// merged stream too, where an empty relist yields nothing to reset it: under repeated 410 Gone
/// the pause grows to 30 s and holds every trigger of the controller.
struct NoBackoff;

impl Iterator for NoBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for NoBackoff {
    fn reset(&mut self) {}
}

/// A metadata-only watch of the children that `api` and `config` select, reporting its health:
/// enough to wake their owners.
fn watch_owned<K>(
    api: Api<PartialObjectMeta<K>>,
    config: watcher::Config,
    health: &WatchHealth,
    name: String,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static,
{
    let observe = health.observe(name);
    watcher(api, config).default_backoff().inspect(move |event| observe(event)).touched_objects()
}

/// A cached watch of every `K` that `api` reaches, reporting its health.
fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    health: &WatchHealth,
    name: String,
) -> (impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static, Store<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let observe = health.observe(name);
    let stream =
        watcher(api, config).default_backoff().reflect(writer).inspect(move |event| observe(event)).applied_objects();
    (stream, store)
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

/// An object as the watches deliver it: the resource, or why it could not be read (written under
/// another schema, or edited past it), so that one such object never stops a controller.
type Guarded<K> = DeserializeGuard<K>;

/// Wrap a reconciler to count it, time it, and answer an object it cannot read with a Warning
/// event that says why, instead of a reconcile.
fn guarded<K, F, Fut>(
    controller: &'static str,
    reconcile: F,
) -> impl FnMut(Arc<Guarded<K>>, Arc<Context>) -> futures::future::BoxFuture<'static, error::Result<Action>>
where
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = error::Result<Action>> + Send + 'static,
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    move |guard, ctx| {
        Box::pin(async move {
            let start = std::time::Instant::now();
            let result = match &guard.0 {
                Ok(object) => reconcile(Arc::new(object.clone()), ctx.clone()).await,
                Err(invalid) => {
                    let reference = ObjectReference {
                        api_version: Some(K::api_version(&()).into_owned()),
                        kind: Some(K::kind(&()).into_owned()),
                        name: invalid.metadata.name.clone(),
                        namespace: invalid.metadata.namespace.clone(),
                        uid: invalid.metadata.uid.clone(),
                        ..ObjectReference::default()
                    };
                    let note = format!("the operator cannot read this object: {}", invalid.error);
                    ctx.event(&reference, true, "Unreadable", "Read", note).await;
                    Ok(Action::await_change())
                }
            };
            ctx.metrics.reconciled(controller, start.elapsed());
            result
        })
    }
}

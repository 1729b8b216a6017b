//! The controllers and what they share. Each controller is one folder with the same steps:
//! gather -> validate -> build -> apply -> status.

pub mod applied;
pub mod caches;
pub mod client;
pub mod conditions;
mod context;
pub mod deployment;
pub mod drift;
pub mod error;
mod events;
pub mod failures;
pub mod health;
pub mod metrics;
pub mod pipeline;
pub mod pod_options;
pub mod run;
pub mod shared_volumes;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use kube::{
    Api, Resource, ResourceExt,
    runtime::{
        Controller, WatchStreamExt,
        controller::{self, Action},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};

use tokio_util::sync::CancellationToken;

use crate::api::{DriftPolicy, ModelDeployment, TrainingPipeline, TrainingRun};
use caches::{Caches, Guarded, JOB_NAME_LABEL, Stores};

/// The label and annotation keys are part of the API: clients such as the kubectl plugin read them.
pub use crate::api::labels;
pub use context::{Context, DEFAULT_DATA_DIR, Life, Settings};
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

/// The watches of one scope (owned ones filtered to what trainloop manages), the caches they
/// fill, and the four reconcile loops reading them.
async fn run_scope(ctx: Arc<Context>, shutdown: CancellationToken, health: WatchHealth, scope: Scope) {
    let client = ctx.client.clone();
    let managed = watcher::Config::default().labels(&format!("{}=trainloop", labels::MANAGED_BY));
    let serving =
        watcher::Config::default().labels(&format!("{}=trainloop,{}", labels::MANAGED_BY, labels::DEPLOYMENT));
    let (pipelines, pipeline_writer) = reflector::store();
    let (runs, run_writer) = reflector::store();
    let (deployments, deployment_writer) = reflector::store();
    let (jobs, job_writer) = reflector::store();
    let (pods, pod_writer) = reflector::store();
    let (workloads, workload_writer) = reflector::store();
    let (services, service_writer) = reflector::store();
    let (policies, policy_writer) = reflector::store();
    let stores = Stores { pipelines, runs, deployments, jobs, pods, workloads, services, policies };
    let ctx = Arc::new(Life { ctx, caches: Caches::new(stores) });
    let stores = &ctx.caches.stores;
    let pipelines = cached(
        scope.api::<Guarded<TrainingPipeline>>(&client),
        watcher::Config::default(),
        pipeline_writer,
        &health,
        scope.name("trainingpipelines"),
        |_| {},
        |_| {},
    )
    .applied_objects();

    // One watch of runs feeds the run controller and hands each change (deletions too) on to the
    // pipeline and deployment controllers, whose runs they are or serve. Each hears of a change
    // only once the store and the index hold it.
    let (to_pipelines, runs_for_pipelines) = futures::channel::mpsc::unbounded();
    let (to_deployments, runs_for_deployments) = futures::channel::mpsc::unbounded();
    let (to_policies, runs_for_policies) = futures::channel::mpsc::unbounded();
    let index = ctx.clone();
    let runs = cached(
        scope.api::<Guarded<TrainingRun>>(&client),
        watcher::Config::default(),
        run_writer,
        &health,
        scope.name("trainingruns"),
        move |event| index.caches.runs_by_pipeline.observe(event),
        |_| {},
    )
    .inspect(move |event| {
        if let Ok(watcher::Event::Apply(run) | watcher::Event::InitApply(run) | watcher::Event::Delete(run)) = event {
            // A send fails only once its controller has stopped, when nobody needs it.
            let _ = to_pipelines.unbounded_send(Ok::<_, watcher::Error>(run.clone()));
            let _ = to_deployments.unbounded_send(Ok::<_, watcher::Error>(run.clone()));
        }
        if let Ok(watcher::Event::Apply(run) | watcher::Event::InitApply(run)) = event {
            let _ = to_policies.unbounded_send(Ok::<_, watcher::Error>(run.clone()));
        }
    });
    let jobs = cached(
        scope.api::<Job>(&client),
        managed.clone(),
        job_writer,
        &health,
        scope.name("jobs"),
        |_| {},
        |job| {
            // The run controller reads a Job's state, never its pod template (which carries the
            // trainer's config): a Job kept for every run is kept small.
            if let Some(spec) = job.spec.as_mut() {
                spec.template = Default::default();
            }
        },
    );
    // A trainer pod's state (an image that cannot be pulled, a crash) does not always change its
    // Job: the run controller watches its pods too, and the deployment controller its servers.
    let (to_deployments_pods, server_pods) = futures::channel::mpsc::unbounded();
    let index = ctx.clone();
    let pods = cached(
        scope.api::<Pod>(&client),
        managed,
        pod_writer,
        &health,
        scope.name("pods"),
        move |event| {
            index.caches.pods_by_job.observe(event);
            index.caches.pods_by_deployment.observe(event);
            if let watcher::Event::Delete(pod) = event {
                index.caches.own_writes.gone(&pod.metadata);
            }
        },
        |_| {},
    )
    .touched_objects()
    .inspect(move |pod| {
        if let Ok(pod) = pod
            && pod.labels().contains_key(labels::DEPLOYMENT)
        {
            let _ = to_deployments_pods.unbounded_send(Ok::<_, watcher::Error>(pod.clone()));
        }
    });
    let deployment_watches = DeploymentWatches {
        deployments: cached(
            scope.api::<Guarded<ModelDeployment>>(&client),
            watcher::Config::default(),
            deployment_writer,
            &health,
            scope.name("modeldeployments"),
            |_| {},
            |_| {},
        )
        .applied_objects()
        .boxed(),
        workloads: cached(
            scope.api::<Deployment>(&client),
            serving.clone(),
            workload_writer,
            &health,
            scope.name("deployments"),
            |_| {},
            |_| {},
        )
        .touched_objects()
        .boxed(),
        services: cached(
            scope.api::<Service>(&client),
            serving,
            service_writer,
            &health,
            scope.name("services"),
            |_| {},
            |_| {},
        )
        .touched_objects()
        .boxed(),
        pods: server_pods.boxed(),
        runs: runs_for_deployments.boxed(),
    };

    // Bounded: a burst of ten thousand objects must not become ten thousand requests at once.
    let bounded = controller::Config::default().concurrency(RECONCILE_CONCURRENCY);
    let run_controller = Controller::for_stream(runs.applied_objects(), stores.runs.clone())
        .with_config(bounded.clone())
        .trigger_backoff(NoBackoff)
        .owns_stream(jobs.touched_objects())
        .watches_stream(pods, |pod| {
            let namespace = pod.namespace().unwrap_or_default();
            let job = pod.labels().get(JOB_NAME_LABEL)?;
            let run = pod.labels().get(labels::RUN).filter(|run| *run == job)?;
            Some(ObjectRef::<Guarded<TrainingRun>>::new(run).within(&namespace))
        });
    let deployment_controller = deployment_controller(deployment_watches, &stores.deployments);
    // One watch of DriftPolicies feeds their controller and the receiver, and hands each change
    // on to the pipeline its retrain request names, once the store holds it: the pipeline
    // controller reads the request from there, found by the index of requests by pipeline.
    let (requests_to_pipelines, requests) = futures::channel::mpsc::unbounded();
    let index = ctx.clone();
    let gone = drift::gone::PoliciesGone::default();
    let policies = cached(
        scope.api::<Guarded<DriftPolicy>>(&client),
        watcher::Config::default(),
        policy_writer,
        &health,
        scope.name("driftpolicies"),
        move |event| {
            index.caches.policies_by_requested_pipeline.observe(event);
            gone.observe(event, &index.acknowledged, &index.firings);
        },
        |_| {},
    )
    .inspect(move |event| {
        if let Ok(watcher::Event::Apply(policy) | watcher::Event::InitApply(policy)) = event {
            let _ = requests_to_pipelines.unbounded_send(Ok::<_, watcher::Error>(policy.clone()));
        }
    });
    ctx.policies.set(&scope.name("driftpolicies"), stores.policies.clone());
    // An alert for a webhook monitor is judged at once, not at the policy's next interval.
    let alerted = ctx.firings.wakeups().map(|policy| policy.object_ref::<Guarded<DriftPolicy>>());
    // A run that consumed a policy's retrain request shows as its `lastTriggeredRun` at once.
    let drift_controller = Controller::for_stream(policies.applied_objects(), stores.policies.clone())
        .with_config(bounded.clone())
        .watches_stream(runs_for_policies, |guard| {
            let run = guard.0.as_ref().ok();
            let namespace = run.and_then(|run| run.namespace()).unwrap_or_default();
            let handled = run.and_then(TrainingRun::handled_triggers).unwrap_or_default();
            let policies = handled.drift_requests.into_keys();
            policies.map(move |policy| ObjectRef::<Guarded<DriftPolicy>>::new(&policy).within(&namespace))
        })
        .reconcile_on(alerted);
    let data_changed = scope.data_changed.map(|pipeline| {
        let namespace = pipeline.namespace.clone().unwrap_or_default();
        ObjectRef::<Guarded<TrainingPipeline>>::new(&pipeline.name).within(&namespace)
    });
    let pipeline_controller = Controller::for_stream(pipelines, stores.pipelines.clone())
        .with_config(bounded)
        .trigger_backoff(NoBackoff)
        .owns_stream(runs_for_pipelines)
        .watches_stream(requests, |guard| {
            let policy = guard.0.ok()?;
            let namespace = policy.namespace().unwrap_or_default();
            let pipeline = policy.status?.retrain_request?.pipeline;
            Some(ObjectRef::<Guarded<TrainingPipeline>>::new(&pipeline).within(&namespace))
        })
        .reconcile_on(data_changed);
    let synced_health = health.clone();
    let unsynced = scope.unsynced;
    let synced_ctx = ctx.clone();
    tokio::spawn(async move {
        let stores = &synced_ctx.caches.stores;
        if synced(&stores.pipelines).await
            && synced(&stores.policies).await
            && synced(&stores.runs).await
            && synced(&stores.deployments).await
            && synced(&stores.jobs).await
            && synced(&stores.pods).await
            && synced(&stores.workloads).await
            && synced(&stores.services).await
        {
            synced_ctx.caches.mark_synced();
            if unsynced.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                synced_health.set_synced();
            }
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

type Watched<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// What wakes the ModelDeployment controller, each from a watch that fills a cache.
struct DeploymentWatches {
    deployments: Watched<Guarded<ModelDeployment>>,
    /// Its Deployments, Services and server pods, by the deployment label they carry.
    workloads: Watched<Deployment>,
    services: Watched<Service>,
    pods: Watched<Pod>,
    /// Every run: one of a pipeline it follows or the run it pins is rolled out at once.
    runs: Watched<Guarded<TrainingRun>>,
}

/// The ModelDeployment controller, woken by `watches`.
fn deployment_controller(
    watches: DeploymentWatches,
    store: &Store<Guarded<ModelDeployment>>,
) -> Controller<Guarded<ModelDeployment>> {
    let owner = |meta: &kube::api::ObjectMeta| {
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.labels.as_ref()?.get(labels::DEPLOYMENT)?;
        Some(ObjectRef::<Guarded<ModelDeployment>>::new(name).within(&namespace))
    };
    let followers = store.clone();
    Controller::for_stream(watches.deployments, store.clone())
        .with_config(controller::Config::default().concurrency(RECONCILE_CONCURRENCY))
        .trigger_backoff(NoBackoff)
        .watches_stream(watches.workloads, move |d| owner(&d.metadata))
        .watches_stream(watches.services, move |s| owner(&s.metadata))
        .watches_stream(watches.pods, move |p| owner(&p.metadata))
        .watches_stream(watches.runs, move |run| {
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
        })
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

/// A cached watch of the `K` that `api` and `config` select, reporting its health: `index` and
/// then the store see each change before the stream passes it on. Managed fields are dropped
/// (nothing reads them, and they are a good part of an object's size), and what `trim` removes.
fn cached<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    health: &WatchHealth,
    name: String,
    index: impl Fn(&watcher::Event<K>) + Send + 'static,
    mut trim: impl FnMut(&mut K) + Send + 'static,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let observe = health.observe(name);
    watcher(api, config)
        .default_backoff()
        .modify(move |object| {
            object.meta_mut().managed_fields = None;
            trim(object);
        })
        .inspect(move |event| {
            observe(event);
            if let Ok(event) = event {
                index(event);
            }
        })
        .reflect(writer)
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

/// Wrap a reconciler to count it, time it, and answer an object it cannot read with a Warning
/// event that says why, instead of a reconcile. Nothing is reconciled before every cache has
/// synced, nor from a cache that has not yet seen the operator's own last write to the object
/// (its watch brings that write, and another reconcile).
fn guarded<K, F, Fut>(
    controller: &'static str,
    reconcile: F,
) -> impl FnMut(Arc<Guarded<K>>, Arc<Life>) -> futures::future::BoxFuture<'static, error::Result<Action>>
where
    F: Fn(Arc<K>, Arc<Life>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = error::Result<Action>> + Send + 'static,
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    move |guard, ctx| {
        Box::pin(async move {
            ctx.caches.wait_synced().await;
            if ctx.caches.own_writes.is_behind(guard.meta()) {
                return Ok(Action::await_change());
            }
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

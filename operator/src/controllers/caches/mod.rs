//! What reconciles read instead of the API server: the stores of one scope's watches, indexed
//! where a reconcile looks things up, and what the operator's own writes replaced.
//!
//! A cache may be behind the API server; what keeps that safe is said where it is read: a
//! pipeline reads its newest run fresh when the cache does not show it yet, a run reads its Job
//! fresh before calling it deleted and its pods fresh before calling its result lost, every
//! status write carries the version it was computed from, and a reconcile of an object whose
//! cache has not yet seen the operator's last write waits for it.

mod key_index;
mod own_writes;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, ObjectRef, Store};

use crate::api::{DriftPolicy, ModelDeployment, TrainingPipeline, TrainingRun};
use crate::controllers::labels;
pub use key_index::{KeyIndex, label};
pub use own_writes::OwnWrites;

/// An object as the watches deliver it: the resource, or why it could not be read (written under
/// another schema, or edited past it), so that one such object never stops a controller.
pub type Guarded<K> = DeserializeGuard<K>;

/// The label Kubernetes puts on every pod of a Job.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// The stores of one scope. Pipelines, runs, ModelDeployments and DriftPolicies are all of the
/// scope's (a run made by hand holds a name too); Jobs, pods, Deployments and Services only those
/// trainloop manages.
pub struct Stores {
    pub pipelines: Store<Guarded<TrainingPipeline>>,
    pub runs: Store<Guarded<TrainingRun>>,
    pub deployments: Store<Guarded<ModelDeployment>>,
    pub jobs: Store<Job>,
    pub pods: Store<Pod>,
    pub workloads: Store<Deployment>,
    pub services: Store<Service>,
    pub policies: Store<Guarded<DriftPolicy>>,
}

/// The stores of one scope with their indexes and the operator's own writes.
pub struct Caches {
    pub stores: Stores,
    pub runs_by_pipeline: KeyIndex<Guarded<TrainingRun>>,
    pub pods_by_job: KeyIndex<Pod>,
    pub pods_by_deployment: KeyIndex<Pod>,
    /// DriftPolicies by the pipeline their retrain request names.
    pub policies_by_requested_pipeline: KeyIndex<Guarded<DriftPolicy>>,
    pub own_writes: OwnWrites,
    synced: tokio::sync::watch::Sender<bool>,
}

impl Caches {
    pub fn new(stores: Stores) -> Self {
        Caches {
            stores,
            runs_by_pipeline: KeyIndex::new(|run| label(run, labels::PIPELINE)),
            pods_by_job: KeyIndex::new(|pod| label(pod, JOB_NAME_LABEL)),
            pods_by_deployment: KeyIndex::new(|pod| label(pod, labels::DEPLOYMENT)),
            policies_by_requested_pipeline: KeyIndex::new(requested_pipeline),
            own_writes: OwnWrites::default(),
            synced: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Caches that hold nothing and never will, as a life's are before its watches deliver: for
    /// a reconcile called by hand, which then reads what it needs fresh.
    pub fn empty() -> Self {
        let stores = Stores {
            pipelines: reflector::store().0,
            runs: reflector::store().0,
            deployments: reflector::store().0,
            jobs: reflector::store().0,
            pods: reflector::store().0,
            workloads: reflector::store().0,
            services: reflector::store().0,
            policies: reflector::store().0,
        };
        Caches::new(stores)
    }

    /// Every store has finished its first list.
    pub fn mark_synced(&self) {
        self.synced.send_replace(true);
    }

    /// Wait until every store has finished its first list: before that, a missing Job or pod
    /// says nothing.
    pub async fn wait_synced(&self) {
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = self.synced.subscribe().wait_for(|synced| *synced).await;
    }

    /// The runs labelled with `pipeline` in `namespace` (its own and any that hold its names).
    pub fn pipeline_runs(&self, namespace: &str, pipeline: &str) -> Vec<TrainingRun> {
        self.runs_by_pipeline
            .lookup(&self.stores.runs, namespace, pipeline)
            .iter()
            .filter_map(|run| run.0.clone().ok())
            .collect()
    }

    /// The run called `name`, if the cache holds it readable.
    pub fn run(&self, namespace: &str, name: &str) -> Option<TrainingRun> {
        readable(&self.stores.runs, namespace, name)
    }

    pub fn job(&self, namespace: &str, name: &str) -> Option<Arc<Job>> {
        self.stores.jobs.get(&ObjectRef::new(name).within(namespace))
    }

    /// The pods of Job `job`.
    pub fn job_pods(&self, namespace: &str, job: &str) -> Vec<Pod> {
        self.pods_by_job.lookup(&self.stores.pods, namespace, job).iter().map(|pod| Pod::clone(pod)).collect()
    }

    /// The server pods of the ModelDeployment `name`.
    pub fn server_pods(&self, namespace: &str, name: &str) -> Vec<Pod> {
        self.pods_by_deployment.lookup(&self.stores.pods, namespace, name).iter().map(|pod| Pod::clone(pod)).collect()
    }

    /// The Deployment (apps/v1) serving the ModelDeployment `name`.
    pub fn workload(&self, namespace: &str, name: &str) -> Option<Deployment> {
        self.stores.workloads.get(&ObjectRef::new(name).within(namespace)).map(|d| Deployment::clone(&d))
    }

    /// The Service of the ModelDeployment `name`.
    pub fn service(&self, namespace: &str, name: &str) -> Option<Service> {
        self.stores.services.get(&ObjectRef::new(name).within(namespace)).map(|s| Service::clone(&s))
    }

    /// The pipeline called `name`, if the cache holds it readable.
    pub fn pipeline(&self, namespace: &str, name: &str) -> Option<TrainingPipeline> {
        readable(&self.stores.pipelines, namespace, name)
    }

    /// The ModelDeployment called `name`, if the cache holds it readable.
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<ModelDeployment> {
        readable(&self.stores.deployments, namespace, name)
    }

    /// The readable DriftPolicies of `namespace` whose retrain request names `pipeline`.
    pub fn policies_requesting(&self, namespace: &str, pipeline: &str) -> Vec<DriftPolicy> {
        let policies = self.policies_by_requested_pipeline.lookup(&self.stores.policies, namespace, pipeline);
        policies.iter().filter_map(|policy| policy.0.clone().ok()).collect()
    }

    /// The readable ModelDeployments of `namespace`.
    pub fn deployments(&self, namespace: &str) -> Vec<ModelDeployment> {
        readable_in(&self.stores.deployments, namespace)
    }
}

/// The pipeline a DriftPolicy's standing retrain request names.
fn requested_pipeline(policy: &Guarded<DriftPolicy>) -> Option<&str> {
    let request = policy.0.as_ref().ok()?.status.as_ref()?.retrain_request.as_ref()?;
    Some(&request.pipeline)
}

/// The object called `name` in `namespace` of `store`, if it is there and readable.
fn readable<K>(store: &Store<Guarded<K>>, namespace: &str, name: &str) -> Option<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + 'static,
{
    store.get(&ObjectRef::new(name).within(namespace)).and_then(|guard| guard.0.clone().ok())
}

/// The readable objects of `store` in `namespace`.
fn readable_in<K>(store: &Store<Guarded<K>>, namespace: &str) -> Vec<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + 'static,
{
    store
        .state()
        .iter()
        .filter_map(|guard| guard.0.as_ref().ok())
        .filter(|object| object.meta().namespace.as_deref() == Some(namespace))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use kube::ResourceExt;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    use super::*;

    /// A DriftPolicy called `name` in `namespace`, asking `pipeline` for a retrain if any.
    fn policy(namespace: &str, name: &str, pipeline: Option<&str>) -> Guarded<DriftPolicy> {
        let status = pipeline.map(|pipeline| {
            json!({"retrainRequest": {"id": format!("{name}-1"), "pipeline": pipeline, "reason": "drift",
                                      "requestedAt": "2026-12-01T00:00:00Z"}})
        });
        serde_json::from_value(json!({"apiVersion": "trainloop.dev/v1alpha1", "kind": "DriftPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"deploymentRef": {"name": "md"}, "monitors": []}, "status": status}))
        .unwrap()
    }

    #[test]
    fn a_pipelines_retrain_requests_are_found_by_index_exactly_those_of_its_namespace_and_name() {
        let (reader, mut writer) = reflector::store();
        let mut caches = Caches::empty();
        caches.stores.policies = reader;
        let mut feed = |event: Event<Guarded<DriftPolicy>>| {
            caches.policies_by_requested_pipeline.observe(&event);
            writer.apply_watcher_event(&event);
        };
        for event in [
            Event::Init,
            Event::InitApply(policy("ml", "inputs", Some("cancer"))),
            Event::InitApply(policy("ml", "alerts", Some("cancer"))),
            Event::InitApply(policy("ml", "other", Some("iris"))),
            Event::InitApply(policy("ml", "quiet", None)),
            Event::InitApply(policy("staging", "inputs", Some("cancer"))),
            Event::InitDone,
            // Its deployment now follows another pipeline: its request names that one.
            Event::Apply(policy("ml", "moved", Some("cancer"))),
            Event::Apply(policy("ml", "moved", Some("iris"))),
            Event::Delete(policy("ml", "alerts", Some("cancer"))),
        ] {
            feed(event);
        }
        let names = |namespace: &str, pipeline: &str| -> Vec<String> {
            caches.policies_requesting(namespace, pipeline).iter().map(|p| p.name_any()).collect()
        };
        assert_eq!(names("ml", "cancer"), ["inputs"]);
        assert_eq!(names("ml", "iris"), ["moved", "other"]);
        assert_eq!(names("staging", "cancer"), ["inputs"]);
        assert_eq!(names("ml", "quiet"), Vec::<String>::new());
    }
}

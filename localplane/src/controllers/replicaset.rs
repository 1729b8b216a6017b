//! The ReplicaSet controller (apps/v1): keeps `replicas` live pods matching the template, and
//! reports replicas / fullyLabeledReplicas / readyReplicas / availableReplicas.
//! Finished (Succeeded/Failed) pods are deleted and replaced, as the pod GC would do.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::util::{self, controlled_by, is_deleting, is_terminal};
use super::wiring;
use crate::Error;

/// What a reconcile should do.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub create: usize,
    pub delete: Vec<String>,
    pub status: ReplicaSetStatus,
    pub requeue: Option<Duration>,
}

/// Which pods go first when scaling down: unscheduled/pending, then not ready, then the newest.
fn deletion_rank(pod: &Pod) -> (u8, i64) {
    let rank = match (util::phase(pod), util::is_ready(pod)) {
        ("Pending", _) => 0,
        (_, false) => 1,
        _ => 2,
    };
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()).unwrap_or(0);
    (rank, -created)
}

pub fn plan(rs: &ReplicaSet, pods: &[Pod], now: Timestamp) -> Plan {
    let spec = rs.spec.clone();
    let desired = spec.replicas.unwrap_or(1).max(0) as usize;
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let finished: Vec<String> =
        pods.iter().filter(|p| is_terminal(p) && !is_deleting(p)).map(|p| p.name_any()).collect();
    let mut live: Vec<&Pod> = pods.iter().filter(|p| !is_terminal(p) && !is_deleting(p)).collect();
    let mut out = Plan { delete: finished, ..Default::default() };
    if live.len() > desired {
        live.sort_by_key(|p| deletion_rank(p));
        let extra = live.len() - desired;
        out.delete.extend(live.drain(..extra).map(|p| p.name_any()));
    } else {
        out.create = desired - live.len();
    }
    let template_labels =
        spec.template.as_ref().and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone()).unwrap_or_default();
    let fully_labeled = live
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            template_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let ready = live.iter().filter(|p| util::is_ready(p)).count();
    let available = live.iter().filter(|p| util::is_available(p, min_ready, now)).count();
    if available < ready {
        out.requeue = Some(Duration::from_secs(1));
    }
    let old = rs.status.clone().unwrap_or_default();
    out.status = ReplicaSetStatus {
        replicas: live.len() as i32,
        fully_labeled_replicas: Some(fully_labeled as i32),
        ready_replicas: Some(ready as i32),
        available_replicas: Some(available as i32),
        observed_generation: rs.metadata.generation.or(old.observed_generation),
        conditions: old.conditions.clone(),
        terminating_replicas: old.terminating_replicas,
    };
    out
}

pub fn rs_pod(rs: &ReplicaSet) -> Option<Pod> {
    let name = rs.metadata.name.clone()?;
    let template = rs.spec.template.clone()?;
    let meta = template.metadata.unwrap_or_default();
    Some(Pod {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{}", util::random_suffix())),
            namespace: rs.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: meta.annotations,
            owner_references: Some(vec![util::controller_ref(rs)?]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    })
}

async fn reconcile(rs: Arc<ReplicaSet>, client: Arc<Client>) -> Result<Action, Error> {
    if rs.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (Some(ns), Some(uid)) = (rs.namespace(), rs.metadata.uid.clone()) else {
        return Ok(Action::await_change());
    };
    let selector = util::selector_string(&rs.spec.selector);
    let pods_api: Api<Pod> = Api::namespaced((*client).clone(), &ns);
    let pods: Vec<Pod> = pods_api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter(|p| controlled_by(p.metadata.owner_references.as_ref(), &uid))
        .collect();
    let plan = plan(&rs, &pods, Timestamp::now());
    for name in &plan.delete {
        util::tolerate(pods_api.delete(name, &DeleteParams::default()).await)?;
    }
    let sets: Api<ReplicaSet> = Api::namespaced((*client).clone(), &ns);
    let create =
        if plan.create > 0 && !util::owner_is_live(&sets, &rs.name_any(), &uid).await? { 0 } else { plan.create };
    for _ in 0..create {
        let Some(pod) = rs_pod(&rs) else { break };
        util::tolerate(pods_api.create(&PostParams::default(), &pod).await)?;
    }
    if rs.status.as_ref() != Some(&plan.status) {
        let api = sets;
        let patch = json!({ "status": plan.status });
        util::tolerate(api.patch_status(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await)?;
    }
    Ok(plan.requeue.map(util::requeue).unwrap_or_else(Action::await_change))
}

/// Runs the ReplicaSet controller until `shutdown` is cancelled.
pub async fn run(client: Client, shutdown: CancellationToken) {
    wiring::run_controller::<ReplicaSet, Pod, _, _>(client, shutdown, reconcile).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(name: &str, phase: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    last_transition_time: Some(Time(Timestamp::UNIX_EPOCH)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn scales_up_down_and_replaces_finished_pods() {
        let rs =
            |n| ReplicaSet { spec: ReplicaSetSpec { replicas: Some(n), ..Default::default() }, ..Default::default() };
        let now = Timestamp::from_second(100).unwrap();
        let p = plan(&rs(3), &[pod("a", "Running", true)], now);
        assert_eq!((p.create, p.status.replicas), (2, 1));
        assert_eq!(p.status.available_replicas, Some(1));
        let pods = [
            pod("a", "Running", true),
            pod("b", "Running", false),
            pod("c", "Pending", false),
            pod("d", "Failed", false),
        ];
        let p = plan(&rs(1), &pods, now);
        assert_eq!(p.delete, vec!["d", "c", "b"]);
        assert_eq!(p.status.replicas, 1);
        assert_eq!(p.status.ready_replicas, Some(1));
    }
}

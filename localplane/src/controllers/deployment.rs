//! The Deployment controller (apps/v1): one ReplicaSet per pod template, named
//! `<deployment>-<pod-template-hash>`; a template change creates a new ReplicaSet and moves
//! replicas to it (RollingUpdate with maxSurge/maxUnavailable, or Recreate); status and the
//! `Available` / `Progressing` conditions as Kubernetes reports them.
//! Revisions and their annotations: `revision`.
//! Not implemented: revisionHistoryLimit cleanup, `deprecated.deployment.rollback.to`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::revision::{self, revision};
use super::util::{self, controlled_by};
use super::wiring;
use crate::Error;

pub const HASH_LABEL: &str = "pod-template-hash";

/// The pod-template-hash of a template (stable: FNV-1a of its JSON, safe-encoded).
pub fn template_hash(template: &PodTemplateSpec) -> String {
    let json = serde_json::to_vec(template).unwrap_or_default();
    util::safe_encode(util::fnv1a(&json))
}

/// An absolute or percentage value of `total`, rounded up or down.
fn scaled(value: Option<&IntOrString>, default_percent: i32, total: i32, round_up: bool) -> i32 {
    match value {
        Some(IntOrString::Int(n)) => (*n).max(0),
        Some(IntOrString::String(s)) => {
            let pct: i32 = s.trim_end_matches('%').parse().unwrap_or(default_percent);
            percent(pct, total, round_up)
        }
        None => percent(default_percent, total, round_up),
    }
}

fn percent(pct: i32, total: i32, round_up: bool) -> i32 {
    let x = pct.max(0) as i64 * total.max(0) as i64;
    (if round_up { (x + 99) / 100 } else { x / 100 }) as i32
}

/// maxSurge and maxUnavailable of a deployment (defaults 25%; both 0 means 1 unavailable).
pub fn surge_and_unavailable(d: &Deployment, desired: i32) -> (i32, i32) {
    let ru = d.spec.strategy.as_ref().and_then(|s| s.rolling_update.as_ref());
    let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), 25, desired, true);
    let mut unavailable = scaled(ru.and_then(|r| r.max_unavailable.as_ref()), 25, desired, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

fn available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

/// Available pods of a ReplicaSet, never more than it is meant to have: its status may still
/// count pods that a scale-down just removed, and counting those would remove more.
fn available_within_spec(rs: &ReplicaSet) -> i32 {
    available(rs).min(spec_replicas(rs))
}

/// The new sizes of old ReplicaSets in a rolling update, as the real controller's
/// reconcileOldReplicaSets computes them: nothing while the pods meant to exist, less the new
/// set's unavailable ones, are not more than minAvailable; else first unavailable old pods
/// (they serve nothing), then available ones while the available pods of all sets stay at
/// least minAvailable. With maxUnavailable 0, an old pod goes only once a new one is available.
fn scale_down_old(
    olds: &[&ReplicaSet],
    new_target: i32,
    new_available: i32,
    min_available: i32,
) -> BTreeMap<String, i32> {
    let mut sizes: BTreeMap<String, i32> = BTreeMap::new();
    let all_pods: i32 = olds.iter().map(|rs| spec_replicas(rs)).sum::<i32>() + new_target;
    let mut max_scaled_down = all_pods - min_available - (new_target - new_available).max(0);
    if max_scaled_down <= 0 {
        return sizes;
    }
    let mut by_age: Vec<&&ReplicaSet> = olds.iter().collect();
    by_age.sort_by_key(|rs| revision(rs));
    for rs in &by_age {
        let current = spec_replicas(rs);
        let unhealthy = (current - available_within_spec(rs)).max(0).min(max_scaled_down);
        if unhealthy > 0 {
            sizes.insert(rs.name_any(), current - unhealthy);
            max_scaled_down -= unhealthy;
        }
    }
    let available_pods: i32 = olds.iter().map(|rs| available_within_spec(rs)).sum::<i32>() + new_available;
    let mut can_remove = available_pods - min_available;
    for rs in &by_age {
        if can_remove <= 0 {
            break;
        }
        let current = sizes.get(&rs.name_any()).copied().unwrap_or_else(|| spec_replicas(rs));
        let remove = current.min(can_remove);
        if remove > 0 {
            sizes.insert(rs.name_any(), current - remove);
            can_remove -= remove;
        }
    }
    sizes.retain(|name, size| olds.iter().any(|rs| &rs.name_any() == name && spec_replicas(rs) != *size));
    sizes
}

/// What a reconcile should do.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// A new ReplicaSet to create (with its initial replicas).
    pub create: Option<ReplicaSet>,
    /// ReplicaSet name -> replicas to set.
    pub scale: BTreeMap<String, i32>,
    pub status: DeploymentStatus,
    /// When to look again without an event (the progress deadline).
    pub requeue: Option<Duration>,
    /// Annotations to set on the existing ReplicaSet of the current template (its revision).
    pub annotate: Option<(String, BTreeMap<String, String>)>,
    /// The revision the Deployment's own annotation must show, when it does not yet.
    pub revision: Option<String>,
}

/// The ReplicaSet for the deployment's current template.
pub fn new_replica_set(
    d: &Deployment,
    hash: &str,
    replicas: i32,
    annotations: BTreeMap<String, String>,
) -> Option<ReplicaSet> {
    let name = d.metadata.name.clone()?;
    let spec = &d.spec;
    let mut template = spec.template.clone();
    let mut meta = template.metadata.unwrap_or_default();
    meta.labels.get_or_insert_with(BTreeMap::new).insert(HASH_LABEL.into(), hash.into());
    template.metadata = Some(meta);
    let mut selector: LabelSelector = spec.selector.clone();
    selector.match_labels.get_or_insert_with(BTreeMap::new).insert(HASH_LABEL.into(), hash.into());
    let mut labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.into());
    Some(ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: d.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![util::controller_ref(d)?]),
            ..Default::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        },
        status: None,
    })
}

fn condition(
    old: &[DeploymentCondition],
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    updated_at: Option<Timestamp>,
    now: Timestamp,
) -> DeploymentCondition {
    let status = if ok { "True" } else { "False" };
    let prev = old.iter().find(|c| c.type_.as_deref() == Some(type_));
    let same = prev.is_some_and(|c| c.status.as_deref() == Some(status));
    let same_reason = same && prev.is_some_and(|c| c.reason.as_deref() == Some(reason));
    DeploymentCondition {
        type_: Some(type_.to_string()),
        status: Some(status.to_string()),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_transition_time: if same { prev.and_then(|c| c.last_transition_time.clone()) } else { Some(Time(now)) },
        last_update_time: match updated_at {
            Some(t) => Some(Time(t)),
            None if same_reason => prev.and_then(|c| c.last_update_time.clone()),
            None => Some(Time(now)),
        },
    }
}

pub fn plan(d: &Deployment, sets: &[ReplicaSet], now: Timestamp) -> Plan {
    let spec = &d.spec;
    let name = d.name_any();
    let desired = spec.replicas.unwrap_or(1).max(0);
    let hash = template_hash(&spec.template);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let (surge, max_unavailable) = surge_and_unavailable(d, desired);
    let paused = spec.paused.unwrap_or(false);

    let new = sets.iter().find(|rs| rs.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)) == Some(&hash));
    let olds: Vec<&ReplicaSet> =
        sets.iter().filter(|rs| new.is_none_or(|n| n.metadata.uid != rs.metadata.uid)).collect();
    let old_replicas: i32 = olds.iter().map(|rs| spec_replicas(rs)).sum();
    let old_pods: i32 = olds.iter().map(|rs| rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)).sum();
    let mut out = Plan::default();
    let mut new_target = new.map(spec_replicas).unwrap_or(0);
    let next_revision = olds.iter().map(|rs| revision(rs)).max().unwrap_or(0) + 1;
    // Recorded on a new ReplicaSet; a Recreate deployment never surges.
    let replica_annotations = (desired, desired + if recreate { 0 } else { surge });

    if !paused {
        if recreate {
            // Old pods all go first; the new ReplicaSet scales up once none is left.
            for rs in &olds {
                if spec_replicas(rs) != 0 {
                    out.scale.insert(rs.name_any(), 0);
                }
            }
            new_target = if old_pods == 0 && old_replicas == 0 { desired } else { 0 };
        } else if olds.is_empty() || old_replicas == 0 {
            new_target = desired;
        } else {
            // Scale up the new set within maxSurge.
            let total: i32 = sets.iter().map(spec_replicas).sum();
            let room = desired + surge - total;
            if new_target < desired && room > 0 {
                new_target = (new_target + room).min(desired);
            }
            let new_available = new.map(available).unwrap_or(0).min(new_target);
            out.scale.extend(scale_down_old(&olds, new_target, new_available, desired - max_unavailable));
        }
        match new {
            Some(rs) if spec_replicas(rs) != new_target => {
                out.scale.insert(rs.name_any(), new_target);
            }
            Some(_) => {}
            None => {
                let annotations = revision::new_set_annotations(d, None, next_revision, replica_annotations);
                out.create = new_replica_set(d, &hash, new_target, annotations);
            }
        }
    }
    // Revisions follow the template even while paused, as in the real controller.
    if let Some(rs) = new {
        let changes = revision::new_set_annotations(d, Some(rs), next_revision, replica_annotations);
        if !changes.is_empty() {
            out.annotate = Some((rs.name_any(), changes));
        }
    }
    // The current ReplicaSet's revision once the annotations above are written.
    let current_revision = match new {
        Some(rs) => Some(revision(rs).max(next_revision)),
        None => out.create.as_ref().map(|_| next_revision),
    };
    let shown = d.metadata.annotations.as_ref().and_then(|a| a.get(revision::REVISION));
    out.revision = current_revision.map(|r| r.to_string()).filter(|r| Some(r) != shown);

    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| sets.iter().map(f).sum::<i32>();
    let replicas = sum(&|rs| rs.status.as_ref().map(|s| s.replicas).unwrap_or(0));
    let ready = sum(&|rs| rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0));
    let avail = sum(&available);
    let updated = new.and_then(|rs| rs.status.as_ref()).map(|s| s.replicas).unwrap_or(0);
    let new_available = new.map(available).unwrap_or(0);
    let old_conditions = d.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let new_name = new.map(|rs| rs.name_any()).unwrap_or_else(|| format!("{name}-{hash}"));
    let is_available = avail >= desired - max_unavailable;
    let complete =
        new.is_some() && updated == desired && new_available == desired && replicas == desired && old_replicas == 0;
    // Progress = any change of the replica counts. A rollout that makes none for
    // progressDeadlineSeconds is reported as Progressing=False/ProgressDeadlineExceeded, which is
    // how clients (kubectl rollout status, operators) detect a stuck rollout.
    let old_status = d.status.clone().unwrap_or_default();
    let progressed =
        (old_status.replicas, old_status.updated_replicas, old_status.ready_replicas, old_status.available_replicas)
            != (Some(replicas), Some(updated), Some(ready), Some(avail));
    let prev_progress = old_conditions.iter().find(|c| c.type_.as_deref() == Some("Progressing"));
    let prev_reason = prev_progress.and_then(|c| c.reason.as_deref());
    let deadline = spec.progress_deadline_seconds.unwrap_or(600).max(1) as i64;
    let mut progress_ok = true;
    let (progress_reason, progress_message) = if complete {
        ("NewReplicaSetAvailable", format!("ReplicaSet {new_name:?} has successfully progressed."))
    } else if new.is_none() {
        ("NewReplicaSetCreated", format!("Created new replica set {new_name:?}"))
    } else if prev_reason == Some("ProgressDeadlineExceeded") && !progressed && !paused {
        // Stays timed out until something moves again.
        progress_ok = false;
        ("ProgressDeadlineExceeded", format!("ReplicaSet {new_name:?} has timed out progressing."))
    } else {
        let since = prev_progress
            .and_then(|c| c.last_update_time.as_ref())
            .map(|t| t.0.as_second())
            .filter(|_| !progressed && prev_reason != Some("NewReplicaSetAvailable"))
            .unwrap_or(now.as_second());
        let left = since + deadline - now.as_second();
        if paused || left > 0 {
            if !paused {
                out.requeue = Some(Duration::from_secs(left as u64 + 1));
            }
            ("ReplicaSetUpdated", format!("ReplicaSet {new_name:?} is progressing."))
        } else {
            progress_ok = false;
            ("ProgressDeadlineExceeded", format!("ReplicaSet {new_name:?} has timed out progressing."))
        }
    };
    let conditions = vec![
        condition(
            &old_conditions,
            "Available",
            is_available,
            if is_available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
            if is_available {
                "Deployment has minimum availability.".to_string()
            } else {
                "Deployment does not have minimum availability.".to_string()
            },
            None,
            now,
        ),
        condition(
            &old_conditions,
            "Progressing",
            progress_ok,
            progress_reason,
            progress_message,
            if progressed { Some(now) } else { None },
            now,
        ),
    ];
    out.status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(avail),
        unavailable_replicas: Some((desired - avail).max(0)).filter(|n| *n > 0),
        conditions: Some(conditions),
        ..Default::default()
    };
    out
}

async fn reconcile(d: Arc<Deployment>, client: Arc<Client>) -> Result<Action, Error> {
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (Some(ns), Some(uid)) = (d.namespace(), d.metadata.uid.clone()) else {
        return Ok(Action::await_change());
    };
    let api: Api<ReplicaSet> = Api::namespaced((*client).clone(), &ns);
    let sets: Vec<ReplicaSet> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|rs| controlled_by(rs.metadata.owner_references.as_ref(), &uid))
        .collect();
    let plan = plan(&d, &sets, Timestamp::now());
    let deployments: Api<Deployment> = Api::namespaced((*client).clone(), &ns);
    if let Some(rs) = &plan.create
        && util::owner_is_live(&deployments, &d.name_any(), &uid).await?
    {
        util::tolerate(api.create(&PostParams::default(), rs).await)?;
    }
    if let Some((name, annotations)) = &plan.annotate {
        let patch = json!({ "metadata": { "annotations": annotations } });
        util::tolerate(api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await)?;
    }
    if let Some(revision) = &plan.revision {
        let patch = json!({ "metadata": { "annotations": { revision::REVISION: revision } } });
        util::tolerate(deployments.patch(&d.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await)?;
    }
    for (name, replicas) in &plan.scale {
        let patch = json!({ "spec": { "replicas": replicas } });
        util::tolerate(api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await)?;
    }
    let mut old = d.status.clone().unwrap_or_default();
    old.collision_count = None;
    if old != plan.status {
        let mut status = serde_json::to_value(&plan.status).unwrap_or_else(|_| json!({}));
        if let Some(map) = status.as_object_mut() {
            map.entry("unavailableReplicas").or_insert(serde_json::Value::Null);
        }
        util::tolerate(
            deployments
                .patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(&json!({ "status": status })))
                .await,
        )?;
    }
    // While a rollout is under way, look again soon even if no event comes.
    let acting = plan.create.is_some() || !plan.scale.is_empty();
    let soon = acting.then_some(Duration::from_secs(1));
    Ok(match (soon, plan.requeue) {
        (Some(a), Some(b)) => util::requeue(a.min(b)),
        (Some(a), None) | (None, Some(a)) => util::requeue(a),
        (None, None) => Action::await_change(),
    })
}

/// Runs the Deployment controller until `shutdown` is cancelled.
pub async fn run(client: Client, shutdown: CancellationToken) {
    wiring::run_controller::<Deployment, ReplicaSet, _, _>(client, shutdown, reconcile).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetStatus};
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn deployment(image: &str, replicas: i32) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("d-uid".into()),
                generation: Some(2),
                ..Default::default()
            },
            spec: DeploymentSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: Some([("app".to_string(), "web".to_string())].into()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_string(), "web".to_string())].into()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "c".into(),
                            image: Some(image.into()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            },
            status: None,
        }
    }

    fn with_status(mut rs: ReplicaSet, replicas: i32, available: i32) -> ReplicaSet {
        rs.metadata.uid = Some(format!("uid-{}", rs.name_any()));
        rs.spec.replicas = Some(replicas);
        rs.status = Some(ReplicaSetStatus {
            replicas,
            ready_replicas: Some(available),
            available_replicas: Some(available),
            ..Default::default()
        });
        rs
    }

    #[test]
    fn creates_a_replica_set_then_reports_progress() {
        let now = Timestamp::from_second(10).unwrap();
        let d = deployment("v1", 2);
        let p = plan(&d, &[], now);
        let rs = p.create.clone().unwrap();
        let hash = template_hash(&d.spec.template);
        assert_eq!(rs.name_any(), format!("web-{hash}"));
        assert_eq!(rs.spec.replicas, Some(2));
        let labels = rs.spec.template.clone().unwrap().metadata.unwrap().labels.unwrap();
        assert_eq!(labels.get(HASH_LABEL), Some(&hash));

        let running = with_status(rs, 2, 2);
        let p = plan(&d, &[running], now);
        assert!(p.create.is_none() && p.scale.is_empty());
        let conds = p.status.conditions.clone().unwrap();
        assert_eq!(conds[0].type_.as_deref(), Some("Available"));
        assert_eq!(conds[0].status.as_deref(), Some("True"));
        assert_eq!(conds[1].reason.as_deref(), Some("NewReplicaSetAvailable"));
        assert_eq!(p.status.observed_generation, Some(2));
        assert_eq!(p.status.available_replicas, Some(2));
    }

    #[test]
    fn a_stuck_rollout_exceeds_its_progress_deadline() {
        let mut d = deployment("v1", 1);
        d.spec.progress_deadline_seconds = Some(10);
        let t0 = Timestamp::from_second(100).unwrap();
        let rs = with_status(plan(&d, &[], t0).create.unwrap(), 1, 0);
        let progress = |p: &Plan| {
            let c = p.status.conditions.clone().unwrap()[1].clone();
            (c.status.unwrap(), c.reason.unwrap())
        };
        let p = plan(&d, std::slice::from_ref(&rs), t0);
        assert_eq!(progress(&p), ("True".into(), "ReplicaSetUpdated".into()));
        assert_eq!(p.requeue, Some(Duration::from_secs(11)));
        d.status = Some(p.status);
        let t1 = Timestamp::from_second(111).unwrap();
        let p = plan(&d, std::slice::from_ref(&rs), t1);
        assert_eq!(progress(&p), ("False".into(), "ProgressDeadlineExceeded".into()));
        d.status = Some(p.status);
        let p = plan(&d, std::slice::from_ref(&rs), Timestamp::from_second(200).unwrap());
        assert_eq!(progress(&p).1, "ProgressDeadlineExceeded", "stays until progress");
        let ready = with_status(rs, 1, 1);
        let p = plan(&d, &[ready], Timestamp::from_second(201).unwrap());
        assert_eq!(progress(&p), ("True".into(), "NewReplicaSetAvailable".into()));
    }

    #[test]
    fn rolls_over_to_a_new_template() {
        let now = Timestamp::from_second(10).unwrap();
        let v1 = deployment("v1", 2);
        let old = with_status(plan(&v1, &[], now).create.unwrap(), 2, 2);
        let v2 = deployment("v2", 2);
        // maxSurge 25% of 2 rounds up to 1: the new set starts with one pod.
        let p = plan(&v2, std::slice::from_ref(&old), now);
        let new = p.create.clone().unwrap();
        assert_eq!(new.spec.replicas, Some(1));
        assert_eq!(revision(&new), 2);
        assert!(p.scale.is_empty(), "{:?}", p.scale);
        // Once the new pod is available, an old one may go and the new set grows.
        let new = with_status(new, 1, 1);
        let p = plan(&v2, &[old, new.clone()], now);
        assert_eq!(p.scale.get(&new.name_any()), None);
        let old_name = format!("web-{}", template_hash(&v1.spec.template));
        assert_eq!(p.scale.get(&old_name), Some(&1));
    }

    #[test]
    fn with_max_unavailable_zero_no_old_pod_goes_before_a_new_one_is_available() {
        let now = Timestamp::from_second(10).unwrap();
        let zero_unavailable = |image: &str| {
            let mut d = deployment(image, 2);
            d.spec.strategy = Some(k8s_openapi::api::apps::v1::DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(k8s_openapi::api::apps::v1::RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            });
            d
        };
        let v1 = zero_unavailable("v1");
        let old = with_status(plan(&v1, &[], now).create.unwrap(), 2, 2);
        let old_name = old.name_any();
        let v2 = zero_unavailable("v2");
        let new = plan(&v2, std::slice::from_ref(&old), now).create.unwrap();
        // The new pod exists but is not ready (e.g. its readiness gate): the old set stays whole.
        let waiting = with_status(new.clone(), 1, 0);
        let p = plan(&v2, &[old.clone(), waiting.clone()], now);
        assert!(p.scale.is_empty(), "{:?}", p.scale);
        // Even an old pod that is unavailable stays while nothing may be scaled down.
        let old_one_unready = with_status(old.clone(), 2, 1);
        let p = plan(&v2, &[old_one_unready.clone(), waiting], now);
        assert!(p.scale.is_empty(), "{:?}", p.scale);
        // A stale status still counting a pod the last scale-down removed (old set 3 -> 2)
        // must not let a second old pod go with only 2 new ones available.
        let (mut v1_of_3, mut v2_of_3) = (zero_unavailable("v1"), zero_unavailable("v2"));
        v1_of_3.spec.replicas = Some(3);
        v2_of_3.spec.replicas = Some(3);
        let mut stale = with_status(plan(&v1_of_3, &[], now).create.unwrap(), 3, 3);
        stale.spec.replicas = Some(2);
        let new_of_3 = with_status(plan(&v2_of_3, std::slice::from_ref(&stale), now).create.unwrap(), 2, 2);
        let p = plan(&v2_of_3, &[stale.clone(), new_of_3], now);
        assert_eq!(p.scale.get(&stale.name_any()), Some(&1), "{:?}", p.scale);
        // One new pod available: exactly one old pod may go.
        let p = plan(&v2, &[old, with_status(new, 1, 1)], now);
        assert_eq!(p.scale.get(&old_name), Some(&1));
    }
}

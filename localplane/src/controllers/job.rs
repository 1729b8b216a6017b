//! The Job controller (batch/v1): creates pods from the template, counts their outcomes, retries
//! failures up to backoffLimit, enforces activeDeadlineSeconds, and reports conditions the way
//! Kubernetes 1.31+ does: `SuccessCriteriaMet` then `Complete`, `FailureTarget` then `Failed`.
//!
//! Each pod is counted exactly once, however soon another client deletes it, as Kubernetes does
//! (`batch.kubernetes.io/job-tracking`): the controller creates its pods with that finalizer, so
//! a finished pod stays until the controller has recorded its uid under
//! `status.uncountedTerminatedPods`, removed the finalizer, and moved the uid into the
//! `succeeded`/`failed` counters. An operator that deletes a pod as soon as it read its result
//! can no longer make the Job start it again.
//!
//! Deleting a Job deletes its pods through ownerReference garbage collection (the API server);
//! the controller then releases their finalizers. Indexed completion mode, pod failure policies
//! and success policies are not implemented.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::util::{self, controlled_by, is_deleting, is_terminal, phase};
use super::wiring;
use crate::Error;

pub const LABEL_JOB_NAME: &str = "batch.kubernetes.io/job-name";
pub const LABEL_CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
/// The finalizer that holds a Job's pod until the Job controller has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";

/// Delay before re-creating a pod after the n-th failure: 1s, 2s, 4s... up to 60s. Real
/// clusters start at 10s and cap at 6 minutes; a local tool retries sooner.
const RETRY_BASE: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What a reconcile should do, decided from the Job and its pods alone.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub create: usize,
    pub delete: Vec<String>,
    pub status: JobStatus,
    pub requeue: Option<Duration>,
    /// ttlSecondsAfterFinished has passed: delete the Job (its pods follow by GC).
    pub delete_job: bool,
    /// Finished pods seen for the first time: their uids are recorded as uncounted (this status
    /// write comes first) before any finalizer is removed.
    pub uncounted: Option<UncountedTerminatedPods>,
    /// Pods whose finalizer goes, their uids recorded: then `status` counts them.
    pub release: Vec<String>,
}

fn is_tracked(pod: &Pod) -> bool {
    pod.metadata.finalizers.iter().flatten().any(|f| f == TRACKING_FINALIZER)
}

/// The uids of `pods` still held for counting whose outcome is known, and that outcome
/// (`true`: succeeded). A pod deleted before it ended counts as failed, as in Kubernetes.
fn finished(pods: &[Pod]) -> Vec<(String, bool)> {
    pods.iter()
        .filter(|p| is_tracked(p) && (is_terminal(p) || is_deleting(p)))
        .filter_map(|p| Some((p.metadata.uid.clone()?, phase(p) == "Succeeded")))
        .collect()
}

fn has(conds: &[JobCondition], type_: &str) -> bool {
    conds.iter().any(|c| c.type_ == type_ && c.status == "True")
}

fn find<'a>(conds: &'a [JobCondition], type_: &str) -> Option<&'a JobCondition> {
    conds.iter().find(|c| c.type_ == type_ && c.status == "True")
}

fn condition(type_: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.to_string(),
        status: "True".to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// When a failed pod finished (its last container termination), for the retry delay.
fn finished_at(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max()
}

fn count(n: usize) -> Option<i32> {
    (n > 0).then_some(n as i32)
}

/// Decides what to do for a Job given its current pods.
pub fn plan(job: &Job, pods: &[Pod], now: Timestamp) -> Plan {
    let spec = job.spec.clone().unwrap_or_default();
    let old = job.status.clone().unwrap_or_default();
    let mut conditions = old.conditions.clone().unwrap_or_default();
    if has(&conditions, "Complete") || has(&conditions, "Failed") {
        // Finished: nothing runs any more (a Failed job's stragglers are stopped).
        let delete = if has(&conditions, "Failed") {
            pods.iter().filter(|p| !is_terminal(p) && !is_deleting(p)).map(|p| p.name_any()).collect()
        } else {
            Vec::new()
        };
        // What ends now (a failed Job's stragglers, pods deleted later) is not counted any more.
        let release = pods.iter().filter(|p| is_tracked(p) && (is_terminal(p) || is_deleting(p))).map(|p| p.name_any());
        let mut out = Plan { delete, status: old.clone(), release: release.collect(), ..Default::default() };
        let finished_at = old
            .completion_time
            .as_ref()
            .map(|t| t.0)
            .or_else(|| find(&conditions, "Failed").and_then(|c| c.last_transition_time.as_ref()).map(|t| t.0));
        if let (Some(ttl), Some(at)) = (spec.ttl_seconds_after_finished, finished_at) {
            let left = at.as_second() + ttl as i64 - now.as_second();
            if left <= 0 {
                out.delete_job = true;
            } else {
                out.requeue = Some(Duration::from_secs(left as u64));
            }
        }
        return out;
    }

    let parallelism = spec.parallelism.unwrap_or(1).max(0) as usize;
    let backoff_limit = spec.backoff_limit.unwrap_or(6).max(0) as i64;
    let suspended = spec.suspend.unwrap_or(false);
    let on_failure = spec.template.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("OnFailure");

    let active: Vec<&Pod> = pods.iter().filter(|p| !is_terminal(p) && !is_deleting(p)).collect();
    let terminating = pods.iter().filter(|p| !is_terminal(p) && is_deleting(p)).count();
    let ready = active.iter().filter(|p| util::is_ready(p)).count();
    // Counted: the counters, the uids recorded as uncounted, and finished pods still held.
    let recorded = old.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut uncounted_succeeded: BTreeSet<String> = recorded.succeeded.iter().flatten().cloned().collect();
    let mut uncounted_failed: BTreeSet<String> = recorded.failed.iter().flatten().cloned().collect();
    let before = uncounted_succeeded.len() + uncounted_failed.len();
    for (uid, success) in finished(pods) {
        if !uncounted_failed.contains(&uid) && success {
            uncounted_succeeded.insert(uid);
        } else if !uncounted_succeeded.contains(&uid) {
            uncounted_failed.insert(uid);
        }
    }
    let uncounted = (uncounted_succeeded.len() + uncounted_failed.len() > before).then(|| UncountedTerminatedPods {
        succeeded: Some(uncounted_succeeded.iter().cloned().collect()),
        failed: Some(uncounted_failed.iter().cloned().collect()),
    });
    let release: Vec<String> = pods
        .iter()
        .filter(|p| is_tracked(p))
        .filter(|p| {
            p.metadata.uid.as_ref().is_some_and(|u| uncounted_succeeded.contains(u) || uncounted_failed.contains(u))
        })
        .map(|p| p.name_any())
        .collect();
    let succeeded = old.succeeded.unwrap_or(0) as usize + uncounted_succeeded.len();
    let failed = old.failed.unwrap_or(0) as usize + uncounted_failed.len();
    // Under OnFailure, container restarts count against the backoff limit, as in Kubernetes.
    let restarts: i64 = if on_failure {
        pods.iter()
            .flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()))
            .map(|c| c.restart_count as i64)
            .sum()
    } else {
        0
    };

    let start = match &old.start_time {
        Some(t) => Some(t.0),
        None if suspended => None,
        None => Some(now),
    };
    let mut out = Plan { uncounted, release, ..Plan::default() };

    if !has(&conditions, "FailureTarget") && !has(&conditions, "SuccessCriteriaMet") {
        let deadline_passed = match (spec.active_deadline_seconds, start) {
            (Some(secs), Some(start)) => now.as_second() - start.as_second() >= secs,
            _ => false,
        };
        let complete = match spec.completions {
            Some(c) => succeeded as i64 >= c as i64,
            // Without completions, the first success completes the job once no pod is active.
            None => succeeded > 0 && active.is_empty(),
        };
        if deadline_passed {
            conditions.push(condition(
                "FailureTarget",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
                now,
            ));
        } else if failed as i64 + restarts > backoff_limit {
            conditions.push(condition(
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                now,
            ));
        } else if complete {
            conditions.push(condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
        }
    }

    let active_after: usize;
    let mut completion_time = old.completion_time.clone();
    if let Some(target) = find(&conditions, "FailureTarget").cloned() {
        // Stop what runs; pods stopped this way count as failed once they show as deleted.
        out.delete = active.iter().map(|p| p.name_any()).collect();
        active_after = 0;
        if active.is_empty() && terminating == 0 {
            conditions.push(condition(
                "Failed",
                target.reason.as_deref().unwrap_or_default(),
                target.message.as_deref().unwrap_or_default(),
                now,
            ));
        } else {
            out.requeue = Some(Duration::from_millis(200));
        }
    } else if has(&conditions, "SuccessCriteriaMet") {
        out.delete = active.iter().map(|p| p.name_any()).collect();
        active_after = 0;
        if active.is_empty() && terminating == 0 {
            conditions.push(condition(
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
            completion_time = Some(Time(now));
        } else {
            out.requeue = Some(Duration::from_millis(200));
        }
    } else if suspended {
        out.delete = active.iter().map(|p| p.name_any()).collect();
        active_after = 0;
    } else {
        let remaining = match spec.completions {
            Some(c) => (c.max(0) as usize).saturating_sub(succeeded),
            None if succeeded == 0 => parallelism,
            None => 0,
        };
        let want = parallelism.min(remaining);
        let mut create = want.saturating_sub(active.len());
        if create > 0 && failed > 0 {
            let last = pods.iter().filter(|p| phase(p) == "Failed").filter_map(finished_at).max();
            let shift = (failed - 1).min(16) as u32;
            let delay = (RETRY_BASE * 2u32.pow(shift)).min(RETRY_MAX);
            if let Some(last) = last {
                let ready_at = last.as_millisecond() + delay.as_millis() as i64;
                let wait = ready_at - now.as_millisecond();
                if wait > 0 {
                    create = 0;
                    out.requeue = Some(Duration::from_millis(wait as u64));
                }
            }
        }
        out.create = create;
        active_after = active.len() + create;
        if let (Some(secs), Some(start)) = (spec.active_deadline_seconds, start) {
            let left = start.as_second().saturating_add(secs).saturating_sub(now.as_second()).max(0) as u64;
            let deadline = Duration::from_secs(left) + Duration::from_millis(100);
            out.requeue = Some(out.requeue.map_or(deadline, |r| r.min(deadline)));
        }
    }

    out.status = JobStatus {
        start_time: start.map(Time),
        completion_time,
        active: count(active_after),
        ready: Some(if active_after == 0 { 0 } else { ready as i32 }),
        succeeded: count(succeeded),
        failed: count(failed),
        terminating: Some(terminating as i32),
        conditions: Some(conditions).filter(|c| !c.is_empty()),
        // Counted above, once their finalizers are gone.
        uncounted_terminated_pods: None,
        ..old
    };
    out
}

/// The pod a Job creates.
pub fn job_pod(job: &Job) -> Option<Pod> {
    let uid = job.metadata.uid.clone()?;
    let name = job.metadata.name.clone()?;
    let template = job.spec.as_ref()?.template.clone();
    let mut labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    labels.insert(LABEL_CONTROLLER_UID.into(), uid.clone());
    labels.insert(LABEL_JOB_NAME.into(), name.clone());
    labels.insert("controller-uid".into(), uid);
    labels.insert("job-name".into(), name.clone());
    Some(Pod {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{}", util::random_suffix())),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            finalizers: Some(vec![TRACKING_FINALIZER.into()]),
            annotations: template.metadata.as_ref().and_then(|m| m.annotations.clone()),
            owner_references: Some(vec![util::controller_ref(job)?]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    })
}

/// A status merge patch: fields absent from the new status are removed.
fn status_patch(status: &JobStatus) -> serde_json::Value {
    let mut value = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    if let Some(map) = value.as_object_mut() {
        for key in ["active", "succeeded", "failed", "completionTime", "conditions", "uncountedTerminatedPods"] {
            map.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    json!({ "status": value })
}

async fn reconcile(job: Arc<Job>, client: Arc<Client>) -> Result<Action, Error> {
    reconcile_once(&job, &client).await
}

/// One reconcile of the Job that `cached` names, as the controller runs it on each change.
///
/// It decides from the Job read fresh, never from `cached`: a watch cache can lag (dropped
/// watches, 410 Gone and relists) while the pods, listed fresh, have moved on. A cached Job
/// from before its pod was counted, with that pod since deleted (its run's result recorded),
/// would look as if it never ran and start a second pod. The real controller rules this out
/// with expectations and pod finalizers; a fresh read, then a fresh list, does here: only this
/// controller counts a Job's pods, one reconcile of a Job at a time.
pub async fn reconcile_once(cached: &Job, client: &Client) -> Result<Action, Error> {
    let (Some(ns), Some(uid)) = (cached.namespace(), cached.metadata.uid.clone()) else {
        return Ok(Action::await_change());
    };
    let name = cached.name_any();
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let live = jobs.get_opt(&name).await?.filter(|j| j.metadata.uid.as_deref() == Some(uid.as_str()));
    let Some(job) = live.filter(|j| j.metadata.deletion_timestamp.is_none()) else {
        // Nothing is counted for a Job that goes: its pods are let go.
        for pod in job_pods(&pods_api, &uid).await?.iter().filter(|p| is_tracked(p)) {
            release(&pods_api, pod).await?;
        }
        return Ok(Action::await_change());
    };
    let pods = job_pods(&pods_api, &uid).await?;
    let plan = plan(&job, &pods, Timestamp::now());
    // Record the finished pods before letting any go: a pod released first and the controller
    // stopped before counting it would be lost, and the Job would start it again.
    if let Some(uncounted) = &plan.uncounted {
        let patch = json!({"status": {"uncountedTerminatedPods": uncounted}});
        jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }
    for pod in pods.iter().filter(|p| plan.release.contains(&p.name_any())) {
        release(&pods_api, pod).await?;
    }
    if plan.delete_job {
        util::tolerate(jobs.delete(&name, &DeleteParams::background()).await)?;
        return Ok(Action::await_change());
    }

    for pod_name in &plan.delete {
        util::tolerate(pods_api.delete(pod_name, &DeleteParams::default()).await)?;
    }
    for _ in 0..plan.create {
        let Some(pod) = job_pod(&job) else { break };
        // A failure (a name clash too) is retried: the next reconcile lists what exists.
        let created = pods_api.create(&PostParams::default(), &pod).await?;
        tracing::debug!(job = %name, pod = %created.name_any(), "pod created");
    }
    let old = job.status.clone().unwrap_or_default();
    if plan.status != old {
        util::tolerate(
            jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status_patch(&plan.status))).await,
        )?;
    }
    Ok(match plan.requeue {
        Some(d) => util::requeue(d),
        None => Action::await_change(),
    })
}

/// The pods the Job with `uid` controls.
async fn job_pods(api: &Api<Pod>, uid: &str) -> Result<Vec<Pod>, Error> {
    let listed = api.list(&ListParams::default().labels(&format!("{LABEL_CONTROLLER_UID}={uid}"))).await?;
    Ok(listed.items.into_iter().filter(|p| controlled_by(p.metadata.owner_references.as_ref(), uid)).collect())
}

/// Remove the tracking finalizer from `pod` (a deleted pod then goes), only over the version
/// read: another client's finalizers are kept.
async fn release(api: &Api<Pod>, pod: &Pod) -> Result<(), Error> {
    let kept: Vec<&String> = pod.metadata.finalizers.iter().flatten().filter(|f| *f != TRACKING_FINALIZER).collect();
    let patch = json!({"metadata": {"finalizers": kept, "resourceVersion": pod.metadata.resource_version}});
    Ok(util::tolerate(api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await)?)
}

/// Pods of Jobs that are gone wake no Job reconcile (the controller reconciles only Jobs its
/// cache holds): a pod still held for counting when its Job went (deleted with it by garbage
/// collection) is let go here.
async fn release_orphans(client: Client, shutdown: CancellationToken) {
    let pods: Api<Pod> = Api::all(client.clone());
    let held = watcher(pods, watcher::Config::default().labels(LABEL_CONTROLLER_UID))
        .default_backoff()
        .applied_objects()
        .filter_map(|pod| futures::future::ready(pod.ok().filter(|p| is_tracked(p) && is_deleting(p))));
    let release_orphan = |pod: Pod| {
        let client = client.clone();
        async move {
            let (Some(ns), Some(uid)) = (pod.namespace(), pod.labels().get(LABEL_CONTROLLER_UID).cloned()) else {
                return;
            };
            let Some(owner) = pod.metadata.owner_references.iter().flatten().find(|o| o.uid == uid) else { return };
            let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
            match util::owner_is_live(&jobs, &owner.name, &uid).await {
                Ok(false) => {
                    if let Err(error) = release(&Api::namespaced(client, &ns), &pod).await {
                        tracing::debug!(%error, pod = %pod.name_any(), "could not release an orphan pod");
                    }
                }
                Ok(true) => {}
                Err(error) => tracing::debug!(%error, "could not read a pod's Job"),
            }
        }
    };
    tokio::select! {
        () = held.for_each_concurrent(8, release_orphan) => {}
        () = shutdown.cancelled() => {}
    }
}

/// Runs the Job controller until `shutdown` is cancelled.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let orphans = release_orphans(client.clone(), shutdown.clone());
    let controller = wiring::run_controller::<Job, Pod, _, _>(client, shutdown, reconcile);
    tokio::join!(controller, orphans);
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus, PodTemplateSpec};

    fn job(spec: JobSpec) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("train".into()),
                namespace: Some("ns".into()),
                uid: Some("uid-1".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec { restart_policy: Some("Never".into()), ..Default::default() }),
                },
                ..spec
            }),
            status: None,
        }
    }

    /// A pod the controller created (held for counting by its finalizer), its uid its name.
    fn pod(name: &str, phase: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(name.into()),
                finalizers: Some(vec![TRACKING_FINALIZER.into()]),
                ..Default::default()
            },
            status: Some(PodStatus { phase: Some(phase.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    fn types(status: &JobStatus) -> Vec<String> {
        status.conditions.iter().flatten().map(|c| c.type_.clone()).collect()
    }

    #[test]
    fn creates_then_completes_in_two_steps() {
        let now = Timestamp::from_second(1000).unwrap();
        let mut j = job(JobSpec::default());
        let p = plan(&j, &[], now);
        assert_eq!(p.create, 1);
        assert_eq!(p.status.active, Some(1));
        assert_eq!(p.status.start_time, Some(Time(now)));

        j.status = Some(p.status);
        let p = plan(&j, &[pod("a", "Succeeded")], now);
        assert_eq!(p.create, 0);
        assert_eq!(types(&p.status), vec!["SuccessCriteriaMet", "Complete"]);
        assert_eq!(p.status.succeeded, Some(1));
        assert_eq!(p.status.completion_time, Some(Time(now)));
        assert_eq!(p.status.active, None);

        // ttlSecondsAfterFinished deletes the finished Job once it has passed.
        j.status = Some(p.status);
        j.spec.as_mut().unwrap().ttl_seconds_after_finished = Some(30);
        let p = plan(&j, &[pod("a", "Succeeded")], Timestamp::from_second(1010).unwrap());
        assert!(!p.delete_job);
        assert_eq!(p.requeue, Some(Duration::from_secs(20)));
        let p = plan(&j, &[pod("a", "Succeeded")], Timestamp::from_second(1030).unwrap());
        assert!(p.delete_job);
    }

    #[test]
    fn retries_until_backoff_limit() {
        let now = Timestamp::from_second(1000).unwrap();
        let j = job(JobSpec { backoff_limit: Some(1), ..Default::default() });
        let p = plan(&j, &[pod("a", "Failed")], now);
        assert_eq!(p.create, 1, "one retry allowed");
        assert!(types(&p.status).is_empty());
        let p = plan(&j, &[pod("a", "Failed"), pod("b", "Failed")], now);
        assert_eq!(p.create, 0);
        assert_eq!(types(&p.status), vec!["FailureTarget", "Failed"]);
        let failed = p.status.conditions.unwrap()[1].clone();
        assert_eq!(failed.reason.as_deref(), Some("BackoffLimitExceeded"));
        assert_eq!(p.status.failed, Some(2));
    }

    #[test]
    fn deadline_stops_running_pods() {
        let start = Timestamp::from_second(1000).unwrap();
        let mut j = job(JobSpec { active_deadline_seconds: Some(5), ..Default::default() });
        j.status = Some(JobStatus { start_time: Some(Time(start)), ..Default::default() });
        let early = plan(&j, &[pod("a", "Running")], Timestamp::from_second(1002).unwrap());
        assert!(early.delete.is_empty());
        assert_eq!(early.requeue, Some(Duration::from_millis(3100)));
        let late = plan(&j, &[pod("a", "Running")], Timestamp::from_second(1006).unwrap());
        assert_eq!(late.delete, vec!["a".to_string()]);
        assert_eq!(types(&late.status), vec!["FailureTarget"]);
        j.status = Some(late.status);
        // The stopped pod counts as failed once it shows as deleted; then it is let go.
        let mut stopping = pod("a", "Running");
        stopping.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(1006).unwrap()));
        let counted = plan(&j, &[stopping], Timestamp::from_second(1006).unwrap());
        assert_eq!((counted.status.failed, counted.release.clone()), (Some(1), vec!["a".to_string()]));
        j.status = Some(counted.status);
        let done = plan(&j, &[], Timestamp::from_second(1007).unwrap());
        assert_eq!(types(&done.status), vec!["FailureTarget", "Failed"]);
        assert_eq!(done.status.conditions.unwrap()[1].reason.as_deref(), Some("DeadlineExceeded"));
    }

    #[test]
    fn a_finished_pod_is_recorded_before_it_is_let_go_and_counted_once() {
        let now = Timestamp::from_second(1000).unwrap();
        let mut j = job(JobSpec::default());
        let first = plan(&j, &[pod("a", "Succeeded")], now);
        let recorded = first.uncounted.clone().expect("the pod's uid is recorded first");
        assert_eq!(recorded.succeeded, Some(vec!["a".to_string()]));
        assert_eq!(first.release, vec!["a".to_string()]);
        assert_eq!((first.status.succeeded, first.status.uncounted_terminated_pods.clone()), (Some(1), None));
        // Stopped after recording, before the status counted it: the uid still counts once,
        // whether the pod is still held, let go, or gone.
        j.status = Some(JobStatus { uncounted_terminated_pods: Some(recorded), ..Default::default() });
        let mut released = pod("a", "Succeeded");
        released.metadata.finalizers = None;
        for pods in [vec![pod("a", "Succeeded")], vec![released], vec![]] {
            let again = plan(&j, &pods, now);
            assert_eq!((again.create, again.status.succeeded), (0, Some(1)), "{pods:?}");
            assert!(again.uncounted.is_none(), "nothing new to record");
        }
        // A pod let go and counted is not counted again.
        j.status = Some(JobStatus { succeeded: Some(1), ..Default::default() });
        let mut counted = pod("a", "Succeeded");
        counted.metadata.finalizers = None;
        assert_eq!(plan(&j, &[counted], now).status.succeeded, Some(1));
    }

    #[test]
    fn pods_carry_labels_and_owner() {
        let p = job_pod(&job(JobSpec::default())).unwrap();
        let name = p.metadata.name.unwrap();
        assert!(name.starts_with("train-") && name.len() == "train-".len() + 5);
        let labels = p.metadata.labels.unwrap();
        for key in [LABEL_JOB_NAME, LABEL_CONTROLLER_UID, "job-name", "controller-uid"] {
            assert!(labels.contains_key(key), "{key}");
        }
        let owner = &p.metadata.owner_references.unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
        assert_eq!(p.metadata.finalizers, Some(vec![TRACKING_FINALIZER.to_string()]));
    }
}

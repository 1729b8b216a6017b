//! The TrainingRun controller: gather -> validate -> build -> apply -> status.
//! It creates a run's Job, reads the trainer's result when the Job ends, judges the
//! gates against the champion, and records everything in the run's status.

pub mod build;
pub mod outcome;
pub mod status;

/// Gate verdicts and champion selection are properties of the runs, shared with clients.
pub use crate::api::gates;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, ListParams, LogParams, Patch, PatchParams},
    runtime::controller::Action,
};

use crate::api::{GateOutcome, RunPhase, TrainingRun, TrainingRunStatus};
use crate::controllers::{Context, Life, caches::JOB_NAME_LABEL, error::Result, failures, labels};
use gates::Champion;
use outcome::Outcome;

/// Reconcile one run; an error that repeats is reported on it.
#[tracing::instrument(skip_all, fields(run = %run.name_any(), namespace = run.namespace().unwrap_or_default()))]
pub async fn reconcile(run: Arc<TrainingRun>, ctx: Arc<Life>) -> Result<Action> {
    failures::reported(&ctx, &*run, reconcile_run(run.clone(), ctx.clone()).await).await
}

/// A finished run's conditions are its outcome: a failing cleanup of its pods is only announced,
/// never written over them.
impl failures::ReportsFailures for TrainingRun {
    type Status = TrainingRunStatus;
    const CONTROLLER: &'static str = "trainingrun";

    fn failing_status(&self, category: &str, message: &str) -> Option<TrainingRunStatus> {
        let old = self.status.clone().unwrap_or_default();
        if is_terminal(old.phase) {
            return None;
        }
        let new = status::failing(self, &old, category, message);
        (new != old).then_some(new)
    }
}

async fn reconcile_run(run: Arc<TrainingRun>, ctx: Arc<Life>) -> Result<Action> {
    let old = run.status.clone().unwrap_or_default();
    let namespace = run.namespace().unwrap_or_default();
    if is_terminal(old.phase) {
        // Its result is recorded: the pods can go. An operator stopped between recording the
        // result and deleting them left them behind, so every finished run looks again.
        if let Some(job) = old.job_name.as_deref().and_then(|job| ctx.caches.job(&namespace, job))
            && job_finished(&job)
        {
            cleanup_pods(&ctx, &namespace, &ctx.caches.job_pods(&namespace, &job.name_any())).await?;
        }
        return Ok(Action::await_change());
    }
    if let Some(successor) = run.annotations().get(labels::SUPERSEDED_BY) {
        return supersede(&ctx, &run, &old, successor).await;
    }
    let validated = match build::validate(&run, &ctx.settings) {
        Ok(validated) => validated,
        Err(invalid) => {
            let problem = invalid.to_string();
            let new = status::invalid(&run, &old, &problem);
            if new != old {
                ctx.event(&run.object_ref(&()), true, "InvalidSpec", "Validate", problem).await;
                write_status(&ctx, &run, &new).await?;
            }
            return Ok(Action::await_change());
        }
    };

    // Gather (and, the first time, apply): the Job is the only child whose state matters. One the
    // run recorded but the cache lacks is read fresh before it is called deleted.
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let job = match ctx.caches.job(&namespace, &validated.name) {
        Some(job) => Some(Job::clone(&job)),
        None if old.job_name.is_some() => jobs.get_opt(&validated.name).await?,
        None => None,
    };
    let job = match job {
        Some(job) => job,
        // The run started once: its Job was deleted behind its back (or by a Replace, which
        // marks the run first). Never start a run twice; read it fresh to know which.
        None if old.job_name.is_some() => return job_vanished(&ctx, &run).await,
        None => {
            let params = PatchParams::apply(labels::FIELD_MANAGER).force();
            let job = jobs.patch(&validated.name, &params, &Patch::Apply(&build::job(&validated))).await?;
            tracing::info!(job = %validated.name, "training Job created");
            job
        }
    };
    // Pods tell what the Job does not: the trainer's result, or why it cannot start.
    let unready = job.status.as_ref().is_some_and(|s| s.active.unwrap_or(0) > s.ready.unwrap_or(0));
    let pods = if job_finished(&job) || unready { job_pods(&ctx, &namespace, &job).await? } else { Vec::new() };
    let mut observed = outcome::observe(Some(&job), &pods, None);
    if matches!(observed, Outcome::Failed { reason: "NoResult", .. }) {
        let logs = last_logs(&ctx, &namespace, &pods).await;
        observed = outcome::observe(Some(&job), &pods, logs.as_deref());
    }

    // A trainer that cannot start fails after its start timeout, and its Job is stopped so the
    // pod stops retrying; a suspended Job waits for Kueue's admission, which is not a start.
    let suspended = job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false);
    let created = run.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let timeout = run.spec.start_timeout_seconds.unwrap_or(outcome::DEFAULT_START_TIMEOUT_SECONDS);
    if let Some(created) = created.filter(|_| !suspended)
        && let Some(failed) = outcome::start_timed_out(&observed, created, k8s_openapi::jiff::Timestamp::now(), timeout)
    {
        observed = failed;
        match jobs.delete(&validated.name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(error) => return Err(error.into()),
        }
    }

    let champion = match &observed {
        Outcome::Succeeded { .. } => find_champion(&ctx, &run),
        _ => None,
    };
    let new = status::observed(&run, &old, &validated, &observed, champion.as_ref());
    if new != old {
        if let Outcome::Blocked { reason, message } = &observed
            && !old.conditions.iter().any(|c| c.reason == *reason)
        {
            ctx.event(&run.object_ref(&()), true, "TrainerNotStarting", "StartTrainer", message.clone()).await;
        }
        write_status(&ctx, &run, &new).await?;
        if is_terminal(new.phase) {
            announce(&ctx, &run, &new).await;
            // A failed deletion is retried: the next reconcile finds the run finished.
            if job_finished(&job) {
                cleanup_pods(&ctx, &namespace, &pods).await?;
            }
        }
    }
    let starting = created.filter(|_| !suspended);
    Ok(requeue_at_start_timeout(new.phase, starting, timeout, k8s_openapi::jiff::Timestamp::now()))
}

/// When to look at a run again unprompted: Job and pod changes wake this controller, so only
/// the start timeout of a Pending run (created at `starting`, not waiting for admission) needs a
/// clock.
fn requeue_at_start_timeout(
    phase: RunPhase,
    starting: Option<k8s_openapi::jiff::Timestamp>,
    timeout: i64,
    now: k8s_openapi::jiff::Timestamp,
) -> Action {
    match (phase, starting) {
        (RunPhase::Pending, Some(created)) => {
            let left = timeout - (now - created).get_seconds();
            // At least a second: a timeout already passed is judged at once, never in a busy loop.
            Action::requeue(Duration::from_secs(left.clamp(1, timeout.max(1)) as u64))
        }
        _ => Action::await_change(),
    }
}

/// A newer run replaces this one: record it, then stop the Job. In that order, so that the Job's
/// deletion finds the run already ended.
async fn supersede(ctx: &Life, run: &TrainingRun, old: &TrainingRunStatus, successor: &str) -> Result<Action> {
    let message = format!("replaced by {successor}");
    let new = status::superseded(run, old, &message);
    write_status(ctx, run, &new).await?;
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    match jobs.delete(&run.name_any(), &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.is_not_found() => {}
        Err(error) => return Err(error.into()),
    }
    announce(ctx, run, &new).await;
    Ok(Action::await_change())
}

/// The Job of a started run is gone: unless the run already ended, it failed.
async fn job_vanished(ctx: &Life, run: &TrainingRun) -> Result<Action> {
    let api: Api<TrainingRun> = Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    let Some(fresh) = api.get_opt(&run.name_any()).await? else { return Ok(Action::await_change()) };
    let old = fresh.status.clone().unwrap_or_default();
    if is_terminal(old.phase) {
        return Ok(Action::await_change());
    }
    let observed = Outcome::Failed {
        finished: Some(k8s_openapi::jiff::Timestamp::now()),
        reason: "JobDeleted",
        message: format!("the training Job {} was deleted before it finished", run.name_any()),
    };
    let new = status::vanished(&fresh, &old, &observed);
    write_status(ctx, &fresh, &new).await?;
    announce(ctx, &fresh, &new).await;
    Ok(Action::await_change())
}

fn is_terminal(phase: RunPhase) -> bool {
    matches!(phase, RunPhase::Succeeded | RunPhase::Failed | RunPhase::Superseded)
}

fn job_finished(job: &Job) -> bool {
    job.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

/// The Job's pods, from the cache; read fresh when the Job has finished but no cached pod shows
/// how (the pod cache behind the Job's, or the pods gone): the result is read from them.
async fn job_pods(ctx: &Life, namespace: &str, job: &Job) -> Result<Vec<Pod>> {
    let cached = ctx.caches.job_pods(namespace, &job.name_any());
    if !job_finished(job) || outcome::pods_show_end(job, &cached) {
        return Ok(cached);
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!("{JOB_NAME_LABEL}={}", job.name_any());
    Ok(pods.list(&ListParams::default().labels(&selector)).await?.items)
}

async fn last_logs(ctx: &Context, namespace: &str, pods: &[Pod]) -> Option<String> {
    let pod = pods.iter().max_by_key(|p| p.metadata.creation_timestamp.clone())?;
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let params = LogParams { tail_lines: Some(10), container: Some(build::CONTAINER.into()), ..LogParams::default() };
    api.logs(&pod.name_any(), &params).await.ok()
}

/// The run currently served by a ModelDeployment that follows this pipeline, else the best
/// earlier passing run of the pipeline.
fn find_champion(ctx: &Life, run: &TrainingRun) -> Option<Champion> {
    let pipeline = run.spec.pipeline.as_deref()?;
    let namespace = run.namespace().unwrap_or_default();
    let served = ctx.caches.deployments(&namespace).into_iter().find_map(|md| {
        let follows = md.spec.source.pipeline_ref.as_ref().is_some_and(|p| p.name == pipeline);
        follows.then(|| md.status.and_then(|s| s.current_model)).flatten()
    });
    if let Some(served) = served
        && Some(served.run.as_str()) != run.metadata.name.as_deref()
    {
        return Some(Champion { name: served.run, metrics: served.metrics });
    }
    let siblings = ctx.caches.pipeline_runs(&namespace, pipeline);
    gates::best_passing(&siblings, &run.spec.evaluation, &run.name_any())
}

/// Apply the run's whole status: this controller is its only writer. Only over the version it
/// read: a status computed from a cached run that is behind (a watch that lags under API faults)
/// would write an old phase over a recorded outcome, or judge a run by pods its own cleanup
/// already removed (`ResultLost` over a success). Such a write fails with 409 and the reconcile
/// runs again on fresh data.
async fn write_status(ctx: &Life, run: &TrainingRun, status: &TrainingRunStatus) -> Result<()> {
    super::status::apply(ctx, run, status).await.map(drop)
}

/// Events and metrics for a run that just finished.
async fn announce(ctx: &Context, run: &TrainingRun, status: &TrainingRunStatus) {
    let reference = run.object_ref(&());
    let (trigger, outcome) = (run.spec.trigger.trigger_type.as_str(), status.phase.as_str());
    let verdict = status.evaluation.as_ref().map(|e| format!("{:?}", e.result));
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.message.as_str()).unwrap_or("");
    tracing::info!(outcome, trigger, headline = status.headline.as_deref(), verdict, message = ready, "run finished");
    ctx.metrics.runs_finished.get_or_create(&crate::controllers::metrics::RunLabels { trigger, outcome }).inc();
    if let (Some(start), Some(end)) = (&status.start_time, &status.completion_time) {
        ctx.metrics.run_duration.observe((end.0 - start.0).get_seconds() as f64);
    }
    let message = |type_: &str| {
        status.conditions.iter().find(|c| c.type_ == type_).map(|c| c.message.clone()).unwrap_or_default()
    };
    match status.phase {
        // One event says both that the run succeeded and how its gates judged it.
        RunPhase::Succeeded => {
            let result = status.evaluation.as_ref().map(|e| e.result).unwrap_or(GateOutcome::Rejected);
            let (reason, type_) = match result {
                GateOutcome::Passed => ("RunPassed", "Passed"),
                GateOutcome::Rejected => ("RunRejected", "Rejected"),
            };
            ctx.metrics
                .gate_outcomes
                .get_or_create(&crate::controllers::metrics::GateLabels { result: type_.into() })
                .inc();
            let headline = status.headline.as_deref().map(|h| format!("{h}: ")).unwrap_or_default();
            let note = format!("{headline}{}", message(type_));
            ctx.event(&reference, result == GateOutcome::Rejected, reason, "JudgeGates", note).await;
        }
        RunPhase::Superseded => ctx.event(&reference, false, "RunSuperseded", "Supersede", message("Ready")).await,
        _ => ctx.event(&reference, true, "RunFailed", "ReadResult", message("Ready")).await,
    }
}

/// Once the result is in the run's status, the pods have nothing more to say; the Job stays as
/// the record of what ran. Only the pods of a Job that has finished (Complete or Failed): the
/// Job has counted them, so their deletion cannot make it start another (a Job stopped for a
/// start timeout is deleted, its pods with it). Each pod is deleted once: a pod cache behind
/// the deletion does not make it delete it again.
async fn cleanup_pods(ctx: &Life, namespace: &str, pods: &[Pod]) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let own_writes = &ctx.caches.own_writes;
    let live = |pod: &&Pod| pod.metadata.deletion_timestamp.is_none() && !own_writes.is_deleted(&pod.metadata);
    for pod in pods.iter().filter(live) {
        match api.delete(&pod.name_any(), &DeleteParams::background()).await {
            Ok(_) => own_writes.deleted(&pod.metadata),
            Err(kube::Error::Api(status)) if status.is_not_found() => own_writes.deleted(&pod.metadata),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    #[test]
    fn only_a_pending_run_that_is_not_waiting_for_admission_is_requeued_at_its_start_timeout() {
        let created = Timestamp::from_second(1000).unwrap();
        let now = |second| Timestamp::from_second(second).unwrap();
        let after = |seconds| Action::requeue(Duration::from_secs(seconds));
        assert_eq!(requeue_at_start_timeout(RunPhase::Pending, Some(created), 300, now(1000)), after(300));
        assert_eq!(requeue_at_start_timeout(RunPhase::Pending, Some(created), 300, now(1200)), after(100));
        assert_eq!(requeue_at_start_timeout(RunPhase::Pending, Some(created), 300, now(5000)), after(1));
        // A clock behind the creation time waits no longer than the timeout.
        assert_eq!(requeue_at_start_timeout(RunPhase::Pending, Some(created), 300, now(0)), after(300));
        assert_eq!(requeue_at_start_timeout(RunPhase::Pending, Some(created), 0, now(1000)), after(1));
        assert_eq!(requeue_at_start_timeout(RunPhase::Pending, None, 300, now(1000)), Action::await_change());
        for phase in [RunPhase::Running, RunPhase::Succeeded, RunPhase::Failed, RunPhase::Superseded] {
            assert_eq!(requeue_at_start_timeout(phase, Some(created), 300, now(1000)), Action::await_change());
        }
    }
}

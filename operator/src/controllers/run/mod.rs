//! The TrainingRun controller: gather -> validate -> build -> apply -> status.
//! It creates a run's ConfigMap and Job, reads the trainer's result when the Job ends, judges the
//! gates against the champion, and records everything in the run's status.

pub mod build;
pub mod gates;
pub mod outcome;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, ListParams, LogParams, Patch, PatchParams},
    runtime::controller::Action,
};
use serde_json::json;

use crate::api::{GateOutcome, ModelDeployment, RunPhase, TrainingRun, TrainingRunStatus};
use crate::controllers::{
    Context,
    error::{Error, Result},
    labels,
};
use gates::Champion;
use outcome::Outcome;

/// Reconcile one run.
#[tracing::instrument(skip_all, fields(run = %run.name_any(), namespace = run.namespace().unwrap_or_default()))]
pub async fn reconcile(run: Arc<TrainingRun>, ctx: Arc<Context>) -> Result<Action> {
    let old = run.status.clone().unwrap_or_default();
    if is_terminal(old.phase) {
        return Ok(Action::await_change());
    }
    let namespace = run.namespace().unwrap_or_default();
    let validated = match build::validate(&run, &ctx.settings.artifact_root) {
        Ok(validated) => validated,
        Err(problem) => {
            let new = status::invalid(&run, &old, &problem);
            if new != old {
                ctx.event(&run.object_ref(&()), true, "InvalidSpec", problem).await;
                write_status(&ctx, &run, &new).await?;
            }
            return Ok(Action::await_change());
        }
    };

    // Gather (and, the first time, apply): the Job is the only child whose state matters.
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let job = match jobs.get_opt(&validated.name).await? {
        Some(job) => job,
        // The run started once: its Job was deleted behind its back (or by a Replace, which
        // marks the run first). Never start a run twice; read it fresh to know which.
        None if old.job_name.is_some() => return job_vanished(&ctx, &run).await,
        None => {
            let params = PatchParams::apply(labels::FIELD_MANAGER).force();
            let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
            let config_map = build::config_map(&validated);
            config_maps.patch(&build::config_map_name(&validated.name), &params, &Patch::Apply(&config_map)).await?;
            let job = jobs.patch(&validated.name, &params, &Patch::Apply(&build::job(&validated))).await?;
            ctx.event(&run.object_ref(&()), false, "RunStarted", format!("created Job {}", validated.name)).await;
            job
        }
    };
    // Pods tell what the Job does not: the trainer's result, or why it cannot start.
    let unready = job.status.as_ref().is_some_and(|s| s.active.unwrap_or(0) > s.ready.unwrap_or(0));
    let pods =
        if job_finished(&job) || unready { job_pods(&ctx, &namespace, &validated.name).await? } else { Vec::new() };
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
        Outcome::Succeeded { .. } => find_champion(&ctx, &run).await?,
        _ => None,
    };
    let new = status::observed(&run, &old, &validated, &observed, champion.as_ref());
    if new != old {
        if let Outcome::Blocked { reason, message } = &observed
            && !old.conditions.iter().any(|c| c.reason == *reason)
        {
            ctx.event(&run.object_ref(&()), true, "TrainerNotStarting", message.clone()).await;
        }
        write_status(&ctx, &run, &new).await?;
        if is_terminal(new.phase) {
            announce(&ctx, &run, &new).await;
            cleanup_pods(&ctx, &namespace, &pods).await;
        }
    }
    // A pod's waiting reason does not change the Job, so no event wakes us for it: look again.
    Ok(match new.phase {
        RunPhase::Pending => Action::requeue(Duration::from_secs(10)),
        RunPhase::Running => Action::requeue(Duration::from_secs(300)),
        _ => Action::await_change(),
    })
}

/// The Job of a started run is gone: unless the run already ended, it failed.
async fn job_vanished(ctx: &Context, run: &TrainingRun) -> Result<Action> {
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

async fn job_pods(ctx: &Context, namespace: &str, job: &str) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!("batch.kubernetes.io/job-name={job}");
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
async fn find_champion(ctx: &Context, run: &TrainingRun) -> Result<Option<Champion>> {
    let Some(pipeline) = run.spec.pipeline.as_deref() else { return Ok(None) };
    let namespace = run.namespace().unwrap_or_default();
    let runs: Api<TrainingRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let deployments: Api<ModelDeployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let served = deployments.list(&ListParams::default()).await?.items.into_iter().find_map(|md| {
        let follows = md.spec.source.pipeline_ref.as_ref().is_some_and(|p| p.name == pipeline);
        follows.then(|| md.status.and_then(|s| s.current_model)).flatten()
    });
    if let Some(served) = served
        && Some(served.run.as_str()) != run.metadata.name.as_deref()
    {
        return Ok(Some(Champion { name: served.run, metrics: served.metrics }));
    }
    let selector = format!("{}={pipeline}", labels::PIPELINE);
    let siblings = runs.list(&ListParams::default().labels(&selector)).await?.items;
    Ok(gates::best_passing(&siblings, &run.spec.evaluation, &run.name_any()))
}

/// Server-side apply the run's whole status (the run controller and Replace both write it).
pub async fn write_status(ctx: &Context, run: &TrainingRun, status: &TrainingRunStatus) -> Result<()> {
    let api: Api<TrainingRun> = Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    let patch = json!({"apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingRun", "status": status});
    api.patch_status(&run.name_any(), &PatchParams::apply(labels::FIELD_MANAGER).force(), &Patch::Apply(patch)).await?;
    Ok(())
}

/// Events and metrics for a run that just finished.
async fn announce(ctx: &Context, run: &TrainingRun, status: &TrainingRunStatus) {
    let reference = run.object_ref(&());
    let (trigger, outcome) = (run.spec.trigger.trigger_type.as_str(), status.phase.as_str());
    ctx.metrics.runs_finished.get_or_create(&crate::controllers::metrics::RunLabels { trigger, outcome }).inc();
    if let (Some(start), Some(end)) = (&status.start_time, &status.completion_time) {
        ctx.metrics.run_duration.observe((end.0 - start.0).get_seconds() as f64);
    }
    let message = |type_: &str| {
        status.conditions.iter().find(|c| c.type_ == type_).map(|c| c.message.clone()).unwrap_or_default()
    };
    match status.phase {
        RunPhase::Succeeded => {
            ctx.event(&reference, false, "RunSucceeded", status.headline.clone().unwrap_or_default()).await;
            let result = status.evaluation.as_ref().map(|e| e.result).unwrap_or(GateOutcome::Rejected);
            let (reason, type_) = match result {
                GateOutcome::Passed => ("RunPassed", "Passed"),
                GateOutcome::Rejected => ("RunRejected", "Rejected"),
            };
            ctx.metrics
                .gate_outcomes
                .get_or_create(&crate::controllers::metrics::GateLabels { result: type_.into() })
                .inc();
            ctx.event(&reference, result == GateOutcome::Rejected, reason, message(type_)).await;
        }
        _ => ctx.event(&reference, true, "RunFailed", message("Ready")).await,
    }
}

/// Once the result is in the run's status, the pods have nothing more to say; the Job stays as
/// the record of what ran.
async fn cleanup_pods(ctx: &Context, namespace: &str, pods: &[Pod]) {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    for pod in pods {
        if let Err(error) = api.delete(&pod.name_any(), &DeleteParams::background()).await {
            tracing::debug!(%error, pod = pod.name_any(), "pod cleanup failed");
        }
    }
}

/// Requeue after a failure: invalid specs wait for a change, everything else backs off.
pub fn error_policy(run: Arc<TrainingRun>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(run = %run.name_any(), %error, category = error.category(), "reconcile failed");
    ctx.metrics.failed("trainingrun", error.category());
    match error {
        Error::InvalidSpec(_) => Action::await_change(),
        _ => Action::requeue(Duration::from_secs(5)),
    }
}

//! The TrainingPipeline controller: turns triggers into runs under the concurrency policy,
//! prunes old runs, and reports the pipeline's state.

pub mod history;
pub mod plan;
#[cfg(test)]
mod properties;
pub mod resolve;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
    runtime::{controller::Action, reflector::ObjectRef},
};
use serde_json::json;

use crate::api::{GateOutcome, TrainingPipeline, TrainingPipelineStatus, TrainingRun};
use crate::controllers::{
    Context, Life,
    conditions::{Desired, failing, merge},
    error::Result,
    failures, labels,
    metrics::{PipelineLabels, TriggerLabels},
    status::apply as apply_status,
};
use crate::triggers::{CronSchedule, Target};
use plan::{DriftRequest, Sources, is_active};

const MANAGED: &[&str] = &["Ready", "Reconciling", "Stalled"];

/// Reconcile one pipeline; an error that repeats is reported on it.
#[tracing::instrument(skip_all, fields(pipeline = %pipeline.name_any(), namespace = pipeline.namespace().unwrap_or_default()))]
pub async fn reconcile(pipeline: Arc<TrainingPipeline>, ctx: Arc<Life>) -> Result<Action> {
    failures::reported(&ctx, &*pipeline, reconcile_pipeline(pipeline.clone(), ctx.clone()).await).await
}

impl failures::ReportsFailures for TrainingPipeline {
    type Status = TrainingPipelineStatus;
    const CONTROLLER: &'static str = "trainingpipeline";

    fn failing_status(&self, category: &str, message: &str) -> Option<TrainingPipelineStatus> {
        let old = self.status.clone().unwrap_or_default();
        let conditions =
            merge(&old.conditions, &failing(category, message), MANAGED, self.metadata.generation, Timestamp::now());
        let new = TrainingPipelineStatus { conditions, ..old.clone() };
        (new != old).then_some(new)
    }
}

async fn reconcile_pipeline(mut pipeline: Arc<TrainingPipeline>, ctx: Arc<Life>) -> Result<Action> {
    let now = Timestamp::now();
    let namespace = pipeline.namespace().unwrap_or_default();
    let name = pipeline.name_any();
    let mut old = pipeline.status.clone().unwrap_or_default();

    // Validate what the schema cannot: the cron expression and its time zone.
    let schedule = match &pipeline.spec.triggers.schedule {
        Some(s) => match CronSchedule::parse(&s.cron, &s.time_zone) {
            Ok(schedule) => Some(schedule),
            Err(error) => {
                let problem = format!("spec.triggers.schedule: {error}");
                return stalled(&ctx, &pipeline, &old, problem).await;
            }
        },
        None => None,
    };

    // Gather: the runs labelled with this pipeline's name. Those it does not own (orphans of an
    // earlier pipeline of this name, or made by hand) are not its history, but hold their names.
    // A stale cache cannot make it create a run twice: the run number is reserved by a status
    // write over the version read, and run names are deterministic.
    let runs_api: Api<TrainingRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let uid = pipeline.uid();
    let (runs, foreign): (Vec<TrainingRun>, Vec<TrainingRun>) = gather_runs(&ctx, &pipeline)
        .await?
        .into_iter()
        .partition(|run| run.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref()));
    let taken = foreign.iter().filter_map(resolve::run_index).max().unwrap_or(0);
    let handled = plan::handled(&pipeline, &runs);
    let last_tick =
        handled.schedule_time.clone().map(|t| t.0).or(pipeline.metadata.creation_timestamp.clone().map(|t| t.0));
    let due = schedule.as_ref().map(|s| s.due(last_tick.unwrap_or(now), now));
    let mut data_problem = None;
    let data_fingerprint = match data_target(&pipeline) {
        Some(target) => match ctx.data.latest(ObjectRef::from_obj(&*pipeline), target) {
            Some(Ok(fingerprint)) => Some(fingerprint),
            Some(Err(error)) => {
                data_problem = Some(format!("cannot read spec.data.uri: {error}"));
                None
            }
            None => None,
        },
        None => None,
    };
    let drift_requests = drift_requests(&ctx, &namespace, &name);
    let sources = Sources { schedule_tick: due.as_ref().and_then(|d| d.tick), data_fingerprint, drift_requests };
    let plan = plan::plan(&pipeline, &runs, &sources, taken);

    // Apply.
    let mut created = None;
    if let plan::Action::Create { index, trigger, supersede } = &plan.action {
        // Reserve the run's number before creating the run: were the operator to stop in between
        // and the run be deleted before it restarts, its name would still never be used again.
        // The write is conditional on the version read, so a stale cache cannot create a run.
        let reserved = TrainingPipelineStatus { last_run_index: Some(*index), ..old.clone() };
        pipeline = Arc::new(apply_status(&ctx, &*pipeline, &reserved).await?);
        old = reserved;
        for victim in runs.iter().filter(|r| supersede.contains(&r.name_any())) {
            supersede_run(&ctx, victim, &resolve::run_name(&name, *index)).await?;
        }
        let run = resolve::run_object(&pipeline, *index, trigger.clone(), &plan.handled);
        let run_name = resolve::run_name(&name, *index);
        match runs_api.create(&PostParams::default(), &run).await {
            Ok(run) => {
                let kind = trigger.trigger_type.as_str();
                tracing::info!(run = %run_name, trigger = kind, reason = %trigger.reason, "run created");
                ctx.metrics.runs_started.get_or_create(&TriggerLabels { trigger: kind }).inc();
                ctx.event(
                    &pipeline.object_ref(&()),
                    false,
                    "RunCreated",
                    "CreateRun",
                    format!("{run_name}: {}", trigger.reason),
                )
                .await;
                created = Some(run);
            }
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                let owned = runs_api
                    .get_opt(&run_name)
                    .await?
                    .is_some_and(|run| run.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref()));
                // Another reconcile won the race for this name; the next one sees its run.
                if owned {
                    return Ok(Action::requeue(Duration::from_millis(500)));
                }
                // A run made by hand (or left by another object) holds the name, which is now
                // recorded as used: the next reconcile takes the one after it.
                let message = format!("run {run_name} exists and is not this pipeline's; the next run steps over it");
                ctx.event(&pipeline.object_ref(&()), true, "RunNameTaken", "CreateRun", message).await;
                return Ok(Action::requeue(Duration::from_millis(100)));
            }
            Err(error) => return Err(error.into()),
        }
    }
    let mut runs = runs;
    runs.extend(created);
    let doomed = doomed(&ctx, &pipeline, &runs);
    runs.retain(|run| !doomed.contains(&run.name_any()));
    let queued = matches!(plan.action, plan::Action::Wait { .. }) as i64;
    let labels = PipelineLabels { namespace: namespace.clone(), pipeline: name.clone() };
    ctx.metrics.queued_runs.get_or_create(&labels).set(queued);

    // Status, before pruning: the status is the record of the run numbers and triggers used,
    // so it must hold them before the runs that also carry them are deleted.
    let new = status(&pipeline, &old, &runs, &plan, due.as_ref().and_then(|d| d.next), data_problem.as_deref(), now);
    if new != old {
        if let Some(problem) = &data_problem
            && old.conditions.iter().all(|c| c.message != *problem)
        {
            ctx.event(&pipeline.object_ref(&()), true, "DataUnavailable", "ReadData", problem.clone()).await;
        }
        apply_status(&ctx, &*pipeline, &new).await?;
    }
    prune(&ctx, &namespace, &doomed).await?;
    Ok(requeue_after(&pipeline, due.as_ref().and_then(|d| d.next), now))
}

/// The retrain requests that the namespace's DriftPolicies hold for the pipeline `name`, from the
/// cache's index of requests by pipeline: a request the cache does not show yet wakes the
/// pipeline once it does. A policy the operator cannot read holds none (its own controller
/// reports it).
fn drift_requests(ctx: &Life, namespace: &str, name: &str) -> Vec<DriftRequest> {
    ctx.caches
        .policies_requesting(namespace, name)
        .into_iter()
        .filter_map(|policy| {
            let request = policy.status?.retrain_request?;
            Some(DriftRequest { policy: policy.metadata.name?, id: request.id, reason: request.reason })
        })
        .collect()
}

/// The runs labelled with the pipeline's name, from the cache. The status records the newest
/// run number, and the run of that number may be too new for the cache: then it is read fresh,
/// since a view without it could start a second run beside it (Forbid) or report it missing.
pub async fn gather_runs(ctx: &Life, pipeline: &TrainingPipeline) -> Result<Vec<TrainingRun>> {
    let (namespace, name) = (pipeline.namespace().unwrap_or_default(), pipeline.name_any());
    let mut runs = ctx.caches.pipeline_runs(&namespace, &name);
    let newest = pipeline.status.as_ref().and_then(|s| s.last_run_index).map(|index| resolve::run_name(&name, index));
    if let Some(newest) = newest
        && runs.iter().all(|run| run.name_any() != newest)
    {
        let api: Api<TrainingRun> = Api::namespaced(ctx.client.clone(), &namespace);
        let labelled = |run: &TrainingRun| run.labels().get(labels::PIPELINE) == Some(&name);
        runs.extend(api.get_opt(&newest).await?.filter(labelled));
    }
    Ok(runs)
}

/// What the data poller reads for this pipeline, if it polls its data.
pub fn data_target(pipeline: &TrainingPipeline) -> Option<Target> {
    let trigger = pipeline.spec.triggers.on_data_change.as_ref()?;
    let interval = crate::triggers::interval::parse(&trigger.interval)?;
    Some(Target { uri: pipeline.spec.data.uri.clone(), interval })
}

/// When to look again without being told: the next schedule tick, or the next data poll.
fn requeue_after(pipeline: &TrainingPipeline, next_tick: Option<Timestamp>, now: Timestamp) -> Action {
    let mut wait: Option<Duration> = None;
    if let Some(next) = next_tick {
        let seconds = (next - now).get_seconds().max(1) as u64;
        wait = Some(Duration::from_secs(seconds));
    }
    // Keep the data poller's reading wanted; a change wakes the pipeline sooner.
    if let Some(target) = data_target(pipeline) {
        wait = Some(wait.map_or(target.interval, |w| w.min(target.interval)));
    }
    wait.map_or_else(Action::await_change, Action::requeue)
}

fn status(
    pipeline: &TrainingPipeline,
    old: &TrainingPipelineStatus,
    runs: &[TrainingRun],
    plan: &plan::Plan,
    next_tick: Option<Timestamp>,
    data_problem: Option<&str>,
    now: Timestamp,
) -> TrainingPipelineStatus {
    let newest = |filter: &dyn Fn(&TrainingRun) -> bool| {
        runs.iter().filter(|r| filter(r)).max_by_key(|r| resolve::run_index(r)).map(|r| r.name_any())
    };
    let passed = |r: &TrainingRun| {
        r.status.as_ref().and_then(|s| s.evaluation.as_ref()).is_some_and(|e| e.result == GateOutcome::Passed)
    };
    let active: Vec<String> = runs.iter().filter(|r| is_active(r)).map(|r| r.name_any()).collect();
    let pending: Vec<String> = match plan.action {
        plan::Action::Create { .. } => Vec::new(),
        _ => plan.pending.iter().map(|p| p.reason.clone()).collect(),
    };
    let mut desired = Vec::new();
    if let Some(problem) = data_problem {
        desired.push(Desired::new("Ready", false, "DataUnavailable", problem));
        desired.push(Desired::new("Stalled", true, "DataUnavailable", problem));
    } else if let Some((run, message)) = runs.iter().filter(|r| is_active(r)).find_map(stuck) {
        let message = format!("run {run} cannot start: {message}");
        desired.push(Desired::new("Ready", false, "RunStuck", message.clone()));
        desired.push(Desired::new("Reconciling", true, "RunStuck", message));
    } else if !active.is_empty() {
        let message = format!("training: {}", active.join(", "));
        desired.push(Desired::new("Ready", true, "Training", message.clone()));
        desired.push(Desired::new("Reconciling", true, "Training", message));
    } else if pipeline.spec.suspend && !pending.is_empty() {
        desired.push(Desired::new("Ready", true, "Suspended", format!("suspended; waiting: {}", pending.join("; "))));
    } else {
        desired.push(Desired::new("Ready", true, "Idle", "no run active"));
    }
    let generation = pipeline.metadata.generation;
    TrainingPipelineStatus {
        observed_generation: generation,
        conditions: merge(&old.conditions, &desired, MANAGED, generation, now),
        last_run: newest(&|_| true),
        last_passing_run: newest(&passed),
        next_schedule_time: next_tick.map(Time),
        last_run_index: Some(plan.last_run_index),
        handled: plan.handled.clone(),
        pending_triggers: pending,
        data_fingerprint: plan.handled.data_fingerprint.clone(),
    }
}

/// The name of a run whose trainer cannot start, and why (its `Stalled` condition).
fn stuck(run: &TrainingRun) -> Option<(String, String)> {
    let stalled = run.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Stalled" && c.status == "True")?;
    Some((run.name_any(), stalled.message.clone()))
}

/// A pipeline that cannot work as written: say what to fix, and wait for a change.
async fn stalled(
    ctx: &Life,
    pipeline: &TrainingPipeline,
    old: &TrainingPipelineStatus,
    problem: String,
) -> Result<Action> {
    let desired =
        [Desired::new("Ready", false, "InvalidSpec", &problem), Desired::new("Stalled", true, "InvalidSpec", &problem)];
    let generation = pipeline.metadata.generation;
    let new = TrainingPipelineStatus {
        observed_generation: generation,
        conditions: merge(&old.conditions, &desired, MANAGED, generation, Timestamp::now()),
        ..old.clone()
    };
    if new != *old {
        ctx.event(&pipeline.object_ref(&()), true, "InvalidSpec", "Validate", problem).await;
        apply_status(ctx, pipeline, &new).await?;
    }
    Ok(Action::await_change())
}

/// `concurrencyPolicy: Replace`: mark the run as superseded by its successor. The run
/// controller, the only writer of a run's status, records it and stops the Job.
async fn supersede_run(ctx: &Context, run: &TrainingRun, successor: &str) -> Result<()> {
    let api: Api<TrainingRun> = Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    let mark = json!({"metadata": {"annotations": {labels::SUPERSEDED_BY: successor}}});
    api.patch_metadata(&run.name_any(), &PatchParams::default(), &Patch::Merge(&mark)).await?;
    Ok(())
}

/// The finished runs beyond the pipeline's history, sparing its champion and what deployments
/// serve, roll out, pin or may roll back to.
fn doomed(ctx: &Life, pipeline: &TrainingPipeline, runs: &[TrainingRun]) -> BTreeSet<String> {
    let mut protected = history::champions(runs, &pipeline.spec.evaluation);
    if history::prune(runs, &pipeline.spec.history, &protected).is_empty() {
        return BTreeSet::new();
    }
    let namespace = pipeline.namespace().unwrap_or_default();
    protected.extend(ctx.caches.deployments(&namespace).into_iter().flat_map(|md| {
        let mut names: Vec<String> = md.spec.source.run_ref.map(|r| r.name).into_iter().collect();
        if let Some(status) = md.status {
            names.extend(status.current_model.map(|m| m.run));
            names.extend(status.previous_models.into_iter().map(|m| m.run));
            names.extend(status.rollout.map(|r| r.model.run));
        }
        names
    }));
    history::prune(runs, &pipeline.spec.history, &protected).into_iter().collect()
}

/// Delete the runs history no longer keeps.
async fn prune(ctx: &Context, namespace: &str, doomed: &BTreeSet<String>) -> Result<()> {
    let api: Api<TrainingRun> = Api::namespaced(ctx.client.clone(), namespace);
    for name in doomed {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => tracing::info!(run = name, "pruned"),
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TriggerType;

    fn polling_every(interval: &str) -> TrainingPipeline {
        serde_json::from_value(json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingPipeline", "metadata": {"name": "p"},
            "spec": {"template": {"image": "t:1"}, "data": {"uri": "file:///d.csv"},
                     "features": [{"name": "age", "type": "number"}],
                     "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.8}]},
                     "triggers": {"onDataChange": {"interval": interval}}}
        }))
        .unwrap()
    }

    #[test]
    fn a_data_interval_too_large_for_a_duration_is_no_target_and_no_panic() {
        assert_eq!(data_target(&polling_every("1h30m")).map(|t| t.interval), Some(Duration::from_secs(5400)));
        assert_eq!(data_target(&polling_every("99999999999999999999h")), None);
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn without_triggers() -> TrainingPipeline {
        let mut pipeline = polling_every("1h");
        pipeline.spec.triggers = Default::default();
        pipeline
    }

    #[test]
    fn requeue_waits_for_the_next_tick_or_data_poll_whichever_comes_first() {
        assert_eq!(requeue_after(&without_triggers(), None, at(1000)), Action::await_change());
        assert_eq!(
            requeue_after(&without_triggers(), Some(at(1090)), at(1000)),
            Action::requeue(Duration::from_secs(90))
        );
        // A tick already due (the clock moved past it) is looked at again in a second, not never.
        assert_eq!(
            requeue_after(&without_triggers(), Some(at(990)), at(1000)),
            Action::requeue(Duration::from_secs(1))
        );
        let polling = polling_every("1h30m");
        assert_eq!(requeue_after(&polling, None, at(1000)), Action::requeue(Duration::from_secs(5400)));
        assert_eq!(
            requeue_after(&polling, Some(at(1000 + 7200)), at(1000)),
            Action::requeue(Duration::from_secs(5400))
        );
        assert_eq!(requeue_after(&polling, Some(at(1060)), at(1000)), Action::requeue(Duration::from_secs(60)));
    }

    fn run(index: i64, status: serde_json::Value) -> TrainingRun {
        serde_json::from_value(json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingRun",
            "metadata": {"name": format!("p-{index}"), "labels": {labels::RUN_INDEX: index.to_string()}},
            "spec": {"image": "t:1", "trigger": {"type": "Manual"}, "data": {"uri": "file:///d.csv"},
                     "features": [{"name": "age", "type": "number"}],
                     "evaluation": {"passWithoutGates": true}},
            "status": status
        }))
        .unwrap()
    }

    fn waiting(last_run_index: i64) -> plan::Plan {
        plan::Plan {
            pending: vec![plan::Pending { kind: TriggerType::Schedule, reason: "schedule: waits for p-3".into() }],
            action: plan::Action::Wait { blocking: vec!["p-3".into()] },
            handled: Default::default(),
            last_run_index,
        }
    }

    /// (type, status, reason) of every condition, in order.
    fn conditions(status: &TrainingPipelineStatus) -> Vec<(&str, &str, &str)> {
        status.conditions.iter().map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str())).collect()
    }

    #[test]
    fn the_status_names_the_newest_runs_and_why_the_pipeline_is_busy() {
        let pipeline = without_triggers();
        let old = TrainingPipelineStatus::default();
        let passed = run(1, json!({"phase": "Succeeded", "evaluation": {"result": "Passed", "gates": []}}));
        let rejected = run(2, json!({"phase": "Succeeded", "evaluation": {"result": "Rejected", "gates": []}}));
        let active = run(3, json!({"phase": "Running"}));
        let runs = [passed, rejected, active.clone()];

        let busy = status(&pipeline, &old, &runs, &waiting(3), Some(at(5000)), None, at(1000));
        assert_eq!(conditions(&busy), [("Ready", "True", "Training"), ("Reconciling", "True", "Training")]);
        assert_eq!(busy.conditions[0].message, "training: p-3");
        assert_eq!(busy.last_run.as_deref(), Some("p-3"));
        assert_eq!(busy.last_passing_run.as_deref(), Some("p-1"));
        assert_eq!(busy.last_run_index, Some(3));
        assert_eq!(busy.pending_triggers, ["schedule: waits for p-3"]);
        assert_eq!(busy.next_schedule_time, Some(Time(at(5000))));

        // A run that cannot start makes the pipeline say so, before "training".
        let stuck = run(
            3,
            json!({"phase": "Pending", "conditions": [{"type": "Stalled", "status": "True",
            "reason": "ErrImagePull", "message": "no such image", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        );
        let with_stuck = status(&pipeline, &old, &[stuck], &waiting(3), None, None, at(1000));
        assert_eq!(conditions(&with_stuck), [("Ready", "False", "RunStuck"), ("Reconciling", "True", "RunStuck")]);
        assert_eq!(with_stuck.conditions[0].message, "run p-3 cannot start: no such image");

        // Data that cannot be read outranks both.
        let unreadable = status(&pipeline, &old, &[active], &waiting(3), None, Some("404 Not Found"), at(1000));
        assert_eq!(
            conditions(&unreadable),
            [("Ready", "False", "DataUnavailable"), ("Stalled", "True", "DataUnavailable")]
        );
    }

    #[test]
    fn an_idle_pipeline_is_ready_and_a_suspended_one_says_what_waits() {
        let mut pipeline = without_triggers();
        let old = TrainingPipelineStatus::default();
        let done = [run(1, json!({"phase": "Failed"}))];
        let idle = status(&pipeline, &old, &done, &waiting(1), None, None, at(1000));
        assert_eq!(conditions(&idle), [("Ready", "True", "Idle")]);
        assert_eq!(idle.last_passing_run, None);

        pipeline.spec.suspend = true;
        let suspended = status(&pipeline, &old, &done, &waiting(1), None, None, at(1000));
        assert_eq!(conditions(&suspended), [("Ready", "True", "Suspended")]);
        assert_eq!(suspended.conditions[0].message, "suspended; waiting: schedule: waits for p-3");

        // A run about to be created answers the pending triggers: none are listed.
        let creating = plan::Plan {
            action: plan::Action::Create { index: 2, trigger: Default::default(), supersede: Vec::new() },
            ..waiting(1)
        };
        assert!(status(&pipeline, &old, &done, &creating, None, None, at(1000)).pending_triggers.is_empty());
    }
}

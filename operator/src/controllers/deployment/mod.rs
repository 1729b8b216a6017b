//! The ModelDeployment controller: gather -> decide -> status -> apply. It serves the model its
//! source asks for through a Deployment and a Service it owns, smoke-tests each new server pod
//! before the pod may take traffic (a readiness gate), promotes a model once it serves on every
//! replica, and rolls a failing one back.

pub mod rollout;
pub mod source;
pub mod status;
pub mod verify;
pub mod workload;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt, runtime::controller::Action};

use crate::api::{ModelDeployment, ModelDeploymentStatus, ServedModel, TrainingRun};
use crate::controllers::{
    Context, Life, applied,
    conditions::{failing, merge},
    error::Result,
    failures,
    metrics::RollbackLabels,
    status::apply as apply_status,
};
use rollout::{Decision, Happened, Observed};
use source::Selection;

/// Reconcile one ModelDeployment; an error that repeats is reported on it.
#[tracing::instrument(skip_all, fields(deployment = %md.name_any(), namespace = md.namespace().unwrap_or_default()))]
pub async fn reconcile(md: Arc<ModelDeployment>, ctx: Arc<Life>) -> Result<Action> {
    failures::reported(&ctx, &*md, reconcile_deployment(md.clone(), ctx.clone()).await).await
}

impl failures::ReportsFailures for ModelDeployment {
    type Status = ModelDeploymentStatus;
    const CONTROLLER: &'static str = "modeldeployment";

    fn failing_status(&self, category: &str, message: &str) -> Option<ModelDeploymentStatus> {
        let old = self.status.clone().unwrap_or_default();
        let desired = failing(category, message);
        let conditions = merge(&old.conditions, &desired, status::MANAGED, self.metadata.generation, Timestamp::now());
        let new = ModelDeploymentStatus { conditions, ..old.clone() };
        (new != old).then_some(new)
    }
}

async fn reconcile_deployment(md: Arc<ModelDeployment>, ctx: Arc<Life>) -> Result<Action> {
    let now = Timestamp::now();
    let namespace = md.namespace().unwrap_or_default();
    let name = md.name_any();

    // Gather, from the caches: a change to any of these wakes this reconcile again.
    let caches = &ctx.caches;
    let runs = match (&md.spec.source.pipeline_ref, &md.spec.source.run_ref) {
        (_, Some(pinned)) => caches.run(&namespace, &pinned.name).into_iter().collect(),
        (Some(pipeline), None) => caches.pipeline_runs(&namespace, &pipeline.name),
        (None, None) => Vec::new(),
    };
    let selection = source::select(&md.spec.source, &runs);
    let deployment = caches.workload(&namespace, &name);
    let pods = caches.server_pods(&namespace, &name);

    // Decide.
    let asked = match &selection {
        Selection::Serve(candidate) => Some(candidate),
        _ => None,
    };
    let observed = Observed { deployment: deployment.as_ref(), pods: &pods };
    let decision = rollout::decide(&md, asked, &observed, now);

    // Status first: a failed model is on record before its rollback is applied, so a crash in
    // between never rolls it out again.
    let old = md.status.clone().unwrap_or_default();
    let new = status::build(&md, &decision, &selection, deployment.as_ref(), now);
    if new != old {
        apply_status(&ctx, &*md, &new).await?;
    }
    announce(&ctx, &md, &old, &decision, &selection).await;

    // Apply: the Service always, the Deployment once there is a model; server-side and forced,
    // so hand edits of the fields the operator manages are put back; neither when the cache
    // shows it as it would be applied.
    if let Some(service) = workload::service(&md) {
        applied::apply(&ctx, &service, caches.service(&namespace, &name).as_ref()).await?;
    }
    if let Some(desired) = decision.apply.as_ref().and_then(|model| workload::deployment(&md, model, &ctx.settings)) {
        applied::apply(&ctx, &desired, deployment.as_ref()).await?;
    }

    // Verify the server pods that wait for their smoke test; each verdict wakes this reconcile
    // again through the pod watch.
    for pod in pods.iter().filter(|p| verify::needs_verification(p)) {
        let model = model_of_pod(pod, &decision);
        let port = md.spec.serving.port;
        verify::verify(&ctx, pod, port, &name, model, md.spec.rollout.smoke_test.as_ref()).await?;
    }
    Ok(decision.requeue.map_or_else(Action::await_change, Action::requeue))
}

/// The record of the model a pod runs, among those the deployment knows.
fn model_of_pod<'a>(pod: &Pod, decision: &'a Decision) -> Option<&'a ServedModel> {
    let (run, digest) = workload::model_of(&pod.metadata)?;
    let known = decision.current.iter().chain(decision.rollout.iter().map(|r| &r.model)).chain(&decision.previous);
    known.into_iter().find(|m| m.run == run && m.artifact_digest == digest)
}

/// The run `name` in `md`'s namespace, as an event's related object.
fn run_reference(md: &ModelDeployment, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(TrainingRun::api_version(&()).into_owned()),
        kind: Some(TrainingRun::kind(&()).into_owned()),
        name: Some(name.into()),
        namespace: md.namespace(),
        ..ObjectReference::default()
    }
}

/// Events, metrics and logs for what this reconcile decided.
async fn announce(
    ctx: &Context,
    md: &ModelDeployment,
    old: &ModelDeploymentStatus,
    decision: &Decision,
    selection: &Selection,
) {
    let reference = md.object_ref(&());
    if let Selection::Invalid(problem) = selection
        && !old.conditions.iter().any(|c| c.type_ == "Stalled" && c.message == *problem)
    {
        ctx.event(&reference, true, "InvalidSource", "SelectModel", problem.clone()).await;
    }
    let Some(happened) = &decision.happened else { return };
    match happened {
        Happened::Started { model } => tracing::info!(model, "rollout started"),
        Happened::Promoted { model, passed_at } => {
            let run = run_reference(md, &model.run);
            let before = old.current_model.as_ref().map(|m| format!(" in place of {}", m.run)).unwrap_or_default();
            let note = format!("{} ({}) takes all traffic{before}", model.run, model.artifact_digest);
            tracing::info!(model = model.run, "model promoted");
            ctx.metrics.promotions.inc();
            if let (Some(passed), Some(promoted)) = (passed_at, &model.promoted_at) {
                ctx.metrics.promotion_seconds.observe(promoted.0.duration_since(*passed).as_secs_f64().max(0.0));
            }
            ctx.event_related(&reference, Some(run), false, "ModelPromoted", "Promote", note).await;
        }
        Happened::Failed { model, reason, message, rolled_back_to } => {
            tracing::warn!(model, reason, message, rolled_back_to, "rollout failed");
            let run = run_reference(md, model);
            let note = format!("{model}: {reason}: {message}");
            ctx.event_related(&reference, Some(run.clone()), true, "RolloutFailed", "RollOut", note).await;
            if let Some(back) = rolled_back_to {
                ctx.metrics.rollbacks.get_or_create(&RollbackLabels { reason }).inc();
                let note = format!("back to {back}: {model} failed ({reason}: {message})");
                ctx.event_related(&reference, Some(run), true, "RolledBack", "RollBack", note).await;
            }
        }
    }
}

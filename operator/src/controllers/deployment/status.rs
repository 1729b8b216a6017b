//! The ModelDeployment's status from the rollout decision: what serves, what rolls out, and the
//! kstatus conditions `Ready`, `Reconciling`, `Stalled`, `Progressing` and `Degraded`.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;

use super::rollout::{Decision, Phase};
use super::source::Selection;
use super::workload;
use crate::api::{ModelDeployment, ModelDeploymentStatus};
use crate::controllers::conditions::{Desired, merge};

pub const MANAGED: &[&str] = &["Ready", "Reconciling", "Stalled", "Progressing", "Degraded"];

/// The status after `decision`, given what the source asked for and the Deployment as observed.
pub fn build(
    md: &ModelDeployment,
    decision: &Decision,
    selection: &Selection,
    deployment: Option<&Deployment>,
    now: Timestamp,
) -> ModelDeploymentStatus {
    let old = md.status.clone().unwrap_or_default();
    let replicas = md.spec.serving.replicas;
    let ready = deployment.and_then(|d| d.status.as_ref()).and_then(|s| s.ready_replicas).unwrap_or(0);
    let serving = decision.current.as_ref().map(|m| m.run.as_str());
    let available = serving.is_some() && ready >= replicas;
    let mut desired = Vec::new();
    let mut ready_condition = |ok: bool, reason: &str, message: String| {
        desired.push(Desired::new("Ready", ok, reason, message));
    };
    match (&decision.phase, serving) {
        (Phase::Idle, _) => {
            let why = match selection {
                Selection::Waiting(why) | Selection::Invalid(why) => why.clone(),
                Selection::Serve(_) => "no model yet".into(),
            };
            ready_condition(false, "NoModel", why);
        }
        (Phase::RollingOut(waiting), _) => ready_condition(false, "RollingOut", waiting.clone()),
        (Phase::ScaledToZero, _) => ready_condition(true, "ScaledToZero", "scaled to 0: nothing serves".into()),
        (_, Some(run)) if replicas == 0 => ready_condition(true, "ScaledToZero", format!("{run} is scaled to 0")),
        (_, Some(run)) if available => ready_condition(true, "Serving", format!("{run} serves on {ready} pods")),
        (_, Some(run)) => ready_condition(false, "Unavailable", format!("{run}: {ready} of {replicas} pods ready")),
        (_, None) => ready_condition(false, "NoModel", "no model serves".into()),
    }
    match &decision.phase {
        Phase::RollingOut(waiting) => {
            let run = decision.rollout.as_ref().map(|r| r.model.run.as_str()).unwrap_or_default();
            let message = format!("rolling out {run}: {waiting}");
            desired.push(Desired::new("Progressing", true, "RollingOut", message.clone()));
            desired.push(Desired::new("Reconciling", true, "RollingOut", message));
        }
        Phase::Degraded(why) => desired.push(Desired::new("Degraded", true, "RolloutFailed", why.clone())),
        Phase::Idle if matches!(selection, Selection::Waiting(_)) => {
            desired.push(Desired::new("Reconciling", true, "NoModel", "waiting for a run to pass its gates"));
        }
        _ => {}
    }
    if let Selection::Invalid(problem) = selection {
        desired.retain(|d| d.type_ != "Ready");
        desired.push(Desired::new("Ready", false, "InvalidSource", problem.clone()));
        desired.push(Desired::new("Stalled", true, "InvalidSource", problem.clone()));
    }
    let generation = md.metadata.generation;
    ModelDeploymentStatus {
        observed_generation: generation,
        current_model: decision.current.clone(),
        previous_models: decision.previous.clone(),
        endpoint: Some(workload::endpoint(md)),
        ready_replicas: Some(ready),
        rollout: decision.rollout.clone(),
        failed_models: decision.failed.clone(),
        conditions: merge(&old.conditions, &desired, MANAGED, generation, now),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::controllers::deployment::workload::tests::{model, model_deployment};

    fn decision(phase: Phase) -> Decision {
        Decision {
            apply: None,
            current: Some(model("churn-1", "sha256:aa")),
            previous: vec![],
            rollout: None,
            failed: vec![],
            phase,
            happened: None,
            requeue: None,
        }
    }

    fn condition(status: &ModelDeploymentStatus, type_: &str) -> Option<(String, String)> {
        status.conditions.iter().find(|c| c.type_ == type_).map(|c| (c.status.clone(), c.reason.clone()))
    }

    fn ready_deployment(ready: i32) -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": "churn"}, "status": {"readyReplicas": ready}})).unwrap()
    }

    #[test]
    fn a_served_model_on_all_replicas_is_ready_and_a_rollout_is_progressing() {
        let md = model_deployment(json!({}));
        let now = Timestamp::UNIX_EPOCH;
        let serve = Selection::Waiting(String::new());
        let status = build(&md, &decision(Phase::Serving), &serve, Some(&ready_deployment(2)), now);
        assert_eq!(condition(&status, "Ready"), Some(("True".into(), "Serving".into())));
        assert_eq!(status.endpoint.as_deref(), Some("http://churn.ml.svc:9000"));
        let status = build(&md, &decision(Phase::Serving), &serve, Some(&ready_deployment(1)), now);
        assert_eq!(condition(&status, "Ready"), Some(("False".into(), "Unavailable".into())));
        let mut idle = md.clone();
        idle.spec.serving.replicas = 0;
        let status = build(&idle, &decision(Phase::Serving), &serve, Some(&ready_deployment(0)), now);
        assert_eq!(condition(&status, "Ready"), Some(("True".into(), "ScaledToZero".into())));
        let status = build(&md, &decision(Phase::RollingOut("1 of 2".into())), &serve, None, now);
        assert_eq!(condition(&status, "Progressing"), Some(("True".into(), "RollingOut".into())));
        assert_eq!(condition(&status, "Reconciling"), Some(("True".into(), "RollingOut".into())));
    }

    #[test]
    fn an_invalid_source_stalls_while_the_current_model_keeps_serving_and_a_failure_degrades() {
        let md = model_deployment(json!({}));
        let invalid = Selection::Invalid("source.runRef: run churn-9 does not exist".into());
        let status = build(&md, &decision(Phase::Serving), &invalid, Some(&ready_deployment(2)), Timestamp::UNIX_EPOCH);
        assert_eq!(condition(&status, "Stalled"), Some(("True".into(), "InvalidSource".into())));
        assert_eq!(condition(&status, "Ready"), Some(("False".into(), "InvalidSource".into())));
        assert_eq!(status.current_model.unwrap().run, "churn-1");
        let degraded = decision(Phase::Degraded("model churn-2 failed".into()));
        let status = build(
            &md,
            &degraded,
            &Selection::Waiting(String::new()),
            Some(&ready_deployment(2)),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(condition(&status, "Degraded"), Some(("True".into(), "RolloutFailed".into())));
        assert_eq!(condition(&status, "Ready"), Some(("True".into(), "Serving".into())));
    }
}

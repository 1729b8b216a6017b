//! The rollout decision: from the model the source asks for, what the status records and what the
//! Deployment and its pods show, which model's template to apply and what the status records
//! next. Pure, so every branch is unit-tested; reconcile only gathers and applies.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use super::source::Candidate;
use super::workload::model_of;
use crate::api::{FailedModel, ModelDeployment, RolloutStatus, ServedModel};
use crate::artifact::serving::{EXIT_DIGEST_MISMATCH, EXIT_MODEL_UNREADABLE};
use crate::controllers::labels;

/// How many restarts after a failed exit make a crash loop: one exit may be a passing fault.
const CRASH_RESTARTS: i32 = 2;
/// How many failed models the status remembers.
const FAILED_KEPT: usize = 10;
/// The serving contract's exit codes (README, "How serving works"): a server exiting with one of
/// these refused its model for this reason; any other failed exit is `ServerExited`.
const REFUSALS: [(u8, &str); 2] = [(EXIT_DIGEST_MISMATCH, "DigestRefused"), (EXIT_MODEL_UNREADABLE, "ModelUnreadable")];

/// What the cluster shows of the deployment's workload.
pub struct Observed<'a> {
    pub deployment: Option<&'a Deployment>,
    /// The deployment's server pods.
    pub pods: &'a [Pod],
}

/// Where the rollout of one model stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// Every replica runs the model, is Ready and passed its smoke test; no other pod is left.
    Complete,
    /// Not yet: what is awaited.
    Pending(String),
    /// The model cannot serve.
    Failed { reason: &'static str, message: String },
}

/// The state the deployment is in, for its conditions.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    /// No model to serve yet.
    Idle,
    /// The current model serves and nothing newer is asked for.
    Serving,
    /// A new model is rolling out: what it waits for.
    RollingOut(String),
    /// A new model waits for the deployment to be scaled up.
    ScaledToZero,
    /// The model asked for failed its rollout: why, and what serves instead.
    Degraded(String),
}

/// What happened in this reconcile, for events, metrics and logs.
#[derive(Clone, Debug, PartialEq)]
pub enum Happened {
    Started { model: String },
    Promoted { model: ServedModel, passed_at: Option<Timestamp> },
    Failed { model: String, reason: &'static str, message: String, rolled_back_to: Option<String> },
}

/// The decision of one reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The model whose Deployment to apply; `None`: no Deployment yet.
    pub apply: Option<ServedModel>,
    pub current: Option<ServedModel>,
    pub previous: Vec<ServedModel>,
    pub rollout: Option<RolloutStatus>,
    pub failed: Vec<FailedModel>,
    pub phase: Phase,
    pub happened: Option<Happened>,
    /// When to look again without being woken: the progress deadline.
    pub requeue: Option<Duration>,
}

/// Decide what `md` serves, given the model its source asks for (`None`: nothing, or nothing
/// valid: the current model keeps serving).
pub fn decide(md: &ModelDeployment, asked: Option<&Candidate>, observed: &Observed, now: Timestamp) -> Decision {
    let status = md.status.clone().unwrap_or_default();
    let current = status.current_model.clone();
    let mut decision = Decision {
        apply: current.clone(),
        current: current.clone(),
        previous: status.previous_models.clone(),
        rollout: None,
        failed: status.failed_models.clone(),
        phase: if current.is_some() { Phase::Serving } else { Phase::Idle },
        happened: None,
        requeue: None,
    };
    let Some(asked) = asked else { return decision };
    if current.as_ref().is_some_and(|c| same_model(c, &asked.model)) {
        return decision;
    }
    let rollout = &md.spec.rollout;
    if let Some(failure) = failed_before(&status.failed_models, &asked.model, md.metadata.generation) {
        // Not again in a loop: the current model serves (or, with nothing to go back to or no
        // automatic rollback, the failed one stays applied) until a newer run passes or the
        // spec changes.
        let held = !rollout.auto_rollback || current.is_none();
        if held {
            decision.apply = Some(asked.model.clone());
        }
        decision.phase = Phase::Degraded(degraded_message(failure, current.as_ref(), held));
        return decision;
    }

    let mut progress = match status.rollout {
        Some(r) if same_model(&r.model, &asked.model) => r,
        _ => {
            decision.happened = Some(Happened::Started { model: asked.model.run.clone() });
            RolloutStatus { model: asked.model.clone(), started_at: None, passed_at: asked.passed_at.map(Time) }
        }
    };
    decision.apply = Some(asked.model.clone());
    if md.spec.serving.replicas == 0 {
        // Nothing runs, so nothing can be verified: the model waits, and its deadline starts
        // when the deployment is scaled up again.
        progress.started_at = None;
        decision.rollout = Some(progress);
        decision.phase = Phase::ScaledToZero;
        return decision;
    }
    let started_at = progress.started_at.get_or_insert(Time(now)).0;
    let passed_at = progress.passed_at.as_ref().map(|t| t.0);
    decision.rollout = Some(progress);
    let outcome = match model_progress(&asked.model, md.spec.serving.replicas, observed) {
        Progress::Pending(waiting) => {
            let deadline = started_at + SignedDuration::from_secs(rollout.progress_deadline_seconds.into());
            if now < deadline {
                decision.phase = Phase::RollingOut(waiting);
                let left = (deadline - now).get_seconds().max(0) as u64 + 1;
                decision.requeue = Some(Duration::from_secs(left));
                return decision;
            }
            let limit = rollout.progress_deadline_seconds;
            Progress::Failed {
                reason: "ProgressDeadlineExceeded",
                message: format!("not ready and verified within progressDeadlineSeconds ({limit}s): {waiting}"),
            }
        }
        other => other,
    };
    decision.rollout = None;
    match outcome {
        Progress::Complete => {
            let promoted = ServedModel { promoted_at: Some(Time(now)), ..asked.model.clone() };
            decision.previous.retain(|m| !same_model(m, &promoted));
            if let Some(old) = current.filter(|c| !same_model(c, &promoted)) {
                decision.previous.insert(0, old);
            }
            decision.previous.truncate(rollout.keep_previous.max(0) as usize);
            decision.current = Some(promoted.clone());
            decision.apply = Some(promoted.clone());
            decision.phase = Phase::Serving;
            decision.happened = Some(Happened::Promoted { model: promoted, passed_at });
        }
        Progress::Failed { reason, message } => {
            let failure = FailedModel {
                run: asked.model.run.clone(),
                artifact_digest: asked.model.artifact_digest.clone(),
                reason: reason.into(),
                message: message.clone(),
                generation: md.metadata.generation,
                failed_at: Time(now),
            };
            let held = !rollout.auto_rollback || current.is_none();
            decision.phase = Phase::Degraded(degraded_message(&failure, current.as_ref(), held));
            decision.failed.insert(0, failure);
            decision.failed.truncate(FAILED_KEPT);
            let rolled_back_to = if held { None } else { current.as_ref().map(|c| c.run.clone()) };
            if !held {
                decision.apply = current;
            }
            decision.happened =
                Some(Happened::Failed { model: asked.model.run.clone(), reason, message, rolled_back_to });
        }
        Progress::Pending(_) => {}
    }
    decision
}

/// Whether two records name the same model: the same run and the same bytes.
pub fn same_model(a: &ServedModel, b: &ServedModel) -> bool {
    a.run == b.run && a.artifact_digest == b.artifact_digest
}

fn failed_before<'a>(
    failed: &'a [FailedModel],
    model: &ServedModel,
    generation: Option<i64>,
) -> Option<&'a FailedModel> {
    failed
        .iter()
        .find(|f| f.run == model.run && f.artifact_digest == model.artifact_digest && f.generation == generation)
}

fn degraded_message(failure: &FailedModel, current: Option<&ServedModel>, held: bool) -> String {
    let serving = match (current, held) {
        (Some(current), false) => format!("rolled back: {} serves", current.run),
        (Some(current), true) => format!("held (autoRollback off); {} serves where it still runs", current.run),
        (None, _) => "no earlier model to go back to".to_string(),
    };
    format!("model {} failed its rollout ({}: {}); {serving}", failure.run, failure.reason, failure.message)
}

/// How far the rollout of `model` to `replicas` pods has come.
pub fn model_progress(model: &ServedModel, replicas: i32, observed: &Observed) -> Progress {
    let live: Vec<&Pod> = observed.pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
    let (mine, others): (Vec<&Pod>, Vec<&Pod>) = live.into_iter().partition(|p| runs_model(p, model));
    for pod in &mine {
        if let Some(failure) = pod_failure(pod) {
            return failure;
        }
    }
    let serving = mine.iter().filter(|p| condition_is(p, "Ready") && condition_is(p, labels::MODEL_VERIFIED)).count();
    let applied = observed.deployment.is_some_and(|d| {
        let template = d.spec.template.metadata.as_ref();
        let observed_generation = d.status.as_ref().and_then(|s| s.observed_generation);
        template.and_then(model_of) == Some((model.run.as_str(), model.artifact_digest.as_str()))
            && observed_generation >= d.metadata.generation
    });
    let status = observed.deployment.and_then(|d| d.status.clone()).unwrap_or_default();
    let settled = status.updated_replicas == Some(replicas)
        && status.replicas == Some(replicas)
        && status.ready_replicas == Some(replicas);
    if applied && settled && serving >= replicas as usize && others.is_empty() {
        return Progress::Complete;
    }
    let mut waiting = format!("{serving} of {replicas} pods of {} ready and verified", model.run);
    if !others.is_empty() {
        waiting.push_str(&format!(", {} pods of earlier models left", others.len()));
    }
    if let Some(blocked) = mine.iter().find_map(|p| waiting_reason(p)) {
        waiting.push_str(&format!("; {blocked}"));
    }
    Progress::Pending(waiting)
}

fn runs_model(pod: &Pod, model: &ServedModel) -> bool {
    model_of(&pod.metadata) == Some((model.run.as_str(), model.artifact_digest.as_str()))
}

fn condition_is(pod: &Pod, type_: &str) -> bool {
    pod.status.iter().flat_map(|s| s.conditions.iter().flatten()).any(|c| c.type_ == type_ && c.status == "True")
}

/// Why a pod of the new model shows it cannot serve: a failed smoke test, or a server that keeps
/// exiting (a model it refuses, say a digest that does not match).
fn pod_failure(pod: &Pod) -> Option<Progress> {
    let status = pod.status.as_ref()?;
    if let Some(gate) =
        status.conditions.iter().flatten().find(|c| c.type_ == labels::MODEL_VERIFIED && c.status == "False")
    {
        let message = format!("pod {}: {}", pod.name_any(), gate.message.clone().unwrap_or_default());
        return Some(Progress::Failed { reason: "SmokeTestFailed", message });
    }
    for container in status.container_statuses.iter().flatten() {
        let states = [container.state.as_ref(), container.last_state.as_ref()];
        let exited = states.into_iter().flatten().find_map(|s| s.terminated.as_ref().filter(|t| t.exit_code != 0));
        if let Some(exit) = exited.filter(|_| container.restart_count >= CRASH_RESTARTS) {
            let said = last_words(exit);
            let refusal = REFUSALS.iter().find(|(code, _)| i32::from(*code) == exit.exit_code);
            let reason = refusal.map_or("ServerExited", |(_, reason)| reason);
            let restarts = container.restart_count;
            let message = format!("pod {}: the server exited {restarts} times: {said}", pod.name_any());
            return Some(Progress::Failed { reason, message });
        }
    }
    None
}

fn last_words(exit: &ContainerStateTerminated) -> String {
    let code = exit.exit_code;
    match exit.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        Some(message) => format!("exit code {code}: {}", message.lines().last().unwrap_or(message)),
        None => format!("exit code {code} ({})", exit.reason.as_deref().unwrap_or("Error")),
    }
}

/// What a container of a pending pod waits on (an image that cannot be pulled, say).
fn waiting_reason(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|c| {
        let waiting = c.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref().filter(|r| *r != "ContainerCreating")?;
        Some(format!("pod {}: {reason} {}", pod.name_any(), waiting.message.as_deref().unwrap_or("")).trim().into())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::controllers::deployment::workload::{self, tests::model, tests::model_deployment};

    const A: &str = "sha256:aa";
    const B: &str = "sha256:bb";

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn asked(run: &str, digest: &str) -> Candidate {
        Candidate { model: model(run, digest), passed_at: Some(at(-5)) }
    }

    fn with_status(status: Value) -> ModelDeployment {
        let mut md = model_deployment(json!({"rollout": {"progressDeadlineSeconds": 60, "keepPrevious": 2}}));
        md.metadata.generation = Some(1);
        md.status = Some(serde_json::from_value(status).unwrap());
        md
    }

    fn served(run: &str, digest: &str) -> Value {
        json!({"run": run, "artifactUri": format!("file:///a/{run}/model.json"), "artifactDigest": digest})
    }

    /// A server pod of `run`: ready and verified as told, with `restarts` failed exits.
    fn pod(name: &str, run: &str, digest: &str, ready: bool, verified: Option<bool>, restarts: i32) -> Pod {
        let flag = |b: bool| if b { "True" } else { "False" };
        let mut conditions = vec![json!({"type": "Ready", "status": flag(ready)})];
        if let Some(v) = verified {
            conditions
                .push(json!({"type": labels::MODEL_VERIFIED, "status": flag(v), "message": "infer answered 500"}));
        }
        let last = json!({"terminated": {"exitCode": 65, "message": "cannot load the model: artifact digest sha256:cc does not match MODEL_DIGEST sha256:bb"}});
        serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {labels::RUN: run, labels::ARTIFACT_DIGEST: digest}},
            "status": {"conditions": conditions, "containerStatuses": [{"name": "server", "image": "s", "imageID": "",
                "ready": ready, "restartCount": restarts, "lastState": if restarts > 0 { last } else { json!({}) }}]}
        }))
        .unwrap()
    }

    fn deployment_of(
        md: &ModelDeployment,
        run: &str,
        digest: &str,
        updated: i32,
        total: i32,
        ready: i32,
    ) -> Deployment {
        let mut d =
            workload::deployment(md, &model(run, digest), &crate::controllers::Settings::new("file:///a")).unwrap();
        d.metadata.generation = Some(3);
        d.status = Some(
            serde_json::from_value(json!({"observedGeneration": 3, "updatedReplicas": updated,
            "replicas": total, "readyReplicas": ready}))
            .unwrap(),
        );
        d
    }

    #[test]
    fn the_first_passing_model_is_rolled_out_then_promoted_when_every_pod_is_verified() {
        let md = with_status(json!({}));
        let candidate = asked("churn-1", A);
        let decision = decide(&md, Some(&candidate), &Observed { deployment: None, pods: &[] }, at(0));
        assert_eq!(decision.apply.as_ref().map(|m| m.run.as_str()), Some("churn-1"));
        assert_eq!(decision.happened, Some(Happened::Started { model: "churn-1".into() }));
        assert!(matches!(&decision.phase, Phase::RollingOut(w) if w.contains("0 of 2 pods")));
        assert_eq!(decision.requeue, Some(Duration::from_secs(61)));
        let rollout = decision.rollout.clone().unwrap();
        assert_eq!(rollout.started_at, Some(Time(at(0))));

        let md = with_status(json!({"rollout": rollout}));
        let d = deployment_of(&md, "churn-1", A, 2, 2, 2);
        let unverified = [pod("a", "churn-1", A, true, Some(true), 0), pod("b", "churn-1", A, true, None, 0)];
        let observed = Observed { deployment: Some(&d), pods: &unverified };
        assert!(matches!(decide(&md, Some(&candidate), &observed, at(5)).phase, Phase::RollingOut(_)));

        let verified = [pod("a", "churn-1", A, true, Some(true), 0), pod("b", "churn-1", A, true, Some(true), 0)];
        let observed = Observed { deployment: Some(&d), pods: &verified };
        let decision = decide(&md, Some(&candidate), &observed, at(6));
        assert_eq!(decision.phase, Phase::Serving);
        let current = decision.current.clone().unwrap();
        assert_eq!((current.run.as_str(), current.promoted_at), ("churn-1", Some(Time(at(6)))));
        assert_eq!(decision.rollout, None);
        assert!(matches!(decision.happened, Some(Happened::Promoted { passed_at: Some(t), .. }) if t == at(-5)));
    }

    #[test]
    fn a_new_model_takes_over_only_when_no_old_pod_is_left_and_the_old_one_becomes_a_rollback_target() {
        let md = with_status(json!({"currentModel": served("churn-1", A),
            "previousModels": [served("churn-0", "sha256:00"), served("churn-x", "sha256:xx")],
            "rollout": {"model": served("churn-2", B), "startedAt": "2027-01-15T08:00:00Z"}}));
        let candidate = asked("churn-2", B);
        let d = deployment_of(&md, "churn-2", B, 2, 3, 3);
        let pods = [
            pod("new-a", "churn-2", B, true, Some(true), 0),
            pod("new-b", "churn-2", B, true, Some(true), 0),
            pod("old-a", "churn-1", A, true, Some(true), 0),
        ];
        let decision = decide(&md, Some(&candidate), &Observed { deployment: Some(&d), pods: &pods }, at(10));
        assert!(
            matches!(&decision.phase, Phase::RollingOut(w) if w.contains("1 pods of earlier models")),
            "{decision:?}"
        );
        assert_eq!(decision.current.as_ref().unwrap().run, "churn-1", "the old model serves until the end");

        let d = deployment_of(&md, "churn-2", B, 2, 2, 2);
        let decision = decide(&md, Some(&candidate), &Observed { deployment: Some(&d), pods: &pods[..2] }, at(11));
        assert_eq!(decision.current.as_ref().unwrap().run, "churn-2");
        let previous: Vec<&str> = decision.previous.iter().map(|m| m.run.as_str()).collect();
        assert_eq!(previous, ["churn-1", "churn-0"], "newest first, at most keepPrevious");
    }

    #[test]
    fn a_server_that_keeps_exiting_is_rolled_back_quoting_its_last_words() {
        let md = with_status(json!({"currentModel": served("churn-1", A),
            "rollout": {"model": served("churn-2", B), "startedAt": "2027-01-15T08:00:00Z"}}));
        let d = deployment_of(&md, "churn-2", B, 1, 3, 2);
        let once = [pod("new", "churn-2", B, false, None, 1), pod("old", "churn-1", A, true, Some(true), 0)];
        let decision = decide(&md, Some(&asked("churn-2", B)), &Observed { deployment: Some(&d), pods: &once }, at(1));
        assert!(matches!(decision.phase, Phase::RollingOut(_)), "one exit may be a passing fault");

        let looping = [pod("new", "churn-2", B, false, None, 2), pod("old", "churn-1", A, true, Some(true), 0)];
        let observed = Observed { deployment: Some(&d), pods: &looping };
        let decision = decide(&md, Some(&asked("churn-2", B)), &observed, at(2));
        assert_eq!(decision.apply.as_ref().unwrap().run, "churn-1", "the old template is applied again");
        assert_eq!(decision.current.as_ref().unwrap().run, "churn-1");
        let failed = &decision.failed[0];
        assert_eq!((failed.run.as_str(), failed.reason.as_str()), ("churn-2", "DigestRefused"));
        assert!(failed.message.contains("does not match MODEL_DIGEST"), "{}", failed.message);
        assert!(matches!(&decision.happened, Some(Happened::Failed { rolled_back_to: Some(r), .. }) if r == "churn-1"));

        // The same model is not tried again; the current one stays applied.
        let md = with_status(json!({"currentModel": served("churn-1", A), "failedModels": decision.failed}));
        let decision = decide(&md, Some(&asked("churn-2", B)), &Observed { deployment: None, pods: &[] }, at(3));
        assert_eq!(decision.apply.as_ref().unwrap().run, "churn-1");
        assert!(matches!(&decision.phase, Phase::Degraded(m) if m.contains("rolled back: churn-1 serves")));
        assert_eq!(decision.happened, None);
        // A newer passing run is tried.
        let decision =
            decide(&md, Some(&asked("churn-3", "sha256:cc")), &Observed { deployment: None, pods: &[] }, at(4));
        assert_eq!(decision.apply.as_ref().unwrap().run, "churn-3");
        // So is the same model under a new spec generation (a fixed server image, say).
        let mut md = md;
        md.metadata.generation = Some(2);
        let decision = decide(&md, Some(&asked("churn-2", B)), &Observed { deployment: None, pods: &[] }, at(5));
        assert_eq!(decision.apply.as_ref().unwrap().run, "churn-2");
    }

    #[test]
    fn the_exit_code_not_the_words_says_why_a_server_refused_its_model() {
        let with_exit = |code: i32| {
            let mut pod = pod("new", "churn-2", B, false, None, 2);
            let statuses = pod.status.as_mut().unwrap().container_statuses.as_mut().unwrap();
            statuses[0].last_state.as_mut().unwrap().terminated.as_mut().unwrap().exit_code = code;
            pod
        };
        let reason = |code: i32| match pod_failure(&with_exit(code)) {
            Some(Progress::Failed { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(65), "DigestRefused");
        assert_eq!(reason(66), "ModelUnreadable");
        assert_eq!(reason(1), "ServerExited", "words naming MODEL_DIGEST decide nothing");
    }

    #[test]
    fn a_failed_smoke_test_or_a_passed_deadline_fails_the_rollout_and_without_auto_rollback_it_is_held() {
        let md = with_status(json!({"currentModel": served("churn-1", A),
            "rollout": {"model": served("churn-2", B), "startedAt": "2027-01-15T08:00:00Z"}}));
        let pods = [pod("new", "churn-2", B, false, Some(false), 0)];
        let decision = decide(&md, Some(&asked("churn-2", B)), &Observed { deployment: None, pods: &pods }, at(1));
        assert_eq!(decision.failed[0].reason, "SmokeTestFailed");
        assert!(decision.failed[0].message.contains("infer answered 500"));

        let started = Timestamp::from_second(1_800_000_000).unwrap();
        let mut md = with_status(json!({"currentModel": served("churn-1", A),
            "rollout": {"model": served("churn-2", B), "startedAt": Time(started)}}));
        md.spec.rollout.auto_rollback = false;
        let pods = [pod("new", "churn-2", B, false, None, 0)];
        let observed = Observed { deployment: None, pods: &pods };
        assert!(matches!(decide(&md, Some(&asked("churn-2", B)), &observed, at(59)).phase, Phase::RollingOut(_)));
        let decision = decide(&md, Some(&asked("churn-2", B)), &observed, at(60));
        assert_eq!(decision.failed[0].reason, "ProgressDeadlineExceeded");
        assert_eq!(decision.apply.as_ref().unwrap().run, "churn-2", "held");
        assert!(matches!(&decision.phase, Phase::Degraded(m) if m.contains("held")));
    }

    #[test]
    fn scaled_to_zero_a_new_model_waits_without_a_deadline_and_nothing_is_asked_keeps_the_current() {
        let mut md = with_status(json!({"currentModel": served("churn-1", A),
            "rollout": {"model": served("churn-2", B), "startedAt": "2027-01-15T08:00:00Z"}}));
        md.spec.serving.replicas = 0;
        let decision = decide(&md, Some(&asked("churn-2", B)), &Observed { deployment: None, pods: &[] }, at(999));
        assert_eq!(decision.phase, Phase::ScaledToZero);
        assert_eq!(decision.rollout.unwrap().started_at, None);
        let decision = decide(&md, None, &Observed { deployment: None, pods: &[] }, at(999));
        assert_eq!((decision.apply.unwrap().run.as_str(), decision.phase), ("churn-1", Phase::Serving));
    }
}

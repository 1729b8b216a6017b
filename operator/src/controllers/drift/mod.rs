//! The DriftPolicy controller: every `interval`, gather (the watched deployment, the model it
//! serves, its server pods, the pipeline and its runs) -> evaluate each monitor -> judge (breaches,
//! firing) -> guard (may a firing monitor ask for a retrain?) -> status -> events and metrics.
//! A retrain is a request recorded in the policy's status; the pipeline controller creates the
//! run.

pub mod acknowledged;
pub mod evaluate;
pub mod feature;
pub mod gone;
pub mod guards;
pub mod judgement;
pub mod live;
pub mod retrain;
pub mod status;

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt, runtime::controller::Action};

use crate::api::{
    DriftPolicy, DriftPolicyStatus, ModelDeployment, Monitor, MonitorStatus, ProfileCursor, TrainingPipeline,
    TrainingRun,
};
use crate::controllers::{
    Life,
    conditions::{Desired, failing, merge},
    deployment::verify::read_profile,
    error::Result,
    failures,
    metrics::{DriftValueLabels, EvaluationLabels, SuppressionLabels},
    status::apply as apply_status,
};
use crate::monitors::webhook::PolicyKey;
use evaluate::{Alerts, Reading, Served};
use guards::{Situation, Suppression};
use status::{Blocked, MANAGED};

/// Reconcile one DriftPolicy; an error that repeats is reported on it.
#[tracing::instrument(skip_all, fields(policy = %policy.name_any(), namespace = policy.namespace().unwrap_or_default()))]
pub async fn reconcile(policy: Arc<DriftPolicy>, ctx: Arc<Life>) -> Result<Action> {
    failures::reported(&ctx, &*policy, reconcile_policy(policy.clone(), ctx.clone()).await).await
}

impl failures::ReportsFailures for DriftPolicy {
    type Status = DriftPolicyStatus;
    const CONTROLLER: &'static str = "driftpolicy";

    fn failing_status(&self, category: &str, message: &str) -> Option<DriftPolicyStatus> {
        let old = self.status.clone().unwrap_or_default();
        let conditions =
            merge(&old.conditions, &failing(category, message), MANAGED, self.metadata.generation, Timestamp::now());
        let new = DriftPolicyStatus { conditions, ..old.clone() };
        (new != old).then_some(new)
    }
}

/// What the policy watches, as gathered.
struct Gathered {
    deployment: Option<ModelDeployment>,
    pipeline: Option<TrainingPipeline>,
    runs: Vec<TrainingRun>,
}

async fn reconcile_policy(policy: Arc<DriftPolicy>, ctx: Arc<Life>) -> Result<Action> {
    let now = Timestamp::now();
    let name = policy.name_any();
    let spec = &policy.spec;
    let old = policy.status.clone().unwrap_or_default();

    // Validate what the schema cannot: durations too large to represent.
    let parse = crate::triggers::interval::parse;
    let (Some(interval), Some(cooldown)) = (parse(&spec.interval), parse(&spec.guards.cooldown)) else {
        return stalled(&ctx, &policy, &old, "spec.interval or spec.guards.cooldown is too large".into()).await;
    };
    // Alerts are judged when they come; the other monitors every interval.
    let key = PolicyKey::of(policy.as_ref());
    let webhooks = spec.monitors.iter().filter(|m| m.webhook.is_some()).map(|m| m.name.as_str());
    let alerted = ctx.firings.any_pending(&key, webhooks);
    if !alerted && let Some(wait) = status::due_in(&policy, interval, now) {
        record_triggered(&ctx, &policy, &old).await?;
        return Ok(Action::requeue(wait));
    }

    // Gather.
    let gathered = gather(&ctx, &policy).await?;
    let served_model = gathered.deployment.as_ref().and_then(|md| md.status.as_ref()?.current_model.clone());
    let deployment_name = &spec.deployment_ref.name;
    let blocked = match (&gathered.deployment, &served_model) {
        (None, _) => Some(Blocked {
            reason: "DeploymentNotFound",
            message: format!("ModelDeployment {deployment_name} does not exist"),
        }),
        (Some(_), None) => Some(Blocked {
            reason: "NoModel",
            message: format!("ModelDeployment {deployment_name} serves no model yet"),
        }),
        _ => None,
    };

    // Evaluate.
    let old_monitor = |monitor: &Monitor| old.monitors.iter().find(|m| m.name == monitor.name);
    let pods = match &gathered.deployment {
        Some(md) => ctx.caches.server_pods(&md.namespace().unwrap_or_default(), &md.name_any()),
        None => Vec::new(),
    };
    let servers = gathered.deployment.as_ref().map(|md| live::ready_servers(&pods, md.spec.serving.port));
    let servers = servers.unwrap_or_default();
    let uid = policy.uid().unwrap_or_default();
    let evaluated: Vec<(Reading, Vec<ProfileCursor>)> = match (&gathered.deployment, &served_model, &blocked) {
        (Some(_), Some(model), None) => {
            let reference = match &model.profile {
                Some(uri) => read_profile(&ctx, uri).await,
                None => Err(format!("run {} recorded no reference profile", model.run)),
            };
            let pod_names: Vec<String> = pods.iter().map(ResourceExt::name_any).collect();
            let served = Served {
                http: &ctx.http,
                digest: &model.artifact_digest,
                reference: &reference,
                servers: &servers,
                pods: &pod_names,
                acknowledged: &ctx.acknowledged,
                policy: &key,
                policy_uid: &uid,
            };
            let alerts = Alerts { firings: &ctx.firings, policy: &key };
            let mut evaluated = Vec::with_capacity(spec.monitors.len());
            for monitor in &spec.monitors {
                let recorded = old_monitor(monitor).map(|m| m.profile_cursors.as_slice()).unwrap_or_default();
                evaluated.push(evaluate::evaluate(monitor, &served, &alerts, recorded).await);
            }
            evaluated
        }
        _ => {
            let message = blocked.as_ref().map(|b| b.message.clone()).unwrap_or_default();
            let error = || Reading::Error { threshold: None, message: message.clone() };
            let recorded = |monitor| old_monitor(monitor).map(|m| m.profile_cursors.clone()).unwrap_or_default();
            spec.monitors.iter().map(|monitor| (error(), recorded(monitor))).collect()
        }
    };
    let (readings, cursors): (Vec<Reading>, Vec<Vec<ProfileCursor>>) = evaluated.into_iter().unzip();

    // Judge.
    let monitors: Vec<MonitorStatus> = spec
        .monitors
        .iter()
        .zip(&readings)
        .zip(cursors)
        .map(|((monitor, reading), profile_cursors)| {
            let next = judgement::next(old_monitor(monitor), &monitor.name, reading, spec.guards.consecutive, now);
            MonitorStatus { profile_cursors, ..next }
        })
        .collect();
    let firing = spec
        .monitors
        .iter()
        .zip(&monitors)
        .zip(&readings)
        .find(|((_, status), reading)| judgement::fires(status, reading))
        .map(|((monitor, status), reading)| (monitor, status, reading));

    // Guard.
    let pipeline_name =
        gathered.deployment.as_ref().and_then(|md| md.spec.source.pipeline_ref.as_ref()).map(|p| p.name.as_str());
    let mut recent = guards::within_a_day(&old.recent_retrains, now);
    let mut request = old.retrain_request.clone();
    let mut count = old.retrain_requests.unwrap_or(0);
    let pending = retrain::pending(&name, request.as_ref(), gathered.pipeline.as_ref(), &gathered.runs);
    let pinned = gathered.deployment.as_ref().and_then(|md| md.spec.source.run_ref.as_ref()).map(|r| r.name.as_str());
    let situation = Situation {
        suspend: spec.suspend,
        pipeline: pipeline_name,
        pinned,
        pending,
        cooldown,
        max_per_day: spec.guards.max_retrains_per_day,
        recent: &recent,
        now,
    };
    let mut suppression: Option<Suppression> = None;
    let mut requested = false;
    if let Some((monitor, fired, reading)) = firing {
        match (guards::check(&situation), pipeline_name) {
            (Ok(()), Some(pipeline)) => {
                count += 1;
                let reason = reason_of(monitor, fired, reading, &name);
                request = Some(retrain::request(&uid, count, pipeline, reason, now));
                recent.push(Time(now));
                requested = true;
            }
            (Err(held), _) => suppression = Some(held),
            (Ok(()), None) => suppression = Some(Suppression::PinnedByRunRef(pinned.unwrap_or_default().into())),
        }
    }
    let triggered = request.as_ref().and_then(|r| retrain::run_of(&name, r, &gathered.runs));

    // Status.
    let suppression_reason = suppression.as_ref().map(Suppression::message);
    let state = status::state(&monitors, suppression_reason.as_deref());
    let errors: Vec<String> = spec
        .monitors
        .iter()
        .zip(&readings)
        .filter_map(|(monitor, reading)| match reading {
            Reading::Error { message, .. } => Some(format!("monitor {}: {message}", monitor.name)),
            _ => None,
        })
        .collect();
    let desired: Vec<Desired> = status::conditions(blocked.as_ref(), &errors, state, suppression_reason.as_deref());
    let generation = policy.metadata.generation;
    let new = DriftPolicyStatus {
        observed_generation: generation,
        state: Some(state.to_string()),
        monitors,
        last_triggered_run: triggered.and_then(|run| run.metadata.name.clone()).or(old.last_triggered_run.clone()),
        last_triggered_time: triggered
            .and_then(|run| run.metadata.creation_timestamp.clone())
            .or(old.last_triggered_time.clone()),
        suppression_reason,
        retrain_request: request.clone(),
        retrain_requests: (count > 0).then_some(count),
        recent_retrains: recent,
        conditions: merge(&old.conditions, &desired, MANAGED, generation, now),
    };
    if new != old {
        apply_status(&ctx, &*policy, &new).await?;
    }
    acknowledge(&ctx, &servers, (&key, &uid), &new).await;

    // Events and metrics, once the status holds what they announce.
    announce(&ctx, &policy, &old, &new, &readings, requested.then_some(request).flatten(), suppression.as_ref()).await;
    Ok(Action::requeue(interval))
}

/// The deployment, and the pipeline it follows with that pipeline's runs, from the caches. A
/// stale cache cannot start a second run: request ids are numbered from the policy's status,
/// whose write is conditional on the version read, and the pipeline consumes each id once. The
/// newest run the pipeline recorded is read fresh when the cache does not hold it yet, so a drift
/// run just created is not missed and the pending guard holds.
async fn gather(ctx: &Life, policy: &DriftPolicy) -> Result<Gathered> {
    let namespace = policy.namespace().unwrap_or_default();
    let deployment = ctx.caches.deployment(&namespace, &policy.spec.deployment_ref.name);
    let Some(pipeline) = deployment.as_ref().and_then(|md| md.spec.source.pipeline_ref.as_ref()) else {
        return Ok(Gathered { deployment, pipeline: None, runs: Vec::new() });
    };
    let pipeline = ctx.caches.pipeline(&namespace, &pipeline.name);
    let runs = match &pipeline {
        Some(pipeline) => crate::controllers::pipeline::gather_runs(ctx, pipeline).await?,
        None => Vec::new(),
    };
    Ok(Gathered { deployment, pipeline, runs })
}

/// The status records the judgement of the rows its cursors name: acknowledge them to their pods,
/// which subtract them for the monitor's reader. One that fails is acknowledged before the
/// monitor's next read.
async fn acknowledge(
    ctx: &Life,
    servers: &[live::Server],
    (policy, uid): (&PolicyKey, &str),
    status: &DriftPolicyStatus,
) {
    // The status has one entry per monitor of the spec.
    ctx.acknowledged.keep_monitors(policy, status.monitors.iter().map(|m| m.name.as_str()));
    for monitor in status.monitors.iter().filter(|m| !m.profile_cursors.is_empty()) {
        let reader = live::reader(uid, &monitor.name);
        let monitor_reader = (monitor.name.as_str(), reader.as_str());
        let delivered = ctx.acknowledged.deliver(&ctx.http, servers, policy, monitor_reader, &monitor.profile_cursors);
        if let Err(message) = delivered.await {
            tracing::info!(
                monitor = monitor.name,
                message,
                "acknowledgement not delivered: retried before the next read"
            );
        }
    }
}

/// Between evaluations: record the run that consumed the policy's request as soon as the cache
/// shows it (a run's change wakes the policies whose requests it consumed).
async fn record_triggered(ctx: &Life, policy: &DriftPolicy, old: &DriftPolicyStatus) -> Result<()> {
    let Some(request) = &old.retrain_request else { return Ok(()) };
    let namespace = policy.namespace().unwrap_or_default();
    let runs = ctx.caches.pipeline_runs(&namespace, &request.pipeline);
    let Some(run) = retrain::run_of(&policy.name_any(), request, &runs) else { return Ok(()) };
    if old.last_triggered_run == run.metadata.name {
        return Ok(());
    }
    let new = DriftPolicyStatus {
        last_triggered_run: run.metadata.name.clone(),
        last_triggered_time: run.metadata.creation_timestamp.clone(),
        ..old.clone()
    };
    apply_status(ctx, policy, &new).await?;
    Ok(())
}

/// Why `monitor` asks for a retrain, for people.
fn reason_of(monitor: &Monitor, fired: &MonitorStatus, reading: &Reading, policy: &str) -> String {
    if let Reading::Value { measured: Some(measured), .. } = reading {
        return format!("{measured} (monitor {}, DriftPolicy {policy})", monitor.name);
    }
    let statistic = match &monitor.feature_drift {
        Some(drift) => feature::method_name(drift.method),
        None => "value".to_string(),
    };
    let value = fired.value.unwrap_or_default();
    let threshold = fired.threshold.unwrap_or_default();
    retrain::reason(&statistic, fired.feature.as_deref(), value, threshold, &monitor.name, policy)
}

/// Events and metrics for one evaluation.
async fn announce(
    ctx: &Life,
    policy: &DriftPolicy,
    old: &DriftPolicyStatus,
    new: &DriftPolicyStatus,
    readings: &[Reading],
    requested: Option<crate::api::RetrainRequest>,
    suppression: Option<&Suppression>,
) {
    let reference = policy.object_ref(&());
    let name = policy.name_any();
    for (status, reading) in new.monitors.iter().zip(readings) {
        let before = old.monitors.iter().find(|m| m.name == status.name);
        let outcome = match reading {
            Reading::Value { values, .. } => {
                for (feature, value) in values {
                    let labels = DriftValueLabels {
                        policy: name.clone(),
                        monitor: status.name.clone(),
                        feature: feature.clone(),
                    };
                    ctx.metrics.drift_value.get_or_create(&labels).set(*value);
                }
                if reading.breaches() { "breach" } else { "ok" }
            }
            Reading::Waiting { .. } => "waiting",
            Reading::Error { message, .. } => {
                if before.and_then(|b| b.message.as_ref()) != Some(message) {
                    let note = format!("monitor {}: {message}", status.name);
                    ctx.event(&reference, true, "MonitorError", "Evaluate", note).await;
                }
                "error"
            }
        };
        ctx.metrics.drift_evaluations.get_or_create(&EvaluationLabels { outcome }).inc();
        if status.firing && !before.is_some_and(|b| b.firing) {
            let what = status.feature.as_ref().map(|f| format!("({f})")).unwrap_or_default();
            let note = if let Reading::Value { measured: Some(measured), .. } = reading {
                format!("monitor {}: {measured}", status.name)
            } else {
                let times = match status.consecutive_breaches {
                    1 => "at one evaluation".to_string(),
                    n => format!("at {n} evaluations in a row"),
                };
                format!(
                    "monitor {}{what}: {:.4} > {} {times}",
                    status.name,
                    status.value.unwrap_or_default(),
                    status.threshold.unwrap_or_default(),
                )
            };
            ctx.event(&reference, true, "DriftDetected", "Evaluate", note).await;
        }
    }
    if let Some(request) = requested {
        tracing::info!(id = request.id, pipeline = request.pipeline, reason = request.reason, "retrain requested");
        ctx.metrics.retrains.inc();
        let note = format!("pipeline {}: {} (request {})", request.pipeline, request.reason, request.id);
        ctx.event(&reference, false, "RetrainRequested", "RequestRetrain", note).await;
    }
    if let Some(held) = suppression {
        tracing::info!(reason = held.label(), "retrain suppressed");
        ctx.metrics.retrains_suppressed.get_or_create(&SuppressionLabels { reason: held.label() }).inc();
        ctx.event(&reference, false, "RetrainSuppressed", "RequestRetrain", held.message()).await;
    }
}

/// A policy that cannot work as written: say what to fix, and wait for a change.
async fn stalled(ctx: &Life, policy: &DriftPolicy, old: &DriftPolicyStatus, problem: String) -> Result<Action> {
    let desired =
        [Desired::new("Ready", false, "InvalidSpec", &problem), Desired::new("Stalled", true, "InvalidSpec", &problem)];
    let generation = policy.metadata.generation;
    let new = DriftPolicyStatus {
        observed_generation: generation,
        conditions: merge(&old.conditions, &desired, MANAGED, generation, Timestamp::now()),
        ..old.clone()
    };
    if new != *old {
        ctx.event(&policy.object_ref(&()), true, "InvalidSpec", "Validate", problem).await;
        apply_status(ctx, policy, &new).await?;
    }
    Ok(Action::await_change())
}

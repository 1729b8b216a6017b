//! Drift end to end on localplane: the example model server counts the traffic it serves on its
//! model's reference bins, a DriftPolicy reads every server pod's live profile, and traffic with
//! one feature shifted retrains the pipeline once, whatever the storm, with the guards holding
//! across an operator restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use serde_json::{Value, json};
use trainloop::api::{DriftPolicy, ModelDeployment, TrainingPipeline, TrainingRun, TriggerType};
use trainloop::artifact::FeatureSchema;
use trainloop_e2e::Env;
use trainloop_e2e::serving::{model_deployment, pipeline, serves};
use trainloop_example_traffic::{Shift, TrafficOptions, send_traffic};

/// How long a rollout (a training run, then server pods starting and verified) may take.
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(120);
/// A few evaluations of a 5 s interval, and the traffic before them.
const EVALUATION_TIMEOUT: Duration = Duration::from_secs(60);
const TRAINER: &str = env!("CARGO_BIN_EXE_example-trainer");
const THRESHOLD: f64 = 0.2;

async fn start() -> Env {
    trainloop_e2e::serving::start(env!("CARGO_BIN_EXE_example-model-server")).await.unwrap()
}

fn data(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data").join(file)
}

/// The pipeline and a deployment of two servers following it, serving its first run.
async fn serving_cancer(env: &Env) {
    env.create::<TrainingPipeline>(pipeline("cancer", TRAINER, &[]).unwrap()).await.unwrap();
    env.create::<ModelDeployment>(model_deployment("cancer", json!({"pipelineRef": {"name": "cancer"}})))
        .await
        .unwrap();
    env.wait_longer::<ModelDeployment>("cancer", "serving cancer-1", ROLLOUT_TIMEOUT, serves("cancer-1")).await;
}

/// A policy evaluating PSI on every feature of the deployment `cancer` every 5 s.
fn policy(min_samples: i64) -> Value {
    policy_of("cancer", min_samples)
}

fn policy_of(deployment: &str, min_samples: i64) -> Value {
    json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "DriftPolicy",
        "metadata": {"name": deployment, "namespace": "default"},
        "spec": {"deploymentRef": {"name": deployment}, "interval": "5s",
                 "monitors": [{"name": "inputs",
                               "featureDrift": {"method": "psi", "threshold": THRESHOLD, "minSamples": min_samples}}],
                 "guards": {"consecutive": 1, "cooldown": "1h", "maxRetrainsPerDay": 3}}
    })
}

/// The deployment's Service, as a client in the cluster calls it.
async fn service_url(env: &Env) -> String {
    let service = env.api::<Service>().get("cancer").await.unwrap();
    let ip = service.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP");
    format!("http://{ip}:8080")
}

/// Send `count` rows of the Breast Cancer data to `url`, with `shift` applied (e.g.
/// `mean_radius*1.5`), 20 rows a request: how many were accepted.
async fn send(url: &str, count: usize, shift: Option<&str>) -> usize {
    let options = TrafficOptions {
        url: url.to_string(),
        model: "cancer".into(),
        data: std::fs::read(data("breast_cancer_wisconsin.csv")).unwrap(),
        schema: FeatureSchema::from_json(&std::fs::read_to_string(data("breast_cancer_features.json")).unwrap())
            .unwrap(),
        count,
        batch: 20,
        rate: 0.0,
        shifts: shift.map(|s| s.parse::<Shift>().unwrap()).into_iter().collect(),
        seed: count as u64,
    };
    let report = tokio::task::spawn_blocking(move || send_traffic(&options)).await.unwrap();
    report.map_or(0, |r| r.rows_accepted)
}

/// [`send`], every row accepted.
async fn traffic(env: &Env, count: usize, shift: Option<&str>) {
    let url = service_url(env).await;
    assert_eq!(send(&url, count, shift).await, count);
}

/// Shifted traffic without pause until stopped: drift at every evaluation. A request that
/// fails while the servers roll over is no matter here.
struct Storm {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<usize>,
}

impl Storm {
    async fn start(env: &Env) -> Storm {
        let url = service_url(env).await;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut accepted = 0;
            // Bounded: a test that hangs stops sending after this many batches.
            for _ in 0..5000 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                accepted += send(&url, 100, Some("mean_radius*1.5")).await;
            }
            accepted
        });
        Storm { stop, task }
    }

    /// Stop; the rows accepted.
    async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

fn monitor(policy: &DriftPolicy) -> Option<&trainloop::api::MonitorStatus> {
    policy.status.as_ref()?.monitors.first()
}

fn drift_runs(runs: &[TrainingRun]) -> Vec<&TrainingRun> {
    runs.iter().filter(|r| r.spec.trigger.trigger_type == TriggerType::Drift).collect()
}

async fn runs(env: &Env) -> Vec<TrainingRun> {
    env.api::<TrainingRun>().list(&ListParams::default()).await.unwrap().items
}

async fn events(env: &Env, reason: &str) -> Vec<String> {
    let events = env.api::<Event>().list(&ListParams::default()).await.unwrap().items;
    events.into_iter().filter(|e| e.reason.as_deref() == Some(reason)).filter_map(|e| e.note).collect()
}

/// The value of the counter `name` with `labels` in the operator's metrics (0 when absent; the
/// binary prefixes the names with `trainloop_`).
fn counter(env: &Env, name: &str, labels: &str) -> f64 {
    let series = format!("{name}{labels} ");
    let text = env.operator_metrics();
    text.lines().find_map(|line| line.strip_prefix(&series)?.trim().parse().ok()).unwrap_or(0.0)
}

/// The reads (get, list) the operator sent of what a policy gathers and of policies themselves.
fn gathered_reads(env: &Env) -> Vec<(&'static str, f64)> {
    ["driftpolicies", "modeldeployments", "trainingpipelines", "trainingruns", "pods"]
        .into_iter()
        .map(|resource| {
            (resource, counter(env, "kube_requests_total", &format!("{{kind=\"read\",resource=\"{resource}\"}}")))
        })
        .collect()
}

#[tokio::test]
async fn shifted_traffic_retrains_once_naming_the_feature_and_the_policy_watches_the_new_model() {
    let env = start().await;
    // Bad input is a condition, never a retrain: a deployment that does not exist.
    env.create::<DriftPolicy>(policy_of("missing", 500)).await.unwrap();
    let not_found = |p: Option<&DriftPolicy>| {
        p.and_then(|p| p.status.as_ref()).is_some_and(|s| {
            s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == "DeploymentNotFound")
        })
    };
    let missing = env.wait_for::<DriftPolicy>("missing", "DeploymentNotFound", not_found).await;
    assert_eq!(missing.status.unwrap().retrain_request, None);
    serving_cancer(&env).await;
    env.create::<DriftPolicy>(policy(500)).await.unwrap();

    // Normal traffic: judged, below the threshold.
    traffic(&env, 600, None).await;
    let judged = |p: Option<&DriftPolicy>| p.and_then(monitor).is_some_and(|m| m.samples.is_some_and(|s| s >= 500));
    let watched = env.wait_longer::<DriftPolicy>("cancer", "a judged evaluation", EVALUATION_TIMEOUT, judged).await;
    let status = watched.status.clone().unwrap();
    let inputs = monitor(&watched).unwrap();
    assert_eq!(status.state.as_deref(), Some("Watching"), "{status:#?}");
    assert!(inputs.value.is_some_and(|v| v < THRESHOLD), "{inputs:?}");
    assert_eq!(inputs.feature_values.len(), 10, "every feature is judged");
    assert!(status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True" && c.reason == "Watching"));
    assert!(drift_runs(&runs(&env).await).is_empty());

    // Evaluations read the caches: one more sends no read of what the policy gathers.
    let before = gathered_reads(&env);
    let evaluated = inputs.last_evaluation_time.clone().unwrap().0;
    let again = |p: Option<&DriftPolicy>| {
        p.and_then(monitor).and_then(|m| m.last_evaluation_time.as_ref()).is_some_and(|t| t.0 > evaluated)
    };
    env.wait_longer::<DriftPolicy>("cancer", "another evaluation", EVALUATION_TIMEOUT, again).await;
    assert_eq!(gathered_reads(&env), before, "reads (get, list) sent during an evaluation");

    // One feature shifted: one Drift run, whose reason names it, trains, passes and is promoted.
    traffic(&env, 600, Some("mean_radius*1.5")).await;
    let drift_run = |r: Option<&TrainingRun>| r.is_some_and(|r| r.spec.trigger.trigger_type == TriggerType::Drift);
    let run = env.wait_longer::<TrainingRun>("cancer-2", "a drift run", EVALUATION_TIMEOUT, drift_run).await;
    let reason = &run.spec.trigger.reason;
    assert!(
        reason.starts_with("psi(mean_radius)=") && reason.ends_with("> 0.20 (monitor inputs, DriftPolicy cancer)"),
        "{reason}"
    );
    let md =
        env.wait_longer::<ModelDeployment>("cancer", "serving cancer-2", ROLLOUT_TIMEOUT, serves("cancer-2")).await;
    let promoted_at = md.status.unwrap().current_model.unwrap().promoted_at.unwrap().0;

    // The policy now judges the new model's traffic against the new model's reference.
    traffic(&env, 600, None).await;
    let fresh = |p: Option<&DriftPolicy>| {
        p.and_then(monitor).is_some_and(|m| {
            m.last_evaluation_time.as_ref().is_some_and(|t| t.0 > promoted_at)
                && m.samples.is_some_and(|s| s >= 500)
                && m.value.is_some_and(|v| v < THRESHOLD)
        })
    };
    let policy = env.wait_longer::<DriftPolicy>("cancer", "watching cancer-2", EVALUATION_TIMEOUT, fresh).await;
    let status = policy.status.unwrap();
    assert_eq!(status.state.as_deref(), Some("Watching"));
    assert_eq!(status.last_triggered_run.as_deref(), Some("cancer-2"));
    let all = runs(&env).await;
    assert_eq!(all.len(), 2, "exactly one retrain: {:?}", all.iter().map(|r| &r.metadata.name).collect::<Vec<_>>());
    assert_eq!(events(&env, "RetrainRequested").await.len(), 1);
    assert!(events(&env, "DriftDetected").await.iter().any(|n| n.contains("mean_radius")));
    assert!(events(&env, "MonitorError").await.iter().any(|n| n.contains("ModelDeployment missing does not exist")));
    assert!(counter(&env, "drift_evaluations_total", "{outcome=\"breach\"}") >= 1.0);
    env.shutdown().await;
}

#[tokio::test]
async fn drift_at_every_evaluation_starts_one_run_and_cooldown_holds_across_an_operator_restart() {
    let mut env = start().await;
    serving_cancer(&env).await;
    env.create::<DriftPolicy>(policy(100)).await.unwrap();
    let storm = Storm::start(&env).await;

    let drift_run = |r: Option<&TrainingRun>| r.is_some_and(|r| r.spec.trigger.trigger_type == TriggerType::Drift);
    env.wait_longer::<TrainingRun>("cancer-2", "a drift run", EVALUATION_TIMEOUT, drift_run).await;
    env.wait_longer::<ModelDeployment>("cancer", "serving cancer-2", ROLLOUT_TIMEOUT, serves("cancer-2")).await;
    // Every evaluation since breached: each was held, first by the pending run, then by cooldown.
    let cooling = |p: Option<&DriftPolicy>| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.suppression_reason.as_deref().is_some_and(|r| r.starts_with("cooldown")))
    };
    env.wait_longer::<DriftPolicy>("cancer", "held by cooldown", EVALUATION_TIMEOUT, cooling).await;
    assert_eq!(counter(&env, "retrains_total", ""), 1.0);
    let held = counter(&env, "retrains_suppressed_total", "{reason=\"pending\"}")
        + counter(&env, "retrains_suppressed_total", "{reason=\"cooldown\"}");
    assert!(held >= 1.0, "{}", env.operator_metrics());

    // A new operator (its metrics start from zero) knows the cooldown from the policy's status.
    env.stop_operator().await;
    env.start_operator();
    let held_again =
        |_: Option<&DriftPolicy>| counter(&env, "retrains_suppressed_total", "{reason=\"cooldown\"}") >= 2.0;
    let policy = env
        .wait_longer::<DriftPolicy>("cancer", "two evaluations held by cooldown", EVALUATION_TIMEOUT, held_again)
        .await;
    assert!(storm.stop().await > 1000, "the storm sent traffic");
    assert_eq!(counter(&env, "retrains_total", ""), 0.0);
    let status = policy.status.unwrap();
    assert_eq!(status.state.as_deref(), Some("Suppressed"));
    assert_eq!(status.recent_retrains.len(), 1);
    assert_eq!(status.last_triggered_run.as_deref(), Some("cancer-2"));
    assert_eq!(drift_runs(&runs(&env).await).len(), 1);
    assert_eq!(events(&env, "RetrainRequested").await.len(), 1);
    assert!(events(&env, "RetrainSuppressed").await.iter().any(|n| n.starts_with("cooldown")));
    env.shutdown().await;
}

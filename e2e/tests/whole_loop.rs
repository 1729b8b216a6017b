//! The whole loop on localplane, as `make demo` shows it, with assertions: the example pipeline
//! trains run 1 on the rows its data URI holds, which passes and is served, and reproduces; new
//! rows land at the data URI; traffic with a shifted feature makes the DriftPolicy retrain; run 2
//! (trigger `Drift`, its reason naming the feature) trains on the newer data and is rolled out
//! while traffic keeps flowing through the Service without one failed request; and
//! `kubectl trainloop lineage` of the deployment reaches run 2's data digest.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use serde_json::{Map, Value, json};
use trainloop::api::{DriftPolicy, ModelDeployment, RunPhase, TrainingPipeline, TrainingRun, TriggerType};
use trainloop::artifact::FeatureSchema;
use trainloop_e2e::kubectl::Kubectl;
use trainloop_e2e::serving::{self, model_deployment, pipeline, serves};
use trainloop_example_traffic::Shift;
use trainloop_example_traffic::send::instances;

const TRAINER: &str = env!("CARGO_BIN_EXE_example-trainer");
/// A training run, then server pods starting and smoke-tested.
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(120);
/// Rows the data URI holds when run 1 trains; the example file's 569 land before run 2.
const FIRST_ROWS: usize = 400;

fn example(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data").join(file)
}

/// The first `rows` rows of the example data (and its header).
fn first_rows(rows: usize) -> String {
    let text = std::fs::read_to_string(example("breast_cancer_wisconsin.csv")).unwrap();
    text.lines().take(rows.saturating_add(1)).map(|line| format!("{line}\n")).collect()
}

/// The example's drift policy, evaluated every 5 s and firing at the first breach.
fn drift_policy() -> Value {
    json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "DriftPolicy",
        "metadata": {"name": "cancer", "namespace": "default"},
        "spec": {"deploymentRef": {"name": "cancer"}, "interval": "5s",
                 "monitors": [{"name": "inputs", "featureDrift": {"method": "psi", "threshold": 0.2, "minSamples": 200}}],
                 "guards": {"consecutive": 1, "cooldown": "1h", "maxRetrainsPerDay": 3}}
    })
}

/// Requests of 20 rows with `mean_radius*1.5`, one after the other through the Service, until
/// stopped: every request counted, every failure (a refusal, an error status, no answer) too.
/// (tests/serving.rs has its own, of one unshifted row: no drift there.)
struct Traffic {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(url: String) -> Traffic {
        let schema =
            FeatureSchema::from_json(&std::fs::read_to_string(example("breast_cancer_features.json")).unwrap())
                .unwrap();
        let data = std::fs::read(example("breast_cancer_wisconsin.csv")).unwrap();
        let shift: Shift = "mean_radius*1.5".parse().unwrap();
        let rows: Vec<Map<String, Value>> = instances(&data, &schema)
            .unwrap()
            .into_iter()
            .map(|mut row| {
                shift.apply(&mut row);
                row
            })
            .collect();
        let (stop, sent, failures) = (Arc::new(AtomicBool::new(false)), Arc::default(), Arc::default());
        let (flag, counter, failed): (_, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) =
            (stop.clone(), Arc::clone(&sent), Arc::clone(&failures));
        let task = tokio::spawn(async move {
            // A new connection per request: each one goes through the Service to a Ready pod, as
            // a fresh client's would (a kept-alive connection stays with the pod it first reached).
            let client =
                reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(10)).build().unwrap();
            let endpoint = format!("{url}/v1/models/cancer:predict");
            for (n, batch) in rows.chunks(20).cycle().enumerate() {
                // Bounded: a test that hangs stops sending after this many requests.
                if flag.load(Ordering::Relaxed) || n >= 100_000 {
                    break;
                }
                let answer = client.post(&endpoint).json(&json!({"instances": batch})).send().await;
                let failure = match answer {
                    Ok(response) if response.status().is_success() => None,
                    Ok(response) => {
                        Some(format!("{}: {}", response.status(), response.text().await.unwrap_or_default()))
                    }
                    Err(error) => Some(error.to_string()),
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if let Some(failure) = failure {
                    failed.lock().unwrap().push(failure);
                }
            }
        });
        Traffic { stop, sent, failures, task }
    }

    fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stop: the requests sent, and the failures.
    async fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let failures = self.failures.lock().unwrap().clone();
        (self.sent.load(Ordering::Relaxed), failures)
    }
}

fn succeeded(run: Option<&TrainingRun>) -> bool {
    run.and_then(|r| r.status.as_ref()).is_some_and(|s| s.phase == RunPhase::Succeeded)
}

fn data_digest(run: &TrainingRun) -> String {
    run.status.as_ref().and_then(|s| s.data_digest.clone()).expect("a recorded data digest")
}

#[tokio::test]
async fn the_loop_retrains_on_drift_with_newer_data_and_rolls_out_without_a_failed_request() {
    let env = serving::start(env!("CARGO_BIN_EXE_example-model-server")).await.unwrap();
    let plugin = Path::new(env!("CARGO_BIN_EXE_e2e-kubectl-trainloop"));
    let kubectl = Kubectl::with_plugins(&env, &[("kubectl-trainloop", plugin)]).unwrap();
    // The pipeline's data URI: a file that holds the first rows now and more rows later.
    let data = env.work_dir.join("cancer.csv");
    std::fs::write(&data, first_rows(FIRST_ROWS)).unwrap();
    let mut cancer = pipeline("cancer", TRAINER, &[]).unwrap();
    cancer["spec"]["data"]["uri"] = json!(format!("file://{}", data.display()));
    env.create::<TrainingPipeline>(cancer).await.unwrap();
    env.create::<ModelDeployment>(model_deployment("cancer", json!({"pipelineRef": {"name": "cancer"}})))
        .await
        .unwrap();

    // Run 1 trains, passes its gates and is served; its frozen spec reproduces it exactly.
    env.wait_longer::<ModelDeployment>("cancer", "serving cancer-1", ROLLOUT_TIMEOUT, serves("cancer-1")).await;
    let run1 = env.api::<TrainingRun>().get("cancer-1").await.unwrap();
    let status1 = run1.status.clone().unwrap();
    assert!(status1.conditions.iter().any(|c| c.type_ == "Passed" && c.status == "True"), "{status1:#?}");
    let artifact1 = status1.artifact.clone().unwrap().digest;
    let report = kubectl.ok(&["trainloop", "reproduce", "cancer-1", "--timeout", "120"]).await;
    assert!(report.contains(&format!("artifact digest  identical   {artifact1}")), "{report}");

    // New rows land at the data URI; then traffic with a shifted feature flows without pause.
    std::fs::write(&data, first_rows(usize::MAX)).unwrap();
    env.create::<DriftPolicy>(drift_policy()).await.unwrap();
    let service = env.api::<Service>().get("cancer").await.unwrap();
    let ip = service.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP");
    let traffic = Traffic::start(format!("http://{ip}:8080"));

    // Run 2: started by the DriftPolicy, naming the feature, trained on the newer data.
    let drift = |r: Option<&TrainingRun>| r.is_some_and(|r| r.spec.trigger.trigger_type == TriggerType::Drift);
    let run2 = env.wait_longer::<TrainingRun>("cancer-2", "a Drift run", ROLLOUT_TIMEOUT, drift).await;
    // From here the traffic covers run 2's training and its whole rollout.
    let before_rollout = traffic.sent();
    let reason = &run2.spec.trigger.reason;
    assert!(reason.starts_with("psi(mean_radius)=") && reason.contains("DriftPolicy cancer"), "{reason}");
    let run2 = env.wait_longer::<TrainingRun>("cancer-2", "trained", ROLLOUT_TIMEOUT, succeeded).await;
    assert_ne!(data_digest(&run2), data_digest(&run1), "run 2 trained on the newer data");
    assert_ne!(run2.status.as_ref().unwrap().artifact.as_ref().unwrap().digest, artifact1, "a new model");

    // Its rollout: the Service answers every request while the servers change models.
    env.wait_longer::<ModelDeployment>("cancer", "serving cancer-2", ROLLOUT_TIMEOUT, serves("cancer-2")).await;
    let during_rollout = traffic.sent() - before_rollout;
    let (sent, failures) = traffic.stop().await;
    eprintln!(
        "{sent} requests of 20 rows, {during_rollout} from cancer-2's start to its rollout's end, {} failed",
        failures.len()
    );
    assert!(during_rollout >= 10, "traffic flowed during the rollout: {during_rollout} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    // The lineage of what is served now reaches run 2's data digest, through the real kubectl.
    let lineage = kubectl.ok(&["trainloop", "lineage", "md/cancer"]).await;
    assert!(lineage.contains("<- run        tr/cancer-2 Succeeded"), "{lineage}");
    assert!(lineage.contains(&data_digest(&run2)), "{lineage}");
    assert!(lineage.contains("<- trigger    Drift: psi(mean_radius)="), "{lineage}");
    env.shutdown().await;
}

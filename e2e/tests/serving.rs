//! Serving end to end on localplane: the example trainer trains, the operator promotes passing
//! runs to a Deployment of the example model server, smoke-tests each new pod before it takes
//! traffic, and rolls back a model the server refuses, while a client keeps calling the Service.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use trainloop::api::{ModelDeployment, RunPhase, TrainingPipeline, TrainingRun};
use trainloop_e2e::Env;
use trainloop_e2e::serving::{ROW, model_deployment, pipeline, serves};

/// How long a rollout (a training run, then server pods starting and verified) may take.
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(120);
const TRAINER: &str = env!("CARGO_BIN_EXE_example-trainer");

async fn start() -> Env {
    trainloop_e2e::serving::start(env!("CARGO_BIN_EXE_example-model-server")).await.unwrap()
}

async fn patch<K: trainloop_e2e::Object>(env: &Env, name: &str, patch: Value) {
    env.api::<K>().patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

/// The Service's ClusterIP address, as a client in the cluster calls it.
async fn service_url(env: &Env, name: &str) -> String {
    let service = env.api::<Service>().get(name).await.unwrap();
    let ip = service.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP");
    format!("http://{ip}:8080/v1/models/{name}:predict")
}

async fn predict(url: &str) -> Result<Value, String> {
    // A new connection per request: each one goes through the Service to a Ready pod, as a fresh
    // client's would (a kept-alive connection stays with the pod it first reached).
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().map_err(|e| e.to_string())?;
    // Debug-formatted, so that a failure shows its cause (refused, reset, incomplete answer).
    let request = client.post(url).body(ROW).timeout(Duration::from_secs(5));
    let answer = request.send().await.map_err(|e| format!("{e:?}"))?;
    let status = answer.status();
    let text = answer.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Calls the Service without pause until stopped, counting answers and failures.
struct Traffic {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(url: String) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, o, f) = (stop.clone(), ok.clone(), failures.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                match predict(&url).await {
                    Ok(answer) if answer["predictions"].is_array() => o.fetch_add(1, Ordering::Relaxed),
                    Ok(answer) => {
                        f.lock().unwrap().push(format!("no predictions: {answer}"));
                        0
                    }
                    Err(error) => {
                        f.lock().unwrap().push(error);
                        0
                    }
                };
            }
        });
        Traffic { stop, ok, failures, task }
    }

    /// Stop; the number of answers, after checking that no request failed.
    async fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let failures = self.failures.lock().unwrap().clone();
        assert!(
            failures.is_empty(),
            "{} failed requests, e.g. {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        self.ok.load(Ordering::Relaxed)
    }
}

async fn events(env: &Env, reason: &str) -> Vec<String> {
    let events = env.api::<Event>().list(&ListParams::default()).await.unwrap().items;
    events.into_iter().filter(|e| e.reason.as_deref() == Some(reason)).filter_map(|e| e.note).collect()
}

/// The notes of the events with `reason` about the ModelDeployment `md`.
async fn events_of(env: &Env, md: &str, reason: &str) -> Vec<String> {
    let events = env.api::<Event>().list(&ListParams::default()).await.unwrap().items;
    let about = |e: &Event| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(md);
    events.into_iter().filter(|e| e.reason.as_deref() == Some(reason) && about(e)).filter_map(|e| e.note).collect()
}

/// The deployment's `Ready` condition says `reason`.
fn ready_because(reason: &str) -> impl Fn(Option<&ModelDeployment>) -> bool + use<> {
    let reason = reason.to_string();
    move |md: Option<&ModelDeployment>| {
        md.and_then(|md| md.status.as_ref()).is_some_and(|s| {
            s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True" && c.reason == reason)
        })
    }
}

/// The run whose template the Deployment `name` applies.
async fn applied_run(env: &Env, name: &str) -> String {
    let deployment = env.api::<Deployment>().get(name).await.unwrap();
    deployment.spec.template.metadata.and_then(|m| m.annotations).unwrap_or_default()["trainloop.dev/run"].clone()
}

/// Watches the server pods of a ModelDeployment and remembers every moment at which pods of two
/// models existed at once (which `Recreate` must never allow).
struct Overlaps {
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Overlaps {
    fn watch(env: &Env, md: &str) -> Overlaps {
        use futures::StreamExt;
        use kube::runtime::watcher::{self, Event as Change};
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let config = watcher::Config::default().labels(&format!("trainloop.dev/deployment={md}"));
        let mut changes = watcher::watcher(env.api::<Pod>(), config).boxed();
        let record = seen.clone();
        let task = tokio::spawn(async move {
            // Pod name -> the run it serves, for every pod that exists (terminating or not).
            let mut pods = std::collections::BTreeMap::new();
            let run_of = |pod: &Pod| {
                let annotations = pod.metadata.annotations.clone().unwrap_or_default();
                annotations.get("trainloop.dev/run").cloned().unwrap_or_default()
            };
            while let Some(change) = changes.next().await {
                match change {
                    Ok(Change::Apply(pod) | Change::InitApply(pod)) => {
                        pods.insert(pod.metadata.name.clone().unwrap_or_default(), run_of(&pod));
                    }
                    Ok(Change::Delete(pod)) => {
                        pods.remove(&pod.metadata.name.clone().unwrap_or_default());
                    }
                    Ok(Change::Init) => pods.clear(),
                    Ok(Change::InitDone) | Err(_) => {}
                }
                let runs: std::collections::BTreeSet<&String> = pods.values().collect();
                if runs.len() > 1 {
                    record.lock().unwrap().push(format!("{pods:?}"));
                }
            }
        });
        Overlaps { seen, task }
    }

    /// Stop; the moments at which two models' pods existed together.
    fn finish(self) -> Vec<String> {
        self.task.abort();
        self.seen.lock().unwrap().clone()
    }
}

/// The sum of the operator's metric samples whose line contains `key`.
fn metric(env: &Env, key: &str) -> f64 {
    let text = env.operator_metrics();
    text.lines().filter(|l| l.contains(key)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// How many ModelDeployment reconciles the operator ran.
fn reconciles(env: &Env) -> f64 {
    metric(env, r#"reconciles_total{controller="modeldeployment"}"#)
}

/// Wait until the operator ran `count` ModelDeployment reconciles (a counter: no watch to await).
async fn await_reconciles(env: &Env, count: f64) {
    let deadline = tokio::time::Instant::now() + trainloop_e2e::TIMEOUT;
    while reconciles(env) < count {
        assert!(tokio::time::Instant::now() < deadline, "fewer than {count} reconciles");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn finished(run: Option<&TrainingRun>) -> bool {
    run.and_then(|r| r.status.as_ref()).is_some_and(|s| matches!(s.phase, RunPhase::Succeeded | RunPhase::Failed))
}

#[tokio::test]
async fn passing_runs_are_served_rejected_ones_never_and_a_pin_rolls_back() {
    let env = start().await;
    env.create::<TrainingPipeline>(pipeline("cancer", TRAINER, &[]).unwrap()).await.unwrap();
    env.create::<ModelDeployment>(model_deployment("cancer", json!({"pipelineRef": {"name": "cancer"}})))
        .await
        .unwrap();

    let md =
        env.wait_longer::<ModelDeployment>("cancer", "serving cancer-1", ROLLOUT_TIMEOUT, serves("cancer-1")).await;
    let status = md.status.unwrap();
    assert_eq!(status.endpoint.as_deref(), Some("http://cancer.default.svc:8080"));
    assert_eq!(status.ready_replicas, Some(2));
    let deployment = env.api::<Deployment>().get("cancer").await.unwrap();
    let annotations = deployment.spec.template.metadata.unwrap().annotations.unwrap();
    assert_eq!(annotations["trainloop.dev/run"], "cancer-1");
    assert_eq!(annotations["trainloop.dev/artifact-digest"], status.current_model.unwrap().artifact_digest);
    let service = env.api::<Service>().get("cancer").await.unwrap();
    assert_eq!(service.spec.unwrap().ports.unwrap().len(), 1, "applied again and again, still one port");
    let url = service_url(&env, "cancer").await;
    let answer = predict(&url).await.unwrap();
    assert!(answer["predictions"][0]["label"].is_string(), "{answer}");
    assert!(events(&env, "ModelPromoted").await.iter().any(|n| n.starts_with("cancer-1")));

    // Serving and asked nothing new, a reconcile writes neither the Deployment nor the Service.
    let applies =
        || metric(&env, r#"kind="write",resource="deployments""#) + metric(&env, r#"kind="write",resource="services""#);
    let (applied, reconciled) = (applies(), reconciles(&env));
    patch::<ModelDeployment>(&env, "cancer", json!({"metadata": {"annotations": {"example.com/touched": "yes"}}}))
        .await;
    await_reconciles(&env, reconciled + 1.0).await;
    assert_eq!(applies(), applied, "a reconcile with nothing to change applied the Deployment or Service");

    // A newer passing run replaces it, without one failed request through the Service.
    let traffic = Traffic::start(url.clone());
    patch::<TrainingPipeline>(&env, "cancer", json!({"spec": {"triggers": {"retrainToken": "second"}}})).await;
    let md =
        env.wait_longer::<ModelDeployment>("cancer", "serving cancer-2", ROLLOUT_TIMEOUT, serves("cancer-2")).await;
    let answered = traffic.finish().await;
    assert!(answered > 10, "only {answered} answers during the rollout");
    let previous: Vec<String> = md.status.unwrap().previous_models.into_iter().map(|m| m.run).collect();
    assert_eq!(previous, ["cancer-1"]);

    // A rejected run is never rolled out.
    let strict =
        json!({"spec": {"evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9999}]}}});
    patch::<TrainingPipeline>(&env, "cancer", strict).await;
    let run = env.wait_longer::<TrainingRun>("cancer-3", "finished", ROLLOUT_TIMEOUT, finished).await;
    assert!(run.status.unwrap().conditions.iter().any(|c| c.type_ == "Rejected"));
    let status = env.api::<ModelDeployment>().get("cancer").await.unwrap().status.unwrap();
    assert_eq!((status.current_model.unwrap().run.as_str(), status.rollout), ("cancer-2", None));

    // A pin rolls back to the earlier run.
    let pin = json!({"spec": {"source": {"pipelineRef": null, "runRef": {"name": "cancer-1"}}}});
    patch::<ModelDeployment>(&env, "cancer", pin).await;
    let md = env
        .wait_longer::<ModelDeployment>("cancer", "serving cancer-1 again", ROLLOUT_TIMEOUT, serves("cancer-1"))
        .await;
    assert_eq!(md.status.unwrap().previous_models[0].run, "cancer-2");
    assert!(predict(&url).await.is_ok());

    // A pin to a missing run stalls, naming it, and the pinned model keeps serving.
    let missing = json!({"spec": {"source": {"runRef": {"name": "cancer-9"}}}});
    patch::<ModelDeployment>(&env, "cancer", missing).await;
    let stalled = |md: Option<&ModelDeployment>| {
        md.and_then(|md| md.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Stalled" && c.message.contains("cancer-9")))
    };
    let md = env.wait_for::<ModelDeployment>("cancer", "Stalled", stalled).await;
    assert_eq!(md.status.unwrap().current_model.unwrap().run, "cancer-1");
    assert!(events(&env, "InvalidSource").await.iter().any(|n| n.contains("cancer-9")));
    assert!(predict(&url).await.is_ok());

    // Drift is corrected: a Deployment scaled by hand is scaled back, a deleted Service recreated.
    patch::<Deployment>(&env, "cancer", json!({"spec": {"replicas": 5}})).await;
    let two = |d: Option<&Deployment>| d.is_some_and(|d| d.spec.replicas == Some(2));
    env.wait_for::<Deployment>("cancer", "2 replicas again", two).await;
    let deleted = env.api::<Service>().get("cancer").await.unwrap().metadata.uid;
    env.api::<Service>().delete("cancer", &Default::default()).await.unwrap();
    let recreated = move |s: Option<&Service>| s.is_some_and(|s| s.metadata.uid != deleted);
    env.wait_for::<Service>("cancer", "recreated", recreated).await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_model_failing_its_smoke_test_never_takes_traffic() {
    let env = start().await;
    env.create::<TrainingPipeline>(pipeline("cancer", TRAINER, &[]).unwrap()).await.unwrap();
    let mut md = model_deployment("strict", json!({"pipelineRef": {"name": "cancer"}}));
    md["spec"]["rollout"]["smokeTest"] = json!({"path": "/v1/models/elsewhere:predict", "body": ROW});
    env.create::<ModelDeployment>(md).await.unwrap();
    let failed = |md: Option<&ModelDeployment>| {
        md.and_then(|md| md.status.as_ref()).is_some_and(|s| !s.failed_models.is_empty())
    };
    let md = env.wait_longer::<ModelDeployment>("strict", "a failed rollout", ROLLOUT_TIMEOUT, failed).await;
    let status = md.status.unwrap();
    assert_eq!(status.failed_models[0].reason, "SmokeTestFailed");
    assert!(status.failed_models[0].message.contains("404"), "{:?}", status.failed_models[0]);
    assert_eq!(status.current_model, None, "nothing to go back to: nothing serves");
    assert!(status.conditions.iter().any(|c| c.type_ == "Degraded" && c.message.contains("no earlier model")));
    // The pods run, but their gate keeps them out of the Service.
    let pods = env.api::<Pod>().list(&ListParams::default().labels("trainloop.dev/deployment=strict")).await.unwrap();
    assert!(!pods.items.is_empty());
    for pod in pods.items {
        let conditions = pod.status.and_then(|s| s.conditions).unwrap_or_default();
        let ready = conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.status.as_str());
        assert_eq!(ready, Some("False"), "{conditions:?}");
    }
    assert!(predict(&service_url(&env, "strict").await).await.is_err(), "no endpoint answers");
    env.shutdown().await;
}

#[tokio::test]
async fn a_refused_model_is_rolled_back_with_the_old_one_serving_and_a_restart_mid_rollout_converges() {
    let mut env = start().await;
    // churn-1 is a worse model (one iteration) than churn-2, so that the run after churn-2 shows
    // whom it is judged against: the model served (churn-1), not the best that passed (churn-2).
    let mut churn = pipeline("churn", TRAINER, &[]).unwrap();
    churn["spec"]["hyperparameters"]["maxIterations"] = json!("1");
    env.create::<TrainingPipeline>(churn).await.unwrap();
    env.create::<ModelDeployment>(model_deployment("churn", json!({"pipelineRef": {"name": "churn"}}))).await.unwrap();
    env.wait_longer::<ModelDeployment>("churn", "serving churn-1", ROLLOUT_TIMEOUT, serves("churn-1")).await;
    let traffic = Traffic::start(service_url(&env, "churn").await);

    // churn-2 passes its gates but reports a digest that is not its artifact's: the server
    // refuses to start, and the deployment goes back to churn-1.
    let broken = json!({"spec": {"hyperparameters": {"maxIterations": "200"}, "template": {"env": [
        {"name": "TRAINER", "value": TRAINER}, {"name": "BREAK_DIGEST", "value": "1"}]}}});
    patch::<TrainingPipeline>(&env, "churn", broken).await;
    let rolled_back = |md: Option<&ModelDeployment>| {
        md.and_then(|md| md.status.as_ref()).is_some_and(|s| s.failed_models.iter().any(|f| f.run == "churn-2"))
    };
    let md = env.wait_longer::<ModelDeployment>("churn", "churn-2 failed", ROLLOUT_TIMEOUT, rolled_back).await;
    let status = md.status.unwrap();
    assert_eq!(status.failed_models[0].reason, "DigestRefused", "{:?}", status.failed_models[0]);
    assert!(status.failed_models[0].message.contains("does not match MODEL_DIGEST"), "{:?}", status.failed_models[0]);
    assert!(status.conditions.iter().any(|c| c.type_ == "Degraded" && c.status == "True"));
    env.wait_longer::<ModelDeployment>("churn", "churn-1 serving again", ROLLOUT_TIMEOUT, serves("churn-1")).await;
    assert!(events(&env, "RolledBack").await.iter().any(|n| n.contains("back to churn-1")));
    assert!(
        env.operator_metrics().contains(r#"rollbacks_total{reason="DigestRefused"} 1"#),
        "{}",
        env.operator_metrics()
    );

    // A good churn-3 rolls out; the operator stops in the middle and a new one finishes the job.
    let fixed = json!({"spec": {"template": {"env": [{"name": "TRAINER", "value": TRAINER}]}}});
    patch::<TrainingPipeline>(&env, "churn", fixed).await;
    let rolling = |md: Option<&ModelDeployment>| {
        md.and_then(|md| md.status.as_ref()).and_then(|s| s.rollout.as_ref()).is_some_and(|r| r.model.run == "churn-3")
    };
    env.wait_longer::<ModelDeployment>("churn", "rolling out churn-3", ROLLOUT_TIMEOUT, rolling).await;
    env.stop_operator().await;
    env.start_operator();
    let md = env.wait_longer::<ModelDeployment>("churn", "serving churn-3", ROLLOUT_TIMEOUT, serves("churn-3")).await;
    assert_eq!(md.status.unwrap().previous_models[0].run, "churn-1");
    let judged = env.api::<TrainingRun>().get("churn-3").await.unwrap().status.unwrap().evaluation.unwrap();
    assert_eq!(judged.champion.as_deref(), Some("churn-1"), "judged against the model served");
    let answered = traffic.finish().await;
    assert!(answered > 10, "only {answered} answers");
    env.shutdown().await;
}

#[tokio::test]
async fn two_deployments_follow_one_pipeline_and_recreate_stops_the_old_model_first() {
    let env = start().await;
    // churn-1 is a worse model (one iteration) than the runs after it, so that it is not the
    // pipeline's champion: with one succeeded run kept, only a deployment's rollback list spares it.
    let mut churn = pipeline("churn", TRAINER, &[]).unwrap();
    churn["spec"]["hyperparameters"]["maxIterations"] = json!("1");
    churn["spec"]["history"] = json!({"succeeded": 1});
    env.create::<TrainingPipeline>(churn).await.unwrap();
    let follow = json!({"pipelineRef": {"name": "churn"}});
    env.create::<ModelDeployment>(model_deployment("stable", follow.clone())).await.unwrap();
    let mut canary = model_deployment("canary", follow);
    canary["spec"]["serving"]["replicas"] = json!(1);
    canary["spec"]["rollout"]["strategy"] = json!("Recreate");
    canary["spec"]["rollout"]["keepPrevious"] = json!(0);
    env.create::<ModelDeployment>(canary).await.unwrap();
    for md in ["stable", "canary"] {
        env.wait_longer::<ModelDeployment>(md, "serving churn-1", ROLLOUT_TIMEOUT, serves("churn-1")).await;
    }
    let overlaps = Overlaps::watch(&env, "canary");

    let better = json!({"spec": {"hyperparameters": {"maxIterations": "200"}}});
    patch::<TrainingPipeline>(&env, "churn", better).await;
    for md in ["stable", "canary"] {
        env.wait_longer::<ModelDeployment>(md, "serving churn-2", ROLLOUT_TIMEOUT, serves("churn-2")).await;
    }
    patch::<TrainingPipeline>(&env, "churn", json!({"spec": {"triggers": {"retrainToken": "third"}}})).await;
    let mut served = Vec::new();
    for md in ["stable", "canary"] {
        served
            .push(env.wait_longer::<ModelDeployment>(md, "serving churn-3", ROLLOUT_TIMEOUT, serves("churn-3")).await);
    }
    let overlaps = overlaps.finish();
    assert!(overlaps.is_empty(), "Recreate ran two models at once: {overlaps:?}");
    let promoted = events_of(&env, "canary", "ModelPromoted").await;
    assert!(promoted.iter().any(|n| n.starts_with("churn-3")), "{promoted:?}");
    let previous = |md: &ModelDeployment| -> Vec<String> {
        md.status.clone().unwrap().previous_models.into_iter().map(|m| m.run).collect()
    };
    assert_eq!(previous(&served[0]), ["churn-2", "churn-1"]);
    assert!(previous(&served[1]).is_empty(), "keepPrevious: 0");
    // Pruning spares what either deployment serves or may roll back to: churn-1 only for stable.
    for run in ["churn-1", "churn-2", "churn-3"] {
        assert!(env.api::<TrainingRun>().get_opt(run).await.unwrap().is_some(), "{run} was pruned");
    }

    // No fight over shared objects: each has its own Deployment and Service, and reconciling both
    // again changes none of them, nor their statuses.
    assert_eq!(applied_run(&env, "stable").await, "churn-3");
    assert_eq!(applied_run(&env, "canary").await, "churn-3");
    let written = || async {
        let mut written = Vec::new();
        for md in ["stable", "canary"] {
            written.push(format!("{:?}", env.api::<Deployment>().get(md).await.unwrap().metadata.resource_version));
            written.push(format!("{:?}", env.api::<Service>().get(md).await.unwrap().metadata.resource_version));
            written.push(format!("{:?}", env.api::<ModelDeployment>().get(md).await.unwrap().status));
        }
        written
    };
    let (before, reconciled) = (written().await, reconciles(&env));
    for md in ["stable", "canary"] {
        patch::<ModelDeployment>(&env, md, json!({"metadata": {"annotations": {"example.com/touched": "yes"}}})).await;
    }
    await_reconciles(&env, reconciled + 2.0).await;
    assert_eq!(written().await, before, "a reconcile rewrote a deployment's objects or status: they fight");
    assert!(predict(&service_url(&env, "canary").await).await.is_ok());
    env.shutdown().await;
}

#[tokio::test]
async fn scaled_to_zero_and_back_it_serves_again_and_without_auto_rollback_a_refused_model_is_held() {
    let env = start().await;
    env.create::<TrainingPipeline>(pipeline("churn", TRAINER, &[]).unwrap()).await.unwrap();
    let mut md = model_deployment("solo", json!({"pipelineRef": {"name": "churn"}}));
    md["spec"]["serving"]["replicas"] = json!(1);
    md["spec"]["rollout"]["autoRollback"] = json!(false);
    env.create::<ModelDeployment>(md).await.unwrap();
    env.wait_longer::<ModelDeployment>("solo", "serving churn-1", ROLLOUT_TIMEOUT, serves("churn-1")).await;

    // Scaled to 0: a clear condition, no failure, no pod.
    patch::<ModelDeployment>(&env, "solo", json!({"spec": {"serving": {"replicas": 0}}})).await;
    let md = env.wait_for::<ModelDeployment>("solo", "Ready: ScaledToZero", ready_because("ScaledToZero")).await;
    let status = md.status.unwrap();
    assert!(status.failed_models.is_empty(), "{:?}", status.failed_models);
    assert_eq!(status.current_model.unwrap().run, "churn-1");
    assert!(!status.conditions.iter().any(|c| c.type_ == "Degraded" && c.status == "True"));
    let no_pods = |d: Option<&Deployment>| {
        d.is_some_and(|d| d.spec.replicas == Some(0) && d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0) == 0)
    };
    env.wait_for::<Deployment>("solo", "scaled to 0", no_pods).await;

    // Back to one replica, it serves again.
    patch::<ModelDeployment>(&env, "solo", json!({"spec": {"serving": {"replicas": 1}}})).await;
    env.wait_longer::<ModelDeployment>("solo", "Ready: Serving", ROLLOUT_TIMEOUT, ready_because("Serving")).await;
    let url = service_url(&env, "solo").await;
    assert!(predict(&url).await.is_ok());

    // A refused churn-2 without automatic rollback: held and Degraded, the event quoting the
    // cause; nothing rolled back (the Deployment keeps churn-2's template, so the rolling update
    // keeps churn-1's pod serving).
    let broken = json!({"spec": {"template": {"env": [
        {"name": "TRAINER", "value": TRAINER}, {"name": "BREAK_DIGEST", "value": "1"}]}}});
    patch::<TrainingPipeline>(&env, "churn", broken).await;
    let failed = |md: Option<&ModelDeployment>| {
        md.and_then(|md| md.status.as_ref()).is_some_and(|s| s.failed_models.iter().any(|f| f.run == "churn-2"))
    };
    let md = env.wait_longer::<ModelDeployment>("solo", "churn-2 failed", ROLLOUT_TIMEOUT, failed).await;
    let status = md.status.unwrap();
    assert_eq!(status.failed_models[0].reason, "DigestRefused", "{:?}", status.failed_models[0]);
    assert_eq!(status.current_model.unwrap().run, "churn-1");
    let degraded = status.conditions.iter().find(|c| c.type_ == "Degraded" && c.status == "True");
    assert!(degraded.is_some_and(|c| c.message.contains("held")), "{:?}", status.conditions);
    let failures = events_of(&env, "solo", "RolloutFailed").await;
    assert!(failures.iter().any(|n| n.contains("does not match MODEL_DIGEST")), "{failures:?}");
    assert!(events_of(&env, "solo", "RolledBack").await.is_empty(), "rolled back without autoRollback");
    assert!(!env.operator_metrics().contains("rollbacks_total{"), "{}", env.operator_metrics());
    assert_eq!(applied_run(&env, "solo").await, "churn-2", "held: churn-2's template stays applied");
    assert!(predict(&url).await.is_ok(), "churn-1's pod serves on");
    env.shutdown().await;
}

//! The Helm chart installed for real, with the real Helm library: the operator runs as the
//! chart's pod (its image mapped to the `trainloop` binary), under the chart's ServiceAccount
//! with the in-cluster configuration; the example pipeline trains under it; `helm upgrade` with
//! changed values keeps the CRDs, the user's resources and a run in flight; `helm uninstall`
//! removes the operator and keeps the rest. Needs python3 with helm-sdkpy (`make test`).

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};
use kube::runtime::wait::{Condition, await_condition};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use trainloop::api::{RunPhase, TrainingPipeline, TrainingRun};
use trainloop_e2e::Env;

const NAMESPACE: &str = "trainloop-system";
/// The chart's default image, which the kubelet runs as the `trainloop` binary.
const OPERATOR_IMAGE: &str = "ghcr.io/trainloop/trainloop";
const OPERATOR_PODS: &str = "app.kubernetes.io/name=trainloop,app.kubernetes.io/instance=trainloop";
/// Training and a rolling update on a loaded machine take longer than a single wait.
const LIMIT: Duration = Duration::from_secs(180);

async fn helm(env: &Env, home: &Path, action: &str, values: &Value) -> Value {
    let kubeconfig = env.kubeconfig_path();
    let out = match trainloop_e2e::helm::drive(home, &kubeconfig, "helm_release.py", &[NAMESPACE, action], values).await
    {
        Ok(out) => out,
        Err(error) => panic!("helm {action}: {error:#}\nthe operator's pods:\n{}", operator_logs(env).await),
    };
    serde_json::from_str(out.trim()).unwrap_or_else(|error| panic!("helm {action} answered {out:?}: {error}"))
}

/// Each operator pod's name and log, to tell why it is not ready.
async fn operator_logs(env: &Env) -> String {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), NAMESPACE);
    let mut out = String::new();
    for pod in pods.list(&ListParams::default().labels(OPERATOR_PODS)).await.map(|l| l.items).unwrap_or_default() {
        let log = pods.logs(&pod.name_any(), &Default::default()).await.unwrap_or_default();
        out.push_str(&format!("--- {}\n{log}\n", pod.name_any()));
    }
    out
}

/// Waits until `name` in `api` satisfies `condition`, failing after [`LIMIT`].
async fn wait_in<K>(api: &Api<K>, name: &str, what: &str, condition: impl Condition<K>) -> Option<K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    match tokio::time::timeout(LIMIT, await_condition(api.clone(), name, condition)).await {
        Ok(found) => found.unwrap_or_else(|error| panic!("watching {name} for {what}: {error}")),
        Err(_) => panic!("timed out waiting for {name}: {what}; it is now {:#?}", api.get_opt(name).await),
    }
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn holder(lease: Option<&Lease>) -> Option<String> {
    lease?.spec.as_ref()?.holder_identity.clone()
}

fn phase_is(phase: RunPhase) -> impl Condition<TrainingRun> {
    move |run: Option<&TrainingRun>| run.and_then(|r| r.status.as_ref()).is_some_and(|s| s.phase == phase)
}

fn passed(run: Option<&TrainingRun>) -> bool {
    run.and_then(|r| r.status.as_ref())
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Passed" && c.status == "True"))
}

/// Every `replicas` of the Deployment run the current template and are ready, none other left.
fn rolled_out(replicas: i32) -> impl Condition<Deployment> {
    move |deployment: Option<&Deployment>| {
        deployment.and_then(|d| Some((d.metadata.generation?, d.status.as_ref()?))).is_some_and(|(generation, s)| {
            s.observed_generation == Some(generation)
                && s.replicas == Some(replicas)
                && s.updated_replicas == Some(replicas)
                && s.ready_replicas == Some(replicas)
        })
    }
}

/// The example pipeline, its data read from this repository (a pod is a host process).
fn example_pipeline() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("the workspace");
    let text = std::fs::read_to_string(root.join("examples/manifests/pipeline.yaml")).expect("the example");
    let text = text.replace("file:///var/lib/trainloop/data/", &format!("file://{}/examples/data/", root.display()));
    serde_saphyr::from_str(&text).expect("the example is YAML")
}

/// Whom the API server takes the token in `pod`'s service-account volume for (a TokenReview).
async fn token_user(env: &Env, pod: &str) -> String {
    let volumes = env.work_dir.join("plane/pods").join(NAMESPACE).join(pod).join("volumes");
    let api_access = std::fs::read_dir(&volumes)
        .expect("the pod's volumes")
        .filter_map(Result::ok)
        .find(|entry| entry.file_name().to_string_lossy().starts_with("kube-api-access-"))
        .expect("a service-account volume");
    let token = std::fs::read_to_string(api_access.path().join("token")).expect("its token");
    let review: TokenReview = serde_json::from_value(json!({"spec": {"token": token}})).expect("a review");
    let reviewed = Api::<TokenReview>::all(env.client.clone()).create(&Default::default(), &review).await;
    let status = reviewed.expect("TokenReview").status.expect("a status");
    assert_eq!(status.authenticated, Some(true), "{status:?}");
    status.user.and_then(|u| u.username).unwrap_or_default()
}

fn crd_uids(crds: &[CustomResourceDefinition]) -> Vec<(String, String)> {
    let mut uids: Vec<(String, String)> = crds
        .iter()
        .filter(|c| c.spec.group == "trainloop.dev")
        .map(|c| (c.name_any(), c.uid().unwrap_or_default()))
        .collect();
    uids.sort();
    uids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_installs_the_operator_as_a_pod_that_trains_survives_an_upgrade_and_uninstalls_cleanly() {
    let env = Env::start_bare(&[
        (OPERATOR_IMAGE, env!("CARGO_BIN_EXE_trainloop-image")),
        ("trainloop/example-trainer", env!("CARGO_BIN_EXE_example-trainer")),
    ])
    .await
    .expect("localplane");
    let home = tempfile::tempdir().expect("Helm's home");
    let mut values = json!({
        "artifacts": {"root": format!("file://{}/artifacts", env.work_dir.display())},
        // localplane's kubelet runs pods as processes on this host: file:// needs no volume.
        "localFiles": true,
        // Pods share the host's network here: each operator listens on its own address.
        "metrics": {"bindAddress": "$(POD_IP)"},
        "leaderElection": {"leaseDurationSeconds": 5}
    });
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), NAMESPACE);
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), NAMESPACE);
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let operator_pods = ListParams::default().labels(OPERATOR_PODS);

    // Install: Helm waits until the operator's pod is Ready.
    let clock = std::time::Instant::now();
    let installed = helm(&env, home.path(), "install", &values).await;
    assert_eq!(installed["version"], 1, "{installed}");
    let first = pods.list(&operator_pods).await.expect("pods").items;
    assert_eq!(first.len(), 1, "one operator pod");
    let first = &first[0];
    assert!(ready(first), "{:#?}", first.status);
    let spec = first.spec.as_ref().expect("a pod spec");
    assert_eq!(spec.service_account_name.as_deref(), Some("trainloop"));
    // Its only credential is that account's token (the kubelet clears the environment, and
    // anonymous callers are refused), and with it, it holds the lease under its pod's name.
    let first_name = first.name_any();
    assert_eq!(
        token_user(&env, &first_name).await,
        format!("system:serviceaccount:{NAMESPACE}:trainloop"),
        "the token in the pod's service-account volume"
    );
    let leading = |name: String| move |lease: Option<&Lease>| holder(lease).as_deref() == Some(name.as_str());
    wait_in(&leases, "trainloop", "the installed pod to lead", leading(first_name.clone())).await;
    let log = pods.logs(&first_name, &Default::default()).await.expect("its log");
    let started = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .any(|line| line["message"] == "trainloop started");
    assert!(started, "JSON logs by default, with the start line:\n{log}");

    println!("installed and leading in {:.1} s", clock.elapsed().as_secs_f64());

    // The example pipeline trains a run that passes its gates.
    let clock = std::time::Instant::now();
    env.create::<TrainingPipeline>(example_pipeline()).await.expect("the example pipeline");
    env.wait_longer::<TrainingRun>("cancer-1", "passing its gates", LIMIT, passed).await;
    println!("cancer-1 trained and passed in {:.1} s", clock.elapsed().as_secs_f64());

    // A run in flight across the upgrade.
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let result = json!({"metrics": {"auc": 0.95}, "artifact": {"uri": "file:///m", "digest": digest},
                        "dataDigest": digest, "profile": "file:///p"});
    let release = env.create_held_run("across-upgrade", &result.to_string()).await.expect("a held run");
    env.wait_for::<TrainingRun>("across-upgrade", "Running", phase_is(RunPhase::Running)).await;
    let crds_before = crd_uids(&crds.list(&Default::default()).await.expect("CRDs").items);
    assert_eq!(crds_before.len(), 4, "{crds_before:?}");

    // Upgrade: two replicas, text logs.
    values["replicas"] = json!(2);
    values["logFormat"] = json!("text");
    let clock = std::time::Instant::now();
    let upgraded = helm(&env, home.path(), "upgrade", &values).await;
    assert_eq!(upgraded["version"], 2, "{upgraded}");
    wait_in(&deployments, "trainloop", "two ready replicas of the new template", rolled_out(2)).await;
    let second: Vec<String> =
        pods.list(&operator_pods).await.expect("pods").items.iter().map(|p| p.name_any()).collect();
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(!second.contains(&first_name), "the old pod was replaced: {second:?}");
    let new_leader = {
        let candidates = second.clone();
        move |lease: Option<&Lease>| holder(lease).is_some_and(|h| candidates.contains(&h))
    };
    let lease = wait_in(&leases, "trainloop", "a new pod to lead", new_leader).await;
    let leader = holder(lease.as_ref()).expect("a holder");
    println!("upgraded, rolled out and a new pod leading in {:.1} s", clock.elapsed().as_secs_f64());
    let log = pods.logs(&leader, &Default::default()).await.expect("its log");
    assert!(log.contains("trainloop started") && !log.trim_start().starts_with('{'), "text logs now:\n{log}");
    assert_eq!(crd_uids(&crds.list(&Default::default()).await.expect("CRDs").items), crds_before, "CRDs kept");
    assert!(env.api::<TrainingPipeline>().get_opt("cancer").await.expect("get").is_some(), "the pipeline kept");
    let champion = env.api::<TrainingRun>().get("cancer-1").await.expect("the first run kept");
    assert!(passed(Some(&champion)), "{:#?}", champion.status);

    // The run started before the upgrade completes under the new leader, with one Job.
    std::fs::write(&release, "go").expect("release the trainer");
    env.wait_for::<TrainingRun>("across-upgrade", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    let jobs = env.api::<Job>().list(&ListParams::default().labels("trainloop.dev/run=across-upgrade")).await;
    assert_eq!(jobs.expect("jobs").items.len(), 1, "one Job for the run");

    // Uninstall: the operator goes, the CRDs and the user's resources stay.
    let clock = std::time::Instant::now();
    helm(&env, home.path(), "uninstall", &json!({})).await;
    println!("uninstalled in {:.1} s", clock.elapsed().as_secs_f64());
    assert!(deployments.get_opt("trainloop").await.expect("get").is_none(), "the Deployment is gone");
    assert!(pods.list(&operator_pods).await.expect("pods").items.is_empty(), "no operator pod left");
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client.clone(), NAMESPACE);
    assert!(accounts.get_opt("trainloop").await.expect("get").is_none(), "the ServiceAccount is gone");
    let roles: Api<ClusterRole> = Api::all(env.client.clone());
    assert!(roles.get_opt("trainloop").await.expect("get").is_none(), "the ClusterRole is gone");
    assert_eq!(crd_uids(&crds.list(&Default::default()).await.expect("CRDs").items), crds_before, "CRDs kept");
    assert!(env.api::<TrainingPipeline>().get_opt("cancer").await.expect("get").is_some(), "the pipeline kept");
    assert!(leases.get_opt("trainloop").await.expect("get").is_some(), "the operator's Lease is not Helm's");
    for run in ["cancer-1", "across-upgrade"] {
        assert!(env.api::<TrainingRun>().get_opt(run).await.expect("get").is_some(), "{run} kept");
    }
    env.shutdown().await;
}

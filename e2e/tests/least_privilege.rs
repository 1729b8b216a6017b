//! Least privilege, proven: every API request the operator sends while it trains, supersedes,
//! prunes, serves a model, watches for drift and leads is allowed by the chart's RBAC rules, and
//! every rule is used.

use std::collections::BTreeSet;

use kube::api::{Patch, PatchParams};
use kube::runtime::wait::Condition;
use serde_json::json;
use trainloop::api::{DriftPolicy, ModelDeployment, RunPhase, TrainingPipeline, TrainingRun};
use trainloop::leader::{Election, LeaseConfig, Role};
use trainloop_e2e::rbac::{Access, Rule, chart_rules, recording_client};
use trainloop_e2e::serving::{model_deployment, pipeline, serves};

fn phase_is(phase: RunPhase) -> impl Condition<TrainingRun> {
    move |run: Option<&TrainingRun>| run.and_then(|r| r.status.as_ref()).is_some_and(|s| s.phase == phase)
}

#[tokio::test]
async fn every_request_of_the_operator_is_allowed_by_the_chart_and_every_rule_is_used() {
    let mut env = trainloop_e2e::serving::start(env!("CARGO_BIN_EXE_example-model-server")).await.unwrap();
    env.stop_operator().await;
    let kubeconfig = kube::config::Kubeconfig::read_from(env.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    let (client, recorded) = recording_client(config).unwrap();
    env.start_operator_on(client.clone(), &[]);

    // Train, be replaced mid-run (a Job deleted), lose a Job, succeed (pods deleted), prune
    // history (a run deleted), with a ModelDeployment whose runs the pruning must spare.
    env.create::<ModelDeployment>(json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": "churn", "namespace": "default"},
        "spec": {"source": {"pipelineRef": {"name": "churn"}}, "serving": {"image": "server", "port": 8080}}
    }))
    .await
    .unwrap();
    let release = env
        .create_held_pipeline(
            "churn",
            json!({"concurrencyPolicy": "Replace", "history": {"succeeded": 1, "failed": 0}}),
        )
        .await
        .unwrap();
    env.wait_for::<TrainingRun>("churn-1", "Running", phase_is(RunPhase::Running)).await;
    let token = |value: &str| json!({"spec": {"triggers": {"retrainToken": value}}});
    let pipelines = env.api::<TrainingPipeline>();
    pipelines.patch("churn", &PatchParams::default(), &Patch::Merge(&token("a"))).await.unwrap();
    env.wait_for::<TrainingRun>("churn-2", "Running", phase_is(RunPhase::Running)).await;
    // A user deletes a running run's Job: the run fails, read afresh first.
    let jobs = env.api::<k8s_openapi::api::batch::v1::Job>();
    jobs.delete("churn-2", &kube::api::DeleteParams::background()).await.unwrap();
    env.wait_for::<TrainingRun>("churn-2", "Failed", phase_is(RunPhase::Failed)).await;
    pipelines.patch("churn", &PatchParams::default(), &Patch::Merge(&token("b"))).await.unwrap();
    env.wait_for::<TrainingRun>("churn-3", "Running", phase_is(RunPhase::Running)).await;
    std::fs::write(&release, "go").unwrap();
    env.wait_for::<TrainingRun>("churn-3", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    pipelines.patch("churn", &PatchParams::default(), &Patch::Merge(&token("c"))).await.unwrap();
    env.wait_for::<TrainingRun>("churn-4", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    env.wait_gone::<TrainingRun>("churn-3").await;
    // A DriftPolicy reads the deployment, its pipeline and runs, and writes its status.
    env.create::<DriftPolicy>(json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "DriftPolicy",
        "metadata": {"name": "churn", "namespace": "default"},
        "spec": {"deploymentRef": {"name": "churn"}, "monitors": [{"name": "inputs", "featureDrift": {"threshold": 0.2}}]}
    }))
    .await
    .unwrap();
    let evaluated = |p: Option<&DriftPolicy>| p.and_then(|p| p.status.as_ref()).is_some_and(|s| s.state.is_some());
    env.wait_for::<DriftPolicy>("churn", "an evaluation", evaluated).await;

    // Serve a model: the example trainer's run promoted to example servers, each smoke-tested
    // and then marked ready through its readiness gate (a pods/status patch).
    let cancer = pipeline("cancer", env!("CARGO_BIN_EXE_example-trainer"), &[]).unwrap();
    env.create::<TrainingPipeline>(cancer).await.unwrap();
    env.create::<ModelDeployment>(model_deployment("cancer", json!({"pipelineRef": {"name": "cancer"}})))
        .await
        .unwrap();
    let rollout = std::time::Duration::from_secs(120);
    env.wait_longer::<ModelDeployment>("cancer", "serving cancer-1", rollout, serves("cancer-1")).await;

    // The same mistake made again joins its event's series (an events patch): a pipeline whose
    // time zone goes wrong, wrong another way, then wrong the first way again.
    let mut bad = pipeline("typo", env!("CARGO_BIN_EXE_example-trainer"), &[]).unwrap();
    bad["spec"]["triggers"] = json!({"schedule": {"cron": "0 3 * * *", "timeZone": "Mars/Olympus_Mons"}});
    env.create::<TrainingPipeline>(bad).await.unwrap();
    for zone in ["Mars/Olympus_Mons", "Venus/Maxwell_Montes", "Mars/Olympus_Mons"] {
        let edit = json!({"spec": {"triggers": {"schedule": {"timeZone": zone}}}});
        pipelines.patch("typo", &PatchParams::default(), &Patch::Merge(&edit)).await.unwrap();
        let stalled = move |p: Option<&TrainingPipeline>| {
            p.and_then(|p| p.status.as_ref())
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Stalled" && c.message.contains(zone)))
        };
        env.wait_for::<TrainingPipeline>("typo", zone, stalled).await;
    }
    // What a replica does for its lease.
    let mut election = Election::join(
        client,
        &LeaseConfig { name: "trainloop".into(), namespace: None, duration: std::time::Duration::from_secs(5) },
        Role::default(),
    )
    .await
    .unwrap();
    election.until_leading().await.unwrap();
    election.resign().await;
    env.stop_operator().await;

    let operator_rules = chart_rules("rules.yaml");
    let lease_rules = chart_rules("leader-election-rules.yaml");
    let all: Vec<&Rule> = operator_rules.iter().chain(&lease_rules).collect();
    let used: BTreeSet<Access> = recorded.accesses().into_iter().collect();
    let denied: Vec<&Access> = used.iter().filter(|a| !all.iter().any(|r| r.allows(a))).collect();
    assert!(denied.is_empty(), "requests the chart does not allow: {denied:#?}");
    let granted: BTreeSet<Access> = all.iter().flat_map(|r| r.grants()).collect();
    // The scenario sends no alert: the webhook receiver's Secret reads are proven in
    // alertmanager_receiver.rs.
    let tokens = Access { group: String::new(), resource: "secrets".into(), verb: "get".into() };
    let unused: Vec<&Access> = granted.difference(&used).filter(|a| **a != tokens).collect();
    assert!(unused.is_empty(), "rules the operator never used: {unused:#?}\nused: {used:#?}");
    println!("{} distinct accesses, every one allowed, every rule used", used.len());
    env.shutdown().await;
}

//! Training end to end on localplane: pipelines start runs, runs start Jobs whose pods are
//! real processes, and the operator records and judges what the trainer reports.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::wait::Condition;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::time::Duration;
use trainloop::api::{GateOutcome, ModelDeployment, RunPhase, TrainingPipeline, TrainingRun};
use trainloop_e2e::{Env, skip_on_kubernetes};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A trainer that reports `auc` from its hyperparameters, after waiting for `$RELEASE` to exist
/// when that variable is set.
fn reporting_trainer() -> String {
    format!(
        r#"if [ -n "$RELEASE" ]; then while [ ! -e "$RELEASE" ]; do sleep 0.05; done; fi
auc=$(sed -n 's/.*"auc":"\([0-9.]*\)".*/\1/p' "$TRAINLOOP_CONFIG")
printf '{{"metrics":{{"auc":%s}},"artifact":{{"uri":"%smodel.json","digest":"{DIGEST}"}},"dataDigest":"{DIGEST}","profile":"%sprofile.json"}}' "$auc" "$TRAINLOOP_ARTIFACT_URI" "$TRAINLOOP_ARTIFACT_URI" > /dev/termination-log"#
    )
}

fn pipeline(name: &str, script: &str, auc: &str, extra: Value) -> Value {
    let mut p = json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingPipeline",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "template": {"image": "shell", "command": ["sh", "-c", script]},
            "data": {"uri": "file:///dev/null"},
            "features": [{"name": "age", "type": "number", "min": 0}],
            "hyperparameters": {"auc": auc},
            "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9, "minImprovement": 0.01}]}
        }
    });
    merge(&mut p["spec"], extra);
    p
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch,
    }
}

fn phase_is(phase: RunPhase) -> impl Condition<TrainingRun> {
    move |run: Option<&TrainingRun>| run.and_then(|r| r.status.as_ref()).is_some_and(|s| s.phase == phase)
}

fn finished() -> impl Condition<TrainingRun> {
    |run: Option<&TrainingRun>| {
        run.and_then(|r| r.status.as_ref())
            .is_some_and(|s| matches!(s.phase, RunPhase::Succeeded | RunPhase::Failed | RunPhase::Superseded))
    }
}

fn condition<'a>(run: &'a TrainingRun, type_: &str) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    let status = run.status.as_ref().expect("a status");
    status.conditions.iter().find(|c| c.type_ == type_).unwrap_or_else(|| panic!("no {type_} condition: {status:#?}"))
}

async fn patch_spec(env: &Env, name: &str, spec: Value) {
    let patch = json!({"spec": spec});
    env.api::<TrainingPipeline>().patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

async fn run_names(env: &Env, pipeline: &str) -> Vec<String> {
    let selector = format!("trainloop.dev/pipeline={pipeline}");
    let mut names: Vec<String> = env
        .api::<TrainingRun>()
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_run_succeeds_records_its_result_and_passes_its_gates() {
    let env = Env::start().await.unwrap();
    env.create::<TrainingPipeline>(pipeline("churn", &reporting_trainer(), "0.93", json!({}))).await.unwrap();
    let run = env.wait_for::<TrainingRun>("churn-1", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    let status = run.status.clone().unwrap();
    assert_eq!(status.metrics["auc"], 0.93);
    assert_eq!(status.headline.as_deref(), Some("auc=0.9300"));
    assert_eq!(status.data_digest.as_deref(), Some(DIGEST));
    let artifact = status.artifact.clone().unwrap();
    assert!(artifact.uri.ends_with("/default/churn-1/model.json"), "{}", artifact.uri);
    assert_eq!(status.evaluation.as_ref().unwrap().result, GateOutcome::Passed);
    assert!(condition(&run, "Passed").message.contains("auc=0.93 >= 0.9"));
    assert_eq!(run.spec.trigger.trigger_type, trainloop::api::TriggerType::SpecChange);
    assert!(run.spec.config_hash.as_deref().is_some_and(|h| h.starts_with("sha256:")));

    let passing = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref()).is_some_and(|s| s.last_passing_run.as_deref() == Some("churn-1"))
    };
    env.wait_for::<TrainingPipeline>("churn", "lastPassingRun churn-1", passing).await;
    let job = env.api::<Job>().get("churn-1").await.unwrap();
    let labels = job.metadata.labels.unwrap();
    assert_eq!(labels["trainloop.dev/pipeline"], "churn");
    assert_eq!(labels["trainloop.dev/run"], "churn-1");
    env.shutdown().await;
}

#[tokio::test]
async fn a_failing_trainer_or_a_malformed_result_fails_the_run_saying_why() {
    let env = Env::start().await.unwrap();
    let crash = "echo 'column age is missing in rows 3, 7' >&2; exit 3";
    env.create::<TrainingPipeline>(pipeline("crash", crash, "0.9", json!({}))).await.unwrap();
    let garbage = r#"echo '{"metrics": {"auc": "high"}}' > /dev/termination-log"#;
    env.create::<TrainingPipeline>(pipeline("garbage", garbage, "0.9", json!({}))).await.unwrap();

    let run = env.wait_for::<TrainingRun>("crash-1", "Failed", phase_is(RunPhase::Failed)).await;
    let ready = condition(&run, "Ready");
    assert_eq!(ready.reason, "JobFailed");
    assert!(ready.message.contains("column age is missing"), "{}", ready.message);
    assert_eq!(condition(&run, "Stalled").status, "True");

    let run = env.wait_for::<TrainingRun>("garbage-1", "Failed", phase_is(RunPhase::Failed)).await;
    let ready = condition(&run, "Ready");
    assert_eq!(ready.reason, "MalformedResult");
    assert!(ready.message.contains(r#""auc": "high""#), "{}", ready.message);

    let events = env.api::<Event>().list(&ListParams::default()).await.unwrap().items;
    assert!(
        events.iter().any(|e| e.reason.as_deref() == Some("RunFailed") && e.type_.as_deref() == Some("Warning")),
        "a Warning event for the failed run"
    );
    env.shutdown().await;
}

/// The champion here is the best passing run; that a deployment's served model is the champion
/// where one follows the pipeline is tested with a really served model in `serving.rs`.
#[tokio::test]
async fn a_new_model_must_beat_the_champion() {
    let env = Env::start().await.unwrap();
    env.create::<TrainingPipeline>(pipeline("churn", &reporting_trainer(), "0.93", json!({}))).await.unwrap();
    env.wait_for::<TrainingRun>("churn-1", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    patch_spec(&env, "churn", json!({"hyperparameters": {"auc": "0.935"}})).await;
    let run = env.wait_for::<TrainingRun>("churn-2", "finished", finished()).await;
    let evaluation = run.status.as_ref().unwrap().evaluation.clone().unwrap();
    assert_eq!(evaluation.result, GateOutcome::Rejected);
    assert_eq!(evaluation.champion.as_deref(), Some("churn-1"));
    assert_eq!(evaluation.gates[0].champion_value, Some(0.93));
    assert!(condition(&run, "Rejected").message.contains("below the required 0.01"));

    patch_spec(&env, "churn", json!({"hyperparameters": {"auc": "0.95"}})).await;
    let run = env.wait_for::<TrainingRun>("churn-3", "finished", finished()).await;
    assert_eq!(run.status.unwrap().evaluation.unwrap().result, GateOutcome::Passed);
    env.shutdown().await;
}

#[tokio::test]
async fn a_retrain_token_starts_one_run_and_status_changes_start_none() {
    let env = Env::start().await.unwrap();
    env.create::<TrainingPipeline>(pipeline("churn", &reporting_trainer(), "0.93", json!({}))).await.unwrap();
    env.wait_for::<TrainingRun>("churn-1", "finished", finished()).await;
    patch_spec(&env, "churn", json!({"triggers": {"retrainToken": "2026-11-27"}})).await;
    let run = env.wait_for::<TrainingRun>("churn-2", "finished", finished()).await;
    assert!(run.spec.trigger.reason.contains("2026-11-27"), "{}", run.spec.trigger.reason);
    let settled = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.last_run.as_deref() == Some("churn-2") && s.pending_triggers.is_empty())
    };
    env.wait_for::<TrainingPipeline>("churn", "settled on churn-2", settled).await;
    assert_eq!(run_names(&env, "churn").await, ["churn-1", "churn-2"]);
    env.shutdown().await;
}

#[tokio::test]
async fn forbid_coalesces_triggers_and_replace_supersedes() {
    let env = Env::start().await.unwrap();
    let release = env.work_dir.join("release");
    let env_var = json!({"template": {"env": [{"name": "RELEASE", "value": release.display().to_string()}]}});
    env.create::<TrainingPipeline>(pipeline("forbid", &reporting_trainer(), "0.93", env_var.clone())).await.unwrap();
    env.wait_for::<TrainingRun>("forbid-1", "Running", phase_is(RunPhase::Running)).await;
    patch_spec(&env, "forbid", json!({"triggers": {"retrainToken": "a"}})).await;
    patch_spec(&env, "forbid", json!({"hyperparameters": {"auc": "0.95"}})).await;
    let waiting =
        |p: Option<&TrainingPipeline>| p.and_then(|p| p.status.as_ref()).is_some_and(|s| s.pending_triggers.len() == 2);
    env.wait_for::<TrainingPipeline>("forbid", "two pending triggers", waiting).await;
    assert_eq!(run_names(&env, "forbid").await, ["forbid-1"]);
    std::fs::write(&release, "go").unwrap();
    env.wait_for::<TrainingRun>("forbid-1", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    let run = env.wait_for::<TrainingRun>("forbid-2", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    assert!(run.spec.trigger.reason.contains("retrainToken") && run.spec.trigger.reason.contains("generation"));
    assert_eq!(run.spec.hyperparameters["auc"], "0.95", "the coalesced run trains the newest spec");
    assert_eq!(run_names(&env, "forbid").await, ["forbid-1", "forbid-2"]);

    let blocked = env.work_dir.join("never");
    let replace = json!({"concurrencyPolicy": "Replace", "template": {"env": [{"name": "RELEASE", "value": blocked.display().to_string()}]}});
    env.create::<TrainingPipeline>(pipeline("replace", &reporting_trainer(), "0.93", replace)).await.unwrap();
    env.wait_for::<TrainingRun>("replace-1", "Running", phase_is(RunPhase::Running)).await;
    patch_spec(&env, "replace", json!({"triggers": {"retrainToken": "now"}})).await;
    let superseded = env.wait_for::<TrainingRun>("replace-1", "Superseded", phase_is(RunPhase::Superseded)).await;
    assert!(condition(&superseded, "Ready").message.contains("replace-2"));
    env.wait_for::<TrainingRun>("replace-2", "Running", phase_is(RunPhase::Running)).await;
    env.wait_gone::<Job>("replace-1").await;
    env.shutdown().await;
}

#[tokio::test]
async fn history_keeps_the_newest_runs_and_every_served_one() {
    let env = Env::start().await.unwrap();
    let history = json!({"history": {"succeeded": 1, "failed": 1}});
    env.create::<TrainingPipeline>(pipeline("churn", &reporting_trainer(), "0.93", history)).await.unwrap();
    env.wait_for::<TrainingRun>("churn-1", "finished", finished()).await;
    env.create::<ModelDeployment>(json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "pinned"},
        "spec": {"source": {"runRef": {"name": "churn-1"}}, "serving": {"image": "server"}}
    }))
    .await
    .unwrap();
    for (i, token) in ["b", "c"].iter().enumerate() {
        patch_spec(&env, "churn", json!({"triggers": {"retrainToken": token}})).await;
        env.wait_for::<TrainingRun>(&format!("churn-{}", i + 2), "finished", finished()).await;
    }
    env.wait_gone::<TrainingRun>("churn-2").await;
    assert_eq!(run_names(&env, "churn").await, ["churn-1", "churn-3"], "churn-1 is pinned by a deployment");
    env.shutdown().await;
}

#[tokio::test]
async fn an_operator_restart_mid_run_starts_nothing_twice() {
    let mut env = Env::start().await.unwrap();
    let release = env.work_dir.join("release");
    let env_var = json!({"template": {"env": [{"name": "RELEASE", "value": release.display().to_string()}]}});
    env.create::<TrainingPipeline>(pipeline("churn", &reporting_trainer(), "0.93", env_var)).await.unwrap();
    env.wait_for::<TrainingRun>("churn-1", "Running", phase_is(RunPhase::Running)).await;
    env.stop_operator().await;
    env.start_operator();
    std::fs::write(&release, "go").unwrap();
    env.wait_for::<TrainingRun>("churn-1", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    let settled = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref()).is_some_and(|s| s.last_passing_run.as_deref() == Some("churn-1"))
    };
    env.wait_for::<TrainingPipeline>("churn", "settled", settled).await;
    assert_eq!(run_names(&env, "churn").await, ["churn-1"]);
    let jobs = env.api::<Job>().list(&ListParams::default()).await.unwrap().items;
    assert_eq!(jobs.len(), 1, "one Job for one run");
    env.shutdown().await;
}

#[tokio::test]
async fn a_changed_data_file_starts_a_run_and_a_missing_one_stalls() {
    let env = Env::start().await.unwrap();
    let data = env.work_dir.join("data.csv");
    std::fs::write(&data, "age\n1\n").unwrap();
    let watch = json!({"data": {"uri": format!("file://{}", data.display())}, "triggers": {"onDataChange": {"interval": "10s"}}});
    env.create::<TrainingPipeline>(pipeline("churn", &reporting_trainer(), "0.93", watch)).await.unwrap();
    env.wait_for::<TrainingRun>("churn-1", "finished", finished()).await;
    let baseline = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref()).is_some_and(|s| s.handled.data_fingerprint.is_some())
    };
    env.wait_for::<TrainingPipeline>("churn", "a data baseline", baseline).await;
    std::fs::write(&data, "age\n1\n2\n").unwrap();
    let run = env.wait_for::<TrainingRun>("churn-2", "finished", finished()).await;
    assert_eq!(run.spec.trigger.trigger_type, trainloop::api::TriggerType::DataChange);

    let missing =
        json!({"data": {"uri": "file:///nonexistent/data.csv"}, "triggers": {"onDataChange": {"interval": "10s"}}});
    env.create::<TrainingPipeline>(pipeline("lost", &reporting_trainer(), "0.93", missing)).await.unwrap();
    let stalled = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Stalled" && c.reason == "DataUnavailable"))
    };
    let lost = env.wait_for::<TrainingPipeline>("lost", "Stalled", stalled).await;
    let message = &lost.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Stalled").unwrap().message;
    assert!(message.contains("/nonexistent/data.csv"), "{message}");
    env.shutdown().await;
}

#[tokio::test]
async fn an_invalid_schedule_stalls_the_pipeline_with_a_warning() {
    let env = Env::start().await.unwrap();
    let bad = json!({"triggers": {"schedule": {"cron": "0 3 * * *", "timeZone": "Mars/Olympus_Mons"}}});
    env.create::<TrainingPipeline>(pipeline("churn", &reporting_trainer(), "0.93", bad)).await.unwrap();
    let stalled = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref()).is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Stalled"))
    };
    let p = env.wait_for::<TrainingPipeline>("churn", "Stalled", stalled).await;
    let message = &p.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Stalled").unwrap().message;
    assert!(message.contains("spec.triggers.schedule") && message.contains("Mars/Olympus_Mons"), "{message}");
    assert!(run_names(&env, "churn").await.is_empty(), "an invalid pipeline starts nothing");
    warning_saying(&env, "InvalidSpec", "Mars/Olympus_Mons").await;
    // Another mistake gets its own event: a repeat joins the series of an event only when it says
    // the same thing (kube's recorder would have shown the first mistake's words again).
    let other = json!({"spec": {"triggers": {"schedule": {"timeZone": "Venus/Maxwell_Montes"}}}});
    env.api::<TrainingPipeline>().patch("churn", &PatchParams::default(), &Patch::Merge(&other)).await.unwrap();
    warning_saying(&env, "InvalidSpec", "Venus/Maxwell_Montes").await;
    env.shutdown().await;
}

/// Waits for a Warning event with `reason` whose note contains `words`.
async fn warning_saying(env: &Env, reason: &str, words: &str) -> Event {
    let says = |e: &Event| {
        e.type_.as_deref() == Some("Warning")
            && e.reason.as_deref() == Some(reason)
            && e.note.as_deref().is_some_and(|n| n.contains(words))
    };
    let events = watcher(env.api::<Event>(), watcher::Config::default()).applied_objects();
    let mut saying = events.try_filter(|e| std::future::ready(says(e))).boxed();
    match tokio::time::timeout(Duration::from_secs(60), saying.try_next()).await {
        Ok(Ok(Some(event))) => event,
        other => panic!("no Warning {reason} event saying {words:?}: {other:?}"),
    }
}

#[tokio::test]
async fn a_trainer_that_cannot_start_stalls_its_run_then_fails_it_at_the_start_timeout() {
    let env = Env::start().await.unwrap();
    let mut p = pipeline("churn", "unused", "0.93", json!({"startTimeoutSeconds": 5}));
    p["spec"]["template"] = json!({"image": "registry.example/missing-trainer:1"});
    env.create::<TrainingPipeline>(p).await.unwrap();
    let stalled = |run: Option<&TrainingRun>| {
        run.and_then(|r| r.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Stalled" && c.reason == "ErrImagePull"))
    };
    let run = env.wait_for::<TrainingRun>("churn-1", "Stalled by ErrImagePull", stalled).await;
    assert!(condition(&run, "Stalled").message.contains("the trainer cannot start"));
    let events = env.api::<Event>().list(&ListParams::default()).await.unwrap().items;
    assert!(events.iter().any(|e| e.reason.as_deref() == Some("TrainerNotStarting")));
    let stuck = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.reason == "RunStuck"))
    };
    env.wait_for::<TrainingPipeline>("churn", "Ready=False RunStuck", stuck).await;

    // A corrected spec waits (Forbid) only until the stuck run's start timeout fails it.
    patch_spec(&env, "churn", json!({"template": {"image": "shell", "command": ["sh", "-c", reporting_trainer()]}}))
        .await;
    let run = env.wait_for::<TrainingRun>("churn-1", "Failed", phase_is(RunPhase::Failed)).await;
    assert_eq!(condition(&run, "Ready").reason, "StartTimeout");
    assert!(condition(&run, "Ready").message.contains("within 5s"), "{}", condition(&run, "Ready").message);
    env.wait_for::<TrainingRun>("churn-2", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_cron_schedule_starts_a_run_at_its_tick() {
    let env = Env::start().await.unwrap();
    let every_minute = json!({"triggers": {"onSpecChange": false, "schedule": {"cron": "* * * * *"}}});
    env.create::<TrainingPipeline>(pipeline("nightly", &reporting_trainer(), "0.93", every_minute)).await.unwrap();
    let scheduled = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref()).is_some_and(|s| s.next_schedule_time.is_some())
    };
    let p = env.wait_for::<TrainingPipeline>("nightly", "a next schedule time", scheduled).await;
    // A tick may already have passed (the pipeline created just before a minute's end): every
    // run so far must be the schedule's.
    let selector = ListParams::default().labels("trainloop.dev/pipeline=nightly");
    for run in env.api::<TrainingRun>().list(&selector).await.unwrap() {
        let trigger = run.spec.trigger.trigger_type;
        assert_eq!(trigger, trainloop::api::TriggerType::Schedule, "onSpecChange: false starts nothing at creation");
    }
    // The first tick: the pipeline's creation (to the second) rounded up to a minute.
    let created = p.metadata.creation_timestamp.unwrap().0.as_second();
    let first_tick = k8s_openapi::jiff::Timestamp::from_second((created + 59).div_euclid(60) * 60).unwrap();
    // The tick is at most a minute away.
    let run =
        env.wait_longer::<TrainingRun>("nightly-1", "the scheduled run", Duration::from_secs(90), finished()).await;
    assert_eq!(run.spec.trigger.trigger_type, trainloop::api::TriggerType::Schedule);
    assert!(run.metadata.creation_timestamp.unwrap().0 >= first_tick, "not before its tick");
    env.shutdown().await;
}

#[tokio::test]
async fn a_run_created_by_hand_trains_once() {
    let env = Env::start().await.unwrap();
    env.create::<TrainingRun>(json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingRun", "metadata": {"name": "by-hand"},
        "spec": {
            "trigger": {"type": "Manual", "reason": "a one-off experiment"},
            "image": "shell", "command": ["sh", "-c", reporting_trainer()],
            "hyperparameters": {"auc": "0.97"},
            "features": [{"name": "age", "type": "number"}],
            "data": {"uri": "file:///dev/null"},
            "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9}]}
        }
    }))
    .await
    .unwrap();
    let run = env.wait_for::<TrainingRun>("by-hand", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    let status = run.status.unwrap();
    assert_eq!(status.metrics["auc"], 0.97);
    assert_eq!(status.evaluation.unwrap().result, GateOutcome::Passed);
    assert_eq!(env.api::<Job>().list(&ListParams::default()).await.unwrap().items.len(), 1);
    env.shutdown().await;
}

#[tokio::test]
async fn a_pruned_failed_run_is_not_run_again_and_its_name_is_never_reused() {
    let env = Env::start().await.unwrap();
    let history = json!({"history": {"succeeded": 5, "failed": 0}});
    env.create::<TrainingPipeline>(pipeline("loop", &reporting_trainer(), "0.93", history)).await.unwrap();
    env.wait_for::<TrainingRun>("loop-1", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    // The trainer breaks: its run fails and `failed: 0` prunes it at once.
    let broken = json!({"template": {"command": ["sh", "-c", "exit 1"]}, "backoffLimit": 0});
    patch_spec(&env, "loop", broken).await;
    let started =
        |p: Option<&TrainingPipeline>| p.and_then(|p| p.status.as_ref()).is_some_and(|s| s.last_run_index == Some(2));
    env.wait_for::<TrainingPipeline>("loop", "loop-2 started", started).await;
    let settled = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref()).is_some_and(|s| {
            s.last_run_index == Some(2) && s.pending_triggers.is_empty() && s.handled.run_index == Some(2)
        })
    };
    env.wait_for::<TrainingPipeline>("loop", "settled after loop-2", settled).await;
    // Only now is loop-2 sure to have been created (its number is reserved before it is, so
    // an absent loop-2 could still be one not created yet): absent now, it was pruned.
    env.wait_gone::<TrainingRun>("loop-2").await;
    assert_eq!(run_names(&env, "loop").await, ["loop-1"], "the pruned run's trigger was handled");
    // The next trigger gets a new name, so loop-2's artifacts are never overwritten.
    patch_spec(&env, "loop", json!({"template": {"command": ["sh", "-c", reporting_trainer()]}})).await;
    env.wait_for::<TrainingRun>("loop-3", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    assert_eq!(run_names(&env, "loop").await, ["loop-1", "loop-3"]);
    env.shutdown().await;
}

#[tokio::test]
async fn runs_the_pipeline_does_not_own_keep_their_names_and_do_not_wedge_it() {
    let env = Env::start().await.unwrap();
    // A run made by hand under the name the pipeline's first run would take.
    env.create::<TrainingRun>(json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingRun", "metadata": {"name": "churn-1"},
        "spec": {
            "trigger": {"type": "Manual"}, "image": "shell", "command": ["sh", "-c", reporting_trainer()],
            "hyperparameters": {"auc": "0.91"}, "features": [{"name": "age", "type": "number"}],
            "data": {"uri": "file:///dev/null"},
            "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9}]}
        }
    }))
    .await
    .unwrap();
    env.create::<TrainingPipeline>(pipeline("churn", &reporting_trainer(), "0.93", json!({}))).await.unwrap();
    let run = env.wait_for::<TrainingRun>("churn-2", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    assert_eq!(run.spec.hyperparameters["auc"], "0.93", "the pipeline's run stepped over churn-1");
    let events = env.api::<Event>().list(&ListParams::default()).await.unwrap().items;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("RunNameTaken")
                && e.note.as_deref().is_some_and(|n| n.contains("churn-1"))),
        "a Warning event names the run that holds the name"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_hung_data_server_delays_no_trigger() {
    let env = Env::start().await.unwrap();
    // A data server that accepts connections and never answers.
    let (address, server) = trainloop_e2e::silent_server().await;
    let hung = json!({"data": {"uri": format!("http://{address}/data.csv")}, "triggers": {"onDataChange": {"interval": "10s"}}});
    env.create::<TrainingPipeline>(pipeline("churn", &reporting_trainer(), "0.93", hung)).await.unwrap();
    env.wait_for::<TrainingRun>("churn-1", "finished", finished()).await;
    patch_spec(&env, "churn", json!({"triggers": {"retrainToken": "now"}})).await;
    // Each reconcile would wait for the data server if it read the data itself.
    let limit = std::time::Duration::from_secs(20);
    let run = env
        .wait_longer::<TrainingRun>("churn-2", "the token's run", limit, |r: Option<&TrainingRun>| r.is_some())
        .await;
    assert_eq!(run.spec.trigger.trigger_type, trainloop::api::TriggerType::RetrainToken);
    server.abort();
    env.shutdown().await;
}

#[tokio::test]
async fn the_operator_recovers_from_an_api_server_that_lost_its_state() {
    if skip_on_kubernetes("it replaces localplane's API server by an empty one") {
        return;
    }
    let mut env = Env::start().await.unwrap();
    env.create::<TrainingPipeline>(pipeline("before", &reporting_trainer(), "0.93", json!({}))).await.unwrap();
    env.wait_for::<TrainingRun>("before-1", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    // Move the old server's resourceVersion well past anything the new one will reach soon.
    let cms = env.api::<k8s_openapi::api::core::v1::ConfigMap>();
    for i in 0..300 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ticker"}, "data": {"i": i.to_string()}});
        cms.patch("ticker", &PatchParams::apply("test").force(), &Patch::Apply(cm)).await.unwrap();
    }
    // The operator's watches now stand at resourceVersions the new server has not reached.
    env.reset_plane().await.unwrap();
    env.create::<TrainingPipeline>(pipeline("after", &reporting_trainer(), "0.93", json!({}))).await.unwrap();
    env.wait_for::<TrainingRun>("after-1", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_reconcile_error_that_repeats_shows_on_the_pipeline_and_in_an_event() {
    if skip_on_kubernetes("it injects API errors with localplane's fault injection") {
        return;
    }
    let env = Env::start().await.unwrap();
    // Reconciles read from caches: what fails them is a write, here the pruning of a failed run
    // that `history.failed: 0` does not keep.
    let every_delete_fails = json!({"errors": {"delete": {"rate": 1.0, "code": 500}}});
    env.set_faults(Some(&every_delete_fails)).await.unwrap();
    let history = json!({"history": {"succeeded": 1, "failed": 0}, "backoffLimit": 0});
    env.create::<TrainingPipeline>(pipeline("churn", "exit 1", "0.93", history)).await.unwrap();
    let failing = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref()).is_some_and(|s| {
            s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == "KubeApi")
        })
    };
    let p = env.wait_for::<TrainingPipeline>("churn", "Ready=False KubeApi", failing).await;
    let ready = p.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert!(ready.message.starts_with("reconcile keeps failing: Kubernetes API"), "{}", ready.message);
    env.set_faults(None).await.unwrap();
    let events = env.api::<Event>().list(&ListParams::default()).await.unwrap().items;
    assert!(
        events.iter().any(|e| e.reason.as_deref() == Some("KubeApi") && e.type_.as_deref() == Some("Warning")),
        "a Warning event says what keeps failing"
    );
    // Once the fault is gone, the failed run is pruned and the pipeline is Ready again.
    env.wait_gone::<TrainingRun>("churn-1").await;
    let ready = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    env.wait_for::<TrainingPipeline>("churn", "Ready again", ready).await;
    env.shutdown().await;
}

#[tokio::test]
async fn an_object_the_operator_cannot_read_gets_a_warning_and_stops_nothing_else() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let env = Env::start().await.unwrap();
    // A schema loosened behind the operator's back (an older CRD, or one edited by hand) lets in
    // a pipeline the operator's types cannot read.
    let crds = kube::Api::<CustomResourceDefinition>::all(env.client.clone());
    let mut crd = crds.get("trainingpipelines.trainloop.dev").await.unwrap();
    let version = &mut crd.spec.versions[0];
    version.schema = serde_json::from_value(
        json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}),
    )
    .unwrap();
    crds.replace("trainingpipelines.trainloop.dev", &kube::api::PostParams::default(), &crd).await.unwrap();
    let mut broken = pipeline("broken", "true", "0.9", json!({}));
    broken["spec"]["template"] = json!("not an object");
    let api = kube::Api::<kube::core::DynamicObject>::namespaced_with(
        env.client.clone(),
        "default",
        &kube::discovery::ApiResource::erase::<TrainingPipeline>(&()),
    );
    let broken: kube::core::DynamicObject = serde_json::from_value(broken).unwrap();
    // A real API server validates with the replaced schema a moment after the replace returns
    // (nothing to watch for that): until then it refuses the object as the old schema would.
    let deadline = tokio::time::Instant::now() + trainloop_e2e::TIMEOUT;
    loop {
        match api.create(&kube::api::PostParams::default(), &broken).await {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 422 && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the loosened schema should let the pipeline in: {error}"),
        }
    }
    env.create::<TrainingPipeline>(pipeline("good", &reporting_trainer(), "0.93", json!({}))).await.unwrap();
    env.wait_for::<TrainingRun>("good-1", "Succeeded", phase_is(RunPhase::Succeeded)).await;
    let deadline = tokio::time::Instant::now() + trainloop_e2e::TIMEOUT;
    loop {
        let events = env.api::<Event>().list(&ListParams::default()).await.unwrap().items;
        let warned = events.iter().any(|e| {
            e.reason.as_deref() == Some("Unreadable")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("broken")
                && e.note.as_deref().is_some_and(|n| n.contains("cannot read this object"))
        });
        if warned {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "an Unreadable Warning event about broken: {events:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    env.shutdown().await;
}

#[tokio::test]
async fn an_operator_watching_a_list_of_namespaces_trains_there_and_nowhere_else() {
    use k8s_openapi::api::core::v1::Namespace;
    let mut env = Env::start().await.unwrap();
    env.stop_operator().await;
    env.start_operator_watching(&["team-a", "default"]);
    let namespaces: kube::Api<Namespace> = kube::Api::all(env.client.clone());
    for name in ["team-a", "team-b"] {
        let ns = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        namespaces.create(&kube::api::PostParams::default(), &ns).await.unwrap();
    }
    let in_namespace = |namespace: &str| {
        let mut p = pipeline("churn", &reporting_trainer(), "0.93", json!({}));
        p["metadata"]["namespace"] = json!(namespace);
        serde_json::from_value::<TrainingPipeline>(p).unwrap()
    };
    // The unwatched namespace first: by the time the watched ones trained, it was there all along.
    for namespace in ["team-b", "team-a", "default"] {
        let api: kube::Api<TrainingPipeline> = kube::Api::namespaced(env.client.clone(), namespace);
        api.create(&kube::api::PostParams::default(), &in_namespace(namespace)).await.unwrap();
    }
    env.wait_for::<TrainingRun>("churn-1", "Succeeded in default", phase_is(RunPhase::Succeeded)).await;
    let team_a: kube::Api<TrainingRun> = kube::Api::namespaced(env.client.clone(), "team-a");
    let succeeded =
        |run: Option<&TrainingRun>| run.and_then(|r| r.status.as_ref()).is_some_and(|s| s.phase == RunPhase::Succeeded);
    tokio::time::timeout(trainloop_e2e::TIMEOUT, kube::runtime::wait::await_condition(team_a, "churn-1", succeeded))
        .await
        .expect("team-a's run succeeded in time")
        .unwrap();
    let team_b: kube::Api<TrainingPipeline> = kube::Api::namespaced(env.client.clone(), "team-b");
    let untouched = team_b.get("churn").await.unwrap();
    assert!(untouched.status.is_none(), "team-b is not watched: {:?}", untouched.status);
    let team_b_runs: kube::Api<TrainingRun> = kube::Api::namespaced(env.client.clone(), "team-b");
    assert!(team_b_runs.list(&ListParams::default()).await.unwrap().items.is_empty());
    env.shutdown().await;
}

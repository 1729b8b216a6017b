//! The kubectl plugin on localplane: the real kubectl finds `kubectl-trainloop` on the PATH and
//! runs it against runs the example trainer trained and a deployment the operator serves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use trainloop::api::{ModelDeployment, RunPhase, TrainingPipeline, TrainingRun};
use trainloop_e2e::kubectl::{Kubectl, Outcome};
use trainloop_e2e::{Env, serving};

const TRAINER: &str = env!("CARGO_BIN_EXE_example-trainer");
const SERVER: &str = env!("CARGO_BIN_EXE_example-model-server");
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(120);

/// kubectl with `kubectl-trainloop` and its completion, `kubectl_complete-trainloop`, first on
/// its PATH.
fn install_plugin(env: &Env) -> Kubectl {
    let plugin = Path::new(env!("CARGO_BIN_EXE_e2e-kubectl-trainloop"));
    let completion = Path::new(env!("CARGO_BIN_EXE_e2e-kubectl_complete-trainloop"));
    Kubectl::with_plugins(env, &[("kubectl-trainloop", plugin), ("kubectl_complete-trainloop", completion)]).unwrap()
}

/// What kubectl offers to complete `kubectl trainloop WORDS` (the last word under completion),
/// as its shell completion asks it (`kubectl __complete`): the values without their descriptions,
/// and Cobra's directive last (`:4`: no file names).
async fn completions(kubectl: &Kubectl, words: &[&str]) -> Vec<String> {
    let output = kubectl.ok(&[&["__complete", "trainloop"], words].concat()).await;
    output.lines().map(|line| line.split('\t').next().unwrap_or_default().to_string()).collect()
}

/// The cells of the line of `table` that starts with `first`.
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    let line = table.lines().find(|l| l.split_whitespace().next() == Some(first));
    line.unwrap_or_else(|| panic!("no {first} line in:\n{table}")).split_whitespace().collect()
}

fn finished(run: Option<&TrainingRun>) -> bool {
    run.and_then(|r| r.status.as_ref()).is_some_and(|s| matches!(s.phase, RunPhase::Succeeded | RunPhase::Failed))
}

/// A kubeconfig naming an API server where nothing listens.
fn unreachable_kubeconfig(dir: &Path) -> PathBuf {
    let path = dir.join("unreachable.yaml");
    let config = r#"{"apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}]}"#;
    std::fs::write(&path, config).unwrap();
    path
}

/// The deployment serves `run`, as its status says.
async fn serving_now(env: &Env, run: &str) {
    let what = format!("serving {run}");
    env.wait_longer::<ModelDeployment>("cancer", &what, ROLLOUT_TIMEOUT, serving::serves(run)).await;
}

/// The example pipeline trained, and its first model served by a deployment following it.
async fn served_cancer() -> (Env, Kubectl) {
    let env = serving::start(SERVER).await.unwrap();
    let plugin = install_plugin(&env);
    env.create::<TrainingPipeline>(serving::pipeline("cancer", TRAINER, &[]).unwrap()).await.unwrap();
    let follow = json!({"pipelineRef": {"name": "cancer"}});
    env.create::<ModelDeployment>(serving::model_deployment("cancer", follow)).await.unwrap();
    serving_now(&env, "cancer-1").await;
    (env, plugin)
}

#[tokio::test]
async fn kubectl_runs_the_plugin_to_list_compare_and_trace_trained_runs() {
    let (env, plugin) = served_cancer().await;
    let md = env.api::<ModelDeployment>().get("cancer").await.unwrap();
    let served = md.status.unwrap().current_model.unwrap();
    let run = env.api::<TrainingRun>().get("cancer-1").await.unwrap().status.unwrap();

    let runs = plugin.ok(&["trainloop", "runs", "cancer"]).await;
    let cells = row(&runs, "cancer-1");
    assert_eq!(cells[..3], ["cancer-1", "SpecChange", "Succeeded"], "{runs}");
    assert_eq!(cells[3], run.headline.as_deref().unwrap());
    assert_eq!(cells[4..6], ["Passed", "*"], "{runs}");

    let lineage = plugin.ok(&["trainloop", "lineage", "md/cancer"]).await;
    let data_digest = run.data_digest.clone().unwrap();
    for link in [
        "<- run        tr/cancer-1 Succeeded".to_string(),
        format!("<- artifact   {} {}", served.artifact_uri, served.artifact_digest),
        format!("<- data       {}", env.api::<TrainingRun>().get("cancer-1").await.unwrap().spec.data.uri),
        "<- pipeline   tp/cancer generation 1".to_string(),
        "<- trigger    SpecChange: pipeline created (generation 1)".to_string(),
    ] {
        assert!(lineage.contains(&link), "no {link:?} in:\n{lineage}");
    }
    assert!(lineage.contains(&data_digest), "{lineage}");
    let chain: Value =
        serde_json::from_str(&plugin.ok(&["trainloop", "-o", "json", "lineage", "md/cancer"]).await).unwrap();
    assert_eq!(
        (chain["artifactDigest"].as_str(), chain["dataDigest"].as_str()),
        (Some(&*served.artifact_digest), Some(&*data_digest))
    );

    // A second run with another regularisation: compare names the hyperparameter and the hash.
    let patch = json!({"spec": {"hyperparameters": {"l2": "0.5"}}});
    env.api::<TrainingPipeline>().patch("cancer", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    env.wait_longer::<TrainingRun>("cancer-2", "finished", ROLLOUT_TIMEOUT, finished).await;
    let comparison = plugin.ok(&["trainloop", "compare", "cancer-1", "cancer-2"]).await;
    assert_eq!(row(&comparison, "hyperparameters.l2")[1..], ["0.1", "0.5"], "{comparison}");
    assert_ne!(row(&comparison, "configHash")[1], row(&comparison, "configHash")[2], "{comparison}");
    let identical = row(&comparison, "Identical:").join(" ");
    assert!(identical.contains("dataDigest") && identical.contains("image"), "{comparison}");
    assert!(
        row(&comparison, "auc")[3].starts_with("(+") || row(&comparison, "auc")[3].starts_with("(-"),
        "{comparison}"
    );

    // kubectl completes the plugin's commands and the names in the cluster by running
    // kubectl_complete-trainloop.
    let commands = completions(&plugin, &[""]).await;
    let expected = ["runs", "compare", "lineage", "retrain", "promote", "rollback", "reproduce", "completion", ":4"];
    assert_eq!(commands, expected);
    assert_eq!(completions(&plugin, &["runs", ""]).await, ["cancer", ":4"]);
    assert_eq!(completions(&plugin, &["compare", "cancer-1", "cancer-"]).await, ["cancer-1", "cancer-2", ":4"]);
    assert_eq!(completions(&plugin, &["lineage", ""]).await, ["md/", "tr/", ":6"]);
    assert_eq!(completions(&plugin, &["lineage", "md/"]).await, ["md/cancer", ":4"]);
    assert_eq!(completions(&plugin, &["promote", "cancer-2", "--deployment", "c"]).await, ["cancer", ":4"]);
    assert_eq!(completions(&plugin, &["-n", "elsewhere", "reproduce", ""]).await, [":4"]);

    // Clear errors: a missing run, a run of another pipeline, an empty namespace, no cluster.
    let missing = plugin.fails(&["trainloop", "lineage", "tr/cancer-9"]).await;
    assert!(missing.contains("tr/cancer-9 not found in namespace default"), "{missing}");
    env.create_held_run("by-hand", "{}").await.unwrap();
    let other = plugin.fails(&["trainloop", "compare", "cancer-1", "by-hand"]).await;
    assert!(other.contains("tr/by-hand is a run of no pipeline, not of pipeline cancer"), "{other}");
    let empty = plugin.ok(&["trainloop", "runs", "-n", "elsewhere"]).await;
    assert_eq!(empty, "No runs in namespace elsewhere.\n");
    let gone = unreachable_kubeconfig(plugin.dir.path());
    let unreachable = plugin.fails(&["trainloop", "runs", "--kubeconfig", gone.to_str().unwrap()]).await;
    assert!(unreachable.contains("cannot reach the cluster at https://127.0.0.1:1/"), "{unreachable}");
    env.shutdown().await;
}

#[tokio::test]
async fn kubectl_trainloop_retrains_promotes_and_rolls_back_or_prints_the_patch() {
    let (env, plugin) = served_cancer().await;

    // A dry run prints the patch and changes nothing; the real one starts a RetrainToken run.
    let patch = plugin.ok(&["trainloop", "retrain", "cancer", "--reason", "labels refreshed", "--dry-run"]).await;
    let manifest: Value = serde_saphyr::from_str(&patch).unwrap();
    let token = manifest["spec"]["triggers"]["retrainToken"].as_str().unwrap().to_string();
    assert!(token.ends_with(": labels refreshed"), "{patch}");
    assert_eq!(manifest["metadata"], json!({"name": "cancer", "namespace": "default"}));
    let pipeline = env.api::<TrainingPipeline>().get("cancer").await.unwrap();
    assert_eq!(pipeline.spec.triggers.retrain_token, None, "a dry run applies nothing");
    let said = plugin.ok(&["trainloop", "retrain", "cancer", "--reason", "labels refreshed"]).await;
    assert!(said.starts_with("tp/cancer: retrainToken set to"), "{said}");
    let run = env.wait_longer::<TrainingRun>("cancer-2", "finished", ROLLOUT_TIMEOUT, finished).await;
    assert_eq!(run.spec.trigger.trigger_type.as_str(), "RetrainToken");
    assert!(run.spec.trigger.reason.contains("labels refreshed"), "{:?}", run.spec.trigger);
    serving_now(&env, "cancer-2").await;

    // Promote pins an earlier run (a dry run only prints the pin); rollback returns to the model
    // served before it.
    let patch =
        plugin.ok(&["trainloop", "promote", "cancer-1", "--deployment", "cancer", "--dry-run", "-o", "json"]).await;
    let manifest: Value = serde_json::from_str(&patch).unwrap();
    assert_eq!(manifest["spec"]["source"], json!({"pipelineRef": null, "runRef": {"name": "cancer-1"}}));
    let md = env.api::<ModelDeployment>().get("cancer").await.unwrap();
    assert!(md.spec.source.run_ref.is_none(), "a dry run applies nothing");
    plugin.ok(&["trainloop", "promote", "cancer-1", "--deployment", "cancer"]).await;
    serving_now(&env, "cancer-1").await;
    let said = plugin.ok(&["trainloop", "rollback", "cancer"]).await;
    assert!(said.starts_with("md/cancer: source.runRef pinned to tr/cancer-2 (serving tr/cancer-1)"), "{said}");
    serving_now(&env, "cancer-2").await;

    // What cannot be served is refused before anything is written.
    env.create_held_run("by-hand", "{}").await.unwrap();
    let refused = plugin.fails(&["trainloop", "promote", "by-hand", "--deployment", "cancer"]).await;
    assert!(refused.contains("tr/by-hand cannot be served: it is"), "{refused}");
    let missing = plugin.fails(&["trainloop", "rollback", "nothing"]).await;
    assert!(missing.contains("md/nothing not found in namespace default"), "{missing}");
    let md = env.api::<ModelDeployment>().get("cancer").await.unwrap();
    assert_eq!(md.spec.source.run_ref.map(|r| r.name).as_deref(), Some("cancer-2"));
    env.shutdown().await;
}

/// The runs reproducing `original`, oldest first.
async fn reproductions(env: &Env, original: &str) -> Vec<TrainingRun> {
    let mut runs: Vec<TrainingRun> = env.api::<TrainingRun>().list(&Default::default()).await.unwrap().items;
    runs.retain(|r| {
        r.metadata.annotations.as_ref().and_then(|a| a.get("trainloop.dev/reproduces")).map(String::as_str)
            == Some(original)
    });
    runs.sort_by_key(|r| r.metadata.creation_timestamp.clone().map(|t| t.0));
    runs
}

#[tokio::test]
async fn kubectl_trainloop_reproduces_a_trained_run_and_names_data_that_changed() {
    let env = serving::start(SERVER).await.unwrap();
    let plugin = install_plugin(&env);
    // The pipeline trains on its own copy of the data, which the test changes later.
    let data = env.work_dir.join("cancer.csv");
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/breast_cancer_wisconsin.csv");
    std::fs::copy(&csv, &data).unwrap();
    let mut pipeline = serving::pipeline("cancer", TRAINER, &[]).unwrap();
    pipeline["spec"]["data"]["uri"] = json!(format!("file://{}", data.display()));
    env.create::<TrainingPipeline>(pipeline).await.unwrap();
    let original = env.wait_longer::<TrainingRun>("cancer-1", "finished", ROLLOUT_TIMEOUT, finished).await;
    let trained = original.status.unwrap();
    assert_eq!(trained.phase, RunPhase::Succeeded);

    let report = plugin.ok(&["trainloop", "reproduce", "cancer-1", "--timeout", "120"]).await;
    assert!(report.ends_with("Reproducible: the same data gave the same artifact.\n"), "{report}");
    let copy = reproductions(&env, "cancer-1").await.remove(0);
    assert_eq!(copy.spec.trigger.trigger_type.as_str(), "Manual");
    assert_eq!(copy.spec.trigger.reason, "reproduce cancer-1");
    let reproduced = copy.status.unwrap();
    let (before, after) = (trained.artifact.unwrap(), reproduced.artifact.unwrap());
    assert_ne!(before.uri, after.uri, "trained again, into its own folder");
    assert_eq!(before.digest, after.digest, "the same artifact");
    assert!(report.contains(&format!("artifact digest  identical   {}", before.digest)), "{report}");

    // The data at the run's URI changed since: the reproduction differs, and says it is the data.
    let text = std::fs::read_to_string(&data).unwrap();
    let fewer: Vec<&str> = text.lines().take(400).collect();
    std::fs::write(&data, fewer.join("\n") + "\n").unwrap();
    let Outcome { ok, stdout: report, stderr } =
        plugin.run(&["trainloop", "reproduce", "cancer-1", "--timeout", "120"]).await;
    assert!(!ok, "a differing reproduction exits 1: {report}{stderr}");
    assert!(report.contains("data digest      DIFFERENT"), "{report}");
    assert!(report.ends_with("Not reproduced: the data at the run's URI is not what it trained on.\n"), "{report}");
    assert_eq!(reproductions(&env, "cancer-1").await.len(), 2);
    env.shutdown().await;
}

//! The GitOps example (`examples/gitops/`) as a GitOps controller runs it: each "commit" edits a
//! copy of the repository, the real `kustomize` (built from its Go module by
//! scripts/build-kustomize.sh) builds the staging overlay, and the real kubectl applies it to the
//! plane. The loop reacts to each commit: new hyperparameters retrain (SpecChange), a new
//! `retrainToken` retrains (RetrainToken), a `runRef` rolls the deployment back to that run. The
//! Argo CD health checks of `examples/gitops/argocd/argocd-cm.yaml` then run in a real Lua 5.1
//! interpreter (Debian's `lua5.1`) on every status the test saw the operator write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::runtime::wait::{Condition, await_condition};
use kube::runtime::watcher;
use serde_json::{Value, json};
use trainloop::api::{DriftPolicy, ModelDeployment, TrainingPipeline, TrainingRun, TriggerType};
use trainloop_e2e::Env;
use trainloop_e2e::kubectl::Kubectl;
use trainloop_e2e::serving::{SERVER_IMAGE, serves};

const NAMESPACE: &str = "ml-staging";
const TRAINER_IMAGE: &str = "trainloop/example-trainer:0.1";
/// A training run, then server pods starting and smoke-tested.
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(120);

fn workspace(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The pinned kustomize, built once into the cache by the script `make test` runs.
fn kustomize() -> PathBuf {
    let script = workspace("scripts/build-kustomize.sh");
    let output = std::process::Command::new("bash").arg(script).output().expect("bash runs the build script");
    assert!(output.status.success(), "building kustomize: {}", String::from_utf8_lossy(&output.stderr));
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("kustomize")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A clone of the GitOps repository, and what a commit to it does.
struct Repository {
    root: PathBuf,
    kustomize: PathBuf,
}

impl Repository {
    /// The example repository, with one overlay more for this plane: staging, reading the
    /// example data where this work tree has it, its drift policy evaluating every 5 s.
    fn clone_into(dir: &Path) -> Repository {
        let root = dir.join("gitops");
        copy_dir(&workspace("examples/gitops"), &root);
        let data = workspace("examples/data/breast_cancer_wisconsin.csv").canonicalize().unwrap();
        let overlay = format!(
            "resources: [../staging]\npatches:\n  - target: {{kind: TrainingPipeline, name: cancer}}\n    patch: |-\n      - {{op: replace, path: /spec/data/uri, value: \"file://{}\"}}\n  - target: {{kind: DriftPolicy, name: cancer}}\n    patch: |-\n      - {{op: replace, path: /spec/interval, value: 5s}}\n",
            data.display()
        );
        std::fs::create_dir_all(root.join("overlays/e2e")).unwrap();
        std::fs::write(root.join("overlays/e2e/kustomization.yaml"), overlay).unwrap();
        Repository { root, kustomize: kustomize() }
    }

    /// A commit: `old` replaced by `new` in `file` (which must hold `old` once).
    fn commit(&self, file: &str, old: &str, new: &str) {
        let path = self.root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(old).count(), 1, "{file} holds {old:?} once:\n{text}");
        std::fs::write(&path, text.replace(old, new)).unwrap();
    }

    /// `kustomize build overlays/OVERLAY`.
    fn build(&self, overlay: &str) -> Vec<u8> {
        let output = std::process::Command::new(&self.kustomize)
            .arg("build")
            .arg(self.root.join("overlays").join(overlay))
            .output()
            .unwrap();
        assert!(output.status.success(), "kustomize build {overlay}: {}", String::from_utf8_lossy(&output.stderr));
        output.stdout
    }

    /// What a GitOps controller does after a commit: build, and apply with kubectl.
    async fn sync(&self, kubectl: &Kubectl) -> String {
        let outcome = kubectl.run_with_input(&["apply", "-f", "-"], &self.build("e2e")).await;
        assert!(outcome.ok, "kubectl apply: {}{}", outcome.stdout, outcome.stderr);
        outcome.stdout
    }
}

/// Every version of the objects of kind `K` in the namespace, as the API server gave them.
fn record<K: kube::Resource<DynamicType = ()>>(
    env: &Env,
    seen: &Arc<Mutex<Vec<Value>>>,
) -> tokio::task::JoinHandle<()> {
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(env.observer.clone(), NAMESPACE, &resource);
    let seen = seen.clone();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
        while let Some(event) = events.next().await {
            if let Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) = event {
                seen.lock().unwrap().push(serde_json::to_value(object).unwrap());
            }
        }
    })
}

async fn wait_for<K>(env: &Env, name: &str, what: &str, condition: impl Condition<K>) -> K
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let api: Api<K> = Api::namespaced(env.client.clone(), NAMESPACE);
    match tokio::time::timeout(ROLLOUT_TIMEOUT, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(Some(found))) => found,
        outcome => panic!("waiting for {name}: {what}: {outcome:?}; it is now {:#?}", api.get_opt(name).await),
    }
}

fn triggered_by(kind: TriggerType) -> impl Fn(Option<&TrainingRun>) -> bool {
    move |run: Option<&TrainingRun>| run.is_some_and(|r| r.spec.trigger.trigger_type == kind)
}

/// `value` as a Lua 5.1 expression (JSON null is nil, as Argo CD gives it to a script).
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua).collect::<Vec<_>>().join(", ")),
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// A Lua string literal: bytes other than printable ASCII as decimal escapes.
fn lua_string(text: &str) -> String {
    let mut literal = String::from("\"");
    for byte in text.bytes() {
        match byte {
            b'"' | b'\\' => literal.extend(['\\', byte as char]),
            0x20..=0x7e => literal.push(byte as char),
            _ => literal.push_str(&format!("\\{byte:03}")),
        }
    }
    literal.push('"');
    literal
}

/// The health checks of the Argo CD snippet, by kind.
fn health_checks() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(workspace("examples/gitops/argocd/argocd-cm.yaml")).unwrap();
    let config: Value = serde_saphyr::from_str(&text).unwrap();
    let data = config["data"].as_object().unwrap();
    let checks: BTreeMap<String, String> = data
        .iter()
        .filter_map(|(key, script)| {
            let kind = key.strip_prefix("resource.customizations.health.trainloop.dev_")?;
            Some((kind.to_string(), script.as_str()?.to_string()))
        })
        .collect();
    let kinds: Vec<&str> = checks.keys().map(String::as_str).collect();
    assert_eq!(kinds, ["DriftPolicy", "ModelDeployment", "TrainingPipeline", "TrainingRun"]);
    checks
}

/// What the script says of `object`, run by `lua5.1` as Argo CD runs it: (status, message).
fn health(script: &str, object: &Value, dir: &Path) -> (String, String) {
    let program = format!(
        "obj = {}\nlocal function check()\n{script}\nend\nlocal hs = check()\nio.write(hs.status, \"\\n\", hs.message or \"\", \"\\n\")\n",
        lua(object)
    );
    let file = dir.join("health.lua");
    std::fs::write(&file, program).unwrap();
    let output = std::process::Command::new("lua5.1")
        .arg(&file)
        .output()
        .expect("lua5.1 on the PATH (`make test` installs Debian's lua5.1)");
    assert!(output.status.success(), "lua5.1: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_string(), message.trim_end().to_string())
}

#[tokio::test]
async fn commits_to_the_gitops_repository_retrain_and_roll_back_and_argo_cd_reads_their_health() {
    let trainer = env!("CARGO_BIN_EXE_example-trainer");
    let server = env!("CARGO_BIN_EXE_example-model-server");
    let env = Env::start_with_images(&[(TRAINER_IMAGE, trainer), (SERVER_IMAGE, server)]).await.unwrap();
    let kubectl = Kubectl::with_plugins(&env, &[]).unwrap();
    let repo = Repository::clone_into(&env.work_dir);
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap();
    Api::<Namespace>::all(env.client.clone()).create(&PostParams::default(), &namespace).await.unwrap();
    let seen: BTreeMap<&str, Arc<Mutex<Vec<Value>>>> =
        ["TrainingPipeline", "TrainingRun", "ModelDeployment", "DriftPolicy"].map(|k| (k, Arc::default())).into();
    let recorders = [
        record::<TrainingPipeline>(&env, &seen["TrainingPipeline"]),
        record::<TrainingRun>(&env, &seen["TrainingRun"]),
        record::<ModelDeployment>(&env, &seen["ModelDeployment"]),
        record::<DriftPolicy>(&env, &seen["DriftPolicy"]),
    ];

    // Both overlays build; the first sync trains and serves run 1.
    let production = String::from_utf8(repo.build("production")).unwrap();
    assert!(production.contains("namespace: ml-production") && production.contains("replicas: 3"), "{production}");
    let applied = repo.sync(&kubectl).await;
    assert!(applied.contains("trainingpipeline.trainloop.dev/cancer created"), "{applied}");
    wait_for::<ModelDeployment>(&env, "cancer", "serving cancer-1", serves("cancer-1")).await;
    let watching = |p: Option<&DriftPolicy>| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    wait_for::<DriftPolicy>(&env, "cancer", "watching cancer-1", watching).await;

    // A commit changing a hyperparameter retrains on the new spec.
    repo.commit("overlays/staging/kustomization.yaml", "value: \"0.1\"", "value: \"0.3\"");
    repo.sync(&kubectl).await;
    let run = wait_for(&env, "cancer-2", "a SpecChange run", triggered_by(TriggerType::SpecChange)).await;
    assert_eq!(run.spec.hyperparameters.get("l2").map(String::as_str), Some("0.3"));
    assert_eq!(run.spec.trigger.reason, "spec changed: generation 1 -> 2");
    wait_for::<ModelDeployment>(&env, "cancer", "serving cancer-2", serves("cancer-2")).await;

    // A commit bumping the retrain token retrains on the same spec.
    repo.commit("overlays/staging/kustomization.yaml", "staging-1", "staging-2");
    repo.sync(&kubectl).await;
    let run = wait_for(&env, "cancer-3", "a RetrainToken run", triggered_by(TriggerType::RetrainToken)).await;
    assert!(run.spec.trigger.reason.contains("staging-2"), "{:?}", run.spec.trigger);
    wait_for::<ModelDeployment>(&env, "cancer", "serving cancer-3", serves("cancer-3")).await;

    // A commit pinning run 1 rolls the deployment back to it; kubectl apply drops pipelineRef.
    let pin = "  - target: {kind: ModelDeployment, name: cancer}\n    patch: |-\n      - {op: replace, path: /spec/source, value: {runRef: {name: cancer-1}}}\n";
    repo.commit("overlays/staging/kustomization.yaml", "patches:\n", &format!("patches:\n{pin}"));
    repo.sync(&kubectl).await;
    let md = wait_for::<ModelDeployment>(&env, "cancer", "serving cancer-1 again", serves("cancer-1")).await;
    assert!(md.spec.source.pipeline_ref.is_none(), "{:?}", md.spec.source);

    // A commit pinning a run that does not exist: the deployment keeps serving and is Degraded.
    repo.commit("overlays/staging/kustomization.yaml", "name: cancer-1}", "name: cancer-9}");
    repo.sync(&kubectl).await;
    let invalid = |md: Option<&ModelDeployment>| {
        md.and_then(|m| m.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Stalled" && c.reason == "InvalidSource"))
    };
    wait_for::<ModelDeployment>(&env, "cancer", "InvalidSource", invalid).await;
    for recorder in recorders {
        recorder.abort();
    }

    // The health checks on every status seen: each kind went through what Argo CD would show.
    let checks = health_checks();
    let dir = tempfile::tempdir().unwrap();
    let mut verdicts: BTreeMap<(&str, String), Vec<String>> = BTreeMap::new();
    for (kind, objects) in &seen {
        for object in objects.lock().unwrap().iter() {
            let (status, message) = health(&checks[*kind], object, dir.path());
            let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
            verdicts.entry((kind, name)).or_default().push(format!("{status}: {message}"));
        }
    }
    let said = |kind: &str, name: &str| verdicts.get(&(kind, name.to_string())).cloned().unwrap_or_default();
    let went_through = |kind: &str, name: &str, expected: &[&str]| {
        let said = said(kind, name);
        for status in expected {
            assert!(
                said.iter().any(|v| v.starts_with(&format!("{status}: "))),
                "{kind} {name}: no {status} in {said:#?}"
            );
        }
    };
    went_through("TrainingPipeline", "cancer", &["Progressing", "Healthy"]);
    went_through("TrainingRun", "cancer-2", &["Progressing", "Healthy"]);
    went_through("ModelDeployment", "cancer", &["Progressing", "Healthy", "Degraded"]);
    went_through("DriftPolicy", "cancer", &["Progressing", "Healthy"]);
    for run in ["cancer-1", "cancer-2", "cancer-3"] {
        let last = said("TrainingRun", run).pop().unwrap_or_default();
        assert!(last.starts_with("Healthy: GatesPassed: auc="), "{run}: {last}");
    }
    let last = said("ModelDeployment", "cancer").pop().unwrap_or_default();
    assert_eq!(last, "Degraded: InvalidSource: source.runRef: run cancer-9 does not exist");
    let last = said("TrainingPipeline", "cancer").pop().unwrap_or_default();
    assert!(last.starts_with("Healthy: "), "{last}");
    let transitions: Vec<String> = verdicts.iter().map(|((k, n), v)| format!("{k} {n}: {}", v.len())).collect();
    eprintln!("statuses judged: {transitions:?}");
    env.shutdown().await;
}

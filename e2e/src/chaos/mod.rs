//! Chaos for the training loop: a seeded sequence of triggers driven against a pipeline, a
//! recorder of everything the API server showed, and the final state to compare with an
//! undisturbed run of the same sequence. The kill and fault tests (`tests/chaos.rs`) use it.

mod drive;
mod record;
mod state;

pub use drive::{drive, settled};
pub use record::{Recorder, Seen};
pub use state::{FinalState, final_state};

use serde_json::{Value, json};
use trainloop_example_trainer::split::SplitMix64;

/// A seeded generator (the example trainer's SplitMix64): the same seed gives the same sequence
/// and kill plan.
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64(seed))
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The seed from `CHAOS_SEED`, else a fresh one; printed so a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        nanos.as_nanos() as u64 ^ u64::from(std::process::id())
    });
    println!("{test}: CHAOS_SEED={seed} (set it to replay this sequence and these kill points)");
    seed
}

/// One trigger of the sequence: the pipeline's creation, then token changes and spec changes.
/// Each one bumps the pipeline's generation, so step `i` is generation `i + 1`.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Its position, also a hyperparameter: every step changes the spec.
    pub number: usize,
    /// A new retrain token (else a plain spec change; the first step creates the pipeline).
    pub token: Option<String>,
    /// What the trainer reports, or `None` for a trainer that fails.
    pub auc: Option<&'static str>,
}

/// A random sequence of `steps` triggers with trainers that pass, are rejected, or fail.
pub fn scenario(rng: &mut Rng, steps: usize) -> Vec<Step> {
    const AUCS: [&str; 6] = ["0.88", "0.92", "0.93", "0.95", "0.97", "0.99"];
    (0..steps)
        .map(|i| Step {
            number: i + 1,
            token: (i > 0 && rng.chance(50)).then(|| format!("token-{i}")),
            auc: (!rng.chance(30)).then(|| AUCS[rng.below(AUCS.len() as u64) as usize]),
        })
        .collect()
}

/// The pipeline every chaos test trains.
pub const PIPELINE: &str = "chaos";

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A trainer that logs each execution of a run to `$EXECUTIONS` (so a run trained twice shows),
/// works a little, then fails when told to or reports the `auc` of its hyperparameters.
fn trainer() -> String {
    format!(
        r#"echo "$TRAINLOOP_RUN $HOSTNAME" >> "$EXECUTIONS"
sleep 0.2
if grep -q '"fail":"yes"' "$TRAINLOOP_CONFIG"; then echo "failing as asked" >&2; exit 1; fi
auc=$(sed -n 's/.*"auc":"\([0-9.]*\)".*/\1/p' "$TRAINLOOP_CONFIG")
printf '{{"metrics":{{"auc":%s}},"artifact":{{"uri":"%smodel.json","digest":"{DIGEST}"}},"dataDigest":"{DIGEST}","profile":"%sprofile.json"}}' "$auc" "$TRAINLOOP_ARTIFACT_URI" "$TRAINLOOP_ARTIFACT_URI" > /dev/termination-log"#
    )
}

/// The hyperparameters of a step's trainer.
fn hyperparameters(step: &Step) -> Value {
    let step_number = step.number.to_string();
    match step.auc {
        Some(auc) => json!({"auc": auc, "fail": "no", "step": step_number}),
        None => json!({"auc": "0", "fail": "yes", "step": step_number}),
    }
}

/// The pipeline as the first step creates it; the trainer logs its executions to `executions`.
pub fn pipeline(first: &Step, executions: &std::path::Path) -> Value {
    json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingPipeline",
        "metadata": {"name": PIPELINE, "namespace": "default"},
        "spec": {
            "template": {
                "image": "shell", "command": ["sh", "-c", trainer()],
                "env": [{"name": "EXECUTIONS", "value": executions.display().to_string()}]
            },
            "backoffLimit": 0,
            "data": {"uri": "file:///dev/null"},
            "features": [{"name": "age", "type": "number", "min": 0}],
            "hyperparameters": hyperparameters(first),
            "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9, "minImprovement": 0.01}]},
            "history": {"succeeded": 2, "failed": 1}
        }
    })
}

/// The spec patch of a later step.
pub fn patch(step: &Step) -> Value {
    let mut spec = json!({"hyperparameters": hyperparameters(step)});
    if let Some(token) = &step.token {
        spec["triggers"] = json!({"retrainToken": token});
    }
    json!({"spec": spec})
}

/// The pods each run trained in, from the trainer's execution log.
pub fn executions(log: &std::path::Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut pods = std::collections::BTreeMap::<String, Vec<String>>::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        if let Some((run, pod)) = line.split_once(' ') {
            pods.entry(run.to_string()).or_default().push(pod.to_string());
        }
    }
    pods
}

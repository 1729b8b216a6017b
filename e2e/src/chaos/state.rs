//! The state a sequence of triggers leaves behind, in a form two runs of the same sequence can
//! be compared by: what runs exist, how each ended, and what the pipeline recorded.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use trainloop::api::{GateOutcome, HandledTriggers, RunPhase, TrainingPipeline, TrainingRun};
use trainloop::controllers::{labels, pipeline::history, pipeline::resolve::run_index};

use super::PIPELINE;

#[derive(Clone, Debug, PartialEq)]
pub struct RunState {
    pub name: String,
    /// The generation whose trigger it consumed (its `trainloop.dev/handled` annotation).
    pub generation: Option<i64>,
    pub trigger: String,
    pub phase: RunPhase,
    /// The reason of its `Ready` condition: why it failed, or how it was judged.
    pub reason: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    pub gate: Option<GateOutcome>,
    pub champion: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FinalState {
    pub runs: Vec<RunState>,
    pub handled: HandledTriggers,
    pub last_run_index: Option<i64>,
    pub last_run: Option<String>,
    pub last_passing_run: Option<String>,
    /// Whether history pruning has nothing left to delete.
    pub pruned: bool,
    /// Trainer pods still present (each is deleted once its run's result is recorded).
    pub pods: usize,
}

/// Read the state. `skipped` are run numbers reserved by an operator killed before it could
/// create the run: never used, by design, so later names shift down by one per skipped number
/// below them to compare with an undisturbed run.
pub async fn final_state(client: &Client, skipped: &BTreeSet<i64>) -> kube::Result<FinalState> {
    let pipelines: Api<TrainingPipeline> = Api::namespaced(client.clone(), "default");
    let pipeline = pipelines.get(PIPELINE).await?;
    let selector = format!("{}={PIPELINE}", labels::PIPELINE);
    let runs_api: Api<TrainingRun> = Api::namespaced(client.clone(), "default");
    let mut runs = runs_api.list(&ListParams::default().labels(&selector)).await?.items;
    runs.sort_by_key(run_index);
    let pods = Api::<Pod>::namespaced(client.clone(), "default").list(&ListParams::default()).await?.items.len();

    let protected = history::champions(&runs, &pipeline.spec.evaluation);
    let pruned = history::prune(&runs, &pipeline.spec.history, &protected).is_empty();
    let renumber = |name: &str| renumber(name, skipped);
    let status = pipeline.status.clone().unwrap_or_default();
    let shift = |index: i64| index - skipped.iter().filter(|s| **s < index).count() as i64;
    Ok(FinalState {
        runs: runs.iter().map(|run| run_state(run, &renumber)).collect(),
        handled: HandledTriggers { run_index: status.handled.run_index.map(shift), ..status.handled },
        last_run_index: status.last_run_index.map(shift),
        last_run: status.last_run.as_deref().map(renumber),
        last_passing_run: status.last_passing_run.as_deref().map(renumber),
        pruned,
        pods,
    })
}

fn run_state(run: &TrainingRun, renumber: &dyn Fn(&str) -> String) -> RunState {
    let status = run.status.clone().unwrap_or_default();
    let handled: Option<HandledTriggers> =
        run.annotations().get(labels::HANDLED).and_then(|h| serde_json::from_str(h).ok());
    RunState {
        name: renumber(&run.name_any()),
        generation: handled.and_then(|h| h.generation),
        trigger: run.spec.trigger.trigger_type.as_str().to_string(),
        phase: status.phase,
        reason: status.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.reason.clone()),
        metrics: status.metrics,
        gate: status.evaluation.as_ref().map(|e| e.result),
        champion: status.evaluation.and_then(|e| e.champion).map(|c| renumber(&c)),
    }
}

/// `<pipeline>-<n>` with `n` lowered by the skipped numbers below it.
fn renumber(name: &str, skipped: &BTreeSet<i64>) -> String {
    match name.rsplit_once('-').and_then(|(prefix, n)| Some((prefix, n.parse::<i64>().ok()?))) {
        Some((prefix, n)) => format!("{prefix}-{}", n - skipped.iter().filter(|s| **s < n).count() as i64),
        None => name.to_string(),
    }
}

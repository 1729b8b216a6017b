//! `make bench`: promotion latency on localplane. A pipeline of the example trainer is retrained
//! N times (default 20) by changing its `retrainToken`; each run passes its gates and a
//! ModelDeployment of two example model servers follows it. Prints the median and worst time from
//! the run passing (its `Passed` condition seen by a watch) to its model taking all traffic (the
//! deployment's `currentModel` seen by a watch), the operator's API requests in that window, and
//! its writes over the following `BENCH_STEADY_SECONDS` (default 60) while the model serves (the
//! goal is zero).

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use trainloop::api::{GateOutcome, ModelDeployment, TrainingPipeline, TrainingRun};
use trainloop_e2e::serving::{model_deployment, pipeline, serves, start};

const LIMIT: Duration = Duration::from_secs(180);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo test --all-targets` runs benches without `--bench`; the serving tests cover the same
    // paths, so this only measures when asked to.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("promotion bench: skipped outside `cargo bench` (run `make bench`)");
        return Ok(());
    }
    let promotions: usize = std::env::var("BENCH_PROMOTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let env = start(env!("CARGO_BIN_EXE_example-model-server")).await?;
    env.create::<TrainingPipeline>(pipeline("bench", env!("CARGO_BIN_EXE_example-trainer"), &[])?).await?;
    env.create::<ModelDeployment>(model_deployment("bench", json!({"pipelineRef": {"name": "bench"}}))).await?;
    env.wait_longer::<ModelDeployment>("bench", "serving bench-1", LIMIT, serves("bench-1")).await;

    let mut latencies = Vec::new();
    let (mut reads, mut writes) = (0.0, 0.0);
    for i in 2..promotions + 2 {
        let run = format!("bench-{i}");
        let token = json!({"spec": {"triggers": {"retrainToken": i.to_string()}}});
        env.api::<TrainingPipeline>().patch("bench", &PatchParams::default(), &Patch::Merge(&token)).await?;
        let passed = |r: Option<&TrainingRun>| {
            r.and_then(|r| r.status.as_ref()?.evaluation.as_ref()).is_some_and(|e| e.result == GateOutcome::Passed)
        };
        env.wait_longer::<TrainingRun>(&run, "Passed", LIMIT, passed).await;
        let (passed_at, before) = (Instant::now(), requests(&env));
        env.wait_longer::<ModelDeployment>("bench", "promoted", LIMIT, serves(&run)).await;
        latencies.push(passed_at.elapsed());
        let after = requests(&env);
        reads += after.0 - before.0;
        writes += after.1 - before.1;
    }
    latencies.sort();
    let n = latencies.len() as f64;
    println!("promotion bench: {promotions} promotions, 2 example model servers, operator in process on localplane");
    println!(
        "  run Passed -> new model taking all traffic: median {:.2} s, worst {:.2} s",
        latencies[latencies.len() / 2].as_secs_f64(),
        latencies.last().map(Duration::as_secs_f64).unwrap_or_default()
    );
    println!("  API requests in that window per promotion: {:.1} reads, {:.1} writes", reads / n, writes / n);
    let steady =
        Duration::from_secs(std::env::var("BENCH_STEADY_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60));
    // The last rollout ends when the old model's pods are gone; writes until then are its own.
    env.wait_longer::<Deployment>("bench", "the old pods gone", LIMIT, settled).await;
    let before = by_resource(&env, "write");
    tokio::time::sleep(steady).await;
    let written: Vec<String> = by_resource(&env, "write")
        .into_iter()
        .filter_map(|(resource, count)| {
            let new = count - before.iter().find(|(r, _)| *r == resource).map_or(0.0, |(_, c)| *c);
            (new > 0.0).then(|| format!("{resource} {new}"))
        })
        .collect();
    println!("  writes over {} s of steady state, the model serving: {} {written:?}", steady.as_secs(), written.len());
    env.shutdown().await;
    Ok(())
}

/// The operator's reads and writes so far, summed over the resources they went to.
fn requests(env: &trainloop_e2e::Env) -> (f64, f64) {
    let sum = |kind| by_resource(env, kind).iter().map(|(_, count)| count).sum::<f64>();
    (sum("read"), sum("write"))
}

/// The operator's requests of `kind` (read or write) so far, per resource.
fn by_resource(env: &trainloop_e2e::Env, kind: &str) -> Vec<(String, f64)> {
    let prefix = format!("kube_requests_total{{kind=\"{kind}\",resource=\"");
    let text = env.operator_metrics();
    text.lines()
        .filter_map(|line| {
            let (resource, count) = line.strip_prefix(&prefix)?.split_once("\"} ")?;
            Some((resource.to_string(), count.trim().parse().ok()?))
        })
        .collect()
}

/// The Deployment runs only its current template's pods, all ready.
fn settled(deployment: Option<&Deployment>) -> bool {
    let Some(deployment) = deployment else { return false };
    let wanted = deployment.spec.replicas.unwrap_or(1);
    deployment.status.as_ref().is_some_and(|s| {
        s.replicas == Some(wanted) && s.updated_replicas == Some(wanted) && s.ready_replicas == Some(wanted)
    })
}

//! Drive a sequence of triggers: create the pipeline, then apply each later step once the
//! previous one's run has finished and the pipeline has recorded it, so that every step gets
//! exactly one run however the operator is disturbed.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use trainloop::api::{TrainingPipeline, TrainingRun};

use super::{PIPELINE, Step, patch, pipeline};

/// How long one step may take, kills and faults included.
const STEP_LIMIT: Duration = Duration::from_secs(60);

/// Apply every step in turn, each after the previous one settled. API errors (injected faults)
/// are retried: every write here is idempotent.
pub async fn drive(client: Client, steps: &[Step], executions: &Path) -> Result<(), String> {
    let api: Api<TrainingPipeline> = Api::namespaced(client, "default");
    for (i, step) in steps.iter().enumerate() {
        let generation = i as i64 + 1;
        let mut attempts = 0;
        loop {
            let result = if i == 0 {
                let object: TrainingPipeline =
                    serde_json::from_value(pipeline(step, executions)).map_err(|e| e.to_string())?;
                match api.create(&PostParams::default(), &object).await {
                    Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(()),
                    other => other.map(drop),
                }
            } else {
                api.patch(PIPELINE, &PatchParams::default(), &Patch::Merge(&patch(step))).await.map(drop)
            };
            match result {
                Ok(()) => break,
                Err(_) if attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => return Err(format!("step {generation}: {error}")),
            }
        }
        let started = tokio::time::Instant::now();
        wait_settled(&api, generation).await?;
        println!("step {generation} settled in {:?}", started.elapsed());
    }
    Ok(())
}

/// Whether the pipeline has recorded the run of `generation` as finished and has nothing pending.
pub fn settled(pipeline: &TrainingPipeline, generation: i64) -> bool {
    let Some(status) = &pipeline.status else { return false };
    status.observed_generation == Some(generation)
        && status.handled.generation == Some(generation)
        && status.pending_triggers.is_empty()
        && status.conditions.iter().any(|c| c.type_ == "Ready" && c.reason == "Idle")
}

/// Wait until the pipeline is [`settled`] at `generation`; watch errors (faults) are retried.
async fn wait_settled(api: &Api<TrainingPipeline>, generation: i64) -> Result<(), String> {
    let config = watcher::Config::default().fields(&format!("metadata.name={PIPELINE}"));
    let stream = watcher(api.clone(), config).default_backoff().applied_objects();
    let mut stream = std::pin::pin!(stream);
    let wait = async {
        while let Some(item) = stream.next().await {
            if let Ok(pipeline) = item
                && settled(&pipeline, generation)
            {
                return true;
            }
        }
        false
    };
    match tokio::time::timeout(STEP_LIMIT, wait).await {
        Ok(true) => Ok(()),
        _ => Err(format!(
            "the pipeline did not settle at generation {generation} within {STEP_LIMIT:?}; it is now {:#?}\n{}",
            api.get_opt(PIPELINE).await.ok().flatten().and_then(|p| p.status),
            children(api.clone().into_client()).await
        )),
    }
}

/// The phases of every run, Job and pod, to tell where a stuck step is stuck.
async fn children(client: Client) -> String {
    let runs = Api::<TrainingRun>::namespaced(client.clone(), "default").list(&Default::default()).await;
    let jobs = Api::<Job>::namespaced(client.clone(), "default").list(&Default::default()).await;
    let pods = Api::<Pod>::namespaced(client, "default").list(&Default::default()).await;
    let mut lines = Vec::new();
    for run in runs.map(|l| l.items).unwrap_or_default() {
        lines.push(format!("run {}: {:?}", run.name_any(), run.status.map(|s| (s.phase, s.conditions))));
    }
    for job in jobs.map(|l| l.items).unwrap_or_default() {
        lines.push(format!("job {}: {:?}", job.name_any(), job.status));
    }
    for pod in pods.map(|l| l.items).unwrap_or_default() {
        lines.push(format!("pod {}: {:?}", pod.name_any(), pod.status.map(|s| (s.phase, s.container_statuses))));
    }
    lines.join("\n")
}

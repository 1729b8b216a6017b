//! A reconcile handed an object from a cache that is behind (watches lag under API faults) must
//! not write what it computed from it over what was recorded since.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::json;
use trainloop::api::{RunPhase, TrainingRun};
use trainloop::controllers::Life;
use trainloop_e2e::Env;

/// Found in the training benchmark as a status apply refused with 422 `status.artifact.digest:
/// Required value`: a run reconciled from its cached state of before its result was recorded
/// finds its Job complete and its pods already deleted (after the result was read), judges it
/// `ResultLost`, and writes that status, without the artifact, over the recorded success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_reconciled_from_a_stale_cache_keeps_its_recorded_outcome() {
    let env = Env::start().await.unwrap();
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let result = json!({"metrics": {"auc": 0.95}, "artifact": {"uri": "file:///m", "digest": digest},
                        "dataDigest": digest, "profile": "file:///p"});
    let release = env.create_held_run("recorded", &result.to_string()).await.unwrap();
    let phase = |run: Option<&TrainingRun>| run.and_then(|r| r.status.as_ref()).map(|s| s.phase);
    let stale = env
        .wait_for("recorded", "Running", move |run: Option<&TrainingRun>| phase(run) == Some(RunPhase::Running))
        .await;
    let pods = env.api::<Pod>().list(&ListParams::default().labels("batch.kubernetes.io/job-name=recorded")).await;
    let pod = pods.unwrap().items.into_iter().next().map(|p| p.name_any()).expect("the run's pod");
    std::fs::write(&release, "go").unwrap();
    env.wait_for("recorded", "Succeeded", move |run: Option<&TrainingRun>| phase(run) == Some(RunPhase::Succeeded))
        .await;
    // Its result recorded, the run's pod is deleted.
    env.wait_gone::<Pod>(&pod).await;

    let mut registry = Default::default();
    let ctx = Life::uncached(env.operator_context(&mut registry));
    let outcome = trainloop::controllers::run::reconcile(Arc::new(stale), ctx).await;
    let run = env.api::<TrainingRun>().get("recorded").await.unwrap();
    let status = run.status.unwrap_or_default();
    assert_eq!(status.phase, RunPhase::Succeeded, "the stale reconcile ({outcome:?}) rewrote the run: {status:#?}");
    assert!(status.artifact.is_some() && !status.metrics.is_empty(), "{status:#?}");
    assert!(outcome.as_ref().is_err_and(|e| e.is_conflict()), "a stale write is a conflict, retried: {outcome:?}");
    env.shutdown().await;
}

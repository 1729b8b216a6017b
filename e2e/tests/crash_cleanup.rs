//! A crash between recording a run's result and deleting its pods (found by the kill test in
//! `chaos.rs`), made deterministic: what the operator wrote before dying is written by hand.

use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use trainloop::api::{RunPhase, TrainingRun};
use trainloop_e2e::Env;

/// The operator records a run's result, then deletes its pods; killed in between, it must
/// delete them when it is back (found by the kill test: a pod left behind forever).
#[tokio::test]
async fn pods_of_a_run_finished_while_the_operator_was_down_are_cleaned_up_after_its_restart() {
    let mut env = Env::start().await.unwrap();
    let release = env.create_held_run("by-hand", r#"{"metrics":{"auc":0.95}}"#).await.unwrap();
    let running =
        |run: Option<&TrainingRun>| run.and_then(|r| r.status.as_ref()).is_some_and(|s| s.phase == RunPhase::Running);
    env.wait_for::<TrainingRun>("by-hand", "Running", running).await;
    // Killed after recording the result and before deleting the pods: what it wrote is written
    // here by hand while it is down.
    env.stop_operator().await;
    std::fs::write(&release, "go").unwrap();
    let complete = |job: Option<&Job>| {
        job.and_then(|j| j.status.as_ref()?.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Complete" && c.status == "True"))
    };
    env.wait_for::<Job>("by-hand", "Complete", complete).await;
    let recorded = json!({"status": {"phase": "Succeeded", "jobName": "by-hand", "metrics": {"auc": 0.95}}});
    env.api::<TrainingRun>().patch_status("by-hand", &PatchParams::default(), &Patch::Merge(&recorded)).await.unwrap();
    let pods = env.api::<Pod>();
    let selector = ListParams::default().labels("batch.kubernetes.io/job-name=by-hand");
    let left = pods.list(&selector).await.unwrap().items;
    assert_eq!(left.len(), 1, "the finished trainer's pod is still there");

    env.start_operator();
    env.wait_gone::<Pod>(&left[0].metadata.name.clone().unwrap()).await;
    env.shutdown().await;
}

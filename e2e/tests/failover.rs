//! Two operator processes, one Lease: the leader is killed in the middle of a run, the other
//! takes the lease over within its duration and finishes the run, with one Job and one run.

use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::ListParams;
use kube::runtime::wait::Condition;
use serde_json::json;
use trainloop::api::{RunPhase, TrainingPipeline, TrainingRun};
use trainloop_e2e::Env;

const LEASE_SECONDS: u64 = 3;

fn holder(lease: Option<&Lease>) -> Option<String> {
    lease?.spec.as_ref()?.holder_identity.clone()
}

fn held_by(identity: &'static str) -> impl Condition<Lease> {
    move |lease: Option<&Lease>| holder(lease).as_deref() == Some(identity)
}

fn phase_is(phase: RunPhase) -> impl Condition<TrainingRun> {
    move |run: Option<&TrainingRun>| run.and_then(|r| r.status.as_ref()).is_some_and(|s| s.phase == phase)
}

#[tokio::test]
async fn a_standby_takes_over_a_killed_leaders_run_within_the_lease_duration() {
    let mut env = Env::start().await.unwrap();
    env.stop_operator().await;
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_trainloop-operator"));
    let seconds = LEASE_SECONDS.to_string();
    let mut candidates = Vec::new();
    for name in ["operator-a", "operator-b"] {
        let child = env
            .spawn_operator_process(binary, &[("POD_NAME", name), ("TRAINLOOP_LEASE_DURATION_SECONDS", &seconds)])
            .unwrap();
        candidates.push((name, child));
    }
    let leases = env.api::<Lease>();
    let elected = |lease: Option<&Lease>| holder(lease).is_some();
    env.wait_for::<Lease>("trainloop", "a leader", elected).await;

    // A run that waits for the release file, so that the leader dies in its middle.
    let release = env.create_held_pipeline("churn", json!({})).await.unwrap();
    env.wait_for::<TrainingRun>("churn-1", "Running", phase_is(RunPhase::Running)).await;

    // Whoever holds the lease now is the leader to kill.
    let held = leases.get("trainloop").await.unwrap().spec.unwrap();
    let leader = held.holder_identity.clone().unwrap();
    let standby: &'static str = if leader == "operator-a" { "operator-b" } else { "operator-a" };
    let (_, mut killed) = candidates.remove(candidates.iter().position(|(name, _)| *name == leader).unwrap());
    killed.kill().await.unwrap();
    let killed_at = Instant::now();
    let taken = env.wait_for::<Lease>("trainloop", "the standby to take over", held_by(standby)).await.spec.unwrap();
    let last_renewal = held.renew_time.unwrap().0;
    let acquired = taken.acquire_time.unwrap().0;
    let takeover = Duration::try_from(acquired.duration_since(last_renewal)).unwrap();
    println!(
        "{standby} took the lease {takeover:?} after {leader}'s last renewal, {:?} after the kill (lease {LEASE_SECONDS} s)",
        killed_at.elapsed()
    );
    // Within the lease's duration, plus the pause of up to 1 s at random that kube-lease-manager
    // takes after an expiry so that two standbys rarely collide, plus a second for a loaded
    // machine (measured: 3.2 to 4.0 s on a 3 s lease).
    assert!(takeover <= Duration::from_secs(LEASE_SECONDS + 2), "took {takeover:?}");

    std::fs::write(&release, "go").unwrap();
    env.wait_for::<TrainingRun>("churn-1", "Succeeded under the new leader", phase_is(RunPhase::Succeeded)).await;
    let settled = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref()).is_some_and(|s| s.last_passing_run.as_deref() == Some("churn-1"))
    };
    env.wait_for::<TrainingPipeline>("churn", "churn-1 recorded", settled).await;
    let runs = env.api::<TrainingRun>().list(&ListParams::default()).await.unwrap().items;
    assert_eq!(runs.len(), 1, "one run");
    assert_eq!(env.api::<Job>().list(&ListParams::default()).await.unwrap().items.len(), 1, "one Job");
    assert_eq!(holder(leases.get_opt("trainloop").await.unwrap().as_ref()).as_deref(), Some(standby));
    drop(candidates);
    env.shutdown().await;
}

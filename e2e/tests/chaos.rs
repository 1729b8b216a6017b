//! Chaos: the training loop driven through a seeded sequence of triggers while the operator is
//! killed at random points, or while the API server injects faults, must end exactly where an
//! undisturbed run of the same sequence ends, and never train anything twice on the way.
//! `CHAOS_SEED=<n>` replays a sequence and its kill points.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::Api;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use trainloop::api::{RunPhase, TrainingPipeline};
use trainloop_e2e::Env;
use trainloop_e2e::chaos::{self, FinalState, PIPELINE, Recorder, Rng, Seen, Step};

/// Triggers per sequence, and kills per sequence at most.
const STEPS: usize = 8;
const KILLS: usize = 8;
/// Triggers under faults: each failed reconcile backs off 5 s, so a step takes seconds.
const FAULTED_STEPS: usize = 5;
/// How long the final state may take to converge after the last trigger.
const CONVERGE: Duration = Duration::from_secs(60);

/// Where the operator is killed.
#[derive(Clone, Copy, Debug)]
enum KillPoint {
    /// After a random short delay.
    After(Duration),
    /// As soon as a new run exists.
    RunCreated,
    /// As soon as a new Job exists.
    JobCreated,
    /// As soon as a run Succeeded, before the pipeline can record it.
    RunSucceeded,
}

impl KillPoint {
    fn random(rng: &mut Rng) -> KillPoint {
        match rng.below(4) {
            0 => KillPoint::After(Duration::from_millis(rng.below(1500))),
            1 => KillPoint::RunCreated,
            2 => KillPoint::JobCreated,
            _ => KillPoint::RunSucceeded,
        }
    }

    /// Wait until the point is reached (or 10 s passed: the kill happens anyway).
    async fn reach(self, seen: &mut broadcast::Receiver<Seen>) -> &'static str {
        let wanted = |event: &Seen| match (self, event) {
            (KillPoint::RunCreated, Seen::NewRun(_)) | (KillPoint::JobCreated, Seen::NewJob(_)) => true,
            (KillPoint::RunSucceeded, Seen::RunFinished { phase, .. }) => *phase == RunPhase::Succeeded,
            _ => false,
        };
        // A fresh event: not one seen before the last kill.
        while seen.try_recv().is_ok() {}
        let wait = async {
            if let KillPoint::After(delay) = self {
                tokio::time::sleep(delay).await;
                return;
            }
            loop {
                match seen.recv().await {
                    Ok(event) if wanted(&event) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                    _ => {}
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), wait).await {
            Ok(()) => "reached",
            Err(_) => "not reached in 10 s",
        }
    }
}

/// How the operator runs, and so how it dies.
#[derive(Clone, Copy, Debug)]
enum Operator {
    /// In the test's process: its controllers are aborted, nothing is cleaned up.
    InProcess,
    /// As its own process (`trainloop-operator`, the `run` command): SIGKILL.
    Process(&'static str),
}

impl Operator {
    fn start(self, env: &mut Env) {
        match self {
            Operator::InProcess => env.start_operator(),
            Operator::Process(binary) => env.start_operator_process(std::path::Path::new(binary)).unwrap(),
        }
    }

    async fn kill(self, env: &mut Env) {
        match self {
            Operator::InProcess => env.stop_operator().await,
            Operator::Process(_) => env.kill_operator_process().await,
        }
    }
}

/// The sequence on a fresh plane with nothing disturbed: the state every disturbed run must reach.
async fn undisturbed(steps: &[Step]) -> FinalState {
    let env = Env::start().await.unwrap();
    let recorder = Recorder::start(&env.observer);
    let log = env.work_dir.join("executions");
    chaos::drive(env.observer.clone(), steps, &log).await.unwrap();
    let state = converge(&env, &recorder, &log, |state| state.pruned && state.pods == 0, steps.len()).await;
    recorder.catch_up(&env.observer).await;
    let problems = recorder.violations(&chaos::executions(&log), true);
    assert!(problems.is_empty(), "undisturbed: {problems:#?}");
    env.shutdown().await;
    state
}

/// Wait until the state satisfies `done` with the pipeline settled at the last step, and return
/// it; on time out, the last state read.
async fn converge(
    env: &Env,
    recorder: &Recorder,
    log: &std::path::Path,
    done: impl Fn(&FinalState) -> bool,
    steps: usize,
) -> FinalState {
    let pipelines: Api<TrainingPipeline> = env.api();
    let mut seen = recorder.subscribe();
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let skipped = skipped(env, recorder, log).await;
        let state = chaos::final_state(&env.observer, &skipped).await;
        let settled = pipelines.get(PIPELINE).await.is_ok_and(|p| chaos::settled(&p, steps as i64));
        let late = tokio::time::Instant::now() > deadline;
        match state {
            Ok(state) if late || (settled && done(&state)) => return state,
            Err(error) if late => panic!("reading the final state: {error}"),
            _ => {}
        }
        // Look again at the next run or Job change, and at least every 200 ms (pods, pipeline).
        let _ = tokio::time::timeout(Duration::from_millis(200), seen.recv()).await;
    }
}

/// Run numbers the pipeline reserved but never used: no run of that name was ever seen and
/// nothing of that name trained (an operator killed between reserving a number and creating
/// the run; the number is never reused, by design).
async fn skipped(env: &Env, recorder: &Recorder, log: &std::path::Path) -> BTreeSet<i64> {
    let last = env.api::<TrainingPipeline>().get(PIPELINE).await.ok().and_then(|p| p.status?.last_run_index);
    let seen = recorder.run_names();
    let trained = chaos::executions(log);
    (1..=last.unwrap_or(0))
        .filter(|n| {
            let name = format!("{PIPELINE}-{n}");
            !seen.contains(&name) && !trained.contains_key(&name)
        })
        .collect()
}

/// The sequence while the operator is killed at up to `kills` random points; returns the final
/// state and a line per kill.
async fn killed(steps: &[Step], rng: &mut Rng, kills: usize, expected: &FinalState, operator: Operator) -> Vec<String> {
    let mut env = Env::start().await.unwrap();
    env.stop_operator().await;
    operator.start(&mut env);
    let recorder = Recorder::start(&env.observer);
    let log = env.work_dir.join("executions");
    let done = CancellationToken::new();
    let client = env.observer.clone();
    let driver = async {
        let result = chaos::drive(client, steps, &log).await;
        done.cancel();
        result
    };
    let mut seen = recorder.subscribe();
    let pipelines: Api<TrainingPipeline> = env.api();
    let killer = async {
        let mut lines = Vec::new();
        for kill in 1..=kills {
            let point = KillPoint::random(rng);
            let down = Duration::from_millis(rng.below(400));
            let reached = tokio::select! {
                _ = done.cancelled() => break,
                reached = point.reach(&mut seen) => reached,
            };
            operator.kill(&mut env).await;
            let pipeline_said = pipelines.get(PIPELINE).await.ok().and_then(|p| p.status).and_then(|s| {
                s.conditions.into_iter().find(|c| c.type_ == "Ready").map(|c| format!("{}: {}", c.reason, c.message))
            });
            // The operator stays down a while: Jobs finish and pods come and go meanwhile.
            tokio::time::sleep(down).await;
            operator.start(&mut env);
            let problems = recorder.violations(&chaos::executions(&log), false);
            assert!(problems.is_empty(), "after kill {kill} at {point:?}: {problems:#?}");
            lines.push(format!(
                "kill {kill} at {point:?} ({reached}; the pipeline said {:?}), down {down:?}",
                pipeline_said.unwrap_or_default()
            ));
        }
        lines
    };
    let (driven, lines) = tokio::join!(driver, killer);
    for line in &lines {
        println!("{line}");
    }
    driven.unwrap();
    let state = converge(&env, &recorder, &log, |state| state == expected, steps.len()).await;
    recorder.catch_up(&env.observer).await;
    let problems = recorder.violations(&chaos::executions(&log), true);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(&state, expected, "the killed operator must end where the undisturbed one did");
    env.shutdown().await;
    lines
}

/// Each of `cases` sequences undisturbed, then with the operator killed; the kill points survived.
async fn kill_test(test: &str, cases: u64, operator: Operator) -> usize {
    let seed = chaos::seed(test);
    let mut survived = 0;
    for case in 0..cases {
        let mut rng = Rng::new(seed.wrapping_add(case));
        let steps = chaos::scenario(&mut rng, STEPS);
        println!("case {case}: {steps:?}");
        let expected = undisturbed(&steps).await;
        survived += killed(&steps, &mut rng, KILLS, &expected, operator).await.len();
    }
    println!("{test}: kill points survived: {survived}");
    survived
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_operator_anywhere_in_the_loop_trains_nothing_twice_and_loses_nothing() {
    assert!(kill_test("kill", 2, Operator::InProcess).await > 0, "the operator was never killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_operator_process_anywhere_in_the_loop_trains_nothing_twice_and_loses_nothing() {
    let binary = Operator::Process(env!("CARGO_BIN_EXE_trainloop-operator"));
    assert!(kill_test("sigkill", 1, binary).await > 0, "the operator was never killed");
}

/// Errors on every verb (5%, or `CHAOS_ERROR_RATE`), latency, watches that end, and forced 410 Gone.
/// Patches fail four times as often: reconciles read from caches, so nearly all their requests
/// are patches (status and Job applies), and a short sequence would otherwise see no reconcile fail.
fn faults() -> serde_json::Value {
    let rate: f64 = std::env::var("CHAOS_ERROR_RATE").ok().and_then(|r| r.parse().ok()).unwrap_or(0.05);
    serde_json::json!({
        "errors": {"*": {"rate": rate, "code": 500}, "patch": {"rate": (rate * 4.0).min(1.0), "code": 409}},
        "latencyMs": 5, "watchMaxSeconds": 3
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_injected_api_faults_the_loop_converges_to_the_undisturbed_state() {
    let seed = chaos::seed("faults");
    let mut rng = Rng::new(seed);
    let steps = chaos::scenario(&mut rng, FAULTED_STEPS);
    println!("sequence: {steps:?}");
    let expected = undisturbed(&steps).await;

    let env = Env::start().await.unwrap();
    let recorder = Recorder::start(&env.observer);
    let log = env.work_dir.join("executions");
    let post = |config: serde_json::Value| {
        let env = &env;
        async move { env.set_faults(Some(&config)).await.expect("switching faults") }
    };
    post(faults()).await;
    let done = CancellationToken::new();
    let driver = async {
        let result = chaos::drive(env.observer.clone(), &steps, &log).await;
        done.cancel();
        result
    };
    // Besides the steady faults, end every watch or forget the history now and then.
    let shocks = async {
        let (mut drops, mut compactions) = (0, 0);
        loop {
            let pause = Duration::from_millis(500 + rng.below(2000));
            tokio::select! {
                _ = done.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
            let mut config = faults();
            if rng.chance(50) {
                config["dropWatches"] = true.into();
                drops += 1;
            } else {
                config["compact"] = true.into();
                compactions += 1;
            }
            post(config).await;
        }
        (drops, compactions)
    };
    let (driven, (drops, compactions)) = tokio::join!(driver, shocks);
    let answer = env.set_faults(None).await.expect("switching faults off");
    let injected: u64 = answer["injected"].as_object().into_iter().flatten().filter_map(|(_, n)| n.as_u64()).sum();
    let errors: f64 = env
        .operator_metrics()
        .lines()
        .filter(|line| line.starts_with("reconcile_errors_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    println!(
        "faults: {drops} watch drops, {compactions} compactions, {injected} errors injected, {errors} failed reconciles"
    );
    driven.unwrap();

    let state = converge(&env, &recorder, &log, |state| state == &expected, steps.len()).await;
    recorder.catch_up(&env.observer).await;
    let problems = recorder.violations(&chaos::executions(&log), true);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(state, expected, "under faults the loop must end where the undisturbed one did");
    assert!(errors > 0.0, "the injected faults never failed a reconcile");
    env.shutdown().await;
}

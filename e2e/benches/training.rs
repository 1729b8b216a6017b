//! `make bench`: N pipelines (`BENCH_PIPELINES`, default 10,000) with one run each on localplane,
//! the operator running as its own process. Prints the time until every run has ended, API
//! requests per run (reads, writes, watches, and by resource), the operator's peak RSS, the
//! latency from each trigger (the pipeline's creation, which asks for its first run) to its
//! Job being created (median and p99, both seen by watches), the writes it issues in steady
//! state afterwards (the goal is zero), and how its RSS grows when `BENCH_UNRELATED` (default
//! 20,000) Jobs and pods that trainloop does not manage appear.
//!
//! Needs `TRAINLOOP_BIN`, the operator binary (the Makefile builds it in release mode).

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use trainloop::api::{RunPhase, TrainingPipeline, TrainingRun};
use trainloop::controllers::labels;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo test --all-targets` runs benches without `--bench`; the end-to-end tests cover the
    // same paths, so this only measures when asked to.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("training bench: skipped outside `cargo bench` (run `make bench`)");
        return Ok(());
    }
    let pipelines = env_number("BENCH_PIPELINES", 10_000);
    let steady = Duration::from_secs(env_number("BENCH_STEADY_SECONDS", 60));
    let binary =
        std::env::var("TRAINLOOP_BIN").map_err(|_| anyhow::anyhow!("set TRAINLOOP_BIN to the operator binary"))?;

    let work = std::env::temp_dir().join(format!("trainloop-bench-{}", std::process::id()));
    let plane =
        localplane::LocalPlane::start(localplane::Config { work_dir: Some(work.join("plane")), ..Default::default() })
            .await?;
    let client = plane.client().await?;
    trainloop_e2e::install_crds(&client).await?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut operator = tokio::process::Command::new(&binary)
        .args(["run", "--metrics-addr", &format!("127.0.0.1:{port}")])
        .arg("--artifact-root")
        .arg(format!("file://{}/artifacts", work.display()))
        .arg("--local-files")
        .env("KUBECONFIG", plane.kubeconfig_path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = operator.id().unwrap_or_default();
    let http = trainloop::triggers::http_client()?;
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http.get(format!("http://127.0.0.1:{port}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
        anyhow::ensure!(Instant::now() < deadline, "the operator did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let runs_api: kube::Api<TrainingRun> = kube::Api::namespaced(client.clone(), "default");
    // Every run ends; one that fails (a trainer killed by the loaded machine) is counted, not
    // waited for.
    let done = tokio::spawn(async move {
        let (mut succeeded, mut failed) = (BTreeSet::new(), BTreeSet::new());
        let mut stream = watcher(runs_api, watcher::Config::default()).applied_objects().boxed();
        while let Some(run) = stream.try_next().await? {
            let name = run.metadata.name.unwrap_or_default();
            match run.status.map(|s| s.phase) {
                Some(RunPhase::Succeeded) => succeeded.insert(name),
                Some(RunPhase::Failed) => failed.insert(name),
                _ => false,
            };
            if (succeeded.len() + failed.len()) as u64 == pipelines {
                return anyhow::Ok((Instant::now(), failed));
            }
        }
        anyhow::bail!("the watch ended early")
    });

    let jobs_created = watch_jobs_created(&client, pipelines).await?;

    let script = format!(
        r#"printf '{{"metrics":{{"auc":0.95}},"artifact":{{"uri":"file:///m","digest":"{DIGEST}"}},"dataDigest":"{DIGEST}","profile":"file:///p"}}' > /dev/termination-log"#
    );
    let api: kube::Api<TrainingPipeline> = kube::Api::namespaced(client.clone(), "default");
    let start = Instant::now();
    let mut triggered = Vec::with_capacity(pipelines as usize);
    for i in 0..pipelines {
        let pipeline: TrainingPipeline = serde_json::from_value(json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingPipeline", "metadata": {"name": format!("p{i}")},
            "spec": {"template": {"image": "shell", "command": ["sh", "-c", script]},
                     "data": {"uri": "file:///dev/null"}, "features": [{"name": "x", "type": "number"}],
                     "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.9}]}}
        }))?;
        api.create(&PostParams::default(), &pipeline).await?;
        triggered.push((format!("p{i}"), Instant::now()));
    }
    let (finished, failed) = tokio::time::timeout(Duration::from_secs(1800), done).await???;
    let elapsed = finished - start;
    let jobs_created = tokio::time::timeout(Duration::from_secs(60), jobs_created).await???;
    let mut latencies: Vec<Duration> = triggered
        .iter()
        .filter_map(|(name, at)| Some(jobs_created.get(name)?.saturating_duration_since(*at)))
        .collect();
    latencies.sort();

    let requests = scrape(&http, &metrics_url).await?;
    tokio::time::sleep(steady).await;
    let after = scrape(&http, &metrics_url).await?;
    let peak_rss_kib = peak_rss_kib(pid);

    let per_run = |kind: &str| total(&requests, kind) / pipelines as f64;
    println!("training bench: {pipelines} pipelines, one run each, operator as its own process on localplane");
    println!(
        "  time until every run ended: {:.1} s ({:.1} runs/s); failed: {failed:?}",
        elapsed.as_secs_f64(),
        pipelines as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  API requests per run: {:.2} in total (goal: at most 12): {:.2} reads, {:.2} writes; {:.3} watches",
        per_run("read") + per_run("write"),
        per_run("read"),
        per_run("write"),
        per_run("watch")
    );
    let by_resource: Vec<String> = requests
        .iter()
        .filter(|((kind, _), _)| kind != "watch")
        .map(|((kind, resource), count)| format!("{kind} {resource} {:.2}", count / pipelines as f64))
        .collect();
    println!("  per run by resource: {}", by_resource.join(", "));
    println!("  operator peak RSS: {:.1} MiB", peak_rss_kib as f64 / 1024.0);
    let at = |share: f64| {
        let index = ((latencies.len() as f64 * share).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(index).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "  trigger (pipeline created) -> its Job created: median {:.0} ms, p99 {:.0} ms ({} Jobs)",
        at(0.5),
        at(0.99),
        latencies.len()
    );
    let steady_writes = total(&after, "write") - total(&requests, "write");
    let steady_by_resource: Vec<String> = after
        .iter()
        .filter(|((kind, _), _)| kind == "write")
        .filter_map(|(key, count)| {
            let more = count - requests.get(key).copied().unwrap_or(0.0);
            (more > 0.0).then(|| format!("{} {more}", key.1))
        })
        .collect();
    println!("  writes in steady state over {} s: {steady_writes} {steady_by_resource:?}", steady.as_secs());

    let unrelated = env_number("BENCH_UNRELATED", 20_000);
    if unrelated > 0 {
        let (before, after) = unrelated_objects(&client, pid, unrelated).await?;
        println!(
            "  operator RSS with {unrelated} unrelated Jobs and pods created: {:.1} -> {:.1} MiB (+{:.1} MiB)",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            (after as f64 - before as f64) / 1024.0
        );
    }

    operator.kill().await?;
    plane.shutdown().await;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Watches the pipelines' Jobs from before the first pipeline exists, and returns when each of
/// `pipelines` pipelines' Job was first seen.
async fn watch_jobs_created(
    client: &kube::Client,
    pipelines: u64,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<HashMap<String, Instant>>>> {
    let jobs: kube::Api<Job> = kube::Api::namespaced(client.clone(), "default");
    let (listed, listed_now) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut listed = Some(listed);
        let mut seen = HashMap::new();
        let mut stream = watcher(jobs, watcher::Config::default().labels(labels::PIPELINE)).boxed();
        while let Some(event) = stream.try_next().await? {
            let job = match event {
                watcher::Event::InitDone => {
                    listed.take().map(|listed| listed.send(()));
                    continue;
                }
                watcher::Event::Apply(job) | watcher::Event::InitApply(job) => job,
                _ => continue,
            };
            if let Some(pipeline) = job.labels().get(labels::PIPELINE) {
                seen.entry(pipeline.clone()).or_insert_with(Instant::now);
            }
            if seen.len() as u64 == pipelines {
                return Ok(seen);
            }
        }
        anyhow::bail!("the Job watch ended early")
    });
    listed_now.await?;
    Ok(task)
}

/// Requests sent, by kind and resource.
type Requests = std::collections::BTreeMap<(String, String), f64>;

/// `trainloop_kube_requests_total{kind="...",resource="..."}` from the operator's metrics.
async fn scrape(http: &reqwest::Client, url: &str) -> anyhow::Result<Requests> {
    let text = http.get(url).send().await?.text().await?;
    Ok(text
        .lines()
        .filter_map(|line| line.strip_prefix("trainloop_kube_requests_total{kind=\""))
        .filter_map(|rest| {
            let (kind, rest) = rest.split_once("\",resource=\"")?;
            let (resource, value) = rest.split_once("\"} ")?;
            Some(((kind.to_string(), resource.to_string()), value.trim().parse().ok()?))
        })
        .collect())
}

fn total(requests: &Requests, kind: &str) -> f64 {
    requests.iter().filter(|((k, _), _)| k == kind).map(|(_, count)| count).sum()
}

/// Create `count` Jobs and pods that trainloop does not manage (half each; the Jobs suspended and
/// the pods bound to another node, so localplane runs nothing) and return the operator's RSS
/// before and after, once they have had time to reach any watch that would see them.
async fn unrelated_objects(client: &kube::Client, pid: u32, count: u64) -> anyhow::Result<(u64, u64)> {
    use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
    let before = rss_kib(pid);
    let jobs: kube::Api<Job> = kube::Api::namespaced(client.clone(), "default");
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), "default");
    let container = json!([{"name": "main", "image": "busybox", "command": ["true"]}]);
    let creates = (0..count).map(|i| {
        let (jobs, pods, container) = (jobs.clone(), pods.clone(), container.clone());
        async move {
            let labels = json!({"app.kubernetes.io/managed-by": "someone-else", "app": "batch"});
            if i % 2 == 0 {
                let job: Job = serde_json::from_value(json!({
                    "metadata": {"name": format!("other-{i}"), "labels": labels},
                    "spec": {"suspend": true, "template": {"metadata": {"labels": labels},
                             "spec": {"restartPolicy": "Never", "containers": container}}}
                }))?;
                jobs.create(&PostParams::default(), &job).await?;
            } else {
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("other-{i}"), "labels": labels},
                    "spec": {"nodeName": "another-node", "containers": container}
                }))?;
                pods.create(&PostParams::default(), &pod).await?;
            }
            anyhow::Ok(())
        }
    });
    futures::stream::iter(creates).buffer_unordered(32).try_collect::<Vec<()>>().await?;
    // The operator's watches would have delivered them by now; a filtered watch never does.
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok((before, rss_kib(pid)))
}

fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS:")
}

fn peak_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM:")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

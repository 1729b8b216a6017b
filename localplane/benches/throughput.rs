//! `cargo bench -p localplane`: runs the real `localplane serve` binary and measures
//! creates/second and watch events delivered/second (1,000 objects, 10 watchers), then the
//! server's peak RSS while it holds 10,000 custom resources.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, PostParams, WatchEvent, WatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

const CRD: &str = include_str!("../tests/fixtures/widgets-crd.yaml");
const OBJECTS: usize = 1_000;
const WATCHERS: usize = 10;
const HELD: usize = 10_000;
const IN_FLIGHT: usize = 32;

fn widget(i: usize) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": format!("w-{i}"), "labels": {"bench": "true"}},
        "spec": {"size": i % 10, "tags": ["a", "b"]}}))
    .expect("widget")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn create_range(api: &Api<DynamicObject>, range: std::ops::Range<usize>) {
    futures::stream::iter(range)
        .map(|i| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &widget(i)).await.map(|_| ()) }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await
        .expect("creates succeed");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir: PathBuf = std::env::temp_dir().join(format!("lp-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_localplane"))
        .args(["serve", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--work-dir")
        .arg(dir.join("work"))
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()?;
    let pid = server.id().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubeconfig.exists() {
        anyhow::ensure!(Instant::now() < deadline, "server did not write its kubeconfig");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;

    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.create(&PostParams::default(), &serde_saphyr::from_str(CRD)?).await?;
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let start_rv = api.list(&Default::default()).await?.metadata.resource_version.unwrap_or_default();

    let mut watchers = vec![];
    for _ in 0..WATCHERS {
        let api = api.clone();
        let rv = start_rv.clone();
        watchers.push(tokio::spawn(async move {
            let mut stream = api.watch(&WatchParams::default().timeout(290), &rv).await.expect("watch").boxed();
            let mut n = 0;
            while n < OBJECTS {
                match stream.try_next().await {
                    Ok(Some(WatchEvent::Added(_))) => n += 1,
                    Ok(Some(_)) => {}
                    other => panic!("watch ended early: {other:?}"),
                }
            }
            Instant::now()
        }));
    }

    let t0 = Instant::now();
    create_range(&api, 0..OBJECTS).await;
    let create_secs = t0.elapsed().as_secs_f64();
    let mut last = t0;
    for w in watchers {
        last = last.max(w.await?);
    }
    let watch_secs = (last - t0).as_secs_f64();

    create_range(&api, OBJECTS..HELD).await;
    let listed = api.list(&Default::default()).await?.items.len();
    anyhow::ensure!(listed == HELD, "expected {HELD} objects, listed {listed}");
    let peak = proc_status_kib(pid, "VmHWM:");
    let rss = proc_status_kib(pid, "VmRSS:");

    println!("localplane benchmark ({OBJECTS} objects, {WATCHERS} watchers, {IN_FLIGHT} creates in flight)");
    println!("creates/second:                 {:>10.0}", OBJECTS as f64 / create_secs);
    println!("watch events delivered/second:  {:>10.0}", (OBJECTS * WATCHERS) as f64 / watch_secs);
    println!("server RSS holding {HELD} CRs:  {:>7.1} MiB (peak {:.1} MiB)", rss as f64 / 1024.0, peak as f64 / 1024.0);

    let _ = tokio::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
    let _ = tokio::time::timeout(Duration::from_secs(10), server.wait()).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

//! Throughput benchmark: serves the example model on loopback and sends
//! single-row KServe V1 predictions from 64 concurrent clients, for a bounded
//! number of requests (`BENCH_REQUESTS`, default 20000) and at most 60 s.
//! Prints predictions per second and latency percentiles.
//!
//! Run: `cargo bench -p trainloop-example-model-server --bench throughput`.
//! Under `cargo test` (no `--bench` argument) it only sends a few hundred
//! requests, as a smoke test of the same path.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use trainloop::artifact::sha256_digest;
use trainloop_example_model_server::load::LoadedModel;
use trainloop_example_model_server::{AppState, router};
use trainloop_example_trainer::config::Hyperparameters;
use trainloop_example_trainer::train::{TrainInputs, load_schema, train};

const CLIENTS: usize = 64;
const TIME_LIMIT: Duration = Duration::from_secs(60);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benchmarking { 20_000 } else { 256 });
    let data_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let data = std::fs::read(data_dir.join("breast_cancer_wisconsin.csv"))?;
    let schema = load_schema(&data_dir.join("breast_cancer_features.json").display().to_string())?;
    let config = Hyperparameters::from_json(&std::fs::read_to_string(data_dir.join("breast_cancer_config.json"))?)?;
    let trained = train(&TrainInputs { data: data.clone(), schema: schema.clone(), config, seed: 42 })?;
    let instances: Vec<Value> = trainloop_example_traffic::send::instances(&data, &schema)?
        .into_iter()
        .map(|row| json!({ "instances": [row] }))
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let state = Arc::new(AppState::new("model"));
        state.set_model(LoadedModel { digest: sha256_digest(&trained.bytes), artifact: trained.artifact });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1/models/model:predict", listener.local_addr()?);
        let server = tokio::spawn(axum::serve(listener, router(state)).into_future());

        trainloop_example_trainer::fetch::install_crypto_provider();
        let client = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build()?;
        let instances = Arc::new(instances);
        let started = Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (client, url, instances) = (client.clone(), url.clone(), instances.clone());
                let share = requests / CLIENTS + usize::from(c < requests % CLIENTS);
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(share);
                    let mut failures = 0usize;
                    for i in 0..share {
                        if started.elapsed() > TIME_LIMIT {
                            break;
                        }
                        let body = &instances[(c * 7919 + i) % instances.len()];
                        let sent = Instant::now();
                        let answered = match client.post(&url).json(body).send().await {
                            Ok(response) if response.status().is_success() => response.bytes().await.is_ok(),
                            _ => false,
                        };
                        if answered {
                            latencies.push(sent.elapsed());
                        } else {
                            failures += 1;
                        }
                    }
                    (latencies, failures)
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(requests);
        let mut failures = 0;
        for task in tasks {
            let (l, f) = task.await?;
            latencies.extend(l);
            failures += f;
        }
        let elapsed = started.elapsed();
        server.abort();

        latencies.sort_unstable();
        let percentile = |p: f64| {
            latencies.get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
        };
        println!(
            "{} predictions from {CLIENTS} concurrent clients in {:.2} s ({failures} failed)",
            latencies.len(),
            elapsed.as_secs_f64()
        );
        println!("predictions/s: {:.0}", latencies.len() as f64 / elapsed.as_secs_f64());
        println!(
            "latency p50: {:.2} ms, p99: {:.2} ms, max: {:.2} ms",
            percentile(0.50).as_secs_f64() * 1e3,
            percentile(0.99).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
        if failures > 0 {
            return Err(format!("{failures} requests failed").into());
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

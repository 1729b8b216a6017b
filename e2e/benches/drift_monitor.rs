//! `make bench`: the cost of one evaluation of a featureDrift monitor over 10 server pods
//! (`BENCH_DRIFT_SERVERS`). Ten example model servers (the real router, each on its own
//! loopback port, in this process) serve a model of the Breast Cancer data (its 10 numeric
//! features, 10 bins each); before each evaluation every server answers predictions for the
//! dataset's rows, untimed; then the operator's own evaluation is timed: the acknowledgement of
//! the previous evaluation's reads, the read of every live profile, their sum and the comparison
//! with the reference.
//! Prints the median and p99 over `BENCH_DRIFT_EVALUATIONS` (default 200) evaluations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use trainloop::api::{DriftMethod, FeatureDriftMonitor, Monitor};
use trainloop::artifact::{FeatureProfile, sha256_digest};
use trainloop::controllers::drift::acknowledged::Acknowledged;
use trainloop::controllers::drift::evaluate::{Alerts, Reading, Served, evaluate};
use trainloop::controllers::drift::live::Server;
use trainloop::monitors::webhook::{Firings, PolicyKey};
use trainloop_example_model_server::load::LoadedModel;
use trainloop_example_model_server::{AppState, router};
use trainloop_example_trainer::config::Hyperparameters;
use trainloop_example_trainer::train::{TrainInputs, load_schema, train};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let measure = std::env::args().any(|arg| arg == "--bench");
    // Outside `cargo bench` (`cargo test --all-targets`), a few evaluations over two servers
    // check that the bench still works.
    let servers = if measure { env_number("BENCH_DRIFT_SERVERS", 10) } else { 2 };
    let evaluations = if measure { env_number("BENCH_DRIFT_EVALUATIONS", 200) } else { 3 };

    let data = std::fs::read(data_dir().join("breast_cancer_wisconsin.csv"))?;
    let schema = load_schema(&data_dir().join("breast_cancer_features.json").display().to_string())?;
    let config = Hyperparameters::from_json(&std::fs::read_to_string(data_dir().join("breast_cancer_config.json"))?)?;
    let trained = train(&TrainInputs { data: data.clone(), schema, config, seed: 42 })?;
    let digest = sha256_digest(&trained.bytes);
    let reference: Result<FeatureProfile, String> = Ok(serde_json::from_slice(&trained.profile_bytes)?);
    let features: Vec<String> =
        reference.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?.features.iter().map(|f| f.name.clone()).collect();
    let (body, rows_per_server) = predictions_body(&data, &features)?;

    trainloop_example_trainer::fetch::install_crypto_provider();
    let mut running = Vec::new();
    let mut pods = Vec::new();
    for i in 0..servers {
        let state = Arc::new(AppState::new("model"));
        state.set_model(LoadedModel { artifact: trained.artifact.clone(), digest: digest.clone() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        running.push(tokio::spawn(axum::serve(listener, router(state)).into_future()));
        pods.push(Server { pod: format!("server-{i}"), base });
    }

    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let monitor: Monitor = serde_json::from_value(json!({"name": "inputs",
        "featureDrift": {"method": "psi", "threshold": 0.2, "minSamples": 1}}))?;
    let drift: &FeatureDriftMonitor =
        monitor.feature_drift.as_ref().ok_or_else(|| anyhow::anyhow!("not a featureDrift monitor"))?;
    anyhow::ensure!(drift.method == DriftMethod::Psi);
    let firings = Firings::default();
    let policy = PolicyKey { namespace: "default".into(), name: "bench".into() };
    let acknowledged = Acknowledged::default();
    let pod_names: Vec<String> = pods.iter().map(|pod| pod.pod.clone()).collect();
    let served = Served {
        http: &http,
        digest: &digest,
        reference: &reference,
        servers: &pods,
        pods: &pod_names,
        acknowledged: &acknowledged,
        policy: &policy,
        policy_uid: "bench-uid",
    };
    let alerts = Alerts { firings: &firings, policy: &policy };

    // What the policy's status records: the cursors of the last judged reads.
    let mut recorded = Vec::new();
    let mut times = Vec::with_capacity(evaluations);
    for _ in 0..evaluations {
        // Fresh traffic on every server (untimed): each evaluation judges what came since the last.
        for pod in &pods {
            let url = format!("{}/v1/models/model:predict", pod.base);
            http.post(url).body(body.clone()).send().await?.error_for_status()?;
        }
        let start = Instant::now();
        let (reading, cursors) = evaluate(&monitor, &served, &alerts, &recorded).await;
        times.push(start.elapsed());
        recorded = cursors;
        match reading {
            Reading::Value { samples: Some(samples), .. } => {
                anyhow::ensure!(samples == rows_per_server * servers as u64, "{samples} rows judged");
            }
            other => anyhow::bail!("the evaluation did not judge: {other:?}"),
        }
    }
    for task in &running {
        task.abort();
    }

    times.sort();
    let at = |share: f64| times[((times.len() as f64 * share).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "drift monitor bench: one featureDrift evaluation over {servers} model servers ({} features, {} \
         rows each): median {:.2} ms, p99 {:.2} ms over {evaluations} evaluations (acknowledge the last reads, \
         read every live profile, sum, PSI per feature)",
        features.len(),
        rows_per_server,
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
    );
    Ok(())
}

/// A V1 request with every row of the CSV (plain, no quotes) as an object of the model's
/// features, and its number of rows.
fn predictions_body(csv: &[u8], features: &[String]) -> anyhow::Result<(String, u64)> {
    let text = std::str::from_utf8(csv)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').map(str::trim).collect();
    let mut instances = Vec::new();
    for line in lines.filter(|line| !line.trim().is_empty()) {
        let instance: BTreeMap<&str, Value> = header
            .iter()
            .zip(line.split(','))
            .filter(|(name, _)| features.iter().any(|f| f == *name))
            .map(|(name, value)| Ok((*name, json!(value.trim().parse::<f64>()?))))
            .collect::<anyhow::Result<_>>()?;
        instances.push(instance);
    }
    let rows = instances.len() as u64;
    Ok((json!({ "instances": instances }).to_string(), rows))
}

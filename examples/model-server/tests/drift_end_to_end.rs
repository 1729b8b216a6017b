//! Trains on the real dataset, serves the artifact from the real binary,
//! sends in-distribution and then shifted traffic, and checks that the live
//! profile's PSI moves for the shifted feature only.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use trainloop_contract::{DriftMethod, FeatureProfile, TrainerResult, compare_profiles};
use trainloop_example_traffic::{Shift, TrafficOptions, send_traffic};
use trainloop_example_trainer::{TrainerEnv, run};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const SHIFTED: &str = "mean_radius";

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// Kills the server when the test ends, passed or failed.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn train(dir: &Path) -> TrainerResult {
    let env = TrainerEnv {
        data_uri: format!("file://{}", data_dir().join("breast_cancer_wisconsin.csv").display()),
        config_path: Some(data_dir().join("breast_cancer_config.json")),
        seed: 42,
        features: data_dir().join("breast_cancer_features.json").display().to_string(),
        artifact_uri: format!("file://{}", dir.join("artifact").display()),
        run: None,
        termination_log: dir.join("termination-log"),
    };
    run(&env).expect("training succeeds on the shipped dataset")
}

fn start_server(result: &TrainerResult, port: u16) -> ServerProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_trainloop-example-model-server"))
        .env("MODEL_URI", &result.artifact.uri)
        .env("MODEL_DIGEST", &result.artifact.digest)
        .env("POD_IP", "127.0.0.1")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the model server");
    ServerProcess(child)
}

/// Polls readiness until it answers 200 or the deadline passes.
fn await_ready(client: &reqwest::blocking::Client, base: &str, server: &mut ServerProcess) {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(response) = client.get(format!("{base}/v2/health/ready")).send()
            && response.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("model server exited early with {status}");
        }
        assert!(Instant::now() < deadline, "model server not ready within {READY_TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn traffic(base: &str, shifts: Vec<Shift>, seed: u64) {
    let report = send_traffic(&TrafficOptions {
        url: base.to_string(),
        model: "model".into(),
        data: std::fs::read(data_dir().join("breast_cancer_wisconsin.csv")).expect("dataset"),
        schema: trainloop_example_trainer::train::load_schema(
            &data_dir().join("breast_cancer_features.json").display().to_string(),
        )
        .expect("schema"),
        count: 800,
        batch: 8,
        rate: 0.0,
        shifts,
        seed,
    })
    .expect("traffic reaches the server");
    assert_eq!(report.rows_accepted, 800, "{report:?}");
}

fn psi_by_feature(reference: &FeatureProfile, live: &FeatureProfile) -> Vec<(String, f64)> {
    compare_profiles(reference, live, DriftMethod::Psi)
        .expect("live profile uses the reference bins")
        .into_iter()
        .map(|d| (d.name, d.value))
        .collect()
}

#[test]
fn shifted_traffic_raises_psi_of_the_shifted_feature_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let result = train(dir.path());
    let reference: FeatureProfile =
        serde_json::from_slice(&std::fs::read(result.profile.trim_start_matches("file://")).expect("profile file"))
            .expect("profile JSON");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(&result, port);
    trainloop_example_trainer::fetch::install_crypto_provider();
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().expect("http client");
    await_ready(&client, &base, &mut server);

    // In distribution: every feature stays close to the reference.
    traffic(&base, vec![], 1);
    let profile = format!("{base}/trainloop/profile?reader=monitor");
    let read: serde_json::Value =
        client.get(&profile).send().and_then(|r| r.error_for_status()).and_then(|r| r.json()).expect("live profile");
    let live: FeatureProfile = serde_json::from_value(read.clone()).expect("a feature profile");
    // Judged: acknowledged, so the next read holds only the rows after it.
    client
        .post(format!("{base}/trainloop/profile/ack?reader=monitor"))
        .json(&serde_json::json!({"cursor": read["cursor"]}))
        .send()
        .and_then(|r| r.error_for_status())
        .expect("acknowledgement");
    assert_eq!(live.samples, 800);
    for (name, psi) in psi_by_feature(&reference, &live) {
        eprintln!("in distribution: psi({name}) = {psi:.4}");
        assert!(psi < 0.1, "in-distribution PSI of {name} is {psi}");
    }

    // Shifted: the scaled feature drifts past 0.2, the others stay low.
    traffic(&base, vec![format!("{SHIFTED}*1.5").parse().expect("shift")], 2);
    let live: FeatureProfile =
        client.get(&profile).send().and_then(|r| r.error_for_status()).and_then(|r| r.json()).expect("live profile");
    assert_eq!(live.samples, 800, "the acknowledgement subtracted the first batch");
    for (name, psi) in psi_by_feature(&reference, &live) {
        eprintln!("shifted: psi({name}) = {psi:.4}");
        if name == SHIFTED {
            assert!(psi > 0.2, "shifted PSI of {name} is only {psi}");
        } else {
            assert!(psi < 0.1, "PSI of unshifted {name} is {psi}");
        }
    }

    // Schema violations are refused with the feature named, and counted.
    let response = client
        .post(format!("{base}/v1/models/model:predict"))
        .body(r#"{"instances":[{"mean_radius":-1}]}"#)
        .send()
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().unwrap_or_default().contains("mean_radius"));
    let metrics = client.get(format!("{base}/metrics")).send().and_then(|r| r.text()).expect("metrics");
    assert!(metrics.contains("trainloop_model_predictions_total 1600"), "{metrics}");
    assert!(metrics.contains("trainloop_model_rejected_requests_total{reason=\"schema\"} 1"), "{metrics}");
}

//! What every run needs: a model trained on the shipped dataset into a temp
//! dir, the request bodies, and the release model server serving the model.
//! Also the smoke test `cargo test` runs in place of the benchmark.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use trainloop_contract::FeatureProfile;
use trainloop_example_trainer::train::load_schema;
use trainloop_example_trainer::{TrainerEnv, run};

use crate::bodies::{self, BATCH_ROWS, Bodies};
use crate::servers::{self, BenchResult, ServerProcess};
use crate::wrk;

pub const V1_PATH: &str = "/v1/models/model:predict";
pub const V2_PATH: &str = "/v2/models/model/infer";
const SMOKE_REQUESTS: u64 = 20;

/// Fields drop in order: the servers stop before their temp dir goes.
pub struct Fixture {
    pub model: ServerProcess,
    pub bodies: Bodies,
    /// The model's answer to the V1 body, which the baselines answer too.
    pub v1_answer: String,
    pub v1_answer_file: PathBuf,
    pub dir: TempDir,
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

pub fn start() -> BenchResult<Fixture> {
    let dir = tempfile::tempdir()?;
    let trained = run(&TrainerEnv {
        data_uri: format!("file://{}", data_dir().join("breast_cancer_wisconsin.csv").display()),
        config_path: Some(data_dir().join("breast_cancer_config.json")),
        seed: 42,
        features: data_dir().join("breast_cancer_features.json").display().to_string(),
        artifact_uri: format!("file://{}", dir.path().join("artifact").display()),
        run: None,
        termination_log: dir.path().join("termination-log"),
    })?;
    let data = std::fs::read(data_dir().join("breast_cancer_wisconsin.csv"))?;
    let schema = load_schema(&data_dir().join("breast_cancer_features.json").display().to_string())?;
    let bodies = bodies::build(&data, &schema)?;

    trainloop_example_trainer::fetch::install_crypto_provider();
    let mut model = servers::model_server(&trained.artifact.uri, &trained.artifact.digest)?;
    model.await_ready(V1_PATH, &bodies.v1_single)?;
    let v1_answer = client()?
        .post(format!("{}{V1_PATH}", model.base))
        .body(bodies.v1_single.clone())
        .send()?
        .error_for_status()?
        .text()?;
    let v1_answer_file = dir.path().join("answer.json");
    std::fs::write(&v1_answer_file, &v1_answer)?;
    Ok(Fixture { model, bodies, v1_answer, v1_answer_file, dir })
}

pub fn client() -> BenchResult<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build()?)
}

/// `cargo test`: the bench's servers and bodies answer as the bench expects.
pub fn smoke() -> BenchResult<()> {
    let fixture = start()?;
    let mut noop = servers::noop_server(&fixture.v1_answer_file)?;
    noop.await_ready(V1_PATH, &fixture.bodies.v1_single)?;
    let client = client()?;
    let post = |base: &str, path: &str, body: &str| -> BenchResult<String> {
        Ok(client.post(format!("{base}{path}")).body(body.to_string()).send()?.error_for_status()?.text()?)
    };
    // Reads what the server counted and acknowledges it: the next read starts from zero.
    let reset = |base: &str| -> BenchResult<FeatureProfile> {
        let read: Value =
            client.get(format!("{base}/trainloop/profile?reader=bench")).send()?.error_for_status()?.json()?;
        let acknowledgement = serde_json::json!({"cursor": read["cursor"]});
        let ack = format!("{base}/trainloop/profile/ack?reader=bench");
        client.post(ack).json(&acknowledgement).send()?.error_for_status()?;
        Ok(serde_json::from_value(read)?)
    };
    reset(&fixture.model.base)?;
    for _ in 0..SMOKE_REQUESTS {
        assert_eq!(post(&fixture.model.base, V1_PATH, &fixture.bodies.v1_single)?, fixture.v1_answer);
        assert_eq!(post(&noop.base, V1_PATH, &fixture.bodies.v1_single)?, fixture.v1_answer);
        let batch: Value = serde_json::from_str(&post(&fixture.model.base, V2_PATH, &fixture.bodies.v2_batch)?)?;
        let probabilities = batch["outputs"][0]["data"].as_array().map_or(0, Vec::len);
        assert_eq!(probabilities, BATCH_ROWS, "{batch}");
    }
    fixture.model.cpu_time().ok_or("cannot read the model server's CPU time from /proc")?;
    let profile = reset(&fixture.model.base)?;
    assert_eq!(profile.samples, SMOKE_REQUESTS * (1 + BATCH_ROWS as u64));
    assert!(wrk::post_script(&fixture.bodies.v2_batch).contains(&fixture.bodies.v2_batch));
    wrk::check_parser()?;
    println!("smoke: {SMOKE_REQUESTS} V1 and V2 requests answered by the model server and the no-op server");
    Ok(())
}

//! Factor 4: the same data, config and seed give a byte-identical artifact on
//! the real dataset; another seed gives another split and so other bytes.

use std::path::{Path, PathBuf};

use trainloop_contract::sha256_digest;
use trainloop_example_trainer::config::Hyperparameters;
use trainloop_example_trainer::train::{TrainInputs, load_schema, train};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

fn inputs(seed: u64) -> TrainInputs {
    let config = std::fs::read_to_string(data_dir().join("breast_cancer_config.json")).expect("config");
    TrainInputs {
        data: std::fs::read(data_dir().join("breast_cancer_wisconsin.csv")).expect("dataset"),
        schema: load_schema(&data_dir().join("breast_cancer_features.json").display().to_string()).expect("schema"),
        config: Hyperparameters::from_json(&config).expect("valid config"),
        seed,
    }
}

#[test]
fn same_inputs_give_the_same_artifact_digest() {
    let first = train(&inputs(42)).expect("training succeeds");
    let second = train(&inputs(42)).expect("training succeeds");
    assert_eq!(sha256_digest(&first.bytes), sha256_digest(&second.bytes));
    assert_eq!(first.bytes, second.bytes);
    assert_eq!(first.profile_bytes, second.profile_bytes);
    // The model is a real one, not a constant.
    assert!(first.artifact.metrics["auc"] > 0.95, "{:?}", first.artifact.metrics);
}

#[test]
fn another_seed_gives_another_artifact() {
    let a = train(&inputs(42)).expect("training succeeds");
    let b = train(&inputs(7)).expect("training succeeds");
    assert_ne!(a.bytes, b.bytes);
}

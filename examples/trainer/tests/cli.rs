//! The binary honours the contract: result on stdout and in the termination
//! log on success; non-zero exit and the schema message there on failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use trainloop_contract::{ModelArtifact, TrainerResult, sha256_digest};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

fn trainer(data: &Path, out: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trainloop-example-trainer"));
    command
        .env_clear()
        .env("TRAINLOOP_DATA_URI", format!("file://{}", data.display()))
        .env("TRAINLOOP_CONFIG", data_dir().join("breast_cancer_config.json"))
        .env("TRAINLOOP_SEED", "42")
        .env("TRAINLOOP_FEATURES", data_dir().join("breast_cancer_features.json"))
        .env("TRAINLOOP_ARTIFACT_URI", format!("file://{}", out.join("artifact").display()))
        .env("TRAINLOOP_RUN", "test-run-1")
        .env("TRAINLOOP_TERMINATION_LOG", out.join("termination-log"));
    command
}

#[test]
fn a_run_writes_the_artifact_and_reports_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = trainer(&data_dir().join("breast_cancer_wisconsin.csv"), dir.path()).output().expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let message = std::fs::read_to_string(dir.path().join("termination-log")).expect("termination log");
    assert_eq!(message.trim(), String::from_utf8_lossy(&output.stdout).trim());
    let result = TrainerResult::parse(&message).expect("result JSON");
    let bytes = std::fs::read(result.artifact.uri.trim_start_matches("file://")).expect("artifact");
    assert_eq!(sha256_digest(&bytes), result.artifact.digest);
    let artifact = ModelArtifact::from_bytes(&bytes).expect("valid artifact");
    assert_eq!(artifact.metrics, result.metrics);
    assert!(Path::new(result.profile.trim_start_matches("file://")).is_file());
    for metric in ["accuracy", "auc", "f1", "logLoss"] {
        assert!(result.metrics.contains_key(metric), "{metric} missing");
    }
}

#[test]
fn a_renamed_column_fails_the_run_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = std::fs::read_to_string(data_dir().join("breast_cancer_wisconsin.csv")).expect("dataset");
    let renamed = original.replacen("mean_texture", "texture_mean", 1);
    let data = dir.path().join("renamed.csv");
    std::fs::write(&data, renamed).expect("write data");
    let output = trainer(&data, dir.path()).output().expect("run");
    assert!(!output.status.success());
    let message = std::fs::read_to_string(dir.path().join("termination-log")).expect("termination log");
    assert!(message.contains("\"mean_texture\"") && message.contains("\"texture_mean\""), "{message}");
    assert!(!dir.path().join("artifact").exists(), "no artifact on failure");
}

#[test]
fn out_of_range_values_fail_the_run_naming_column_and_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = std::fs::read_to_string(data_dir().join("breast_cancer_wisconsin.csv")).expect("dataset");
    // Rows 1 and 3 get a negative mean_radius (the first column).
    let broken: Vec<String> = original
        .lines()
        .enumerate()
        .map(|(i, line)| if i == 1 || i == 3 { format!("-{line}") } else { line.to_string() })
        .collect();
    let data = dir.path().join("broken.csv");
    std::fs::write(&data, broken.join("\n")).expect("write data");
    let output = trainer(&data, dir.path()).output().expect("run");
    assert!(!output.status.success());
    let message = std::fs::read_to_string(dir.path().join("termination-log")).expect("termination log");
    assert!(message.contains("column \"mean_radius\": below min in 2 row(s) (rows 1, 3"), "{message}");
}

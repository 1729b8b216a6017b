//! `trainloop drift compare` with `--reference`/`--current` in object storage: a real S3 server
//! (moto, on loopback, with authentication) holds the files, and the command reads them through
//! the storage crate with the credentials of its environment, as the trainer reads its data.

use std::process::{Command, Output};

use bytes::Bytes;
use serde_json::Value;
use trainloop_e2e::s3::S3Server;

/// The operator binary built with these tests (the `trainloop` command).
const TRAINLOOP: &str = env!("CARGO_BIN_EXE_trainloop-image");

fn csv(rows: usize, shift: f64) -> String {
    let mut text = String::from("x,y\n");
    for i in 0..rows {
        text.push_str(&format!("{},{}\n", (i % 97) as f64 / 7.0 + shift, (i % 13) as f64 * 1.5));
    }
    text
}

fn compare(reference: &str, current: &str, variables: &[(&'static str, String)]) -> Output {
    Command::new(TRAINLOOP)
        .args(["drift", "compare", "--json", "--reference", reference, "--current", current])
        .env_clear()
        .envs(variables.iter().map(|(name, value)| (*name, value.as_str())))
        .output()
        .expect("run trainloop")
}

fn features(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    json["features"].take()
}

#[tokio::test]
async fn data_in_s3_gives_the_statistics_of_the_same_local_files_and_bad_credentials_are_named() {
    let server = S3Server::start(&["data"]).await.expect("S3 server");
    let config = server.config();
    let (reference, current) = (csv(3000, 0.0), csv(2000, 1.0));
    for (name, text) in [("reference.csv", &reference), ("current.csv", &current)] {
        let uri = format!("s3://data/drift/{name}");
        trainloop_storage::write(&uri, Bytes::from(text.clone()), &config).await.expect("upload");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let local = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    let (local_reference, local_current) = (local("reference.csv", &reference), local("current.csv", &current));
    let variables = server.variables();
    let expected = features(&compare(&local_reference, &local_current, &[]));
    let remote = features(&compare("s3://data/drift/reference.csv", "s3://data/drift/current.csv", &variables));
    assert_eq!(remote, expected);
    // One side local, the other fetched.
    assert_eq!(features(&compare(&local_reference, "s3://data/drift/current.csv", &variables)), expected);

    let refused = |out: Output, expected: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "expected {expected:?} in {stderr:?}");
    };
    refused(
        compare("s3://data/drift/missing.csv", &local_current, &variables),
        "cannot read s3://data/drift/missing.csv",
    );
    refused(compare("s3://data/drift/missing.csv", &local_current, &variables), "ObjectNotFound");
    let wrong = server.variables_with_secret("not-the-secret");
    refused(compare("s3://data/drift/reference.csv", &local_current, &wrong), "StorageAccessDenied");
    server.stop().await;
}

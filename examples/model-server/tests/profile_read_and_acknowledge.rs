//! Predictions hammer the server from many tasks while two drift readers read
//! the live profile in a loop over HTTP and acknowledge each read: for each
//! reader, every row is in exactly one acknowledged read, whatever the other
//! acknowledged; each read holds whole rows and names the model.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{small_model, start_server};
use serde_json::Value;
use trainloop_example_model_server::routes::MODEL_DIGEST_HEADER;

const SENDERS: usize = 16;
const REQUESTS_PER_SENDER: usize = 150;
/// Rows of every V2 request; V1 requests carry one row.
const BATCH: usize = 5;
/// Two monitors' readers: a policy's uid and the monitor's name.
const READERS: [&str; 2] = ["0b1e4c1e-policy-a/inputs", "7d2f0a9c-policy-b/inputs"];

/// Reads once as `reader` and acknowledges the read (twice: it subtracts
/// once); checks the digest (body and header), the reader, and that every
/// feature's counts add up to the samples. Returns the samples.
async fn read_and_acknowledge(client: &reqwest::Client, base: &str, digest: &str, reader: &str) -> u64 {
    let response = client.get(format!("{base}/trainloop/profile?reader={reader}")).send().await.expect("read");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()[MODEL_DIGEST_HEADER], digest);
    let profile: Value = response.json().await.expect("profile JSON");
    assert_eq!(profile["modelDigest"], digest, "{profile}");
    assert_eq!(profile["reader"], reader, "{profile}");
    let samples = profile["samples"].as_u64().expect("samples");
    for feature in profile["features"].as_array().expect("features") {
        let counted: u64 = feature["counts"].as_array().expect("counts").iter().filter_map(Value::as_u64).sum();
        assert_eq!(counted, samples, "a read split a row: {profile}");
    }
    for _ in 0..2 {
        let acknowledged = client
            .post(format!("{base}/trainloop/profile/ack?reader={reader}"))
            .json(&serde_json::json!({"cursor": profile["cursor"]}))
            .send()
            .await
            .expect("acknowledge");
        assert_eq!(acknowledged.status().as_u16(), 200, "{profile}");
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_row_is_in_exactly_one_read_of_each_reader_under_concurrent_predictions() {
    let server = start_server().await;
    let model = small_model();
    let digest = model.digest.clone();
    server.state.set_model(model);
    let client = reqwest::Client::new();
    let base = server.base.clone();

    let sending = Arc::new(AtomicBool::new(true));
    let readers: Vec<_> = READERS
        .iter()
        .map(|reader| {
            let (client, base, digest, sending) = (client.clone(), base.clone(), digest.clone(), sending.clone());
            tokio::spawn(async move {
                let mut reads = Vec::new();
                while sending.load(Ordering::SeqCst) {
                    reads.push(read_and_acknowledge(&client, &base, &digest, reader).await);
                }
                reads
            })
        })
        .collect();
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let mut rows = 0;
                for i in 0..REQUESTS_PER_SENDER {
                    let x = (s * 7 + i) % 100;
                    let (path, body, sent) = if i % 2 == 0 {
                        ("/v1/models/model:predict", format!(r#"{{"instances":[{{"x":{x},"k":"a"}}]}}"#), 1)
                    } else {
                        let xs = vec![x.to_string(); BATCH].join(",");
                        let ks = ["\"b\""; BATCH].join(",");
                        let body =
                            format!(r#"{{"inputs":[{{"name":"x","data":[{xs}]}},{{"name":"k","data":[{ks}]}}]}}"#);
                        ("/v2/models/model/infer", body, BATCH)
                    };
                    let response = client.post(format!("{base}{path}")).body(body).send().await.expect("predict");
                    assert_eq!(response.status().as_u16(), 200, "{}", response.text().await.unwrap_or_default());
                    rows += sent as u64;
                }
                rows
            })
        })
        .collect();
    let mut sent = 0;
    for sender in senders {
        sent += sender.await.expect("sender");
    }
    sending.store(false, Ordering::SeqCst);
    for (reader, reads) in READERS.iter().zip(readers) {
        let reads = reads.await.expect("reader");
        let last = read_and_acknowledge(&client, &base, &digest, reader).await;
        assert!(reads.len() > 1, "{reader} did not overlap the senders");
        assert_eq!(reads.iter().sum::<u64>() + last, sent, "{reader}");
        assert_eq!(read_and_acknowledge(&client, &base, &digest, reader).await, 0, "{reader}: all subtracted");
    }
    assert_eq!(sent, (SENDERS * REQUESTS_PER_SENDER / 2 * (1 + BATCH)) as u64);
}

#[tokio::test]
async fn every_profile_answer_names_the_model() {
    let server = start_server().await;
    let model = small_model();
    let digest = model.digest.clone();
    server.state.set_model(model);
    let client = reqwest::Client::new();
    for path in ["/trainloop/profile", "/trainloop/profile/reference"] {
        let response = client.get(format!("{}{path}", server.base)).send().await.expect("profile");
        assert_eq!(response.headers()[MODEL_DIGEST_HEADER], digest.as_str(), "{path}");
        let profile: Value = response.json().await.expect("profile JSON");
        assert_eq!(profile["modelDigest"], digest.as_str(), "{path}: {profile}");
        assert_eq!(profile["formatVersion"], 1, "{path}: {profile}");
    }
}

#[tokio::test]
async fn an_acknowledgement_this_server_cannot_match_subtracts_nothing_and_says_why() {
    let server = start_server().await;
    server.state.set_model(small_model());
    let client = reqwest::Client::new();
    let base = &server.base;
    let predicted = client
        .post(format!("{base}/v1/models/model:predict"))
        .body(r#"{"instances":[{"x":1,"k":"a"}]}"#)
        .send()
        .await
        .expect("predict");
    assert_eq!(predicted.status().as_u16(), 200);
    let read = async |query: &str| -> (u16, Value) {
        let response = client.get(format!("{base}/trainloop/profile{query}")).send().await.expect("read");
        (response.status().as_u16(), response.json().await.expect("JSON"))
    };
    let acknowledge = async |query: &str, body: &str| -> (u16, Value) {
        let url = format!("{base}/trainloop/profile/ack{query}");
        let response = client.post(url).body(body.to_string()).send().await.expect("acknowledge");
        (response.status().as_u16(), response.json().await.expect("JSON"))
    };
    let (_, profile) = read("?reader=a").await;
    let cursor = profile["cursor"].as_str().expect("a cursor").to_string();
    // Another process's cursor (the server restarted), and no cursor at all.
    assert_eq!(acknowledge("?reader=a", r#"{"cursor": "00000000000000ff-1"}"#).await.0, 409);
    assert_eq!(acknowledge("?reader=a", r#"{"cursor": "seven"}"#).await.0, 400);
    assert_eq!(acknowledge("?reader=a", "{}").await.0, 400);
    // No reader, one too long, one that never read: what the reader must do is said.
    let body = format!(r#"{{"cursor": "{cursor}"}}"#);
    let (status, answer) = acknowledge("", &body).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("?reader=")), "{answer}");
    let long = format!("?reader={}", "r".repeat(257));
    assert_eq!(read(&long).await.0, 400);
    assert_eq!(acknowledge(&long, &body).await.0, 400);
    let (status, answer) = acknowledge("?reader=b", &body).await;
    assert_eq!(status, 410);
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("reader \"b\" is not held")), "{answer}");
    assert_eq!(read("?reader=a").await.1["samples"], 1, "nothing subtracted");
    // A read that names no reader answers every row since start, holds nothing, and has no cursor.
    assert_eq!(acknowledge("?reader=a", &body).await.0, 200);
    let (status, peek) = read("").await;
    assert_eq!((status, &peek["samples"], peek.get("cursor"), peek.get("reader")), (200, &1.into(), None, None));
    assert_eq!(read("?reader=a").await.1["samples"], 0);
}

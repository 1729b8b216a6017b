//! Predictions hammer the server from many tasks while a drift reader reads
//! the live profile in a loop over HTTP and acknowledges each read: every row
//! is in exactly one acknowledged read, each read holds whole rows, and each
//! read names the model.

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

/// Reads once and acknowledges the read (twice: it subtracts once); checks the
/// digest (body and header) and that every feature's counts add up to the
/// samples. Returns the samples.
async fn read_and_acknowledge(client: &reqwest::Client, base: &str, digest: &str) -> u64 {
    let response = client.get(format!("{base}/trainloop/profile")).send().await.expect("read");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()[MODEL_DIGEST_HEADER], digest);
    let profile: Value = response.json().await.expect("profile JSON");
    assert_eq!(profile["modelDigest"], digest, "{profile}");
    let samples = profile["samples"].as_u64().expect("samples");
    for feature in profile["features"].as_array().expect("features") {
        let counted: u64 = feature["counts"].as_array().expect("counts").iter().filter_map(Value::as_u64).sum();
        assert_eq!(counted, samples, "a read split a row: {profile}");
    }
    for _ in 0..2 {
        let acknowledged = client
            .post(format!("{base}/trainloop/profile/ack"))
            .json(&serde_json::json!({"cursor": profile["cursor"]}))
            .send()
            .await
            .expect("acknowledge");
        assert_eq!(acknowledged.status().as_u16(), 200, "{profile}");
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_row_is_in_exactly_one_read_under_concurrent_predictions() {
    let server = start_server().await;
    let model = small_model();
    let digest = model.digest.clone();
    server.state.set_model(model);
    let client = reqwest::Client::new();
    let base = server.base.clone();

    let sending = Arc::new(AtomicBool::new(true));
    let reader = tokio::spawn({
        let (client, base, digest, sending) = (client.clone(), base.clone(), digest.clone(), sending.clone());
        async move {
            let mut reads = Vec::new();
            while sending.load(Ordering::SeqCst) {
                reads.push(read_and_acknowledge(&client, &base, &digest).await);
            }
            reads
        }
    });
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
    let reads = reader.await.expect("reader");
    let last = read_and_acknowledge(&client, &base, &digest).await;

    assert!(reads.len() > 1, "the reader did not overlap the senders");
    assert_eq!(reads.iter().sum::<u64>() + last, sent);
    assert_eq!(read_and_acknowledge(&client, &base, &digest).await, 0, "every acknowledged row subtracted");
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
    let acknowledge = async |body: &str| {
        let response = client.post(format!("{base}/trainloop/profile/ack")).body(body.to_string()).send().await;
        response.expect("acknowledge").status().as_u16()
    };
    // Another process's cursor (the server restarted), and no cursor at all.
    assert_eq!(acknowledge(r#"{"cursor": "00000000000000ff-1"}"#).await, 409);
    assert_eq!(acknowledge(r#"{"cursor": "seven"}"#).await, 400);
    assert_eq!(acknowledge("{}").await, 400);
    let profile: Value =
        client.get(format!("{base}/trainloop/profile")).send().await.expect("read").json().await.expect("JSON");
    assert_eq!(profile["samples"], 1, "{profile}");
}

//! The server is live at once but ready, and predicting, only once the model is set.

use std::sync::Arc;

use trainloop::artifact::{FeatureSchema, sha256_digest};
use trainloop_example_model_server::load::LoadedModel;
use trainloop_example_model_server::{AppState, router};
use trainloop_example_trainer::config::Hyperparameters;
use trainloop_example_trainer::train::{TrainInputs, train};

fn small_model() -> LoadedModel {
    let mut csv = String::from("x,k,y\n");
    for i in 0..40 {
        csv.push_str(&format!("{i},{},{}\n", if i % 2 == 0 { "a" } else { "b" }, if i < 20 { "no" } else { "yes" }));
    }
    let trained = train(&TrainInputs {
        data: csv.into_bytes(),
        schema: FeatureSchema::from_json(
            r#"[{"name":"x","type":"number","min":0,"max":100},{"name":"k","type":"category","values":["a","b"]}]"#,
        )
        .expect("schema"),
        config: Hyperparameters::from_json(r#"{"target":"y"}"#).expect("config"),
        seed: 1,
    })
    .expect("training");
    LoadedModel { digest: sha256_digest(&trained.bytes), artifact: trained.artifact }
}

#[tokio::test]
async fn ready_and_serving_only_after_the_model_is_set() {
    let state = Arc::new(AppState::new("model"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(axum::serve(listener, router(state.clone())).into_future());
    trainloop_example_trainer::fetch::install_crypto_provider();
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move { client.get(format!("{base}{path}")).send().await.expect("request").status().as_u16() }
    };
    let predict =
        || client.post(format!("{base}/v1/models/model:predict")).body(r#"{"instances":[{"x":30,"k":"b"}]}"#).send();

    assert_eq!(status("/v2/health/live").await, 200);
    assert_eq!(status("/v2/health/ready").await, 503);
    assert_eq!(predict().await.expect("request").status().as_u16(), 503);

    state.set_model(small_model());
    assert_eq!(status("/v2/health/ready").await, 200);
    assert_eq!(status("/v2/models/model/ready").await, 200);
    assert_eq!(status("/v2/models/other").await, 404);
    let body: serde_json::Value = predict().await.expect("request").json().await.expect("json");
    assert_eq!(body["predictions"][0]["label"], "yes", "{body}");
    // A category outside the declared values is refused with the feature named.
    let refused = client
        .post(format!("{base}/v1/models/model:predict"))
        .body(r#"{"instances":[{"x":30,"k":"c"}]}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status().as_u16(), 400);
    let error: serde_json::Value = refused.json().await.expect("json error");
    assert!(error["error"].as_str().unwrap_or_default().contains("feature \"k\""), "{error}");

    let metrics = client.get(format!("{base}/metrics")).send().await.expect("request").text().await.expect("text");
    assert!(metrics.contains("trainloop_model_rejected_requests_total{reason=\"not_ready\"} 1"), "{metrics}");
    assert!(metrics.contains("trainloop_model_predicted_class_total{class=\"yes\"} 1"), "{metrics}");
    server.abort();
}

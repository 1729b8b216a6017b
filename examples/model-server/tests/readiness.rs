//! The server is live at once but ready, and predicting, only once the model is set.

mod common;

use common::{small_model, start_server};

#[tokio::test]
async fn ready_and_serving_only_after_the_model_is_set() {
    let server = start_server().await;
    let (base, state) = (server.base.clone(), server.state.clone());
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
}

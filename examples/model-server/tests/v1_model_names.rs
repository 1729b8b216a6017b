//! Which model a V1 path names: the exact path of the served model takes a
//! shortcut past decoding; any other is decoded as axum's `Path` would, so
//! both must answer alike.

// Only `small_model` is used here.
#[allow(dead_code)]
mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::small_model;
use tower::ServiceExt;
use trainloop_example_model_server::{AppState, router};

#[tokio::test]
async fn the_served_model_answers_under_any_spelling_of_its_name_and_no_other() {
    let state = Arc::new(AppState::new("model"));
    state.set_model(small_model());
    let app = router(state.clone());
    let cases = [
        ("/v1/models/model:predict", StatusCode::OK),
        ("/v1/models/mod%65l:predict", StatusCode::OK),
        ("/v1/models/model%3Apredict", StatusCode::OK),
        ("/v1/models/other:predict", StatusCode::NOT_FOUND),
        ("/v1/models/model:explain", StatusCode::NOT_FOUND),
        ("/v1/models/model", StatusCode::NOT_FOUND),
        ("/v1/models/%FF:predict", StatusCode::BAD_REQUEST),
    ];
    for (path, expected) in cases {
        let request = Request::post(path).body(Body::from(r#"{"instances":[{"x":42,"k":"a"}]}"#)).expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), expected, "{path}");
    }
    let metrics = state.metrics.encode();
    assert!(metrics.contains("trainloop_model_predictions_total 3"), "{metrics}");
    assert!(metrics.contains("trainloop_model_rejected_requests_total{reason=\"not_found\"} 3"), "{metrics}");
}

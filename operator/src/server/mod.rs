//! The operator's own HTTP endpoints: `/livez`, `/readyz` and Prometheus `/metrics`.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{Router, extract::State, http::StatusCode, http::header, response::IntoResponse, routing::get};
use prometheus_client::{encoding::text::encode, registry::Registry};

/// Shared by the endpoints and the controllers that feed them.
#[derive(Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
    registry: Arc<Registry>,
}

impl Health {
    /// Endpoints serving the metrics of `registry`; not ready until [`Health::set_ready`].
    pub fn new(registry: Registry) -> Self {
        Health { ready: Arc::default(), registry: Arc::new(registry) }
    }

    /// Mark the operator ready (its caches have synced).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// The axum router of the three endpoints.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/livez", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if health.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
    }
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    let mut body = String::new();
    match encode(&mut body, &health.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

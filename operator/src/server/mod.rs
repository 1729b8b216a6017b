//! The operator's own HTTP endpoints: `/livez`, `/readyz` and Prometheus `/metrics`, plus the
//! Alertmanager receiver of webhook monitors when the operator is given one.

pub mod alertmanager;

use std::sync::Arc;

use axum::{Router, extract::State, http::StatusCode, http::header, response::IntoResponse, routing::get};
use prometheus_client::{encoding::text::encode, registry::Registry};

use crate::controllers::WatchHealth;
use crate::leader::Role;

/// Shared by the endpoints and the controllers that feed them.
#[derive(Clone, Default)]
pub struct Health {
    watches: WatchHealth,
    registry: Arc<Registry>,
    role: Role,
    alertmanager: Option<alertmanager::Receiver>,
}

impl Health {
    /// Endpoints serving the metrics of `registry`; ready while `watches` says so.
    pub fn new(registry: Registry, watches: WatchHealth) -> Self {
        Health { watches, registry: Arc::new(registry), role: Role::default(), alertmanager: None }
    }

    /// Endpoints that also tell whether this replica leads ([`Role`]).
    pub fn with_role(self, role: Role) -> Self {
        Health { role, ..self }
    }

    /// Endpoints that also receive Alertmanager's notifications for webhook monitors
    /// ([`alertmanager::PATH`]), refused while this replica is a standby.
    pub fn with_alertmanager(self, receiver: alertmanager::Receiver) -> Self {
        Health { alertmanager: Some(receiver), ..self }
    }

    /// The axum router of the three endpoints, and the receiver's when there is one.
    pub fn router(&self) -> Router {
        let router = Router::new()
            .route("/livez", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.clone());
        match &self.alertmanager {
            Some(receiver) => router.merge(receiver.clone().with_role(self.role.clone()).router()),
            None => router,
        }
    }
}

/// Serve the endpoints on `listener` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    health: Health,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, health.router()).with_graceful_shutdown(stop.cancelled_owned()).await
}

/// A standby answers ready: it is healthy, and a Deployment rolling out two replicas must not
/// wait forever for the one that cannot lead. The body says which it is.
async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if let Some(standby) = health.role.standby() {
        return (StatusCode::OK, standby.to_string());
    }
    match health.watches.check() {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(problem) => (StatusCode::SERVICE_UNAVAILABLE, problem),
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

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn readyz_of(health: &Health) -> (StatusCode, String) {
        let request = http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap();
        let response = health.router().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn readyz_tells_a_standby_from_a_leader() {
        let watches = WatchHealth::default();
        let role = Role::default();
        let health = Health::new(Registry::default(), watches.clone()).with_role(role.clone());
        assert_eq!(readyz_of(&health).await, (StatusCode::SERVICE_UNAVAILABLE, "caches not synced".into()));
        role.become_standby();
        assert_eq!(readyz_of(&health).await, (StatusCode::OK, "standby: another replica holds the lease".into()));
        role.become_leader();
        watches.set_synced();
        assert_eq!(readyz_of(&health).await, (StatusCode::OK, "ok".into()));
    }
}

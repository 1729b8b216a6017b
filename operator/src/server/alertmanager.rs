//! `POST /hooks/alertmanager`: an Alertmanager webhook receiver (payload version 4) that fires
//! the webhook monitors of DriftPolicies. A firing alert whose labels contain a monitor's
//! `matchLabels` fires that monitor when the request's bearer token is the monitor's token.
//! The firings go to [`Firings`], where the DriftPolicy controller takes them.

mod payload;
mod tokens;

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;

use crate::api::{DriftPolicy, SecretKeyRef};
use crate::leader::Role;
use crate::monitors::webhook::{Firing, Firings, PolicyKey};

pub use tokens::{SecretTokens, TOKEN_TTL, TokenSource};

/// The path Alertmanager's `webhook_configs[].url` points at.
pub const PATH: &str = "/hooks/alertmanager";

/// The largest notification read. Alertmanager sends every alert of a group in one body
/// (`max_alerts` caps it); a thousand alerts with their labels and annotations fit.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The DriftPolicies the receiver matches alerts against.
pub trait Policies: Send + Sync + 'static {
    fn policies(&self) -> Vec<Arc<DriftPolicy>>;
}

impl Policies for Store<DriftPolicy> {
    fn policies(&self) -> Vec<Arc<DriftPolicy>> {
        self.state()
    }
}

/// The cache the controllers keep: policies that do not parse have no monitors to fire.
impl Policies for Store<DeserializeGuard<DriftPolicy>> {
    fn policies(&self) -> Vec<Arc<DriftPolicy>> {
        self.state().iter().filter_map(|guard| guard.0.as_ref().ok().cloned().map(Arc::new)).collect()
    }
}

/// The controllers' current caches of policies, one per watched scope (all namespaces, or each
/// listed one): each life of the controllers makes new ones and puts them here, so the receiver,
/// which outlives them, always reads the live ones.
#[derive(Clone, Default)]
pub struct LatestPolicies(Arc<std::sync::RwLock<std::collections::BTreeMap<String, PolicyStore>>>);

type PolicyStore = Store<DeserializeGuard<DriftPolicy>>;

impl LatestPolicies {
    /// The cache of `scope`, replacing that scope's previous one.
    pub fn set(&self, scope: &str, store: PolicyStore) {
        self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(scope.to_string(), store);
    }
}

impl Policies for LatestPolicies {
    fn policies(&self) -> Vec<Arc<DriftPolicy>> {
        let stores = self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        stores.values().flat_map(|store| store.policies()).collect()
    }
}

/// What the receiver reads and where it records.
#[derive(Clone)]
pub struct Receiver {
    policies: Arc<dyn Policies>,
    tokens: Arc<dyn TokenSource>,
    firings: Firings,
    role: Role,
}

impl Receiver {
    pub fn new(policies: impl Policies, tokens: impl TokenSource, firings: Firings) -> Self {
        Receiver { policies: Arc::new(policies), tokens: Arc::new(tokens), firings, role: Role::default() }
    }

    /// A receiver that refuses notifications while `role` is a standby's.
    pub fn with_role(self, role: Role) -> Self {
        Receiver { role, ..self }
    }

    /// The receiver of the operator whose context is `ctx`: the controllers' policies, its
    /// firings, tokens read from Secrets with its client.
    pub fn of(ctx: &crate::controllers::Context) -> Self {
        Receiver::new(ctx.policies.clone(), SecretTokens::new(ctx.client.clone()), ctx.firings.clone())
    }

    /// The route, for the operator's server.
    pub fn router(&self) -> Router {
        Router::new().route(PATH, post(receive)).layer(DefaultBodyLimit::max(BODY_LIMIT)).with_state(self.clone())
    }

    /// Serve the route alone on `listener` until `stop` (`--alerts-addr`).
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        stop: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router()).with_graceful_shutdown(stop.cancelled_owned()).await
    }
}

/// One webhook monitor of one policy.
struct Target {
    policy: PolicyKey,
    monitor: String,
    match_labels: std::collections::BTreeMap<String, String>,
    token: SecretKeyRef,
}

/// Which monitors fired: the answer's body, for the sender's logs and for tests.
#[derive(serde::Serialize)]
struct Fired {
    fired: Vec<String>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    // Only the leader's controller takes firings: a standby's would never be taken. Alertmanager
    // retries a 5xx, and the Service may send the retry to the leader.
    if let Some(standby) = receiver.role.standby() {
        return (StatusCode::SERVICE_UNAVAILABLE, standby).into_response();
    }
    let Some(presented) = bearer_token(&headers) else {
        return unauthorized("no bearer token");
    };
    let notification = match payload::parse(&body) {
        Ok(notification) => notification,
        Err(problem) => return (StatusCode::BAD_REQUEST, problem).into_response(),
    };
    // Every monitor an alert of this notification matches, resolved ones too: a sender whose
    // token is right hears 200 for a resolution, one whose token is wrong hears 401 either way.
    let targets = webhook_targets(receiver.policies.as_ref())
        .into_iter()
        .filter(|target| notification.alerts.iter().any(|alert| alert.matches(&target.match_labels)));
    let mut accepting = Vec::new();
    let mut unreadable = None;
    for target in targets {
        match receiver.tokens.token(&target.policy.namespace, &target.token).await {
            Ok(Some(token)) if tokens::same_token(presented, &token) => accepting.push(target),
            Ok(_) => {}
            Err(problem) => unreadable = Some(problem),
        }
    }
    if accepting.is_empty() {
        return match unreadable {
            // Alertmanager retries a 5xx: the token may be readable then.
            Some(problem) => (StatusCode::SERVICE_UNAVAILABLE, problem).into_response(),
            None => unauthorized("no webhook monitor matching these alerts accepts this token"),
        };
    }
    let received = crate::api::Time(k8s_openapi::jiff::Timestamp::now());
    let mut fired = Vec::new();
    for alert in notification.alerts.iter().filter(|alert| alert.status == payload::AlertStatus::Firing) {
        for target in accepting.iter().filter(|target| alert.matches(&target.match_labels)) {
            let firing =
                Firing { labels: alert.labels.clone(), summary: alert.summary(), received: received.clone(), count: 1 };
            tracing::info!(policy = %target.policy, monitor = target.monitor, alert = firing.describe(), "webhook monitor fired");
            receiver.firings.record(target.policy.clone(), &target.monitor, firing);
            fired.push(format!("{}/{}", target.policy, target.monitor));
        }
    }
    (StatusCode::OK, Json(Fired { fired })).into_response()
}

fn webhook_targets(policies: &dyn Policies) -> Vec<Target> {
    let mut targets = Vec::new();
    for policy in policies.policies() {
        let key = PolicyKey::of(policy.as_ref());
        for monitor in &policy.spec.monitors {
            if let Some(webhook) = &monitor.webhook {
                targets.push(Target {
                    policy: key.clone(),
                    monitor: monitor.name.clone(),
                    match_labels: webhook.match_labels.clone(),
                    token: webhook.token_secret_ref.clone(),
                });
            }
        }
    }
    targets
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case, RFC 7235).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unauthorized(why: &'static str) -> Response {
    tracing::warn!(why, "refused an Alertmanager notification");
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], why).into_response()
}

#[cfg(test)]
mod tests;

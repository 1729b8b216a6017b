//! The receiver over HTTP, with policies in a reflector store and tokens from a map.

use std::collections::HashMap;

use futures::StreamExt;
use kube::runtime::{reflector, watcher};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

/// Tokens by (namespace, secret name); `None` stands for a Secret that cannot be read.
struct MapTokens(HashMap<(String, String), Option<String>>);

impl TokenSource for MapTokens {
    fn token<'a>(
        &'a self,
        namespace: &'a str,
        secret: &'a SecretKeyRef,
    ) -> futures::future::BoxFuture<'a, Result<Option<String>, String>> {
        let found = match self.0.get(&(namespace.to_string(), secret.name.clone())) {
            Some(Some(token)) => Ok(Some(token.clone())),
            Some(None) => Err(format!("reading Secret {namespace}/{}: connection refused", secret.name)),
            None => Ok(None),
        };
        Box::pin(async move { found })
    }
}

fn policy(namespace: &str, name: &str, monitor: &str, labels: Value, secret: &str) -> DriftPolicy {
    serde_json::from_value(json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "DriftPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "deploymentRef": {"name": "served"},
            "monitors": [
                {"name": "psi", "featureDrift": {"threshold": 0.2}},
                {"name": monitor, "webhook": {"matchLabels": labels, "tokenSecretRef": {"name": secret, "key": "token"}}}
            ]
        }
    }))
    .unwrap()
}

/// Two policies in two namespaces, each with its own token, and one whose Secret is unreadable.
fn receiver() -> (Receiver, Firings) {
    let (store, mut writer) = reflector::store();
    for policy in [
        policy("ml", "cancer", "alerts", json!({"model": "cancer"}), "cancer-hook"),
        policy("risk", "churn", "pages", json!({"model": "churn", "severity": "page"}), "churn-hook"),
        policy("ml", "broken", "alerts", json!({"model": "broken"}), "unreadable"),
    ] {
        writer.apply_watcher_event(&watcher::Event::Apply(policy));
    }
    let tokens = MapTokens(HashMap::from([
        (("ml".into(), "cancer-hook".into()), Some("cancer-token".into())),
        (("risk".into(), "churn-hook".into()), Some("churn-token".into())),
        (("ml".into(), "unreadable".into()), None),
    ]));
    let firings = Firings::default();
    (Receiver::new(store, tokens, firings.clone()), firings)
}

fn alert(status: &str, labels: Value) -> Value {
    json!({"status": status, "labels": labels, "annotations": {"summary": "inputs shifted"},
           "startsAt": "2026-11-30T23:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f"})
}

fn notification(alerts: Vec<Value>) -> String {
    json!({"version": "4", "status": "firing", "receiver": "trainloop", "groupKey": "{}", "alerts": alerts}).to_string()
}

async fn post(router: Router, token: Option<&str>, body: impl Into<axum::body::Body>) -> (StatusCode, String) {
    let mut request = http::Request::post(PATH).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = router.oneshot(request.body(body.into()).unwrap()).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn key(namespace: &str, name: &str) -> PolicyKey {
    PolicyKey { namespace: namespace.into(), name: name.into() }
}

#[tokio::test]
async fn a_firing_alert_with_the_monitors_token_fires_it_and_wakes_its_policy() {
    let (receiver, firings) = receiver();
    let mut wakeups = Box::pin(firings.wakeups());
    let labels = json!({"alertname": "Drift", "model": "cancer", "instance": "a"});
    let (status, body) =
        post(receiver.router(), Some("cancer-token"), notification(vec![alert("firing", labels)])).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"fired":["ml/cancer/alerts"]}"#));
    assert_eq!(wakeups.next().await, Some(key("ml", "cancer")));
    let firing = firings.take(&key("ml", "cancer"), "alerts").expect("a pending firing");
    assert_eq!(firing.labels["instance"], "a");
    assert_eq!(firing.describe(), r#"alert Drift{instance="a",model="cancer"}: inputs shifted"#);
    assert_eq!(firings.take(&key("risk", "churn"), "pages"), None);
}

#[tokio::test]
async fn only_the_monitors_whose_token_was_presented_fire() {
    let (receiver, firings) = receiver();
    let both = vec![
        alert("firing", json!({"alertname": "Drift", "model": "cancer"})),
        alert("firing", json!({"alertname": "Drift", "model": "churn", "severity": "page"})),
    ];
    let (status, body) = post(receiver.router(), Some("churn-token"), notification(both)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"fired":["risk/churn/pages"]}"#));
    assert_eq!(firings.take(&key("ml", "cancer"), "alerts"), None);
    assert!(firings.take(&key("risk", "churn"), "pages").is_some());
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_refused_and_fires_nothing() {
    let (receiver, firings) = receiver();
    let body = notification(vec![alert("firing", json!({"alertname": "Drift", "model": "cancer"}))]);
    for token in [Some("churn-token"), Some("cancer-token-but-longer"), Some(""), None] {
        let (status, _) = post(receiver.router(), token, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "token {token:?}");
    }
    // A label set no monitor matches is refused the same way: the answer tells nothing about
    // which labels a policy watches.
    let unmatched = notification(vec![alert("firing", json!({"alertname": "Drift", "model": "other"}))]);
    assert_eq!(post(receiver.router(), Some("cancer-token"), unmatched).await.0, StatusCode::UNAUTHORIZED);
    // Only part of the monitor's labels is not a match.
    let partial = notification(vec![alert("firing", json!({"model": "churn"}))]);
    assert_eq!(post(receiver.router(), Some("churn-token"), partial).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(firings.take(&key("ml", "cancer"), "alerts"), None);
    assert_eq!(firings.take(&key("risk", "churn"), "pages"), None);
}

#[tokio::test]
async fn a_resolved_alert_is_accepted_and_fires_nothing() {
    let (receiver, firings) = receiver();
    let resolved = notification(vec![alert("resolved", json!({"alertname": "Drift", "model": "cancer"}))]);
    let (status, body) = post(receiver.router(), Some("cancer-token"), resolved).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"fired":[]}"#));
    assert_eq!(firings.take(&key("ml", "cancer"), "alerts"), None);
}

#[tokio::test]
async fn bad_bodies_are_refused_with_their_reason() {
    let (receiver, _) = receiver();
    let (status, body) = post(receiver.router(), Some("cancer-token"), "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.starts_with("malformed JSON"), "{body}");
    let v3 = json!({"version": "3", "alerts": []}).to_string();
    assert_eq!(
        post(receiver.router(), Some("cancer-token"), v3).await,
        (StatusCode::BAD_REQUEST, r#"payload version "3" is not supported, only "4""#.into())
    );
    let huge = notification(vec![alert("firing", json!({"model": "cancer", "padding": "x".repeat(BODY_LIMIT)}))]);
    assert_eq!(post(receiver.router(), Some("cancer-token"), huge).await.0, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn an_unreadable_token_asks_the_sender_to_retry() {
    let (receiver, firings) = receiver();
    let body = notification(vec![alert("firing", json!({"alertname": "Drift", "model": "broken"}))]);
    let (status, problem) = post(receiver.router(), Some("any"), body).await;
    assert_eq!(
        (status, problem.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "reading Secret ml/unreadable: connection refused")
    );
    assert_eq!(firings.take(&key("ml", "broken"), "alerts"), None);
}

#[test]
fn only_a_bearer_authorization_carries_a_token() {
    let headers = |value: &str| HeaderMap::from_iter([(header::AUTHORIZATION, value.parse().unwrap())]);
    assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
    assert_eq!(bearer_token(&headers("bearer abc")), Some("abc"));
    assert_eq!(bearer_token(&headers("Basic abc")), None);
    assert_eq!(bearer_token(&headers("Bearer ")), None);
    assert_eq!(bearer_token(&HeaderMap::new()), None);
}

#[tokio::test]
async fn the_operators_server_serves_the_receiver_only_when_given_one_and_leading() {
    let role = crate::leader::Role::default();
    let health = crate::server::Health::default().with_role(role.clone());
    let body = notification(vec![alert("firing", json!({"model": "cancer"}))]);
    assert_eq!(post(health.router(), Some("cancer-token"), body.clone()).await.0, StatusCode::NOT_FOUND);
    let (receiver, firings) = receiver();
    let health = health.with_alertmanager(receiver);
    role.become_standby();
    assert_eq!(
        post(health.router(), Some("cancer-token"), body.clone()).await,
        (StatusCode::SERVICE_UNAVAILABLE, "standby: another replica holds the lease".into())
    );
    assert_eq!(firings.take(&key("ml", "cancer"), "alerts"), None);
    role.become_leader();
    assert_eq!(post(health.router(), Some("cancer-token"), body).await.0, StatusCode::OK);
    assert!(firings.take(&key("ml", "cancer"), "alerts").is_some());
}

#[tokio::test]
async fn a_storm_of_notifications_is_one_pending_firing() {
    let (receiver, firings) = receiver();
    let router = receiver.router();
    let body = notification(vec![alert("firing", json!({"alertname": "Drift", "model": "cancer"}))]);
    for _ in 0..1000 {
        assert_eq!(post(router.clone(), Some("cancer-token"), body.clone()).await.0, StatusCode::OK);
    }
    let mut wakeups = Box::pin(firings.wakeups());
    assert_eq!(wakeups.next().await, Some(key("ml", "cancer")));
    assert_eq!(firings.take(&key("ml", "cancer"), "alerts").map(|firing| firing.count), Some(1000));
    assert!(tokio::time::timeout(std::time::Duration::ZERO, wakeups.next()).await.is_err(), "one wakeup only");
}

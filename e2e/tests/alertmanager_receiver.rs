//! The webhook monitor's receiver end to end: a real Alertmanager routes an alert posted to its
//! API to the operator's server, which reads the DriftPolicy from a cache of localplane's and
//! the token from a Secret there, and files the firing the DriftPolicy controller takes.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use trainloop::api::DriftPolicy;
use trainloop::monitors::webhook::{Firings, PolicyKey};
use trainloop::server::{Health, alertmanager};
use trainloop_e2e::rbac::{Access, chart_rules, recording_client};
use trainloop_e2e::{Env, alerting};

const TOKEN: &str = "first-token";

fn secret(token: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "drift-hook"}, "stringData": {"token": format!("{token}\n")}})
}

/// The operator's server with the receiver, on a loopback port until `stop`; its URL.
async fn serve_receiver(receiver: alertmanager::Receiver, stop: CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{}", listener.local_addr().unwrap(), alertmanager::PATH);
    tokio::spawn(trainloop::server::serve(listener, Health::default().with_alertmanager(receiver), stop));
    url
}

async fn post_directly(url: &str, token: &str, labels: serde_json::Value) -> reqwest::StatusCode {
    let body = json!({"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": labels}]});
    let http = trainloop::triggers::data::http_client().unwrap();
    http.post(url).bearer_auth(token).json(&body).send().await.unwrap().status()
}

#[tokio::test]
async fn an_alert_sent_through_a_real_alertmanager_fires_the_matching_monitor() {
    let env = Env::start().await.unwrap();
    env.create::<Secret>(secret(TOKEN)).await.unwrap();
    env.create::<DriftPolicy>(json!({
        "apiVersion": "trainloop.dev/v1alpha1", "kind": "DriftPolicy", "metadata": {"name": "cancer"},
        "spec": {"deploymentRef": {"name": "cancer"}, "monitors": [{"name": "alerts", "webhook": {
            "matchLabels": {"model": "cancer"}, "tokenSecretRef": {"name": "drift-hook", "key": "token"}}}]}
    }))
    .await
    .unwrap();

    // The cache the operator keeps of its DriftPolicies.
    let (policies, writer) = reflector::store();
    let watch = watcher(env.api::<DriftPolicy>(), watcher::Config::default()).reflect(writer).applied_objects();
    let stop = CancellationToken::new();
    let watching = stop.clone();
    tokio::spawn(async move { watching.run_until_cancelled(watch.for_each(|_| async {})).await });
    policies.wait_until_ready().await.unwrap();

    let firings = Firings::default();
    let mut wakeups = Box::pin(firings.wakeups());
    // Tokens cached for longer than the test takes, to show the cache is used, read by a client
    // whose requests are checked against the chart's RBAC rules.
    let kubeconfig = kube::config::Kubeconfig::read_from(env.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    let (client, recorded) = recording_client(config).unwrap();
    let tokens = alertmanager::SecretTokens::with_ttl(client, Duration::from_secs(3600));
    let receiver = alertmanager::Receiver::new(policies.clone(), tokens, firings.clone());
    let url = serve_receiver(receiver, stop.clone()).await;
    let alertmanager = alerting::alertmanager(&url, TOKEN).await.unwrap();

    let alert = json!([{
        "labels": {"alertname": "ModelDrift", "model": "cancer", "feature": "mean_radius"},
        "annotations": {"summary": "mean_radius shifted"}
    }]);
    let http = trainloop::triggers::data::http_client().unwrap();
    let posted = http.post(format!("{}/api/v2/alerts", alertmanager.url)).json(&alert).send().await.unwrap();
    assert!(posted.status().is_success(), "Alertmanager refused the alert: {}", posted.status());

    let woken = tokio::time::timeout(alerting::START_TIMEOUT, wakeups.next()).await.expect("no firing arrived");
    let key = PolicyKey { namespace: "default".into(), name: "cancer".into() };
    assert_eq!(woken, Some(key.clone()));
    let firing = firings.take(&key, "alerts").expect("the firing is pending");
    assert_eq!(firing.labels.get("feature").map(String::as_str), Some("mean_radius"));
    assert_eq!(firing.describe(), r#"alert ModelDrift{feature="mean_radius",model="cancer"}: mean_radius shifted"#);

    // The same alert with a wrong token, straight to the receiver: refused, nothing filed.
    let labels = json!({"alertname": "ModelDrift", "model": "cancer"});
    assert_eq!(post_directly(&url, "wrong-token", labels.clone()).await, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(firings.take(&key, "alerts"), None);

    // A rotated token: the cached one holds until it expires, then the Secret is read again.
    let patch = Patch::Merge(secret("second-token"));
    env.api::<Secret>().patch("drift-hook", &PatchParams::default(), &patch).await.unwrap();
    assert_eq!(post_directly(&url, TOKEN, labels.clone()).await, reqwest::StatusCode::OK);
    let uncached = alertmanager::SecretTokens::with_ttl(env.client.clone(), Duration::ZERO);
    let rereading = alertmanager::Receiver::new(policies, uncached, firings.clone());
    let fresh_url = serve_receiver(rereading, stop.clone()).await;
    assert_eq!(post_directly(&fresh_url, TOKEN, labels.clone()).await, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(post_directly(&fresh_url, "second-token", labels).await, reqwest::StatusCode::OK);

    let secret_read = Access { group: String::new(), resource: "secrets".into(), verb: "get".into() };
    assert_eq!(recorded.accesses(), vec![secret_read.clone()], "one read of the Secret, then the cache");
    assert!(chart_rules("rules.yaml").iter().any(|rule| rule.allows(&secret_read)), "the chart must allow it");

    stop.cancel();
    drop(alertmanager);
    env.shutdown().await;
}

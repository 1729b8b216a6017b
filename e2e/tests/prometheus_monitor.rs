//! The prometheus monitor's source against a real Prometheus that scrapes a metrics endpoint
//! this test serves: one sample is a value, anything else an error that says what happened.

use std::net::SocketAddr;
use std::time::Duration;

use axum::{Router, routing::get};
use tokio_util::sync::{CancellationToken, DropGuard};
use trainloop::api::Comparison;
use trainloop::monitors::prometheus::{PrometheusError, compare, sample, sample_within};
use trainloop_e2e::alerting;

/// A gauge with one series and one with two.
const METRICS: &str = "# TYPE fixture_drift gauge\nfixture_drift 0.31\n\
                       # TYPE fixture_latency gauge\nfixture_latency{route=\"a\"} 1\nfixture_latency{route=\"b\"} 2\n";

/// Serve `router` on a loopback port until the guard is dropped.
async fn serve(router: Router) -> (SocketAddr, DropGuard) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let until = stop.clone();
    tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(until.cancelled_owned()).await });
    (address, stop.drop_guard())
}

#[tokio::test]
async fn a_real_prometheus_gives_one_sample_or_says_why_not() {
    let (target, _metrics) = serve(Router::new().route("/metrics", get(|| async { METRICS }))).await;
    let mut prometheus = alerting::prometheus(&[target]).await.unwrap();
    let http = trainloop::triggers::data::http_client().unwrap();
    let url = prometheus.url.clone();
    // The target is scraped once its gauge can be queried.
    prometheus
        .wait_until("the fixture is scraped", async || Ok(sample(&http, &url, "fixture_drift").await.is_ok()))
        .await
        .unwrap();

    let drift = sample(&http, &url, "fixture_drift").await.unwrap();
    assert_eq!(drift, 0.31);
    assert!(compare(drift, Comparison::GreaterThan, 0.2));
    assert!(!compare(drift, Comparison::LessThan, 0.2));
    assert_eq!(sample(&http, &url, "sum(fixture_latency)").await, Ok(3.0));
    assert_eq!(sample(&http, &url, "scalar(fixture_drift) * 2").await, Ok(0.62));
    // A trailing slash on the URL is the same Prometheus.
    assert_eq!(sample(&http, &format!("{url}/"), "fixture_latency{route=\"b\"}").await, Ok(2.0));

    assert_eq!(sample(&http, &url, "fixture_absent").await, Err(PrometheusError::Empty));
    assert_eq!(
        sample(&http, &url, "fixture_latency").await.map_err(|e| e.to_string()),
        Err(r#"the query returned 2 series, one is needed (first two: {__name__="fixture_latency", instance="TARGET", job="fixture", route="a"}, {__name__="fixture_latency", instance="TARGET", job="fixture", route="b"})"#
            .replace("TARGET", &target.to_string()))
    );
    assert_eq!(sample(&http, &url, "fixture_drift[1m]").await, Err(PrometheusError::NotASample("matrix".into())));
    assert_eq!(sample(&http, &url, "\"drift\"").await, Err(PrometheusError::NotASample("string".into())));
    assert_eq!(sample(&http, &url, "fixture_drift * 0 / 0").await, Err(PrometheusError::NotFinite("NaN".into())));
    assert_eq!(sample(&http, &url, "fixture_drift / 0").await, Err(PrometheusError::NotFinite("+Inf".into())));
    match sample(&http, &url, "sum(fixture_drift").await {
        Err(PrometheusError::Api { error_type, error }) => {
            assert_eq!(error_type, "bad_data");
            assert!(error.contains("parse error"), "{error}");
        }
        other => panic!("a query that does not parse: {other:?}"),
    }
    // Not the API's path: Prometheus's own 404.
    match sample(&http, &format!("{url}/elsewhere"), "fixture_drift").await {
        Err(PrometheusError::Http { status: 404, .. }) => {}
        other => panic!("a URL that is not the API: {other:?}"),
    }
}

#[tokio::test]
async fn a_prometheus_that_is_down_or_hangs_is_an_error_not_a_value() {
    let http = trainloop::triggers::data::http_client().unwrap();
    let closed = format!("http://127.0.0.1:{}", trainloop_e2e::realplane::free_port().unwrap());
    match sample(&http, &closed, "up").await {
        Err(PrometheusError::Unreachable { reason, .. }) => assert!(reason.contains("onnection refused"), "{reason}"),
        other => panic!("a closed port: {other:?}"),
    }

    let (address, holding) = trainloop_e2e::silent_server().await;
    let timeout = Duration::from_millis(300);
    let answer = sample_within(&http, &format!("http://{address}"), "up", timeout).await;
    holding.abort();
    assert_eq!(answer, Err(PrometheusError::Timeout { url: format!("http://{address}"), timeout }));
}

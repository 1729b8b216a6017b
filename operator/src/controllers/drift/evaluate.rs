//! One evaluation of one monitor, by kind. Only the monitors' reads happen here; what a reading
//! means for the policy (breaches, firing, retrains) is decided in `judgement` and `guards`.

use std::collections::BTreeMap;

use super::{feature, live, taken::TakenRows};
use crate::api::{FeatureDriftMonitor, Monitor, PrometheusMonitor};
use crate::artifact::FeatureProfile;
use crate::monitors::prometheus;
use crate::monitors::webhook::{Firings, PolicyKey};

/// What one monitor read.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// A value compared with the threshold (`feature` and `values` for feature drift): whether
    /// it `breached` the threshold, and what was `measured`, in words, when the monitor's kind
    /// says it better than a statistic of a feature (a query, an alert).
    Value {
        value: f64,
        threshold: f64,
        breached: bool,
        feature: Option<String>,
        values: BTreeMap<String, f64>,
        samples: Option<u64>,
        measured: Option<String>,
    },
    /// Not enough to judge yet (too few rows): nothing changes.
    Waiting { threshold: f64, message: String },
    /// No value could be had: never drift.
    Error { threshold: Option<f64>, message: String },
}

impl Reading {
    /// Whether the value crossed the threshold.
    pub fn breaches(&self) -> bool {
        matches!(self, Reading::Value { breached: true, .. })
    }
}

/// Where webhook monitors' alerts wait: the receiver's firings of this policy.
pub struct Alerts<'a> {
    pub firings: &'a Firings,
    pub policy: &'a PolicyKey,
}

/// What the feature-drift monitors read from: the served model and its ready server pods.
pub struct Served<'a> {
    pub http: &'a reqwest::Client,
    pub digest: &'a str,
    /// The reference profile of the served model, or why it could not be read.
    pub reference: &'a Result<FeatureProfile, String>,
    pub servers: &'a [live::Server],
    /// Rows taken before whose judgement was never recorded, by the policy evaluated.
    pub taken: &'a TakenRows,
    pub policy: &'a PolicyKey,
}

/// Evaluate `monitor` once.
pub async fn evaluate(monitor: &Monitor, served: &Served<'_>, alerts: &Alerts<'_>) -> Reading {
    match (&monitor.feature_drift, &monitor.prometheus, &monitor.webhook) {
        (Some(drift), _, _) => feature_drift(&monitor.name, drift, served).await,
        (None, Some(query), _) => prometheus_query(query, served.http).await,
        (None, None, Some(_)) => alerted(alerts.firings, alerts.policy, &monitor.name),
        (None, None, None) => Reading::Error { threshold: None, message: "the monitor has no kind".into() },
    }
}

/// One instant query; an empty or ambiguous answer, or no answer, is an error, never drift.
async fn prometheus_query(monitor: &PrometheusMonitor, http: &reqwest::Client) -> Reading {
    let threshold = monitor.threshold;
    match prometheus::sample(http, &monitor.url, &monitor.query).await {
        Ok(value) => {
            let breached = prometheus::compare(value, monitor.comparison, threshold);
            let sign = match monitor.comparison {
                crate::api::Comparison::GreaterThan => ">",
                crate::api::Comparison::LessThan => "<",
            };
            let not = if breached { "" } else { "not " };
            Reading::Value {
                value,
                threshold,
                breached,
                feature: None,
                values: BTreeMap::new(),
                samples: None,
                measured: Some(format!("{}={value:.4}, {not}{sign} {threshold}", monitor.query)),
            }
        }
        Err(error) => Reading::Error { threshold: Some(threshold), message: error.to_string() },
    }
}

/// The alerts Alertmanager sent for this monitor since the last evaluation: any one breaches.
/// Taking them consumes them, so a storm of alerts is judged once.
fn alerted(firings: &Firings, policy: &PolicyKey, monitor: &str) -> Reading {
    let firing = firings.take(policy, monitor);
    Reading::Value {
        value: firing.as_ref().map_or(0.0, |f| f.count as f64),
        threshold: 0.0,
        breached: firing.is_some(),
        feature: None,
        values: BTreeMap::new(),
        samples: None,
        measured: firing.map(|f| f.describe()),
    }
}

/// Look at the live profiles first and read-and-reset them only once `minSamples` rows were
/// seen: rows below the minimum keep counting towards the next evaluation rather than being lost.
/// Rows taken are held until the status records their judgement ([`TakenRows`]).
async fn feature_drift(name: &str, monitor: &FeatureDriftMonitor, served: &Served<'_>) -> Reading {
    let threshold = monitor.threshold;
    let error = |message: String| Reading::Error { threshold: Some(threshold), message };
    let reference = match served.reference.clone().and_then(|r| feature::watched(&r, monitor)) {
        Ok(reference) => reference,
        Err(message) => return error(message),
    };
    if served.servers.is_empty() {
        return error("no ready server pod to read a live profile from".into());
    }
    let needed = u64::try_from(monitor.min_samples).unwrap_or(0);
    let seen = match live::read(served.http, served.servers, served.digest, false).await {
        Ok(sum) if sum.counted.is_empty() => {
            return error(format!("no ready server pod serves the model {} yet", served.digest));
        }
        Ok(sum) => sum,
        Err(message) => return error(message),
    };
    let held = served.taken.samples(served.policy, name, served.digest);
    if seen.samples() + held < needed {
        let message = format!("{} of {needed} rows seen since the last evaluation", seen.samples() + held);
        return Reading::Waiting { threshold, message };
    }
    let taken = match live::read(served.http, &seen.counted, served.digest, true).await {
        Ok(sum) => sum,
        Err(message) => return error(message),
    };
    let Some(live) = taken.profile else {
        return error(format!("no server pod serves the model {} any more", served.digest));
    };
    let live = match served.taken.hold(served.policy, name, served.digest, live) {
        Ok(live) => live,
        Err(message) => return error(message),
    };
    match feature::judge(&reference, &live, monitor.method) {
        Ok(judged) => Reading::Value {
            breached: judged.value > threshold,
            measured: None,
            value: judged.value,
            threshold,
            feature: Some(judged.feature),
            values: judged.values,
            samples: Some(judged.samples),
        },
        Err(message) => error(message),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::{Json, Router, routing::get};
    use serde_json::{Value, json};

    use super::*;
    use crate::api::DriftMethod;

    /// A model server's profile endpoints on loopback: it serves `digest` and has counted
    /// `counts` of one feature; it counts the resets it was asked for.
    struct FakeServer {
        server: live::Server,
        resets: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    async fn fake_server(name: &str, digest: &str, counts: [u64; 2]) -> FakeServer {
        let body = json!({"formatVersion": 1, "samples": counts[0] + counts[1], "modelDigest": digest,
            "features": [{"name": "radius", "type": "number", "edges": [1.0], "counts": counts}]});
        let resets = Arc::new(AtomicUsize::new(0));
        let counted = resets.clone();
        let peek = body.clone();
        let app = Router::new().route("/trainloop/profile", get(move || async move { Json(peek) })).route(
            "/trainloop/profile/reset",
            axum::routing::post(move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                Json::<Value>(body)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeServer { server: live::Server { pod: name.into(), base }, resets, task }
    }

    fn monitor(min_samples: i64) -> FeatureDriftMonitor {
        FeatureDriftMonitor { method: DriftMethod::Psi, threshold: 0.2, features: None, min_samples }
    }

    fn reference() -> Result<FeatureProfile, String> {
        Ok(serde_json::from_value(json!({"formatVersion": 1, "samples": 100,
            "features": [{"name": "radius", "type": "number", "edges": [1.0], "counts": [50, 50]}]}))
        .unwrap())
    }

    /// What a feature-drift evaluation of the policy ml/cancer serving `sha256:new` reads, but
    /// its servers.
    struct Setting {
        http: reqwest::Client,
        reference: Result<FeatureProfile, String>,
        taken: TakenRows,
        policy: PolicyKey,
    }

    impl Setting {
        fn new() -> Self {
            let http = crate::triggers::data::http_client().unwrap();
            let policy = PolicyKey { namespace: "ml".into(), name: "cancer".into() };
            Setting { http, reference: reference(), taken: TakenRows::default(), policy }
        }

        fn served<'a>(&'a self, servers: &'a [live::Server]) -> Served<'a> {
            Served {
                http: &self.http,
                digest: "sha256:new",
                reference: &self.reference,
                servers,
                taken: &self.taken,
                policy: &self.policy,
            }
        }
    }

    #[test]
    fn an_alert_breaches_once_and_is_consumed() {
        let firings = Firings::default();
        let policy = PolicyKey { namespace: "ml".into(), name: "cancer".into() };
        let firing = crate::monitors::webhook::Firing {
            labels: [("alertname".to_string(), "ModelDrift".to_string())].into(),
            summary: Some("inputs shifted".into()),
            received: crate::api::Time(k8s_openapi::jiff::Timestamp::now()),
            count: 1,
        };
        for _ in 0..3 {
            firings.record(policy.clone(), "alerts", firing.clone());
        }
        let first = alerted(&firings, &policy, "alerts");
        assert!(first.breaches());
        let Reading::Value { value, measured, .. } = &first else { panic!("{first:?}") };
        assert_eq!(*value, 3.0, "three alerts coalesced");
        assert_eq!(measured.as_deref(), Some("alert ModelDrift{}: inputs shifted (3 alerts)"));
        assert!(!alerted(&firings, &policy, "alerts").breaches(), "taken: the next evaluation starts anew");
        assert!(!alerted(&firings, &policy, "other").breaches());
    }

    #[tokio::test]
    async fn pods_of_the_served_model_are_summed_and_reset_only_once_enough_rows_were_seen() {
        let fakes = [
            fake_server("a", "sha256:new", [10, 30]).await,
            fake_server("b", "sha256:new", [0, 40]).await,
            fake_server("old", "sha256:old", [500, 0]).await,
        ];
        let servers: Vec<live::Server> = fakes.iter().map(|f| f.server.clone()).collect();
        let setting = Setting::new();
        let served = setting.served(&servers);

        let waiting = feature_drift("inputs", &monitor(81), &served).await;
        assert_eq!(
            waiting,
            Reading::Waiting { threshold: 0.2, message: "80 of 81 rows seen since the last evaluation".into() }
        );
        assert!(fakes.iter().all(|f| f.resets.load(Ordering::SeqCst) == 0), "rows below minSamples keep counting");

        let Reading::Value { value, feature, samples, .. } = feature_drift("inputs", &monitor(80), &served).await
        else {
            panic!("no value")
        };
        // 10 of 80 below the edge where the reference has half: psi(0.125 vs 0.5, 0.875 vs 0.5).
        let expected = (0.125 - 0.5) * (0.125f64 / 0.5).ln() + (0.875 - 0.5) * (0.875f64 / 0.5).ln();
        assert!((value - expected).abs() < 1e-12, "{value} != {expected}");
        assert_eq!((feature.as_deref(), samples), (Some("radius"), Some(80)));
        let resets: Vec<usize> = fakes.iter().map(|f| f.resets.load(Ordering::SeqCst)).collect();
        assert_eq!(resets, [1, 1, 0], "the old model's pod is left alone");
        fakes.iter().for_each(|f| f.task.abort());
    }

    #[tokio::test]
    async fn a_pod_that_does_not_answer_or_serves_nothing_new_is_an_error_never_drift() {
        let FakeServer { server: gone, task, .. } = fake_server("gone", "sha256:new", [10, 30]).await;
        task.abort();
        let _ = task.await;
        let old = fake_server("old", "sha256:old", [500, 0]).await;
        let setting = Setting::new();
        let servers = [gone];
        let served = setting.served(&servers);
        let Reading::Error { message, .. } = feature_drift("inputs", &monitor(1), &served).await else {
            panic!("no error")
        };
        assert!(message.starts_with("pod gone:"), "{message}");
        let servers = [old.server.clone()];
        let served = setting.served(&servers);
        let Reading::Error { message, .. } = feature_drift("inputs", &monitor(1), &served).await else {
            panic!("no error")
        };
        assert!(message.contains("serves the model sha256:new yet"), "{message}");
        let none = setting.served(&[]);
        assert!(matches!(feature_drift("inputs", &monitor(1), &none).await, Reading::Error { .. }));
        old.task.abort();
    }
}

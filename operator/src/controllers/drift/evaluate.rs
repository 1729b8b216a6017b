//! One evaluation of one monitor, by kind. Only the monitors' reads happen here; what a reading
//! means for the policy (breaches, firing, retrains) is decided in `judgement` and `guards`.

use std::collections::BTreeMap;

use super::{acknowledged::Acknowledged, feature, live};
use crate::api::{FeatureDriftMonitor, Monitor, ProfileCursor, PrometheusMonitor};
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
    /// Every server pod of the deployment, ready or not, by name.
    pub pods: &'a [String],
    /// The cursors this operator acknowledged to the pods, for the policy evaluated.
    pub acknowledged: &'a Acknowledged,
    pub policy: &'a PolicyKey,
    /// The policy's uid: with a monitor's name, the reader a pod keeps cursors for.
    pub policy_uid: &'a str,
}

/// Evaluate `monitor` once, whose status recorded the profile cursors `recorded`: the reading,
/// and the cursors its status records now.
pub async fn evaluate(
    monitor: &Monitor,
    served: &Served<'_>,
    alerts: &Alerts<'_>,
    recorded: &[ProfileCursor],
) -> (Reading, Vec<ProfileCursor>) {
    let reading = match (&monitor.feature_drift, &monitor.prometheus, &monitor.webhook) {
        (Some(drift), _, _) => return feature_drift(&monitor.name, drift, served, recorded).await,
        (None, Some(query), _) => prometheus_query(query, served.http).await,
        (None, None, Some(_)) => alerted(alerts.firings, alerts.policy, &monitor.name),
        (None, None, None) => Reading::Error { threshold: None, message: "the monitor has no kind".into() },
    };
    (reading, Vec::new())
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

/// Acknowledge what the status records first (a pod that still counts rows already judged would
/// count them twice), then read every live profile and judge them once `minSamples` rows were
/// seen. Rows stay counted on the pods until the status records their judgement and the
/// operator acknowledges them: rows below the minimum count towards the next evaluation, and
/// rows of an evaluation whose status write failed, or whose operator stopped, are read again.
async fn feature_drift(
    name: &str,
    monitor: &FeatureDriftMonitor,
    served: &Served<'_>,
    recorded: &[ProfileCursor],
) -> (Reading, Vec<ProfileCursor>) {
    let threshold = monitor.threshold;
    let unchanged = |reading: Reading| (reading, recorded.to_vec());
    let error = |message: String| unchanged(Reading::Error { threshold: Some(threshold), message });
    let reference = match served.reference.clone().and_then(|r| feature::watched(&r, monitor)) {
        Ok(reference) => reference,
        Err(message) => return error(message),
    };
    if served.servers.is_empty() {
        return error("no ready server pod to read a live profile from".into());
    }
    let reader = live::reader(served.policy_uid, name);
    let delivered = served.acknowledged.deliver(served.http, served.servers, served.policy, (name, &reader), recorded);
    if let Err(message) = delivered.await {
        return error(message);
    }
    let needed = u64::try_from(monitor.min_samples).unwrap_or(0);
    let seen = match live::read(served.http, served.servers, served.digest, &reader).await {
        Ok(sum) => sum,
        Err(message) => return error(message),
    };
    let Some(live) = &seen.profile else {
        return error(format!("no ready server pod serves the model {} yet", served.digest));
    };
    if live.samples < needed {
        let message = format!("{} of {needed} rows seen since the last evaluation", live.samples);
        return unchanged(Reading::Waiting { threshold, message });
    }
    let judged = match feature::judge(&reference, live, monitor.method) {
        Ok(judged) => judged,
        Err(message) => return error(message),
    };
    // The pods read now, and those not read whose judged rows wait for an acknowledgement.
    let read = |c: &&ProfileCursor| seen.counted.iter().any(|n| n.pod == c.pod);
    let waiting = recorded.iter().filter(|c| served.pods.contains(&c.pod) && !read(c));
    let cursors = seen.counted.iter().chain(waiting).cloned().collect();
    let reading = Reading::Value {
        breached: judged.value > threshold,
        measured: None,
        value: judged.value,
        threshold,
        feature: Some(judged.feature),
        values: judged.values,
        samples: Some(judged.samples),
    };
    (reading, cursors)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::extract::Query;
    use axum::{Json, Router, routing::get};
    use serde_json::{Value, json};

    use super::*;
    use crate::api::DriftMethod;

    /// The profile contracts model servers spoke, oldest first.
    #[derive(Clone, Copy, PartialEq)]
    enum Contract {
        /// No cursor, no acknowledgement route: a read was all there was.
        NoCursor,
        /// One cursor shared by every reader, whatever `?reader=` says.
        SharedCursor,
        /// Cursors per reader: the answer names the reader it was read for.
        PerReader,
    }

    /// A model server's profile endpoints on loopback: it serves `digest` and has counted
    /// `counts` of one feature, which it answers with the cursor `<name>-1`; it records the
    /// cursors acknowledged to it, each as `<reader> <cursor>`.
    struct FakeServer {
        server: live::Server,
        acknowledged: Arc<Mutex<Vec<String>>>,
        task: tokio::task::JoinHandle<()>,
    }

    async fn fake_server(name: &str, digest: &str, counts: [u64; 2]) -> FakeServer {
        fake_server_of(Contract::PerReader, name, digest, counts).await
    }

    async fn fake_server_of(contract: Contract, name: &str, digest: &str, counts: [u64; 2]) -> FakeServer {
        let mut body = json!({"formatVersion": 1, "samples": counts[0] + counts[1], "modelDigest": digest,
            "features": [{"name": "radius", "type": "number", "edges": [1.0], "counts": counts}]});
        if contract != Contract::NoCursor {
            body["cursor"] = json!(format!("{name}-1"));
        }
        let read = move |Query(query): Query<HashMap<String, String>>| async move {
            let mut body = body;
            if contract == Contract::PerReader {
                body["reader"] = json!(query.get("reader"));
            }
            Json(body)
        };
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let received = acknowledged.clone();
        let acknowledge = move |Query(query): Query<HashMap<String, String>>, Json(ack): Json<Value>| async move {
            let (reader, cursor) = (query.get("reader").cloned().unwrap_or_default(), &ack["cursor"]);
            received.lock().unwrap().push(format!("{reader} {}", cursor.as_str().unwrap_or_default()));
        };
        let mut app = Router::new().route("/trainloop/profile", get(read));
        if contract != Contract::NoCursor {
            app = app.route("/trainloop/profile/ack", axum::routing::post(acknowledge));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeServer { server: live::Server { pod: name.into(), base }, acknowledged, task }
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
        acknowledged: Acknowledged,
        policy: PolicyKey,
        pods: Vec<String>,
    }

    impl Setting {
        fn new() -> Self {
            let http = crate::triggers::data::http_client().unwrap();
            let policy = PolicyKey { namespace: "ml".into(), name: "cancer".into() };
            let pods = ["a", "b", "old", "gone"].map(String::from).to_vec();
            Setting { http, reference: reference(), acknowledged: Acknowledged::default(), policy, pods }
        }

        fn served<'a>(&'a self, servers: &'a [live::Server]) -> Served<'a> {
            Served {
                http: &self.http,
                digest: "sha256:new",
                reference: &self.reference,
                servers,
                pods: &self.pods,
                acknowledged: &self.acknowledged,
                policy: &self.policy,
                policy_uid: "uid-1",
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

    fn cursor(pod: &str, cursor: &str) -> ProfileCursor {
        ProfileCursor { pod: pod.into(), cursor: cursor.into() }
    }

    #[tokio::test]
    async fn pods_of_the_served_model_are_summed_and_what_the_status_records_is_acknowledged_before_a_read() {
        let fakes = [
            fake_server("a", "sha256:new", [10, 30]).await,
            fake_server("b", "sha256:new", [0, 40]).await,
            fake_server("old", "sha256:old", [500, 0]).await,
        ];
        let servers: Vec<live::Server> = fakes.iter().map(|f| f.server.clone()).collect();
        let setting = Setting::new();
        let served = setting.served(&servers);
        let acknowledged =
            || -> Vec<Vec<String>> { fakes.iter().map(|f| f.acknowledged.lock().unwrap().clone()).collect() };

        let recorded = [cursor("gone", "gone-7")];
        let (waiting, cursors) = feature_drift("inputs", &monitor(81), &served, &recorded).await;
        assert_eq!(
            waiting,
            Reading::Waiting { threshold: 0.2, message: "80 of 81 rows seen since the last evaluation".into() }
        );
        assert_eq!(cursors, recorded, "nothing judged: the status records what it did");

        let (reading, cursors) = feature_drift("inputs", &monitor(80), &served, &[]).await;
        let Reading::Value { value, feature, samples, .. } = reading else { panic!("no value") };
        // 10 of 80 below the edge where the reference has half: psi(0.125 vs 0.5, 0.875 vs 0.5).
        let expected = (0.125 - 0.5) * (0.125f64 / 0.5).ln() + (0.875 - 0.5) * (0.875f64 / 0.5).ln();
        assert!((value - expected).abs() < 1e-12, "{value} != {expected}");
        assert_eq!((feature.as_deref(), samples), (Some("radius"), Some(80)));
        assert_eq!(cursors, [cursor("a", "a-1"), cursor("b", "b-1")], "the old model's pod is left out");
        assert!(acknowledged().iter().all(Vec::is_empty), "nothing acknowledged before the status records it");

        // The status records them; the next evaluation (or a new operator) acknowledges them first.
        let recorded = [cursor("a", "a-1"), cursor("b", "b-1"), cursor("gone", "gone-7")];
        let (_, cursors) = feature_drift("inputs", &monitor(80), &served, &recorded).await;
        let as_inputs = |cursor: &str| vec![format!("uid-1/inputs {cursor}")];
        assert_eq!(acknowledged(), [as_inputs("a-1"), as_inputs("b-1"), vec![]], "as the monitor's reader");
        assert_eq!(cursors, recorded, "a pod not read keeps its cursor while it exists");
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
        let (Reading::Error { message, .. }, _) = feature_drift("inputs", &monitor(1), &served, &[]).await else {
            panic!("no error")
        };
        assert!(message.starts_with("pod gone:"), "{message}");
        let servers = [old.server.clone()];
        let served = setting.served(&servers);
        let (Reading::Error { message, .. }, _) = feature_drift("inputs", &monitor(1), &served, &[]).await else {
            panic!("no error")
        };
        assert!(message.contains("serves the model sha256:new yet"), "{message}");
        let none = setting.served(&[]);
        assert!(matches!(feature_drift("inputs", &monitor(1), &none, &[]).await, (Reading::Error { .. }, _)));
        old.task.abort();
    }

    #[tokio::test]
    async fn a_model_server_without_cursors_per_reader_is_an_error_that_says_to_upgrade_it() {
        let setting = Setting::new();
        let upgrade = "upgrade it to trainloop-example-model-server ";
        for contract in [Contract::NoCursor, Contract::SharedCursor] {
            let old = fake_server_of(contract, "a", "sha256:new", [10, 30]).await;
            let servers = [old.server.clone()];
            let served = setting.served(&servers);
            let (reading, cursors) = feature_drift("inputs", &monitor(1), &served, &[]).await;
            let Reading::Error { message, .. } = reading else { panic!("{reading:?}") };
            assert!(message.starts_with("pod a: its model server keeps no profile cursors per reader"), "{message}");
            assert!(message.contains(upgrade), "{message}");
            assert!(cursors.is_empty(), "nothing judged, nothing recorded");
            old.task.abort();
        }
        // A pod whose server has no acknowledgement route cannot subtract what the status records.
        let old = fake_server_of(Contract::NoCursor, "a", "sha256:new", [10, 30]).await;
        let servers = [old.server.clone()];
        let served = setting.served(&servers);
        let recorded = [cursor("a", "a-1")];
        let (reading, cursors) = feature_drift("inputs", &monitor(1), &served, &recorded).await;
        let Reading::Error { message, .. } = reading else { panic!("{reading:?}") };
        assert!(message.starts_with("pod a: its model server has no acknowledgement route"), "{message}");
        assert!(message.contains(upgrade), "{message}");
        assert_eq!(cursors, recorded);
        // Reported as such on the policy: Ready=False, reason MonitorError, with the message.
        let ready = &super::super::status::conditions(None, std::slice::from_ref(&message), "Watching", None)[0];
        assert_eq!((ready.status, ready.reason.as_str(), &ready.message), (false, "MonitorError", &message));
        old.task.abort();
    }
}

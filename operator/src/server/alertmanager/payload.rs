//! Alertmanager's webhook payload, version 4
//! (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config): the parts the
//! receiver reads. Unknown fields are ignored, as Alertmanager adds some over time.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The one version the receiver reads.
pub const VERSION: &str = "4";

/// One notification: a group of alerts.
#[derive(Deserialize, Debug)]
pub struct Notification {
    pub alerts: Vec<Alert>,
}

#[derive(Deserialize, Debug)]
pub struct Alert {
    pub status: AlertStatus,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Debug, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl Alert {
    /// Whether the alert carries every one of `labels` (an empty set matches every alert).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        labels.iter().all(|(name, value)| self.labels.get(name) == Some(value))
    }

    /// What a person reads first: the `summary` annotation, else the `description`.
    pub fn summary(&self) -> Option<String> {
        self.annotations.get("summary").or_else(|| self.annotations.get("description")).cloned()
    }
}

/// The notification in `body`, or why it is not one of version 4.
pub fn parse(body: &[u8]) -> Result<Notification, String> {
    #[derive(Deserialize)]
    struct Versioned {
        version: Option<serde_json::Value>,
    }
    // The version first: a payload of another version is refused for that, whatever else differs.
    let versioned: Versioned = serde_json::from_slice(body).map_err(|error| format!("malformed JSON: {error}"))?;
    match versioned.version {
        Some(serde_json::Value::String(version)) if version == VERSION => {}
        Some(other) => return Err(format!("payload version {other} is not supported, only \"{VERSION}\"")),
        None => return Err(format!("the payload has no version, only \"{VERSION}\" is supported")),
    }
    serde_json::from_slice(body).map_err(|error| format!("not an Alertmanager notification: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A notification as Alertmanager 0.25 sends it.
    fn sent_by_alertmanager() -> serde_json::Value {
        json!({
            "receiver": "trainloop", "status": "firing", "version": "4", "groupKey": "{}:{}",
            "truncatedAlerts": 0, "groupLabels": {}, "commonLabels": {"model": "cancer"},
            "commonAnnotations": {}, "externalURL": "http://am:9093",
            "alerts": [{
                "status": "firing", "labels": {"alertname": "Drift", "model": "cancer"},
                "annotations": {"description": "long", "summary": "short"},
                "startsAt": "2026-11-30T23:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "", "fingerprint": "a1b2"
            }]
        })
    }

    #[test]
    fn reads_what_alertmanager_sends() {
        let notification = parse(sent_by_alertmanager().to_string().as_bytes()).unwrap();
        let alert = &notification.alerts[0];
        assert_eq!(alert.status, AlertStatus::Firing);
        assert_eq!(alert.summary().as_deref(), Some("short"));
        assert!(alert.matches(&BTreeMap::from([("model".into(), "cancer".into())])));
        assert!(alert.matches(&BTreeMap::new()));
        assert!(!alert.matches(&BTreeMap::from([("model".into(), "churn".into())])));
        assert!(!alert.matches(&BTreeMap::from([("team".into(), "cancer".into())])));
    }

    #[test]
    fn refuses_other_versions_and_shapes_saying_why() {
        let mut v3 = sent_by_alertmanager();
        v3["version"] = json!("3");
        assert_eq!(parse(v3.to_string().as_bytes()).unwrap_err(), r#"payload version "3" is not supported, only "4""#);
        let mut unversioned = sent_by_alertmanager();
        unversioned.as_object_mut().unwrap().remove("version");
        assert!(parse(unversioned.to_string().as_bytes()).unwrap_err().contains("has no version"));
        let mut odd_status = sent_by_alertmanager();
        odd_status["alerts"][0]["status"] = json!("pending");
        assert!(parse(odd_status.to_string().as_bytes()).unwrap_err().starts_with("not an Alertmanager notification"));
        assert!(parse(b"{\"version\": \"4\"").unwrap_err().starts_with("malformed JSON"));
        assert!(parse(b"[]").unwrap_err().starts_with("malformed JSON"));
    }
}

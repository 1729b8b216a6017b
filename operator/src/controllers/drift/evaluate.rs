//! One evaluation of one monitor, by kind. Only the monitors' reads happen here; what a reading
//! means for the policy (breaches, firing, retrains) is decided in `judgement` and `guards`.

use std::collections::BTreeMap;

use super::{feature, live};
use crate::api::{FeatureDriftMonitor, Monitor};
use crate::artifact::FeatureProfile;

/// What one monitor read.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// A value to compare with the threshold (`feature` and `values` for feature drift).
    Value { value: f64, threshold: f64, feature: Option<String>, values: BTreeMap<String, f64>, samples: Option<u64> },
    /// Not enough to judge yet (too few rows): nothing changes.
    Waiting { threshold: f64, message: String },
    /// No value could be had: never drift.
    Error { threshold: Option<f64>, message: String },
}

impl Reading {
    /// Whether the value crossed the threshold.
    pub fn breaches(&self) -> bool {
        matches!(self, Reading::Value { value, threshold, .. } if value > threshold)
    }
}

/// What the feature-drift monitors read from: the served model and its ready server pods.
pub struct Served<'a> {
    pub http: &'a reqwest::Client,
    pub digest: &'a str,
    /// The reference profile of the served model, or why it could not be read.
    pub reference: &'a Result<FeatureProfile, String>,
    pub servers: &'a [live::Server],
}

/// Evaluate `monitor` once.
pub async fn evaluate(monitor: &Monitor, served: &Served<'_>) -> Reading {
    match (&monitor.feature_drift, &monitor.prometheus, &monitor.webhook) {
        (Some(drift), _, _) => feature_drift(drift, served).await,
        // The seam for the other monitor kinds: `monitors::prometheus::sample` and the
        // Alertmanager receiver's `Firings::take` are wired here.
        (None, Some(prometheus), _) => Reading::Error {
            threshold: Some(prometheus.threshold),
            message: "prometheus monitors are not yet evaluated".into(),
        },
        (None, None, Some(_)) => {
            Reading::Error { threshold: None, message: "webhook monitors are not yet evaluated".into() }
        }
        (None, None, None) => Reading::Error { threshold: None, message: "the monitor has no kind".into() },
    }
}

/// Look at the live profiles first and read-and-reset them only once `minSamples` rows were
/// seen: rows below the minimum keep counting towards the next evaluation rather than being lost.
async fn feature_drift(monitor: &FeatureDriftMonitor, served: &Served<'_>) -> Reading {
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
    if seen.samples() < needed {
        let message = format!("{} of {needed} rows seen since the last evaluation", seen.samples());
        return Reading::Waiting { threshold, message };
    }
    let taken = match live::read(served.http, &seen.counted, served.digest, true).await {
        Ok(sum) => sum,
        Err(message) => return error(message),
    };
    let Some(live) = taken.profile else {
        return error(format!("no server pod serves the model {} any more", served.digest));
    };
    match feature::judge(&reference, &live, monitor.method) {
        Ok(judged) => Reading::Value {
            value: judged.value,
            threshold,
            feature: Some(judged.feature),
            values: judged.values,
            samples: Some(judged.samples),
        },
        Err(message) => error(message),
    }
}

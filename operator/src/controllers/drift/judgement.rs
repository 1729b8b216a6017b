//! Pure: a monitor's status after one reading. `consecutive` breaching evaluations make it fire;
//! one evaluation under the threshold, or one that could not read a value, starts the count over.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::evaluate::Reading;
use crate::api::MonitorStatus;

/// The status of monitor `name` after `reading`, given its status before.
pub fn next(
    old: Option<&MonitorStatus>,
    name: &str,
    reading: &Reading,
    consecutive: i32,
    now: Timestamp,
) -> MonitorStatus {
    let old = old.cloned().unwrap_or_else(|| MonitorStatus { name: name.to_string(), ..MonitorStatus::default() });
    let evaluated = MonitorStatus { name: name.to_string(), last_evaluation_time: Some(Time(now)), ..old.clone() };
    match reading {
        Reading::Value { value, threshold, feature, values, samples, .. } => {
            let breaches = reading.breaches();
            let consecutive_breaches = if breaches { old.consecutive_breaches.saturating_add(1) } else { 0 };
            let firing = breaches && consecutive_breaches >= consecutive;
            let since = match (firing, old.firing) {
                (true, true) => old.since.clone(),
                (true, false) => Some(Time(now)),
                (false, _) => None,
            };
            MonitorStatus {
                value: Some(*value),
                threshold: Some(*threshold),
                feature: feature.clone(),
                feature_values: values.clone(),
                samples: samples.and_then(|s| i64::try_from(s).ok()),
                firing,
                consecutive_breaches,
                since,
                message: None,
                ..evaluated
            }
        }
        // Nothing judged: the count and the firing stand until traffic says otherwise.
        Reading::Waiting { threshold, message } => {
            MonitorStatus { threshold: Some(*threshold), message: Some(message.clone()), ..evaluated }
        }
        Reading::Error { threshold, message } => MonitorStatus {
            threshold: *threshold,
            message: Some(message.clone()),
            firing: false,
            consecutive_breaches: 0,
            since: None,
            ..evaluated
        },
    }
}

/// Whether this reading makes the monitor ask for a retrain: it breached now and fires.
pub fn fires(status: &MonitorStatus, reading: &Reading) -> bool {
    status.firing && reading.breaches()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn value(value: f64) -> Reading {
        Reading::Value {
            value,
            threshold: 0.2,
            breached: value > 0.2,
            measured: None,
            feature: Some("radius".into()),
            values: BTreeMap::from([("radius".into(), value)]),
            samples: Some(500),
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    #[test]
    fn a_monitor_fires_after_consecutive_breaches_and_stops_below_the_threshold() {
        let first = next(None, "inputs", &value(0.3), 2, at(10));
        assert_eq!((first.consecutive_breaches, first.firing, first.since.clone()), (1, false, None));
        assert!(!fires(&first, &value(0.3)));
        let second = next(Some(&first), "inputs", &value(0.4), 2, at(20));
        assert_eq!((second.consecutive_breaches, second.firing), (2, true));
        assert_eq!(second.since, Some(Time(at(20))));
        assert!(fires(&second, &value(0.4)));
        let third = next(Some(&second), "inputs", &value(0.5), 2, at(30));
        assert_eq!(third.since, Some(Time(at(20))), "firing since the first firing evaluation");
        let calm = next(Some(&third), "inputs", &value(0.1), 2, at(40));
        assert_eq!((calm.consecutive_breaches, calm.firing, calm.since), (0, false, None));
        assert_eq!(calm.value, Some(0.1));
        assert_eq!(calm.last_evaluation_time, Some(Time(at(40))));
    }

    #[test]
    fn waiting_changes_nothing_and_an_error_is_never_drift() {
        let firing = next(Some(&next(None, "inputs", &value(0.3), 1, at(1))), "inputs", &value(0.3), 1, at(2));
        let waiting = Reading::Waiting { threshold: 0.2, message: "3 of 100 rows".into() };
        let waited = next(Some(&firing), "inputs", &waiting, 1, at(3));
        assert_eq!((waited.firing, waited.consecutive_breaches, waited.value), (true, 2, Some(0.3)));
        assert!(!fires(&waited, &waiting), "no new traffic judged, no new retrain");
        let error = Reading::Error { threshold: Some(0.2), message: "pod a: connection refused".into() };
        let failed = next(Some(&firing), "inputs", &error, 1, at(4));
        assert_eq!((failed.firing, failed.consecutive_breaches), (false, 0));
        assert_eq!(failed.message.as_deref(), Some("pod a: connection refused"));
        assert!(!fires(&failed, &error));
    }
}

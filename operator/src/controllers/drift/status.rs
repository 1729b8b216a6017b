//! Pure: the policy's `state` and kstatus conditions, and when its next evaluation is due.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{DriftPolicy, MonitorStatus};
use crate::controllers::conditions::Desired;

pub const MANAGED: &[&str] = &["Ready", "Reconciling", "Stalled"];

/// What kept the monitors from being evaluated at all (no deployment, nothing served yet).
#[derive(Clone, Debug, PartialEq)]
pub struct Blocked {
    pub reason: &'static str,
    pub message: String,
}

/// `Watching`, `Firing` (a monitor fires and a retrain is on its way) or `Suppressed` (a
/// monitor fires and a guard holds its retrain).
pub fn state(monitors: &[MonitorStatus], suppression: Option<&str>) -> &'static str {
    match (monitors.iter().any(|m| m.firing), suppression) {
        (false, _) => "Watching",
        (true, None) => "Firing",
        (true, Some(_)) => "Suppressed",
    }
}

/// The conditions after an evaluation: not Ready while something keeps the policy from judging
/// (`blocked`, or monitors that could not read a value); otherwise Ready, with the state.
pub fn conditions(
    blocked: Option<&Blocked>,
    errors: &[String],
    state: &str,
    suppression: Option<&str>,
) -> Vec<Desired> {
    if let Some(blocked) = blocked {
        return vec![Desired::new("Ready", false, blocked.reason, blocked.message.clone())];
    }
    if !errors.is_empty() {
        return vec![Desired::new("Ready", false, "MonitorError", errors.join("; "))];
    }
    let message = match (state, suppression) {
        ("Watching", _) => "no monitor fires".to_string(),
        (_, Some(why)) => format!("a monitor fires; no retrain: {why}"),
        _ => "a monitor fires; a retrain was requested".to_string(),
    };
    vec![Desired::new("Ready", true, state, message)]
}

/// How long until the next evaluation: now when the spec changed or nothing was evaluated yet.
pub fn due_in(policy: &DriftPolicy, interval: Duration, now: Timestamp) -> Option<Duration> {
    let status = policy.status.as_ref()?;
    if status.observed_generation != policy.metadata.generation {
        return None;
    }
    let last = status.monitors.iter().filter_map(|m| m.last_evaluation_time.as_ref()).map(|t| t.0).max()?;
    let elapsed = now.duration_since(last);
    let interval = SignedDuration::try_from(interval).unwrap_or(SignedDuration::MAX);
    let left = interval.checked_sub(elapsed).unwrap_or(SignedDuration::ZERO);
    Duration::try_from(left).ok().filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    use super::*;

    fn evaluated_at(second: i64, generation: i64, observed: i64) -> DriftPolicy {
        serde_json::from_value(json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "DriftPolicy",
            "metadata": {"name": "cancer", "generation": generation},
            "spec": {"deploymentRef": {"name": "cancer"}, "monitors": [{"name": "inputs", "featureDrift": {"threshold": 0.2}}]},
            "status": {"observedGeneration": observed,
                       "monitors": [{"name": "inputs", "lastEvaluationTime": Time(Timestamp::from_second(second).unwrap())}]}
        }))
        .unwrap()
    }

    #[test]
    fn evaluations_are_due_every_interval_and_at_once_after_a_spec_change() {
        let minute = Duration::from_secs(60);
        let at = |s| Timestamp::from_second(s).unwrap();
        assert_eq!(due_in(&evaluated_at(100, 1, 1), minute, at(130)), Some(Duration::from_secs(30)));
        assert_eq!(due_in(&evaluated_at(100, 1, 1), minute, at(160)), None);
        assert_eq!(due_in(&evaluated_at(100, 1, 1), minute, at(999)), None);
        assert_eq!(due_in(&evaluated_at(100, 2, 1), minute, at(130)), None);
    }

    #[test]
    fn the_state_and_ready_follow_firing_suppression_and_errors() {
        let firing = [MonitorStatus { name: "inputs".into(), firing: true, ..MonitorStatus::default() }];
        assert_eq!(state(&[], None), "Watching");
        assert_eq!(state(&firing, None), "Firing");
        assert_eq!(state(&firing, Some("cooldown")), "Suppressed");
        let ready = conditions(None, &[], "Suppressed", Some("cooldown"));
        assert_eq!((ready[0].status, ready[0].reason.as_str()), (true, "Suppressed"));
        assert!(ready[0].message.contains("cooldown"));
        let error = conditions(None, &["monitor inputs: pod a: refused".into()], "Watching", None);
        assert_eq!((error[0].status, error[0].reason.as_str()), (false, "MonitorError"));
        let blocked = Blocked { reason: "DeploymentNotFound", message: "no ModelDeployment cancer".into() };
        assert_eq!(conditions(Some(&blocked), &[], "Watching", None)[0].reason, "DeploymentNotFound");
    }
}

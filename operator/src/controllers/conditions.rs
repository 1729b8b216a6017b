//! kstatus-style conditions: keyed by type, `lastTransitionTime` moves only when status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The desired state of one condition; the time is filled in by [`merge`].
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Desired {
    pub fn new(type_: &'static str, status: bool, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Desired { type_, status, reason: reason.into(), message: message.into() }
    }
}

/// What an object whose reconcile keeps failing says: not Ready, still being worked on.
pub fn failing(reason: &str, message: &str) -> [Desired; 2] {
    [Desired::new("Ready", false, reason, message), Desired::new("Reconciling", true, reason, message)]
}

/// Merge `desired` into `existing`: keep the old transition time when the status did not flip,
/// drop conditions of the managed `types` that are no longer desired, keep all others.
pub fn merge(
    existing: &[Condition],
    desired: &[Desired],
    managed: &[&str],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = existing
        .iter()
        .filter(|c| !managed.contains(&c.type_.as_str()) || desired.iter().any(|d| d.type_ == c.type_))
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .cloned()
        .collect();
    for d in desired {
        let status = if d.status { "True" } else { "False" }.to_string();
        let previous = existing.iter().find(|c| c.type_ == d.type_);
        let last_transition_time = match previous {
            Some(p) if p.status == status => p.last_transition_time.clone(),
            _ => Time(now),
        };
        out.push(Condition {
            type_: d.type_.to_string(),
            status,
            reason: d.reason.clone(),
            message: d.message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// Whether condition `type_` is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions.iter().any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let first = merge(&[], &[Desired::new("Ready", false, "Running", "training")], &["Ready"], Some(1), at(10));
        let same = merge(&first, &[Desired::new("Ready", false, "Running", "still")], &["Ready"], Some(1), at(20));
        assert_eq!(same[0].last_transition_time, Time(at(10)));
        assert_eq!(same[0].message, "still");
        let flipped = merge(&same, &[Desired::new("Ready", true, "Succeeded", "done")], &["Ready"], Some(2), at(30));
        assert_eq!(flipped[0].last_transition_time, Time(at(30)));
        assert_eq!(flipped[0].observed_generation, Some(2));
    }

    #[test]
    fn managed_conditions_no_longer_desired_are_dropped_and_others_kept() {
        let existing = merge(
            &[],
            &[Desired::new("Stalled", true, "InvalidSpec", "x"), Desired::new("Foreign", true, "R", "m")],
            &[],
            None,
            at(1),
        );
        let next = merge(&existing, &[Desired::new("Ready", true, "Ok", "")], &["Ready", "Stalled"], None, at(2));
        let types: Vec<&str> = next.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Foreign", "Ready"]);
        assert!(is_true(&next, "Ready"));
    }
}

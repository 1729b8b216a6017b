//! Rows read-and-reset from the server pods whose judgement no status write has recorded yet.
//! The pods no longer count them, so were the status write after an evaluation to fail they would
//! be lost; held here, they join the next evaluation's rows instead, until a write records them.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::feature;
use crate::artifact::FeatureProfile;
use crate::monitors::webhook::PolicyKey;

/// Per monitor of a policy: the rows taken and not yet recorded, and the model they were served by.
#[derive(Default)]
pub struct TakenRows(Mutex<HashMap<(PolicyKey, String), Held>>);

struct Held {
    digest: String,
    profile: FeatureProfile,
}

impl TakenRows {
    /// Hold `taken`, rows of the model `digest` for `monitor` of `policy`, with the rows still held
    /// for it: their sum, what the evaluation judges. Rows of another model are dropped: its
    /// reference no longer applies.
    pub fn hold(
        &self,
        policy: &PolicyKey,
        monitor: &str,
        digest: &str,
        taken: FeatureProfile,
    ) -> Result<FeatureProfile, String> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (policy.clone(), monitor.to_string());
        let mut sum = taken;
        if let Some(earlier) = held.remove(&key).filter(|earlier| earlier.digest == digest) {
            feature::add(&mut sum, &earlier.profile)?;
        }
        held.insert(key, Held { digest: digest.to_string(), profile: sum.clone() });
        Ok(sum)
    }

    /// How many rows of the model `digest` are held for `monitor` of `policy`: they count towards
    /// `minSamples`.
    pub fn samples(&self, policy: &PolicyKey, monitor: &str, digest: &str) -> u64 {
        let held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let held = held.get(&(policy.clone(), monitor.to_string())).filter(|held| held.digest == digest);
        held.map_or(0, |held| held.profile.samples)
    }

    /// The policy's status now records the judgement of every row held for it.
    pub fn recorded(&self, policy: &PolicyKey) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).retain(|(held_for, _), _| held_for != policy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(counts: [u64; 2]) -> FeatureProfile {
        serde_json::from_value(serde_json::json!({"formatVersion": 1, "samples": counts[0] + counts[1],
            "features": [{"name": "radius", "type": "number", "edges": [1.0], "counts": counts}]}))
        .unwrap()
    }

    fn samples(profile: &FeatureProfile) -> u64 {
        profile.samples
    }

    #[test]
    fn rows_whose_judgement_was_not_recorded_join_the_next_evaluation_until_a_write_records_them() {
        let taken = TakenRows::default();
        let policy = PolicyKey { namespace: "ml".into(), name: "cancer".into() };
        assert_eq!(samples(&taken.hold(&policy, "inputs", "sha256:a", rows([10, 30])).unwrap()), 40);
        // The status write failed: the next evaluation judges these rows with its own.
        assert_eq!(taken.samples(&policy, "inputs", "sha256:a"), 40, "they count towards minSamples");
        assert_eq!(taken.samples(&policy, "inputs", "sha256:b"), 0);
        let sum = taken.hold(&policy, "inputs", "sha256:a", rows([5, 5])).unwrap();
        assert_eq!((samples(&sum), sum.features[0].counts.clone()), (50, vec![15, 35]));
        assert_eq!(samples(&taken.hold(&policy, "other", "sha256:a", rows([1, 1])).unwrap()), 2, "per monitor");
        taken.recorded(&policy);
        assert_eq!(samples(&taken.hold(&policy, "inputs", "sha256:a", rows([1, 0])).unwrap()), 1, "recorded: gone");
        // A new model: the rows of the old one are not judged against its reference.
        assert_eq!(samples(&taken.hold(&policy, "inputs", "sha256:b", rows([2, 0])).unwrap()), 2);
    }
}

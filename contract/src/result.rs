//! The trainer result: the one JSON document a trainer writes to its
//! termination message (at most 4096 bytes, so it holds references, not data).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Largest termination message Kubernetes keeps.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;

/// A model artifact: where the trainer wrote it and what it hashes to (also a run's
/// `status.artifact`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ArtifactRef {
    /// Where the artifact is.
    pub uri: String,
    /// `sha256:<hex>` of the artifact.
    pub digest: String,
}

/// `{"metrics": {...}, "artifact": {"uri", "digest"}, "dataDigest", "profile"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrainerResult {
    /// Held-out metrics by name (e.g. `accuracy`, `auc`, `f1`, `logLoss`).
    pub metrics: BTreeMap<String, f64>,
    pub artifact: ArtifactRef,
    /// `sha256:<hex>` of the training data bytes as read.
    pub data_digest: String,
    /// URI of the reference feature profile.
    pub profile: String,
}

impl TrainerResult {
    /// Parses a termination message.
    pub fn parse(message: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(message.trim())
    }

    /// Compact JSON for the termination message.
    pub fn to_message(&self) -> String {
        // Serialising plain strings and finite floats cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_the_contract_field_names() {
        let result = TrainerResult {
            metrics: BTreeMap::from([("auc".to_string(), 0.97)]),
            artifact: ArtifactRef { uri: "file:///a/model.json".into(), digest: "sha256:00".into() },
            data_digest: "sha256:11".into(),
            profile: "file:///a/profile.json".into(),
        };
        let message = result.to_message();
        assert!(message.contains("\"dataDigest\""));
        assert!(message.contains("\"artifact\":{\"uri\""));
        assert_eq!(TrainerResult::parse(&message).unwrap(), result);
    }

    #[test]
    fn rejects_a_message_without_artifact() {
        assert!(TrainerResult::parse(r#"{"metrics":{},"dataDigest":"x","profile":"y"}"#).is_err());
    }
}

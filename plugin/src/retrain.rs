//! `retrain PIPELINE --reason TEXT`: ask for a run now, the way GitOps does: a new
//! `spec.triggers.retrainToken`. The operator starts a `RetrainToken` run whose reason quotes the
//! token, so the token carries the time and the user's reason.

use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use trainloop_api::TrainingPipeline;

use crate::change::Change;

/// The API's limit on the token's length.
const TOKEN_MAX: usize = 253;

/// A token no earlier request used (it starts with the time), saying why.
pub fn token(reason: &str, now: Timestamp) -> String {
    let mut token = format!("{}: {}", now.strftime("%Y-%m-%dT%H:%M:%SZ"), reason.trim());
    while token.len() > TOKEN_MAX {
        token.pop();
    }
    token
}

pub fn change(pipeline: &TrainingPipeline, namespace: &str, token: &str) -> Change {
    Change {
        kind: "TrainingPipeline",
        name: pipeline.metadata.name.clone().unwrap_or_default(),
        namespace: namespace.into(),
        spec: json!({"triggers": {"retrainToken": token}}),
    }
}

/// What the user sees once the token is set.
pub fn applied(pipeline: &TrainingPipeline, token: &str) -> String {
    let name = pipeline.metadata.name.clone().unwrap_or_default();
    let mut text = format!("tp/{name}: retrainToken set to {token:?}; the operator starts a RetrainToken run.\n");
    if pipeline.spec.suspend {
        text.push_str(&format!("tp/{name} is suspended: the run starts when spec.suspend is lifted.\n"));
    }
    text.push_str(&format!("Follow it with: kubectl trainloop runs {name}\n"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_starts_with_the_time_carries_the_reason_and_fits_the_api_limit() {
        let now: Timestamp = "2026-11-30T12:00:00.5Z".parse().unwrap();
        assert_eq!(token("  new labels arrived ", now), "2026-11-30T12:00:00Z: new labels arrived");
        let long = token(&"é".repeat(300), now);
        assert!(long.len() <= TOKEN_MAX && long.starts_with("2026-11-30T12:00:00Z: éé"), "{long}");
    }
}

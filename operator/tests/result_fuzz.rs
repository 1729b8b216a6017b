//! Input fuzzing of what a trainer leaves behind: generated result JSON (a valid result edited by a
//! hostile hand) and arbitrary bytes up to 5 KiB, as the termination message of a pod of a
//! complete or failed Job. Never a panic; a result is either accepted whole and valid, or refused
//! with a message.

mod fuzz;
mod support;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};
use trainloop::controllers::run::outcome::{Outcome, TERMINATION_MESSAGE_LIMIT, observe, parse_result};

use fuzz::mutate::{apply, mutations};
use fuzz::steps::terminated_pod;

/// Generated results per property and run of `make test`: a few seconds in a debug build.
const CASES: u32 = 1000;

fn good_result() -> Value {
    let digest = format!("sha256:{}", "a".repeat(64));
    json!({
        "metrics": {"auc": 0.93, "logLoss": 0.2},
        "artifact": {"uri": "file:///artifacts/ml/cancer-1/model.json", "digest": digest},
        "dataDigest": digest,
        "profile": "file:///artifacts/ml/cancer-1/profile.json",
    })
}

fn job(condition: &str) -> k8s_openapi::api::batch::v1::Job {
    serde_json::from_value(json!({"status": {"conditions": [{"type": condition, "status": "True"}]}})).unwrap()
}

/// What a parse tells the run: an accepted result is whole, a refused one says why.
fn check_parse(message: &str) -> Result<(), TestCaseError> {
    match parse_result(message) {
        Ok(result) => {
            prop_assert!(result.metrics.values().all(|v| v.is_finite()), "{result:?}");
            prop_assert!(!result.artifact.uri.trim().is_empty() && !result.profile.trim().is_empty(), "{result:?}");
        }
        Err(problem) => prop_assert!(!problem.trim().is_empty(), "an empty refusal of {message:?}"),
    }
    Ok(())
}

/// What a pod's termination message makes of a complete or failed Job: never a panic, and a
/// failure always says what happened.
fn check_observe(message: &str) -> Result<(), TestCaseError> {
    for (condition, exit_code) in [("Complete", 0), ("Failed", 1)] {
        let outcome = observe(Some(&job(condition)), &[terminated_pod(exit_code, message)], Some(message));
        match &outcome {
            Outcome::Succeeded { .. } => prop_assert_eq!(condition, "Complete"),
            Outcome::Failed { message: why, .. } => prop_assert!(!why.trim().is_empty(), "{outcome:?}"),
            other => prop_assert!(false, "a finished Job is {other:?}"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: support::cases(CASES), ..Config::default() })]

    #[test]
    fn generated_result_json_is_accepted_whole_or_refused_with_a_message(edits in mutations(4)) {
        let message = apply(&good_result(), &edits, &[]).to_string();
        check_parse(&message)?;
        check_observe(&message)?;
    }

    #[test]
    fn arbitrary_bytes_as_a_termination_message_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..=5 * 1024),
    ) {
        let message = String::from_utf8_lossy(&bytes);
        check_parse(&message)?;
        check_observe(&message)?;
    }

    /// A valid result cut to the termination message limit, as Kubernetes cuts it (the last bytes).
    #[test]
    fn a_result_cut_at_the_limit_is_refused_saying_so(extra in 1usize..2000) {
        let mut result = good_result();
        result["metrics"]["padding"] = json!(0.5);
        result["profile"] = json!(format!("file:///{}", "p".repeat(TERMINATION_MESSAGE_LIMIT + extra)));
        let text = result.to_string();
        let cut = &text[text.len() - TERMINATION_MESSAGE_LIMIT..];
        let outcome = observe(Some(&job("Complete")), &[terminated_pod(0, cut)], None);
        let Outcome::Failed { reason, .. } = &outcome else { return Err(TestCaseError::fail(format!("{outcome:?}"))) };
        prop_assert_eq!(*reason, "ResultTooLarge");
    }
}

//! Reconcile errors that repeat are made visible. The first failure of an object may be a passing
//! fault and is only retried; from the second failure in a row, its `Ready` condition says what
//! keeps failing (reason: the error's category) and a Warning event says it once per distinct
//! error. A success forgets the count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::Context;
use super::error::{Error, Result};

/// Count the `result` of reconciling `object`; when an error repeats, `report` says so on the
/// object, given the error's category and a message (`announce`: with a Warning event, the first
/// time this error repeats).
pub async fn track<F>(
    ctx: &Context,
    object: String,
    result: &Result<Action>,
    report: impl FnOnce(&'static str, String, bool) -> F,
) where
    F: Future<Output = ()>,
{
    match result {
        Ok(_) => ctx.failures.succeeded(&object),
        Err(error) if !error.is_conflict() => {
            if let Report::Repeated { announce } = ctx.failures.failed(&object, &error.to_string()) {
                report(error.category(), format!("reconcile keeps failing: {error}"), announce).await;
            }
        }
        Err(_) => {}
    }
}

/// Requeue after a failure, the same for every kind: a lost optimistic-concurrency race (a cache
/// behind a write) looks again soon, the rest backs off.
pub fn error_policy<K: ResourceExt>(controller: &'static str) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action {
    move |object, error, ctx| {
        tracing::warn!(controller, object = %object.name_any(), %error, category = error.category(), "reconcile failed");
        ctx.metrics.failed(controller, error.category());
        if error.is_conflict() {
            Action::requeue(Duration::from_millis(500))
        } else {
            Action::requeue(Duration::from_secs(5))
        }
    }
}

/// Consecutive failures per object.
#[derive(Default)]
pub struct Failures {
    by_object: Mutex<HashMap<String, (u32, String)>>,
}

/// What a failure calls for.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    /// The first failure in a row: retry quietly.
    Retry,
    /// It repeats: set the condition; `announce` when this error was not announced yet.
    Repeated { announce: bool },
}

impl Failures {
    /// Count a failure of `object` with `error`.
    pub fn failed(&self, object: &str, error: &str) -> Report {
        let mut by_object = self.by_object.lock().unwrap_or_else(PoisonError::into_inner);
        let (count, announced) = by_object.entry(object.to_string()).or_insert((0, String::new()));
        *count += 1;
        if *count < 2 {
            return Report::Retry;
        }
        let announce = announced != error;
        if announce {
            *announced = error.to_string();
        }
        Report::Repeated { announce }
    }

    /// `object` reconciled: its next failure is a first one again.
    pub fn succeeded(&self, object: &str) {
        self.by_object.lock().unwrap_or_else(PoisonError::into_inner).remove(object);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_error_is_reported_and_announced_once_per_message() {
        let failures = Failures::default();
        assert_eq!(failures.failed("tp/ml/churn", "boom"), Report::Retry);
        assert_eq!(failures.failed("tp/ml/churn", "boom"), Report::Repeated { announce: true });
        assert_eq!(failures.failed("tp/ml/churn", "boom"), Report::Repeated { announce: false });
        assert_eq!(failures.failed("tp/ml/churn", "bang"), Report::Repeated { announce: true });
        assert_eq!(failures.failed("tp/ml/other", "boom"), Report::Retry, "counted per object");
        failures.succeeded("tp/ml/churn");
        assert_eq!(failures.failed("tp/ml/churn", "bang"), Report::Retry);
    }
}

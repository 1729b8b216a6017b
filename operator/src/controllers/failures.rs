//! Reconcile errors that repeat are made visible. The first failure of an object may be a passing
//! fault and is only retried; from the second failure in a row, its `Ready` condition says what
//! keeps failing (reason: the error's category) and a Warning event says it once per distinct
//! error. A success forgets the count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::Life;
use super::error::{Error, Result};

/// A kind whose reconcile failures, once they repeat, are reported on the object itself.
pub trait ReportsFailures:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
    type Status: serde::Serialize;
    /// Its controller's name, under which failures are counted.
    const CONTROLLER: &'static str;

    /// The status saying that reconciles keep failing (`category`, `message`), or `None` when
    /// there is nothing to write (it already says so, or a finished run's outcome stands).
    fn failing_status(&self, category: &str, message: &str) -> Option<Self::Status>;
}

/// Count the `result` of reconciling `object` and hand it back; when an error repeats, the
/// object's status says what keeps failing (reason: the error's category), with a Warning event
/// the first time this error repeats.
pub async fn reported<K: ReportsFailures>(ctx: &Life, object: &K, result: Result<Action>) -> Result<Action> {
    let key = key(K::CONTROLLER, object);
    match &result {
        Ok(_) => ctx.failures.succeeded(&key),
        Err(error) if !error.is_conflict() => {
            if let Report::Repeated { announce } = ctx.failures.failed(&key, &error.to_string()) {
                report(ctx, object, error.category(), format!("reconcile keeps failing: {error}"), announce).await;
            }
        }
        Err(_) => {}
    }
    result
}

async fn report<K: ReportsFailures>(ctx: &Life, object: &K, category: &str, message: String, announce: bool) {
    if announce {
        ctx.event(&object.object_ref(&()), true, category, "Reconcile", message.clone()).await;
    }
    if let Some(status) = object.failing_status(category, &message)
        && let Err(error) = super::status::apply(ctx, object, &status).await
    {
        tracing::warn!(%error, kind = %K::kind(&()), "could not report the failure on the object");
    }
}

/// The first retry after a failure; each further failure in a row doubles it, up to the last.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// How failures of `object` (of the controller named `controller`) are counted.
pub fn key(controller: &str, object: &impl ResourceExt) -> String {
    format!("{controller} {}/{}", object.namespace().unwrap_or_default(), object.name_any())
}

/// Requeue after a failure, the same for every kind: a lost optimistic-concurrency race (a cache
/// behind a write) looks again soon; the rest backs off per object, 0.5 s doubling to 60 s, so a
/// passing fault costs half a second and a lasting one does not hammer the API server.
pub fn error_policy<K: ResourceExt>(controller: &'static str) -> impl Fn(Arc<K>, &Error, Arc<Life>) -> Action {
    move |object, error, ctx| {
        ctx.metrics.failed(controller, error.category());
        if error.is_conflict() {
            // Expected with caches, and retried at once: worth a trace, not a warning.
            tracing::debug!(controller, object = %object.name_any(), %error, "lost a write race; retrying");
            Action::requeue(RETRY_FIRST)
        } else {
            tracing::warn!(controller, object = %object.name_any(), %error, category = error.category(), "reconcile failed");
            Action::requeue(retry_delay(ctx.failures.in_a_row(&key(controller, &*object))))
        }
    }
}

/// The delay before retrying after `failures` failures in a row.
fn retry_delay(failures: u32) -> Duration {
    RETRY_FIRST.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1))).min(RETRY_MAX)
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

    /// How many times `object` failed in a row.
    pub fn in_a_row(&self, object: &str) -> u32 {
        self.by_object.lock().unwrap_or_else(PoisonError::into_inner).get(object).map_or(0, |(count, _)| *count)
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

    #[test]
    fn retries_back_off_per_object_from_half_a_second_to_a_minute() {
        let failures = Failures::default();
        assert_eq!(failures.in_a_row("tr/ml/a"), 0);
        failures.failed("tr/ml/a", "boom");
        failures.failed("tr/ml/a", "boom");
        assert_eq!(failures.in_a_row("tr/ml/a"), 2);
        assert_eq!(failures.in_a_row("tr/ml/b"), 0);
        let delays: Vec<u64> = [0, 1, 2, 3, 8, 40].map(|n| retry_delay(n).as_millis() as u64).to_vec();
        assert_eq!(delays, vec![500, 500, 1000, 2000, 60_000, 60_000]);
    }
}

//! Pure: the policy's retrain requests and what became of them. A request is recorded in the
//! policy's status; the pipeline controller, the only creator of runs, consumes it like a
//! retrain token and records its id on the run it creates and on the pipeline.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{RetrainRequest, RunPhase, TrainingPipeline, TrainingRun, TriggerType};
use crate::controllers::pipeline::plan::is_active;

/// A new request, numbered `count` by the policy whose uid is `uid`: the uid keeps ids unique
/// across a policy deleted and created again under the same name.
pub fn request(uid: &str, count: i64, pipeline: &str, reason: String, now: Timestamp) -> RetrainRequest {
    let prefix: String = uid.chars().take(8).collect();
    RetrainRequest { id: format!("{prefix}-{count}"), pipeline: pipeline.to_string(), reason, requested_at: Time(now) }
}

/// A reason a person understands, e.g. `psi(mean_radius)=0.31 > 0.20 (monitor inputs,
/// DriftPolicy cancer)`.
pub fn reason(
    statistic: &str,
    feature: Option<&str>,
    value: f64,
    threshold: f64,
    monitor: &str,
    policy: &str,
) -> String {
    let measured = match feature {
        Some(feature) => format!("{statistic}({feature})"),
        None => statistic.to_string(),
    };
    format!("{measured}={value:.2} > {threshold:.2} (monitor {monitor}, DriftPolicy {policy})")
}

/// The run that consumed `request` of `policy`, if the pipeline created it.
pub fn run_of<'a>(policy: &str, request: &RetrainRequest, runs: &'a [TrainingRun]) -> Option<&'a TrainingRun> {
    runs.iter().find(|run| run.handled_triggers().is_some_and(|h| h.drift_requests.get(policy) == Some(&request.id)))
}

/// What a new firing would coalesce into: a drift run of the pipeline that is pending or
/// running (whichever policy asked for it), or this policy's request not consumed yet.
pub fn pending(
    policy: &str,
    request: Option<&RetrainRequest>,
    pipeline: Option<&TrainingPipeline>,
    runs: &[TrainingRun],
) -> Option<String> {
    let active_drift = runs.iter().find(|run| is_active(run) && run.spec.trigger.trigger_type == TriggerType::Drift);
    if let Some(run) = active_drift {
        let phase = run.status.as_ref().map_or(RunPhase::Pending, |s| s.phase);
        return Some(format!("run {} is {phase:?}", run.metadata.name.as_deref().unwrap_or_default()));
    }
    let request = request?;
    let recorded = pipeline
        .and_then(|p| p.status.as_ref())
        .is_some_and(|s| s.handled.drift_requests.get(policy) == Some(&request.id));
    let consumed = recorded || run_of(policy, request, runs).is_some();
    (!consumed).then(|| format!("request {} waits for pipeline {}", request.id, request.pipeline))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{HandledTriggers, TrainingRunStatus, Trigger};
    use crate::controllers::pipeline::resolve::run_object;

    fn pipeline() -> TrainingPipeline {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingPipeline",
            "metadata": {"name": "cancer", "namespace": "ml", "uid": "u1", "generation": 1},
            "spec": {"template": {"image": "t:1"}, "data": {"uri": "file:///d.csv"},
                     "features": [{"name": "age", "type": "number"}],
                     "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.8}]}}
        }))
        .unwrap()
    }

    fn run(index: i64, kind: TriggerType, consumed: Option<&str>, phase: RunPhase) -> TrainingRun {
        let handled = HandledTriggers {
            drift_requests: consumed.map(|id| ("watch".to_string(), id.to_string())).into_iter().collect(),
            ..HandledTriggers::default()
        };
        let trigger = Trigger { trigger_type: kind, reason: String::new() };
        let mut run = run_object(&pipeline(), index, trigger, &handled);
        run.status = Some(TrainingRunStatus { phase, ..TrainingRunStatus::default() });
        run
    }

    #[test]
    fn the_reason_names_the_statistic_feature_values_monitor_and_policy() {
        let text = reason("psi", Some("mean_radius"), 0.3141, 0.2, "inputs", "cancer");
        assert_eq!(text, "psi(mean_radius)=0.31 > 0.20 (monitor inputs, DriftPolicy cancer)");
        let request = request("0123456789abcdef", 7, "cancer", text, Timestamp::UNIX_EPOCH);
        assert_eq!(request.id, "01234567-7");
    }

    #[test]
    fn a_request_is_pending_until_a_run_consumed_it_and_that_run_while_it_is_active() {
        let request = request("uid", 1, "cancer", "drift".into(), Timestamp::UNIX_EPOCH);
        let done = [run(1, TriggerType::SpecChange, None, RunPhase::Succeeded)];
        let waiting = pending("watch", Some(&request), Some(&pipeline()), &done);
        assert_eq!(waiting.as_deref(), Some("request uid-1 waits for pipeline cancer"));
        let running = [done[0].clone(), run(2, TriggerType::Drift, Some("uid-1"), RunPhase::Running)];
        assert_eq!(pending("watch", Some(&request), None, &running).as_deref(), Some("run cancer-2 is Running"));
        assert_eq!(run_of("watch", &request, &running).and_then(|r| r.metadata.name.clone()), Some("cancer-2".into()));
        let finished = [done[0].clone(), run(2, TriggerType::Drift, Some("uid-1"), RunPhase::Succeeded)];
        assert_eq!(pending("watch", Some(&request), None, &finished), None);
        // The run was pruned; the pipeline's record still says the request was consumed.
        let mut recorded = pipeline();
        recorded.status.get_or_insert_with(Default::default).handled.drift_requests =
            [("watch".to_string(), "uid-1".to_string())].into();
        assert_eq!(pending("watch", Some(&request), Some(&recorded), &done), None);
        assert_eq!(pending("watch", None, None, &done), None);
    }
}

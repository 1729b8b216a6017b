//! Pure: from a pipeline, its runs and the trigger sources, decide what to do now.
//!
//! Triggers are level-based: each is "pending" while the pipeline's current state (generation,
//! retrain token, latest schedule tick, data fingerprint) differs from the state the newest run
//! consumed. A new run consumes all of them at once, since it trains the current spec on the
//! current data; so triggers that arrive while a run is active under `Forbid` coalesce into one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{ConcurrencyPolicy, HandledTriggers, RunPhase, TrainingPipeline, TrainingRun, Trigger, TriggerType};

use super::resolve::run_index;

/// What the trigger sources say right now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sources {
    /// The latest schedule tick that is due, if any.
    pub schedule_tick: Option<Timestamp>,
    /// The data's current fingerprint, when `onDataChange` is set and it could be read.
    pub data_fingerprint: Option<String>,
    /// The retrain requests that DriftPolicies hold for this pipeline now.
    pub drift_requests: Vec<DriftRequest>,
}

/// A DriftPolicy's standing request to retrain: pending until a run consumed its id.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftRequest {
    pub policy: String,
    pub id: String,
    pub reason: String,
}

/// One reason to train.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub kind: TriggerType,
    pub reason: String,
}

/// What the controller should do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Nothing to start.
    Idle,
    /// Triggers wait for these active runs (Forbid) or for `suspend` to be lifted.
    Wait { blocking: Vec<String> },
    /// Create run number `index`; first mark `supersede` as Superseded (Replace).
    Create { index: i64, trigger: Trigger, supersede: Vec<String> },
}

/// The decision and the handled-trigger state to record.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub pending: Vec<Pending>,
    pub action: Action,
    /// What the pipeline's status should record as handled after this step.
    pub handled: HandledTriggers,
    /// The highest run number used after this step: what the status records.
    pub last_run_index: i64,
}

/// Whether a run still occupies the pipeline.
pub fn is_active(run: &TrainingRun) -> bool {
    matches!(run.status.as_ref().map(|s| s.phase), None | Some(RunPhase::Pending | RunPhase::Running))
}

/// The highest run number the pipeline has used: its status, unless a newer run than the
/// status knows of exists (the operator stopped between creating it and writing status).
pub fn last_run_index(pipeline: &TrainingPipeline, runs: &[TrainingRun]) -> i64 {
    let recorded = pipeline.status.as_ref().and_then(|s| s.last_run_index).unwrap_or(0);
    runs.iter().filter_map(run_index).fold(recorded, i64::max)
}

/// The handled triggers: the pipeline's status, unless a run newer than the one it records
/// carries what it consumed (the operator stopped between creating it and writing status).
/// The status is the record: a run that history pruning or a user deletes takes nothing with it.
pub fn handled(pipeline: &TrainingPipeline, runs: &[TrainingRun]) -> HandledTriggers {
    let status = pipeline.status.clone().unwrap_or_default();
    let recorded = status.handled.run_index.unwrap_or(0);
    runs.iter()
        .filter_map(|run| Some((run_index(run)?, run.handled_triggers()?)))
        .filter(|(index, _)| *index > recorded)
        .max_by_key(|(index, _)| *index)
        .map_or(status.handled, |(index, handled)| HandledTriggers { run_index: Some(index), ..handled })
}

/// Decide. `runs` are the runs the pipeline owns; `taken` is the highest run number held by a
/// run it does not own (an orphan of an earlier pipeline of this name, or one made by hand), so
/// the next name steps over it.
pub fn plan(pipeline: &TrainingPipeline, runs: &[TrainingRun], sources: &Sources, taken: i64) -> Plan {
    let spec = &pipeline.spec;
    let previous = handled(pipeline, runs);
    let last_index = last_run_index(pipeline, runs).max(taken);
    let generation = pipeline.metadata.generation.unwrap_or(1);
    let index = last_index + 1;
    let current = HandledTriggers {
        run_index: Some(index),
        generation: Some(generation),
        retrain_token: spec.triggers.retrain_token.clone(),
        schedule_time: sources.schedule_tick.map(Time).or(previous.schedule_time.clone()),
        data_fingerprint: sources.data_fingerprint.clone().or(previous.data_fingerprint.clone()),
        // A run consumes every request standing now; a deleted policy's entry goes with it.
        drift_requests: sources.drift_requests.iter().map(|r| (r.policy.clone(), r.id.clone())).collect(),
    };

    let mut pending = Vec::new();
    if spec.triggers.on_spec_change && previous.generation.is_none_or(|g| generation > g) {
        let reason = match previous.generation {
            None => format!("pipeline created (generation {generation})"),
            Some(old) => format!("spec changed: generation {old} -> {generation}"),
        };
        pending.push(Pending { kind: TriggerType::SpecChange, reason });
    }
    if let Some(token) = &spec.triggers.retrain_token
        && previous.retrain_token.as_ref() != Some(token)
    {
        pending.push(Pending { kind: TriggerType::RetrainToken, reason: format!("retrainToken set to {token:?}") });
    }
    if let Some(tick) = sources.schedule_tick
        && previous.schedule_time.as_ref().is_none_or(|t| t.0 < tick)
    {
        let cron = spec.triggers.schedule.as_ref().map(|s| s.cron.as_str()).unwrap_or_default();
        pending.push(Pending { kind: TriggerType::Schedule, reason: format!("schedule {cron:?} fired at {tick}") });
    }
    if let (Some(new), Some(old)) = (&sources.data_fingerprint, &previous.data_fingerprint)
        && new != old
    {
        pending.push(Pending { kind: TriggerType::DataChange, reason: format!("data changed: {old} -> {new}") });
    }
    for request in &sources.drift_requests {
        if previous.drift_requests.get(&request.policy) != Some(&request.id) {
            pending.push(Pending { kind: TriggerType::Drift, reason: request.reason.clone() });
        }
    }
    // Changing the token also changes the generation: the explicit request is the more specific
    // reason, so it names the run's trigger (a pipeline's first run stays SpecChange).
    if previous.generation.is_some() {
        pending.sort_by_key(|p| p.kind != TriggerType::RetrainToken);
    }

    // With nothing to do, still record a first data fingerprint as the baseline.
    let idle_handled = HandledTriggers {
        data_fingerprint: previous.data_fingerprint.clone().or(sources.data_fingerprint.clone()),
        ..previous.clone()
    };
    if pending.is_empty() {
        return Plan { pending, action: Action::Idle, handled: idle_handled, last_run_index: last_index };
    }
    let active: Vec<String> = runs.iter().filter(|r| is_active(r)).filter_map(|r| r.metadata.name.clone()).collect();
    if spec.suspend {
        let action = Action::Wait { blocking: Vec::new() };
        return Plan { pending, action, handled: idle_handled, last_run_index: last_index };
    }
    let supersede = match spec.concurrency_policy {
        ConcurrencyPolicy::Forbid if !active.is_empty() => {
            let action = Action::Wait { blocking: active };
            return Plan { pending, action, handled: idle_handled, last_run_index: last_index };
        }
        ConcurrencyPolicy::Replace => active,
        _ => Vec::new(),
    };
    let trigger = Trigger {
        trigger_type: pending[0].kind,
        reason: pending.iter().map(|p| p.reason.as_str()).collect::<Vec<_>>().join("; "),
    };
    Plan { pending, action: Action::Create { index, trigger, supersede }, handled: current, last_run_index: index }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{TrainingPipelineStatus, TrainingRunStatus};
    use crate::controllers::pipeline::resolve::run_object;

    fn pipeline(generation: i64) -> TrainingPipeline {
        let mut p: TrainingPipeline = serde_json::from_value(serde_json::json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingPipeline",
            "metadata": {"name": "churn", "namespace": "ml", "uid": "u1", "generation": generation},
            "spec": {"template": {"image": "t:1"}, "data": {"uri": "file:///d.csv"},
                     "features": [{"name": "age", "type": "number"}],
                     "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.8}]}}
        }))
        .unwrap();
        p.status = Some(TrainingPipelineStatus::default());
        p
    }

    fn consumed(p: &mut TrainingPipeline, plan: &Plan, runs: &mut Vec<TrainingRun>, phase: RunPhase) {
        let Action::Create { index, trigger, .. } = plan.action.clone() else { panic!("{plan:?}") };
        let mut run = run_object(p, index, trigger, &plan.handled);
        run.status = Some(TrainingRunStatus { phase, ..TrainingRunStatus::default() });
        let status = p.status.get_or_insert_with(Default::default);
        status.handled = plan.handled.clone();
        status.last_run = run.metadata.name.clone();
        status.last_run_index = Some(plan.last_run_index);
        runs.push(run);
    }

    #[test]
    fn a_new_pipeline_trains_once_and_then_rests() {
        let mut p = pipeline(1);
        let mut runs = Vec::new();
        let first = plan(&p, &runs, &Sources::default(), 0);
        assert!(
            matches!(&first.action, Action::Create { index: 1, trigger, .. } if trigger.trigger_type == TriggerType::SpecChange)
        );
        consumed(&mut p, &first, &mut runs, RunPhase::Succeeded);
        assert_eq!(plan(&p, &runs, &Sources::default(), 0).action, Action::Idle);
    }

    #[test]
    fn status_only_changes_start_nothing_but_a_new_generation_does() {
        let mut p = pipeline(1);
        let mut runs = Vec::new();
        let step = plan(&p, &runs, &Sources::default(), 0);
        consumed(&mut p, &step, &mut runs, RunPhase::Succeeded);
        p.status.as_mut().unwrap().last_passing_run = Some("churn-1".into());
        assert_eq!(plan(&p, &runs, &Sources::default(), 0).action, Action::Idle);
        p.metadata.generation = Some(2);
        let next = plan(&p, &runs, &Sources::default(), 0);
        assert!(matches!(&next.action, Action::Create { index: 2, trigger, .. } if trigger.reason.contains("1 -> 2")));
    }

    #[test]
    fn forbid_coalesces_triggers_into_one_run_after_the_active_one() {
        let mut p = pipeline(1);
        let mut runs = Vec::new();
        let step = plan(&p, &runs, &Sources::default(), 0);
        consumed(&mut p, &step, &mut runs, RunPhase::Running);
        p.metadata.generation = Some(2);
        p.spec.triggers.retrain_token = Some("again".into());
        let waiting = plan(&p, &runs, &Sources::default(), 0);
        assert_eq!(waiting.action, Action::Wait { blocking: vec!["churn-1".into()] });
        assert_eq!(waiting.pending.len(), 2);
        runs[0].status.as_mut().unwrap().phase = RunPhase::Succeeded;
        let next = plan(&p, &runs, &Sources::default(), 0);
        let Action::Create { index: 2, trigger, .. } = &next.action else { panic!("{next:?}") };
        assert!(trigger.reason.contains("generation 1 -> 2") && trigger.reason.contains("again"), "{}", trigger.reason);
        consumed(&mut p, &next, &mut runs, RunPhase::Running);
        assert!(matches!(plan(&p, &runs, &Sources::default(), 0).action, Action::Idle));
    }

    #[test]
    fn replace_supersedes_the_active_run() {
        let mut p = pipeline(1);
        p.spec.concurrency_policy = ConcurrencyPolicy::Replace;
        let mut runs = Vec::new();
        let step = plan(&p, &runs, &Sources::default(), 0);
        consumed(&mut p, &step, &mut runs, RunPhase::Running);
        p.spec.triggers.retrain_token = Some("now".into());
        let next = plan(&p, &runs, &Sources::default(), 0);
        assert_eq!(
            next.action,
            Action::Create {
                index: 2,
                trigger: Trigger {
                    trigger_type: TriggerType::RetrainToken,
                    reason: "retrainToken set to \"now\"".into()
                },
                supersede: vec!["churn-1".into()]
            }
        );
    }

    #[test]
    fn a_crash_after_creating_a_run_does_not_start_it_twice() {
        let mut p = pipeline(1);
        let mut runs = Vec::new();
        let first = plan(&p, &runs, &Sources::default(), 0);
        consumed(&mut p, &first, &mut runs, RunPhase::Pending);
        // The operator died before writing the pipeline's status.
        p.status = Some(TrainingPipelineStatus::default());
        assert_eq!(plan(&p, &runs, &Sources::default(), 0).action, Action::Idle);
    }

    #[test]
    fn data_changes_after_the_baseline_and_schedule_ticks_start_runs() {
        let mut p = pipeline(1);
        let mut runs = Vec::new();
        let baseline = Sources { data_fingerprint: Some("sha256:a".into()), schedule_tick: None, ..Sources::default() };
        let step = plan(&p, &runs, &baseline, 0);
        consumed(&mut p, &step, &mut runs, RunPhase::Succeeded);
        assert_eq!(p.status.as_ref().unwrap().handled.data_fingerprint.as_deref(), Some("sha256:a"));
        assert_eq!(plan(&p, &runs, &baseline, 0).action, Action::Idle);
        let changed = Sources { data_fingerprint: Some("sha256:b".into()), schedule_tick: None, ..Sources::default() };
        let next = plan(&p, &runs, &changed, 0);
        assert!(
            matches!(&next.action, Action::Create { trigger, .. } if trigger.trigger_type == TriggerType::DataChange)
        );
        consumed(&mut p, &next, &mut runs, RunPhase::Succeeded);
        let tick = Timestamp::from_second(1_800_000_000).unwrap();
        let scheduled =
            Sources { data_fingerprint: Some("sha256:b".into()), schedule_tick: Some(tick), ..Sources::default() };
        let next = plan(&p, &runs, &scheduled, 0);
        assert!(
            matches!(&next.action, Action::Create { trigger, .. } if trigger.trigger_type == TriggerType::Schedule)
        );
        consumed(&mut p, &next, &mut runs, RunPhase::Succeeded);
        assert_eq!(plan(&p, &runs, &scheduled, 0).action, Action::Idle, "one tick, one run");
    }

    #[test]
    fn a_pruned_or_deleted_run_takes_neither_its_trigger_nor_its_name_with_it() {
        let mut p = pipeline(1);
        let mut runs = Vec::new();
        let first = plan(&p, &runs, &Sources::default(), 0);
        consumed(&mut p, &first, &mut runs, RunPhase::Succeeded);
        p.spec.triggers.retrain_token = Some("again".into());
        let second = plan(&p, &runs, &Sources::default(), 0);
        consumed(&mut p, &second, &mut runs, RunPhase::Failed);
        runs.pop(); // pruned by `history.failed: 0`, or deleted by a user
        assert_eq!(plan(&p, &runs, &Sources::default(), 0).action, Action::Idle, "the token was handled");
        p.metadata.generation = Some(2);
        let third = plan(&p, &runs, &Sources::default(), 0);
        assert!(matches!(third.action, Action::Create { index: 3, .. }), "churn-2 is never reused: {third:?}");
    }

    #[test]
    fn each_drift_request_starts_one_drift_run_and_requests_made_meanwhile_coalesce() {
        let mut p = pipeline(1);
        let mut runs = Vec::new();
        let first = plan(&p, &runs, &Sources::default(), 0);
        consumed(&mut p, &first, &mut runs, RunPhase::Succeeded);
        let request = |id: &str| Sources {
            drift_requests: vec![DriftRequest {
                policy: "cancer".into(),
                id: id.into(),
                reason: format!("drift {id}"),
            }],
            ..Sources::default()
        };
        let drift = plan(&p, &runs, &request("a-1"), 0);
        let Action::Create { index: 2, trigger, .. } = &drift.action else { panic!("{drift:?}") };
        assert_eq!((trigger.trigger_type, trigger.reason.as_str()), (TriggerType::Drift, "drift a-1"));
        consumed(&mut p, &drift, &mut runs, RunPhase::Running);
        assert_eq!(plan(&p, &runs, &request("a-1"), 0).action, Action::Idle, "one run per request");
        let waiting = plan(&p, &runs, &request("a-2"), 0);
        assert_eq!(waiting.action, Action::Wait { blocking: vec!["churn-2".into()] });
        runs[1].status.as_mut().unwrap().phase = RunPhase::Succeeded;
        let next = plan(&p, &runs, &request("a-3"), 0);
        assert!(matches!(&next.action, Action::Create { index: 3, trigger, .. } if trigger.reason == "drift a-3"));
        consumed(&mut p, &next, &mut runs, RunPhase::Succeeded);
        assert_eq!(plan(&p, &runs, &request("a-3"), 0).action, Action::Idle);
    }

    #[test]
    fn names_held_by_runs_the_pipeline_does_not_own_are_stepped_over() {
        let step = plan(&pipeline(1), &[], &Sources::default(), 7);
        assert!(matches!(step.action, Action::Create { index: 8, .. }), "{step:?}");
        assert_eq!(step.last_run_index, 8);
    }

    #[test]
    fn a_token_change_is_typed_retrain_token_though_it_bumps_the_generation() {
        let mut p = pipeline(1);
        let mut runs = Vec::new();
        let first = plan(&p, &runs, &Sources::default(), 0);
        consumed(&mut p, &first, &mut runs, RunPhase::Succeeded);
        p.metadata.generation = Some(2);
        p.spec.triggers.retrain_token = Some("2026-11-30".into());
        let Action::Create { trigger, .. } = plan(&p, &runs, &Sources::default(), 0).action else { panic!() };
        assert_eq!(trigger.trigger_type, TriggerType::RetrainToken);
        assert!(trigger.reason.starts_with("retrainToken set to"), "{}", trigger.reason);
    }

    #[test]
    fn suspend_holds_triggers() {
        let mut p = pipeline(1);
        p.spec.suspend = true;
        let held = plan(&p, &[], &Sources::default(), 0);
        assert_eq!(held.action, Action::Wait { blocking: vec![] });
        assert_eq!(held.pending.len(), 1);
    }
}

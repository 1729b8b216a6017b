//! Property tests of the pipeline's decisions: random sequences of spec edits, token changes, data
//! changes, schedule ticks, DriftPolicy retrain requests, run outcomes, deletions, hand-made runs and operator crashes, run
//! through the real planner, history pruning and status builder, as the controller runs them.
//!
//! Whatever the sequence: no run starts for a trigger that already had one, no run name is used
//! twice, the champion is never pruned, and every trigger is eventually trained.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;

use crate::api::{
    ConcurrencyPolicy, EvaluationResult, GateOutcome, HandledTriggers, History, RunPhase, TrainingPipeline,
    TrainingPipelineStatus, TrainingRun, TrainingRunStatus, TriggerType,
};

use super::history::{champions, prune};
use super::plan::{Action, DriftRequest, Sources, is_active, plan};
use super::resolve::{run_name, run_object};

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Passed(u8),
    Rejected(u8),
    Failed,
}

/// Where the operator dies in a reconcile that creates a run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Crash {
    /// After reserving the run's number, before creating the run.
    AfterReserve,
    /// After creating the run, before the status write and pruning.
    AfterCreate,
}

#[derive(Clone, Debug)]
enum Step {
    EditSpec,
    NewToken,
    NewData,
    Tick,
    /// A DriftPolicy records a new retrain request.
    DriftRequest,
    /// One reconcile, in which the operator may die.
    Reconcile {
        crash: Option<Crash>,
    },
    Finish {
        pick: usize,
        outcome: Outcome,
    },
    /// A user deletes a run.
    Delete {
        pick: usize,
    },
    /// A user creates a run by hand under the pipeline's next run name.
    HandMadeRun,
}

fn step() -> impl Strategy<Value = Step> {
    let outcome = prop_oneof![
        (50u8..100).prop_map(Outcome::Passed),
        (0u8..100).prop_map(Outcome::Rejected),
        Just(Outcome::Failed)
    ];
    prop_oneof![
        1 => Just(Step::EditSpec),
        1 => Just(Step::NewToken),
        1 => Just(Step::NewData),
        1 => Just(Step::Tick),
        1 => Just(Step::DriftRequest),
        4 => Just(Step::Reconcile { crash: None }),
        1 => Just(Step::Reconcile { crash: Some(Crash::AfterReserve) }),
        1 => Just(Step::Reconcile { crash: Some(Crash::AfterCreate) }),
        4 => (any::<usize>(), outcome).prop_map(|(pick, outcome)| Step::Finish { pick, outcome }),
        1 => any::<usize>().prop_map(|pick| Step::Delete { pick }),
        1 => Just(Step::HandMadeRun),
    ]
}

fn policy() -> impl Strategy<Value = ConcurrencyPolicy> {
    prop_oneof![Just(ConcurrencyPolicy::Forbid), Just(ConcurrencyPolicy::Replace), Just(ConcurrencyPolicy::Allow)]
}

/// The cluster as the controller would see it, and what the test has seen happen.
struct World {
    pipeline: TrainingPipeline,
    runs: Vec<TrainingRun>,
    token: u32,
    data: u32,
    tick: Option<i64>,
    /// Retrain requests the DriftPolicy made.
    drift: u32,
    /// Names held by runs made by hand.
    hand_made: BTreeSet<i64>,
    /// Every run name the pipeline ever created.
    created: BTreeSet<String>,
    /// What each created run consumed.
    consumed: BTreeMap<i64, HandledTriggers>,
}

impl World {
    fn new(history: History, policy: ConcurrencyPolicy) -> World {
        let mut pipeline: TrainingPipeline = serde_json::from_value(serde_json::json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingPipeline",
            "metadata": {"name": "p", "namespace": "ml", "uid": "u1", "generation": 1},
            "spec": {"template": {"image": "t:1"}, "data": {"uri": "file:///d.csv"},
                     "features": [{"name": "age", "type": "number"}],
                     "evaluation": {"gates": [{"metric": "auc", "goal": "maximize", "threshold": 0.5}]},
                     "triggers": {"retrainToken": "t0"}}
        }))
        .expect("a valid pipeline");
        pipeline.spec.history = history;
        pipeline.spec.concurrency_policy = policy;
        pipeline.status = Some(TrainingPipelineStatus::default());
        World {
            pipeline,
            runs: Vec::new(),
            token: 0,
            data: 0,
            tick: None,
            drift: 0,
            hand_made: BTreeSet::new(),
            created: BTreeSet::new(),
            consumed: BTreeMap::new(),
        }
    }

    fn sources(&self) -> Sources {
        Sources {
            schedule_tick: self.tick.map(|minute| Timestamp::from_second(1_800_000_000 + minute * 60).unwrap()),
            data_fingerprint: Some(format!("d{:06}", self.data)),
            drift_requests: (self.drift > 0)
                .then(|| DriftRequest {
                    policy: "watch".into(),
                    id: format!("r{:06}", self.drift),
                    reason: format!("request {}", self.drift),
                })
                .into_iter()
                .collect(),
        }
    }

    fn apply(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::EditSpec => {
                let generation = self.pipeline.metadata.generation.unwrap_or(1);
                self.pipeline.metadata.generation = Some(generation + 1);
            }
            Step::NewToken => {
                self.token += 1;
                self.pipeline.spec.triggers.retrain_token = Some(format!("t{:06}", self.token));
                let generation = self.pipeline.metadata.generation.unwrap_or(1);
                self.pipeline.metadata.generation = Some(generation + 1);
            }
            Step::NewData => self.data += 1,
            Step::Tick => self.tick = Some(self.tick.map_or(0, |t| t + 1)),
            Step::DriftRequest => self.drift += 1,
            Step::Reconcile { crash } => {
                self.reconcile(*crash)?;
            }
            Step::Finish { pick, outcome } => {
                let active: Vec<usize> = (0..self.runs.len()).filter(|&i| is_active(&self.runs[i])).collect();
                if let Some(&i) = active.get(pick % active.len().max(1)) {
                    self.finish(i, *outcome);
                }
            }
            Step::Delete { pick } => {
                if !self.runs.is_empty() {
                    let run = self.runs.remove(pick % self.runs.len());
                    // A run deleted before the operator recorded what it consumed (it died right
                    // after creating it) takes its triggers back: they are trained again, under
                    // a new name.
                    let recorded = self.pipeline.status.as_ref().and_then(|s| s.handled.run_index).unwrap_or(0);
                    if let Some(index) = super::resolve::run_index(&run).filter(|index| *index > recorded) {
                        self.consumed.remove(&index);
                    }
                }
            }
            Step::HandMadeRun => {
                let recorded = self.pipeline.status.as_ref().and_then(|s| s.last_run_index).unwrap_or(0);
                let newest_owned = self.runs.iter().filter_map(super::resolve::run_index).max().unwrap_or(0);
                let newest_hand_made = self.hand_made.last().copied().unwrap_or(0);
                self.hand_made.insert(recorded.max(newest_owned).max(newest_hand_made) + 1);
            }
        }
        Ok(())
    }

    /// The run controller records an outcome.
    fn finish(&mut self, i: usize, outcome: Outcome) {
        let run = &mut self.runs[i];
        let status = run.status.get_or_insert_with(Default::default);
        match outcome {
            Outcome::Failed => status.phase = RunPhase::Failed,
            Outcome::Passed(auc) | Outcome::Rejected(auc) => {
                status.phase = RunPhase::Succeeded;
                status.metrics.insert("auc".into(), f64::from(auc) / 100.0);
                let result = match outcome {
                    Outcome::Passed(_) => GateOutcome::Passed,
                    _ => GateOutcome::Rejected,
                };
                status.evaluation = Some(EvaluationResult { result, ..EvaluationResult::default() });
            }
        }
    }

    /// What the controller does in one reconcile, with its writes applied to the world.
    fn reconcile(&mut self, crash: Option<Crash>) -> Result<Action, TestCaseError> {
        let taken = self.hand_made.last().copied().unwrap_or(0);
        let decided = plan(&self.pipeline, &self.runs, &self.sources(), taken);
        if let Action::Create { index, trigger, supersede } = &decided.action {
            let name = run_name("p", *index);
            prop_assert!(!self.created.contains(&name), "{name} was created twice");
            prop_assert!(!self.hand_made.contains(index), "{name} is held by a run made by hand");
            prop_assert!(
                is_newer(&decided.handled, self.consumed.values()),
                "{name} trains triggers that already had a run: {:?} after {:?}",
                decided.handled,
                self.consumed
            );
            if trigger.trigger_type == TriggerType::Drift {
                let id = decided.handled.drift_requests.get("watch");
                let reused = self.consumed.values().any(|c| c.drift_requests.get("watch") == id);
                prop_assert!(!reused, "{name} trains drift request {id:?} that already had a run");
            }
            let status = self.pipeline.status.get_or_insert_with(Default::default);
            status.last_run_index = Some(*index);
            if crash == Some(Crash::AfterReserve) {
                return Ok(decided.action);
            }
            for run in self.runs.iter_mut().filter(|r| supersede.contains(r.metadata.name.as_ref().unwrap())) {
                run.status.get_or_insert_with(Default::default).phase = RunPhase::Superseded;
            }
            let mut run = run_object(&self.pipeline, *index, trigger.clone(), &decided.handled);
            run.status = Some(TrainingRunStatus::default());
            self.runs.push(run);
            self.created.insert(name);
            self.consumed.insert(*index, decided.handled.clone());
        }
        if crash.is_some() {
            return Ok(decided.action);
        }
        let protected = champions(&self.runs, &self.pipeline.spec.evaluation);
        let doomed: BTreeSet<String> = prune(&self.runs, &self.pipeline.spec.history, &protected).into_iter().collect();
        let before = std::mem::take(&mut self.runs);
        self.runs =
            before.iter().filter(|run| !doomed.contains(run.metadata.name.as_ref().unwrap())).cloned().collect();
        self.check_champion_kept(&before)?;
        let old = self.pipeline.status.clone().unwrap_or_default();
        let new = super::status(&self.pipeline, &old, &self.runs, &decided, None, None, Timestamp::now());
        self.pipeline.status = Some(new);
        Ok(decided.action)
    }

    /// Pruning kept a best-scoring passing run and the newest passing run of those it was given.
    fn check_champion_kept(&self, before: &[TrainingRun]) -> Result<(), TestCaseError> {
        let passed: Vec<(i64, u64, &str)> = before
            .iter()
            .filter_map(|run| {
                let status = run.status.as_ref()?;
                (status.evaluation.as_ref()?.result == GateOutcome::Passed).then_some(())?;
                let score = (status.metrics.get("auc")? * 100.0).round() as u64;
                Some((super::resolve::run_index(run)?, score, run.metadata.name.as_deref()?))
            })
            .collect();
        let kept = |name: &str| self.runs.iter().any(|r| r.metadata.name.as_deref() == Some(name));
        if let Some(best) = passed.iter().map(|(_, score, _)| *score).max() {
            let best_kept = passed.iter().any(|(_, score, name)| *score == best && kept(name));
            prop_assert!(best_kept, "every passing run scoring {best} was pruned");
        }
        if let Some((_, _, newest)) = passed.iter().max_by_key(|(index, _, _)| *index) {
            prop_assert!(kept(newest), "the newest passing run {newest} was pruned");
        }
        Ok(())
    }
}

/// Whether `handled` has a trigger newer than everything earlier runs consumed.
fn is_newer<'a>(handled: &HandledTriggers, consumed: impl Iterator<Item = &'a HandledTriggers> + Clone) -> bool {
    let newest = |f: &dyn Fn(&HandledTriggers) -> Option<String>| consumed.clone().filter_map(f).max();
    let generation = |h: &HandledTriggers| h.generation.map(|g| format!("{g:012}"));
    let token = |h: &HandledTriggers| h.retrain_token.clone();
    let data = |h: &HandledTriggers| h.data_fingerprint.clone();
    let tick = |h: &HandledTriggers| h.schedule_time.as_ref().map(|t: &Time| format!("{:020}", t.0.as_second()));
    let drift = |h: &HandledTriggers| h.drift_requests.get("watch").cloned();
    [&generation as &dyn Fn(&HandledTriggers) -> Option<String>, &token, &data, &tick, &drift]
        .iter()
        .any(|f| f(handled) > newest(f))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn one_run_per_trigger_no_reused_name_no_pruned_champion_no_lost_trigger(
        succeeded in 0i32..3,
        failed in 0i32..3,
        policy in policy(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let mut world = World::new(History { succeeded, failed }, policy);
        for step in &steps {
            world.apply(step)?;
        }
        // Let every run finish and the operator settle: every trigger has been trained.
        let mut settled = false;
        for _ in 0..8 {
            let active: Vec<usize> = (0..world.runs.len()).filter(|&i| is_active(&world.runs[i])).collect();
            for i in active {
                world.finish(i, Outcome::Passed(99));
            }
            if world.reconcile(None)? == Action::Idle {
                settled = true;
                break;
            }
        }
        prop_assert!(settled, "the pipeline never settled");
        let handled = &world.pipeline.status.as_ref().unwrap().handled;
        prop_assert_eq!(handled.generation, world.pipeline.metadata.generation);
        prop_assert_eq!(&handled.retrain_token, &world.pipeline.spec.triggers.retrain_token);
        prop_assert_eq!(&handled.data_fingerprint, &world.sources().data_fingerprint);
        let request = world.sources().drift_requests.first().map(|r| r.id.clone());
        prop_assert_eq!(handled.drift_requests.get("watch"), request.as_ref());
    }
}

//! Which run a ModelDeployment should serve: the newest run of its pipeline that passed its gates,
//! or exactly the pinned run. Pure: the runs are gathered by the caller.

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{GateOutcome, ModelSource, RunPhase, ServedModel, TrainingRun};
use crate::controllers::pipeline::resolve::run_index;

/// A model the source asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The model (not yet promoted: no `promotedAt`).
    pub model: ServedModel,
    /// When its run passed its gates.
    pub passed_at: Option<Timestamp>,
}

/// What the source asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Selection {
    /// Serve this model.
    Serve(Candidate),
    /// Nothing to serve yet (no run of the pipeline passed): not a problem, just waiting.
    Waiting(String),
    /// The source cannot be served as written (a pinned run missing or not passed): the current
    /// model keeps serving and the deployment says why.
    Invalid(String),
}

/// Select the model `source` asks for. `runs` are the pipeline's runs for a `pipelineRef`, or the
/// pinned run (when it exists) for a `runRef`.
pub fn select(source: &ModelSource, runs: &[TrainingRun]) -> Selection {
    if let Some(pinned) = &source.run_ref {
        let Some(run) = runs.iter().find(|r| r.name_any() == pinned.name) else {
            return Selection::Invalid(format!("source.runRef: run {} does not exist", pinned.name));
        };
        return match candidate(run) {
            Some(candidate) => Selection::Serve(candidate),
            None => Selection::Invalid(format!("source.runRef: run {} {}", pinned.name, why_not_servable(run))),
        };
    }
    let pipeline = source.pipeline_ref.as_ref().map(|p| p.name.as_str()).unwrap_or_default();
    let newest = runs.iter().filter_map(|run| candidate(run).map(|c| (run, c))).max_by_key(|(run, _)| newness(run));
    match newest {
        Some((_, candidate)) => Selection::Serve(candidate),
        None => Selection::Waiting(format!("no run of pipeline {pipeline} has passed its gates yet")),
    }
}

/// Runs order by creation, then by their number in the pipeline (creation times have one-second
/// resolution), then by name.
fn newness(run: &TrainingRun) -> (Option<Timestamp>, Option<i64>, String) {
    (run.metadata.creation_timestamp.as_ref().map(|t| t.0), run_index(run), run.name_any())
}

/// The model of a run that succeeded, passed its gates and recorded an artifact.
fn candidate(run: &TrainingRun) -> Option<Candidate> {
    let status = run.status.as_ref()?;
    let passed = status.phase == RunPhase::Succeeded
        && status.evaluation.as_ref().is_some_and(|e| e.result == GateOutcome::Passed);
    let artifact = status.artifact.as_ref().filter(|_| passed)?;
    let passed_at =
        status.conditions.iter().find(|c| c.type_ == "Passed" && c.status == "True").map(|c| c.last_transition_time.0);
    Some(Candidate {
        model: ServedModel {
            run: run.name_any(),
            artifact_uri: artifact.uri.clone(),
            artifact_digest: artifact.digest.clone(),
            metrics: status.metrics.clone(),
            profile: status.profile.clone(),
            promoted_at: None,
        },
        passed_at,
    })
}

fn why_not_servable(run: &TrainingRun) -> String {
    let Some(status) = &run.status else { return "has not run yet".into() };
    match (status.phase, status.evaluation.as_ref().map(|e| e.result)) {
        (RunPhase::Succeeded, Some(GateOutcome::Rejected)) => "was rejected by its gates".into(),
        (RunPhase::Succeeded, Some(GateOutcome::Passed)) => "recorded no artifact".into(),
        (RunPhase::Succeeded, None) => "has not been judged".into(),
        (phase, _) => format!("did not pass its gates (phase {})", phase.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::LocalRef;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn run(name: &str, created: &str, phase: &str, result: Option<&str>) -> TrainingRun {
        let mut status = json!({"phase": phase, "metrics": {"auc": 0.9},
            "artifact": {"uri": format!("file:///a/{name}/model.json"), "digest": DIGEST},
            "profile": format!("file:///a/{name}/profile.json")});
        if let Some(result) = result {
            status["evaluation"] = json!({"result": result, "gates": []});
            status["conditions"] = json!([{"type": result, "status": "True", "reason": result, "message": "",
                "lastTransitionTime": "2026-11-30T10:00:00Z"}]);
        }
        serde_json::from_value(json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "TrainingRun",
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"trigger": {"type": "Manual"}, "image": "t", "features": [{"name": "age", "type": "number"}],
                     "data": {"uri": "file:///d"}, "evaluation": {"gates": []}},
            "status": status
        }))
        .unwrap()
    }

    fn following(pipeline: &str) -> ModelSource {
        ModelSource { pipeline_ref: Some(LocalRef { name: pipeline.into() }), run_ref: None }
    }

    fn pinned(run: &str) -> ModelSource {
        ModelSource { pipeline_ref: None, run_ref: Some(LocalRef { name: run.into() }) }
    }

    fn served_run(selection: &Selection) -> &str {
        match selection {
            Selection::Serve(c) => &c.model.run,
            other => panic!("expected a model, got {other:?}"),
        }
    }

    #[test]
    fn a_pipeline_serves_its_newest_passing_run_never_a_rejected_failed_or_unfinished_one() {
        let runs = [
            run("p-1", "2026-11-30T09:00:00Z", "Succeeded", Some("Passed")),
            run("p-2", "2026-11-30T09:01:00Z", "Succeeded", Some("Passed")),
            run("p-3", "2026-11-30T09:02:00Z", "Succeeded", Some("Rejected")),
            run("p-4", "2026-11-30T09:03:00Z", "Failed", None),
            run("p-5", "2026-11-30T09:04:00Z", "Running", None),
        ];
        let selection = select(&following("p"), &runs);
        assert_eq!(served_run(&selection), "p-2");
        let Selection::Serve(candidate) = selection else { unreachable!() };
        assert_eq!(candidate.model.artifact_digest, DIGEST);
        assert_eq!(candidate.model.profile.as_deref(), Some("file:///a/p-2/profile.json"));
        assert_eq!(candidate.passed_at, Some("2026-11-30T10:00:00Z".parse().unwrap()));
    }

    #[test]
    fn a_pipeline_without_a_passing_run_waits() {
        let runs = [run("p-1", "2026-11-30T09:00:00Z", "Succeeded", Some("Rejected"))];
        assert!(matches!(select(&following("p"), &runs), Selection::Waiting(m) if m.contains("pipeline p")));
        assert!(matches!(select(&following("p"), &[]), Selection::Waiting(_)));
    }

    #[test]
    fn a_pin_serves_its_run_even_when_newer_runs_passed() {
        let runs = [run("p-1", "2026-11-30T09:00:00Z", "Succeeded", Some("Passed"))];
        assert_eq!(served_run(&select(&pinned("p-1"), &runs)), "p-1");
    }

    #[test]
    fn a_pin_to_a_missing_or_unpassed_run_is_invalid_and_names_the_run() {
        let invalid = |selection: Selection| match selection {
            Selection::Invalid(message) => message,
            other => panic!("expected invalid, got {other:?}"),
        };
        assert_eq!(invalid(select(&pinned("p-9"), &[])), "source.runRef: run p-9 does not exist");
        let rejected = [run("p-3", "2026-11-30T09:02:00Z", "Succeeded", Some("Rejected"))];
        assert_eq!(invalid(select(&pinned("p-3"), &rejected)), "source.runRef: run p-3 was rejected by its gates");
        let running = [run("p-5", "2026-11-30T09:04:00Z", "Running", None)];
        assert!(invalid(select(&pinned("p-5"), &running)).contains("phase Running"));
    }
}

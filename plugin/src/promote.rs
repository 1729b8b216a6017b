//! `promote RUN --deployment MD` and `rollback MD`: pin a deployment's `source.runRef` to a run,
//! checked first as the operator would check it, so a pin that cannot be served is refused here.

use anyhow::{anyhow, bail};
use kube::ResourceExt;
use serde_json::json;
use trainloop_api::{GateOutcome, ModelDeployment, RunPhase, TrainingRun};

use crate::change::Change;

/// The run a rollback returns to: the newest earlier model that is not the one serving.
pub fn previous_run(md: &ModelDeployment) -> anyhow::Result<String> {
    let status = md.status.clone().unwrap_or_default();
    let current = status.current_model.map(|m| m.run);
    status
        .previous_models
        .into_iter()
        .map(|m| m.run)
        .find(|run| Some(run) != current.as_ref())
        .ok_or_else(|| anyhow!("md/{} has no previous model to roll back to", md.name_any()))
}

/// Refuse a run the deployment could not serve: unfinished, rejected, without an artifact, or of
/// another pipeline than the one the deployment serves (`pinned`: the run it is pinned to now).
pub fn check(run: &TrainingRun, md: &ModelDeployment, pinned: Option<&TrainingRun>) -> anyhow::Result<()> {
    let name = run.name_any();
    let status = run.status.clone().unwrap_or_default();
    let verdict = status.evaluation.as_ref().map(|e| e.result);
    if status.phase != RunPhase::Succeeded || verdict != Some(GateOutcome::Passed) || status.artifact.is_none() {
        let verdict = verdict.map_or("not judged".into(), |v| format!("{v:?}"));
        bail!(
            "tr/{name} cannot be served: it is {} and {verdict}; only a succeeded run that passed its gates is",
            status.phase.as_str()
        );
    }
    let serves = match (&md.spec.source.pipeline_ref, pinned) {
        (Some(pipeline), _) => Some(pipeline.name.clone()),
        (None, Some(pinned)) => pinned.spec.pipeline.clone(),
        (None, None) => None,
    };
    if let Some(pipeline) = serves
        && run.spec.pipeline.as_deref() != Some(pipeline.as_str())
    {
        let of = run.spec.pipeline.as_ref().map_or("no pipeline".into(), |p| format!("pipeline {p}"));
        bail!("tr/{name} is a run of {of}, but md/{} serves pipeline {pipeline}", md.name_any());
    }
    Ok(())
}

/// Pin the deployment to `run` (and stop following the pipeline).
pub fn change(md: &ModelDeployment, namespace: &str, run: &str) -> Change {
    Change {
        kind: "ModelDeployment",
        name: md.name_any(),
        namespace: namespace.into(),
        spec: json!({"source": {"pipelineRef": null, "runRef": {"name": run}}}),
    }
}

/// What the user sees once the pin is applied.
pub fn applied(md: &ModelDeployment, run: &str) -> String {
    let name = md.name_any();
    let serving = md.status.as_ref().and_then(|s| s.current_model.as_ref()).map(|m| m.run.clone());
    let was = serving.map_or("nothing".to_string(), |r| format!("tr/{r}"));
    format!(
        "md/{name}: source.runRef pinned to tr/{run} (serving {was}); the operator rolls it out.\n\
         Follow it with: kubectl get md {name} -w\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{deployment, run};

    #[test]
    fn rollback_goes_to_the_newest_previous_model_and_needs_one() {
        assert_eq!(
            previous_run(&deployment("churn", None, "churn-3", &["churn-3", "churn-2", "churn-1"])).unwrap(),
            "churn-2"
        );
        let error = previous_run(&deployment("churn", None, "churn-1", &[])).unwrap_err();
        assert_eq!(error.to_string(), "md/churn has no previous model to roll back to");
    }

    #[test]
    fn only_a_passing_run_of_the_served_pipeline_is_pinned() {
        let md = deployment("churn", Some("churn"), "churn-2", &[]);
        let passed = run("churn-1", "churn", "2026-11-30T11:00:00Z", Some(("Passed", 0.95)));
        assert!(check(&passed, &md, None).is_ok());
        let rejected = run("churn-3", "churn", "2026-11-30T11:00:00Z", Some(("Rejected", 0.5)));
        let error = check(&rejected, &md, None).unwrap_err().to_string();
        assert!(error.contains("tr/churn-3 cannot be served: it is Succeeded and Rejected"), "{error}");
        let running = run("churn-4", "churn", "2026-11-30T11:00:00Z", None);
        assert!(check(&running, &md, None).unwrap_err().to_string().contains("Running and not judged"));
        let fraud = run("fraud-1", "fraud", "2026-11-30T11:00:00Z", Some(("Passed", 0.95)));
        let error = check(&fraud, &md, None).unwrap_err().to_string();
        assert_eq!(error, "tr/fraud-1 is a run of pipeline fraud, but md/churn serves pipeline churn");
        // A pinned deployment serves the pipeline of the run it is pinned to.
        let pinned = deployment("churn", None, "churn-1", &[]);
        assert!(check(&fraud, &pinned, Some(&passed)).is_err());
        assert!(check(&passed, &pinned, Some(&passed)).is_ok());
    }

    #[test]
    fn the_pin_replaces_the_pipeline_reference() {
        let md = deployment("churn", Some("churn"), "churn-2", &[]);
        let change = change(&md, "ml", "churn-1");
        assert_eq!(change.spec, json!({"source": {"pipelineRef": null, "runRef": {"name": "churn-1"}}}));
        assert!(
            applied(&md, "churn-1").starts_with("md/churn: source.runRef pinned to tr/churn-1 (serving tr/churn-2)")
        );
    }
}

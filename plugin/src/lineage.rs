//! `lineage md/NAME | tr/NAME`: the chain from a served model back to what made it.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use kube::ResourceExt;
use serde::Serialize;
use trainloop_api::{ModelDeployment, TrainingRun};

use crate::cluster::Cluster;

/// What `lineage` was asked about.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Deployment(String),
    Run(String),
}

impl std::str::FromStr for Target {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Target> {
        let (kind, name) = text.split_once('/').ok_or_else(|| anyhow!("expected md/NAME or tr/NAME, got {text:?}"))?;
        match (kind.to_ascii_lowercase().as_str(), name) {
            (_, "") => bail!("expected md/NAME or tr/NAME, got {text:?}"),
            ("md" | "modeldeployment" | "modeldeployments", _) => Ok(Target::Deployment(name.into())),
            ("tr" | "trainingrun" | "trainingruns", _) => Ok(Target::Run(name.into())),
            _ => bail!("expected md/NAME or tr/NAME, got {text:?}"),
        }
    }
}

/// The chain, one link per field.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lineage {
    pub deployment: Option<String>,
    /// When the deployment started serving the model.
    pub promoted_at: Option<String>,
    pub run: String,
    pub phase: String,
    pub headline: Option<String>,
    pub gate: Option<String>,
    pub artifact_uri: Option<String>,
    pub artifact_digest: Option<String>,
    pub data_uri: String,
    pub data_version: Option<String>,
    pub data_digest: Option<String>,
    pub config_hash: Option<String>,
    pub hyperparameters: BTreeMap<String, String>,
    pub image: String,
    pub seed: i64,
    pub pipeline: Option<String>,
    /// The pipeline's spec generation the run was made from (recorded by the operator).
    pub pipeline_generation: Option<i64>,
    pub trigger: String,
    pub reason: String,
}

/// The run a deployment serves, or an error saying why there is none.
pub fn served_run(md: &ModelDeployment) -> anyhow::Result<String> {
    let current = md.status.as_ref().and_then(|s| s.current_model.as_ref());
    current.map(|m| m.run.clone()).ok_or_else(|| anyhow!("md/{} serves no model yet", md.name_any()))
}

pub fn lineage(md: Option<&ModelDeployment>, run: &TrainingRun) -> Lineage {
    let status = run.status.clone().unwrap_or_default();
    let served = md.and_then(|md| md.status.as_ref()?.current_model.clone());
    let spec = &run.spec;
    Lineage {
        deployment: md.map(|md| md.name_any()),
        promoted_at: served.and_then(|m| m.promoted_at).map(|t| t.0.to_string()),
        run: run.name_any(),
        phase: status.phase.as_str().into(),
        headline: status.headline.clone(),
        gate: status.evaluation.as_ref().map(|e| format!("{:?}", e.result)),
        artifact_uri: status.artifact.as_ref().map(|a| a.uri.clone()),
        artifact_digest: status.artifact.as_ref().map(|a| a.digest.clone()),
        data_uri: spec.data.uri.clone(),
        data_version: spec.data.version.clone(),
        data_digest: status.data_digest.clone(),
        config_hash: spec.config_hash.clone(),
        hyperparameters: spec.hyperparameters.clone(),
        image: spec.image.clone(),
        seed: spec.seed,
        pipeline: spec.pipeline.clone(),
        pipeline_generation: run.handled_triggers().and_then(|h| h.generation),
        trigger: spec.trigger.trigger_type.as_str().into(),
        reason: spec.trigger.reason.clone(),
    }
}

pub async fn fetch(cluster: &Cluster, target: &Target) -> anyhow::Result<Lineage> {
    let (md, run) = match target {
        Target::Deployment(name) => {
            let md: ModelDeployment = cluster.get(name).await?;
            let run = cluster.get(&served_run(&md)?).await?;
            (Some(md), run)
        }
        Target::Run(name) => (None, cluster.get(name).await?),
    };
    Ok(lineage(md.as_ref(), &run))
}

pub fn render(l: &Lineage) -> String {
    let unknown = || "<not recorded>".to_string();
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(unknown);
    let mut links = Vec::new();
    if let Some(md) = &l.deployment {
        links.push(("deployment", format!("md/{md}, serving since {}", or_unknown(&l.promoted_at))));
    }
    let verdict = [l.headline.clone(), l.gate.clone()].into_iter().flatten().collect::<Vec<_>>().join(", ");
    links.push(("run", format!("tr/{} {} {verdict}", l.run, l.phase).trim_end().to_string()));
    links.push(("artifact", format!("{} {}", or_unknown(&l.artifact_uri), or_unknown(&l.artifact_digest))));
    let version = l.data_version.as_ref().map(|v| format!(" ({v})")).unwrap_or_default();
    links.push(("data", format!("{}{version} {}", l.data_uri, or_unknown(&l.data_digest))));
    let parameters: Vec<String> = l.hyperparameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    links.push(("config", format!("{} {} seed={}", or_unknown(&l.config_hash), parameters.join(" "), l.seed)));
    links.push(("image", l.image.clone()));
    let generation = l.pipeline_generation.map_or_else(unknown, |g| g.to_string());
    let pipeline = l.pipeline.as_ref().map_or("<none: made by hand>".to_string(), |p| format!("tp/{p}"));
    links.push(("pipeline", format!("{pipeline} generation {generation}")));
    links.push(("trigger", format!("{}: {}", l.trigger, l.reason).trim_end_matches([':', ' ']).to_string()));
    let mut text = String::new();
    for (i, (label, value)) in links.iter().enumerate() {
        let arrow = if i == 0 { "  " } else { "<-" };
        text.push_str(&format!("{arrow} {label:<10} {value}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{deployment, run};

    #[test]
    fn a_deployment_leads_through_its_run_to_data_config_image_generation_and_trigger() {
        let run = run("churn-2", "churn", "2026-11-30T11:00:00Z", Some(("Passed", 0.95)));
        let md = deployment("churn", Some("churn"), "churn-2", &["churn-1"]);
        let ones = "1".repeat(64);
        let (twos, threes) = ("2".repeat(64), "3".repeat(64));
        assert_eq!(
            render(&lineage(Some(&md), &run)),
            format!(
                "   deployment md/churn, serving since 2026-11-30T11:40:00Z\n\
                 <- run        tr/churn-2 Succeeded auc=0.950, Passed\n\
                 <- artifact   file:///artifacts/default/churn-2/model.json sha256:{ones}\n\
                 <- data       file:///data/churn.csv (2026-11) sha256:{twos}\n\
                 <- config     sha256:{threes} C=1.0 max_iter=100 seed=7\n\
                 <- image      trainer:1\n\
                 <- pipeline   tp/churn generation 3\n\
                 <- trigger    Drift: psi(age)=0.31 > 0.20 in DriftPolicy churn\n"
            )
        );
    }

    #[test]
    fn a_run_made_by_hand_and_still_running_says_what_is_not_recorded() {
        let mut run = run("try-1", "churn", "2026-11-30T11:00:00Z", None);
        run.spec.pipeline = None;
        run.metadata.annotations = None;
        run.spec.trigger.reason.clear();
        let text = render(&lineage(None, &run));
        assert!(
            text.starts_with("   run        tr/try-1 Running\n<- artifact   <not recorded> <not recorded>\n"),
            "{text}"
        );
        assert!(
            text.ends_with("<- pipeline   <none: made by hand> generation <not recorded>\n<- trigger    Drift\n"),
            "{text}"
        );
    }

    #[test]
    fn targets_are_md_or_tr_and_a_deployment_without_a_model_says_so() {
        assert_eq!("md/churn".parse::<Target>().unwrap(), Target::Deployment("churn".into()));
        assert_eq!("trainingrun/churn-1".parse::<Target>().unwrap(), Target::Run("churn-1".into()));
        for bad in ["churn", "tp/churn", "md/"] {
            assert!(bad.parse::<Target>().unwrap_err().to_string().contains("md/NAME or tr/NAME"), "{bad}");
        }
        let mut md = deployment("churn", Some("churn"), "churn-1", &[]);
        md.status = None;
        assert_eq!(served_run(&md).unwrap_err().to_string(), "md/churn serves no model yet");
    }
}

//! `reproduce RUN`: train the run's frozen spec again and tell whether the same data gave the
//! same artifact (factor 4 of reproducible ML: the run's spec is all it takes).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use kube::ResourceExt;
use kube::api::PostParams;
use kube::runtime::wait::await_condition;
use serde::Serialize;
use trainloop_api::{RunPhase, TrainingRun, Trigger, TriggerType};

use crate::cluster::Cluster;

/// Annotation on a reproduction naming the run it reproduces.
pub const REPRODUCES: &str = "trainloop.dev/reproduces";

/// A run name is at most 63 characters; the API server appends 5 to a `generateName`.
const PREFIX_MAX: usize = 63 - 5;

/// The new run: the same frozen spec, triggered by hand. It carries no pipeline labels, so the
/// pipeline's controller neither counts it as its own nor prunes it.
pub fn reproduction(original: &TrainingRun) -> TrainingRun {
    let name = original.name_any();
    let mut spec = original.spec.clone();
    spec.trigger = Trigger { trigger_type: TriggerType::Manual, reason: format!("reproduce {name}") };
    let mut run = TrainingRun::new("", spec);
    let mut prefix: String = format!("{name}-repro-");
    if prefix.len() > PREFIX_MAX {
        prefix =
            format!("{}-repro-", name.chars().take(PREFIX_MAX - 7).collect::<String>().trim_end_matches(['-', '.']));
    }
    run.metadata.name = None;
    run.metadata.generate_name = Some(prefix);
    run.metadata.namespace = original.namespace();
    run.metadata.annotations = Some(BTreeMap::from([(REPRODUCES.to_string(), name)]));
    run
}

/// One recorded digest of both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestPair {
    pub original: Option<String>,
    pub reproduced: Option<String>,
    pub identical: bool,
}

impl DigestPair {
    fn new(original: Option<String>, reproduced: Option<String>) -> DigestPair {
        let identical = original.is_some() && original == reproduced;
        DigestPair { original, reproduced, identical }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub original: String,
    pub reproduction: String,
    pub phase: String,
    pub artifact: DigestPair,
    pub data: DigestPair,
    pub identical: bool,
}

/// Compare a finished reproduction with its original.
pub fn verdict(original: &TrainingRun, reproduction: &TrainingRun) -> Verdict {
    let digests = |run: &TrainingRun| {
        let status = run.status.clone().unwrap_or_default();
        (status.artifact.map(|a| a.digest), status.data_digest)
    };
    let ((artifact_before, data_before), (artifact_after, data_after)) = (digests(original), digests(reproduction));
    let artifact = DigestPair::new(artifact_before, artifact_after);
    let data = DigestPair::new(data_before, data_after);
    let phase = reproduction.status.as_ref().map(|s| s.phase).unwrap_or_default();
    Verdict {
        original: original.name_any(),
        reproduction: reproduction.name_any(),
        phase: phase.as_str().into(),
        identical: phase == RunPhase::Succeeded && artifact.identical && data.identical,
        artifact,
        data,
    }
}

pub fn render(v: &Verdict) -> String {
    let missing = "<not recorded>".to_string();
    let line = |what: &str, pair: &DigestPair| {
        let (before, after) =
            (pair.original.as_ref().unwrap_or(&missing), pair.reproduced.as_ref().unwrap_or(&missing));
        if pair.identical {
            format!("{what:<16} identical   {before}\n")
        } else {
            format!("{what:<16} DIFFERENT   {before} (tr/{}) vs {after} (tr/{})\n", v.original, v.reproduction)
        }
    };
    let mut text = format!("tr/{} reproduced as tr/{} ({}).\n", v.original, v.reproduction, v.phase);
    text.push_str(&line("artifact digest", &v.artifact));
    text.push_str(&line("data digest", &v.data));
    text.push_str(match (v.identical, v.data.identical) {
        (true, _) => "Reproducible: the same data gave the same artifact.\n",
        (false, false) => "Not reproduced: the data at the run's URI is not what it trained on.\n",
        (false, true) => "Not reproducible: the same data and spec gave another artifact.\n",
    });
    text
}

/// Refuse to reproduce a run that has nothing to compare with.
pub fn check(original: &TrainingRun) -> anyhow::Result<()> {
    let status = original.status.clone().unwrap_or_default();
    if status.phase != RunPhase::Succeeded || status.artifact.is_none() {
        bail!("tr/{} has no artifact to compare with: it is {}", original.name_any(), status.phase.as_str());
    }
    Ok(())
}

/// Create the reproduction and wait until it finishes, for at most `limit`.
pub async fn run(cluster: &Cluster, original: &TrainingRun, limit: Duration) -> anyhow::Result<TrainingRun> {
    let api = cluster.api::<TrainingRun>();
    let created = api.create(&PostParams::default(), &reproduction(original)).await.map_err(|e| cluster.explain(e))?;
    let name = created.name_any();
    eprintln!("Created tr/{name}; waiting up to {}s for it to finish.", limit.as_secs());
    let done = |run: Option<&TrainingRun>| {
        run.and_then(|r| r.status.as_ref())
            .is_some_and(|s| matches!(s.phase, RunPhase::Succeeded | RunPhase::Failed | RunPhase::Superseded))
    };
    let finished = tokio::time::timeout(limit, await_condition(api, &name, done))
        .await
        .map_err(|_| anyhow!("tr/{name} did not finish within {}s (it keeps running)", limit.as_secs()))?
        .with_context(|| format!("watching tr/{name}"))?;
    finished.ok_or_else(|| anyhow!("tr/{name} was deleted before it finished"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{digest, run};

    #[test]
    fn the_reproduction_is_the_frozen_spec_triggered_by_hand_and_unlabelled() {
        let original = run("churn-2", "churn", "2026-11-30T11:00:00Z", Some(("Passed", 0.95)));
        let copy = reproduction(&original);
        assert_eq!(
            copy.spec.trigger,
            Trigger { trigger_type: TriggerType::Manual, reason: "reproduce churn-2".into() }
        );
        let mut expected = original.spec.clone();
        expected.trigger = copy.spec.trigger.clone();
        assert_eq!(copy.spec, expected, "all else frozen: image, config, hyperparameters, data, seed, features");
        assert_eq!(copy.metadata.generate_name.as_deref(), Some("churn-2-repro-"));
        assert_eq!(copy.metadata.labels, None);
        let long = run(&"a".repeat(63), "churn", "2026-11-30T11:00:00Z", None);
        assert_eq!(reproduction(&long).metadata.generate_name.unwrap().len(), PREFIX_MAX);
    }

    #[test]
    fn identical_digests_reproduce_and_a_difference_is_named() {
        let original = run("churn-2", "churn", "2026-11-30T11:00:00Z", Some(("Passed", 0.95)));
        let mut again = run("churn-2-repro-x", "churn", "2026-11-30T11:10:00Z", Some(("Passed", 0.95)));
        let v = verdict(&original, &again);
        assert!(v.identical, "{v:?}");
        assert!(render(&v).ends_with("Reproducible: the same data gave the same artifact.\n"));
        again.status.as_mut().unwrap().artifact.as_mut().unwrap().digest = digest('9');
        let text = render(&verdict(&original, &again));
        let nines = "9".repeat(64);
        assert!(
            text.contains(&format!(
                "artifact digest  DIFFERENT   {} (tr/churn-2) vs sha256:{nines} (tr/churn-2-repro-x)",
                digest('1')
            )),
            "{text}"
        );
        assert!(text.contains("data digest      identical"), "{text}");
        assert!(text.ends_with("Not reproducible: the same data and spec gave another artifact.\n"), "{text}");
        again.status.as_mut().unwrap().data_digest = Some(digest('8'));
        assert!(
            render(&verdict(&original, &again))
                .ends_with("Not reproduced: the data at the run's URI is not what it trained on.\n")
        );
    }

    #[test]
    fn a_failed_reproduction_is_not_identical_and_an_unfinished_original_is_refused() {
        let original = run("churn-2", "churn", "2026-11-30T11:00:00Z", Some(("Passed", 0.95)));
        let failed = run("churn-2-repro-x", "churn", "2026-11-30T11:10:00Z", None);
        assert!(!verdict(&original, &failed).identical);
        let error = check(&failed).unwrap_err().to_string();
        assert_eq!(error, "tr/churn-2-repro-x has no artifact to compare with: it is Running");
    }
}

//! A change to a resource's spec: applied as a merge patch, or, with `--dry-run`, printed as the
//! patch a GitOps repository commits instead (a Kustomize patch: it names its target).

use anyhow::Context as _;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::args::Output;
use crate::cluster::{Cluster, Kind};

/// The field manager the plugin's writes are recorded under.
const FIELD_MANAGER: &str = "kubectl-trainloop";

#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub kind: &'static str,
    pub name: String,
    pub namespace: String,
    /// The merge patch of the spec (`null` removes a field).
    pub spec: Value,
}

impl Change {
    /// The patch with the object it targets, as a file in a GitOps repository holds it.
    pub fn manifest(&self) -> Value {
        json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": self.spec
        })
    }

    /// What `--dry-run` prints.
    pub fn dry_run(&self, format: Output) -> anyhow::Result<String> {
        let manifest = self.manifest();
        Ok(match crate::output::structured(format, &manifest)? {
            Some(text) => text,
            None => format!(
                "# Not applied (--dry-run). Commit this patch of {}/{} to the GitOps repository:\n{}",
                self.kind,
                self.name,
                serde_saphyr::to_string(&manifest)?
            ),
        })
    }

    pub async fn apply<K: Kind>(&self, cluster: &Cluster) -> anyhow::Result<()> {
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        let patch = json!({"spec": self.spec});
        cluster
            .api::<K>()
            .patch(&self.name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| cluster.explain(e))
            .with_context(|| format!("patching {}/{}", self.kind, self.name))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_prints_a_patch_that_names_its_target() {
        let change = Change {
            kind: "ModelDeployment",
            name: "churn".into(),
            namespace: "ml".into(),
            spec: json!({"source": {"pipelineRef": null, "runRef": {"name": "churn-1"}}}),
        };
        let text = change.dry_run(Output::Table).unwrap();
        assert!(text.starts_with("# Not applied (--dry-run). Commit this patch of ModelDeployment/churn"), "{text}");
        let manifest: Value = serde_saphyr::from_str(text.split_once('\n').unwrap().1).unwrap();
        assert_eq!(manifest, change.manifest());
        let json: Value = serde_json::from_str(&change.dry_run(Output::Json).unwrap()).unwrap();
        assert_eq!(json["spec"]["source"]["runRef"]["name"], "churn-1");
        assert_eq!(json["metadata"], json!({"name": "churn", "namespace": "ml"}));
    }
}

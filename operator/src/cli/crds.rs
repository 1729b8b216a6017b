//! `trainloop crds`: the CRDs as one multi-document YAML stream.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use crate::api;

/// Every CRD as YAML documents separated by `---`, in the order of [`api::crds`].
pub fn crds_yaml() -> anyhow::Result<String> {
    let mut out = String::new();
    for crd in api::crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

/// Print [`crds_yaml`] to stdout.
pub fn print_crds() -> anyhow::Result<()> {
    print!("{}", crds_yaml()?);
    Ok(())
}

/// Write each CRD to `<dir>/<name>.yaml` (e.g. `crds/trainingruns.trainloop.dev.yaml`).
pub fn write_crds(dir: &std::path::Path) -> anyhow::Result<()> {
    write_each(dir, api::crds())
}

/// Write the Helm chart's copy of each CRD to `<dir>/<name>.yaml`: [`chart_crds`].
pub fn write_chart_crds(dir: &std::path::Path) -> anyhow::Result<()> {
    write_each(dir, chart_crds())
}

/// The CRDs as the Helm chart ships them: annotated `helm.sh/resource-policy: keep`, so that
/// `helm uninstall` never deletes them and with them every user's pipelines, runs and models.
pub fn chart_crds() -> Vec<CustomResourceDefinition> {
    let mut crds = api::crds();
    for crd in &mut crds {
        crd.metadata.annotations.get_or_insert_default().insert("helm.sh/resource-policy".into(), "keep".into());
    }
    crds
}

fn write_each(dir: &std::path::Path, crds: Vec<CustomResourceDefinition>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        std::fs::write(dir.join(format!("{name}.yaml")), serde_saphyr::to_string(&crd)?)?;
    }
    Ok(())
}

//! `trainloop crds`: the CRDs as one multi-document YAML stream.

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
    std::fs::create_dir_all(dir)?;
    for crd in api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        std::fs::write(dir.join(format!("{name}.yaml")), serde_saphyr::to_string(&crd)?)?;
    }
    Ok(())
}

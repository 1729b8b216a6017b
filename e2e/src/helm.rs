//! The real Helm library (helm-sdkpy, Helm v4 inside) driven by the Python scripts of
//! `e2e/tests/chart/`, against a plane's kubeconfig, with Helm's home in a folder of the test's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// The trainloop chart.
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/trainloop")
}

/// Runs `script` (a file of `e2e/tests/chart/`) with `kubeconfig`, the chart and `args`, `input`
/// on its stdin, Helm's cache, config and data under `home`; answers its stdout. A script that
/// fails or takes more than five minutes is an error carrying its output.
pub async fn drive(
    home: &Path,
    kubeconfig: &Path,
    script: &str,
    args: &[&str],
    input: &Value,
) -> anyhow::Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chart").join(script);
    let mut child = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(kubeconfig)
        .arg(chart_dir())
        .args(args)
        .env("HOME", home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("python3 runs (make test puts .venv/bin first on PATH)")?;
    let mut stdin = child.stdin.take().context("the driver's stdin")?;
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &serde_json::to_vec(input)?).await?;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .with_context(|| format!("{} did not finish in 5 minutes", script.display()))??;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{} {args:?} failed\nstdout: {stdout}\nstderr: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

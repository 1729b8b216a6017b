//! The real Helm library (PyPI helm-sdkpy, Helm v4 inside) installs, upgrades and uninstalls a
//! small chart on localplane. Needs python3 with helm-sdkpy:
//! `make test` installs it into .venv (scripts/python-env.sh).

mod common;

use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams};

#[tokio::test]
async fn helm_install_upgrade_uninstall() {
    let check = std::process::Command::new("python3").args(["-c", "import helm_sdkpy"]).output();
    assert!(
        check.as_ref().is_ok_and(|o| o.status.success()),
        "python3 with helm-sdkpy is required: run `make test`, or `scripts/python-env.sh` and put .venv/bin first on PATH ({check:?})"
    );
    let plane = common::start().await;
    let client = plane.client().await.expect("client");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let home = common::scratch_dir("helm-home");
    let kubeconfig = home.join("kubeconfig");
    std::fs::copy(plane.kubeconfig_path(), &kubeconfig).expect("copy kubeconfig");

    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(fixtures.join("helm_driver.py"))
        .arg(&kubeconfig)
        .arg(fixtures.join("chart"))
        .env("HOME", &home)
        .env("KUBECONFIG", &kubeconfig)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("HELM_CACHE_HOME", home.join("helm-cache"))
        .env("HELM_CONFIG_HOME", home.join("helm-config"))
        .env("HELM_DATA_HOME", home.join("helm-data"))
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(240), cmd.output())
        .await
        .expect("helm driver finished in time")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helm driver failed\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["step"].as_str().map(str::to_string))
        .collect();
    assert_eq!(steps, ["lint", "install", "upgrade", "values", "list", "uninstall"]);

    // Uninstall removed the chart's objects and Helm's release records.
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    assert!(cms.get_opt("demo-config").await.expect("get").is_none());
    let secrets: Api<Secret> = Api::default_namespaced(client);
    let releases = secrets.list(&ListParams::default().labels("owner=helm,name=demo")).await.expect("list");
    assert!(releases.items.is_empty(), "release secrets left: {:?}", releases.items.len());
    plane.shutdown().await;
}

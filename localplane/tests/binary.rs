//! The `localplane serve` binary: writes its kubeconfig once ready, serves, and exits 0 on
//! SIGTERM.

mod common;

use std::time::Duration;

#[tokio::test]
async fn serve_writes_kubeconfig_and_stops_on_sigterm() {
    let dir = common::scratch_dir("binary");
    let kubeconfig = dir.join("kc/kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_localplane"))
        .args(["serve", "--port", "0", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--work-dir")
        .arg(dir.join("work"))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn localplane");
    let path = kubeconfig.clone();
    common::eventually(30, "kubeconfig written", || {
        let path = path.clone();
        async move { path.exists().then_some(()) }
    })
    .await;
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("kubeconfig usable");
    let client = kube::Client::try_from(config).expect("client");
    let version = client.apiserver_version().await.expect("server answers");
    assert_eq!(version.major, "1");

    let pid = child.id().expect("pid").to_string();
    let kill = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
    assert!(kill.success());
    let status =
        tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("exits after SIGTERM").expect("wait");
    assert!(status.success(), "exit status {status:?}");
}

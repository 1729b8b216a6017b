//! Shared helpers for the conformance suite: a fresh plane per test, the real kubectl with a
//! fresh cache dir, and condition polling with a deadline (never fixed sleeps).

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use localplane::{Config, LocalPlane};

pub const CRD: &str = include_str!("../fixtures/widgets-crd.yaml");

pub fn scratch_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lp-test-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

pub async fn start() -> LocalPlane {
    LocalPlane::start(Config::default()).await.expect("localplane starts")
}

/// Fails (never skips) when a tool CI must install is missing.
pub fn require_tool(cmd: &str, hint: &str) {
    let ok = std::process::Command::new(cmd)
        .arg("--version")
        .output()
        .or_else(|_| std::process::Command::new(cmd).arg("version").arg("--client").output())
        .is_ok();
    assert!(ok, "`{cmd}` is required for this test but was not found on PATH: {hint}");
}

pub struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl Kubectl {
    pub fn new(plane: &LocalPlane) -> Self {
        require_tool("kubectl", "install kubectl v1.32 (CI: see localplane/README.md)");
        Kubectl { kubeconfig: plane.kubeconfig_path().to_path_buf(), cache: scratch_dir("kubectl-cache") }
    }

    /// Runs kubectl off the async runtime; returns the raw output.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(input) = stdin {
            use tokio::io::AsyncWriteExt;
            let mut si = child.stdin.take().expect("stdin");
            si.write_all(input.as_bytes()).await.expect("write stdin");
        } else {
            drop(child.stdin.take());
        }
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl finished in time")
            .expect("kubectl ran")
    }

    /// Runs kubectl and asserts success; returns stdout.
    pub async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "kubectl {args:?} failed\nstdout: {stdout}\nstderr: {stderr}");
        stdout
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub async fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }
}

/// Polls `check` until it returns `Some`, failing after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Installs the widgets CRD through kube-rs and waits until it is established.
pub async fn install_crd(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, PostParams};
    let crd: CustomResourceDefinition = serde_saphyr::from_str(CRD).expect("fixture parses");
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.create(&PostParams::default(), &crd).await.expect("create CRD");
    let cond = kube::runtime::wait::conditions::is_crd_established();
    tokio::time::timeout(
        Duration::from_secs(10),
        kube::runtime::wait::await_condition(api, "widgets.example.com", cond),
    )
    .await
    .expect("CRD established in time")
    .expect("await_condition");
}

/// Starts a plane whose pods run under `work_dir`, so a test can reach their volumes.
pub async fn start_in(work_dir: &Path) -> LocalPlane {
    let config = Config { work_dir: Some(work_dir.to_path_buf()), ..Config::default() };
    LocalPlane::start(config).await.expect("localplane starts")
}

/// Waits on a watch (kube's `await_condition`) until `name` satisfies `cond`, bounded; on
/// timeout the failure shows the object as it is.
pub async fn wait_for<K>(api: &kube::Api<K>, name: &str, what: &str, cond: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let watch = kube::runtime::wait::await_condition(api.clone(), name, move |o: Option<&K>| o.is_some_and(&cond));
    match tokio::time::timeout(Duration::from_secs(60), watch).await {
        Ok(Ok(Some(o))) => o,
        other => panic!("timed out waiting for {name} to be {what}: {other:?}; now {:#?}", api.get_opt(name).await),
    }
}

/// One HTTP/1.0 GET; the body of a 200 answer, None when the connection fails, is closed
/// without an answer (a Service with no ready endpoint) or answers otherwise.
pub async fn http_get(addr: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = tokio::net::TcpStream::connect(addr);
    let mut s = tokio::time::timeout(Duration::from_secs(2), connect).await.ok()?.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.ok()?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await.ok()?.ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

/// The pod's condition of `type_`, if present.
pub fn pod_condition<'a>(
    pod: &'a k8s_openapi::api::core::v1::Pod,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Whether the pod's condition of `type_` has `status`.
pub fn pod_condition_is(pod: &k8s_openapi::api::core::v1::Pod, type_: &str, status: &str) -> bool {
    pod_condition(pod, type_).is_some_and(|c| c.status == status)
}

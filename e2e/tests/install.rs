//! Installing trainloop the way the README says: `kubectl apply -f crds/` on a cluster, and
//! `trainloop run` refusing to start without them.

use localplane::{Config, LocalPlane};

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test]
async fn kubectl_installs_the_crds_and_they_become_established() {
    let plane = LocalPlane::start(Config::default()).await.unwrap();
    let (cache, fresh_cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Async, so that the plane serving kubectl runs on this same test runtime meanwhile.
    let kubectl = async |cache: &tempfile::TempDir, args: &[&str]| {
        let output = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(plane.kubeconfig_path())
            .arg("--cache-dir")
            .arg(cache.path())
            .args(args)
            .current_dir(workspace_root())
            .output()
            .await
            .expect("kubectl is installed");
        let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "kubectl {args:?} failed: {text}");
        text
    };
    let applied = kubectl(&cache, &["apply", "-f", "crds/"]).await;
    assert_eq!(applied.matches("created").count(), 4, "{applied}");
    let waited = kubectl(&cache, &["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]).await;
    assert_eq!(waited.matches("condition met").count(), 4, "{waited}");
    // kubectl cached discovery before the CRDs existed; a new session sees the category.
    let listed = kubectl(&fresh_cache, &["get", "trainloop"]).await;
    assert!(listed.contains("No resources found"), "the trainloop category resolves: {listed}");
    plane.shutdown().await;
}

#[tokio::test]
async fn the_operator_refuses_to_start_without_its_crds_and_says_how_to_install_them() {
    let plane = LocalPlane::start(Config::default()).await.unwrap();
    let client = plane.client().await.unwrap();
    let error = trainloop::cli::check_crds_installed(&client).await.unwrap_err().to_string();
    assert!(error.contains("trainingpipelines.trainloop.dev") && error.contains("kubectl apply -f crds/"), "{error}");
    trainloop_e2e::install_crds(&client).await.unwrap();
    trainloop::cli::check_crds_installed(&client).await.unwrap();
    plane.shutdown().await;
}

#[tokio::test]
async fn readyz_answers_503_until_the_caches_have_synced_then_200() {
    use std::sync::Arc;
    use trainloop::controllers::{self, Context, Metrics, Settings, WatchHealth};

    let plane = LocalPlane::start(Config::default()).await.unwrap();
    let client = plane.client().await.unwrap();
    trainloop_e2e::install_crds(&client).await.unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let settings = Settings::new("file:///tmp/unused");
    let http = trainloop::triggers::http_client().unwrap();
    let ctx = Arc::new(Context::new(client, Metrics::register(&mut registry), settings, http));
    let watches = WatchHealth::default();
    let health = trainloop::server::Health::new(registry, watches.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let readyz = format!("http://{}/readyz", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(trainloop::server::serve(listener, health, stop.clone()));
    let get = || async { reqwest::get(&readyz).await.unwrap().status().as_u16() };
    assert_eq!(get().await, 503, "not ready before the controllers have listed anything");

    let operator = tokio::spawn(controllers::run(ctx, stop.clone(), watches));
    let deadline = tokio::time::Instant::now() + trainloop_e2e::TIMEOUT;
    while get().await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "ready in time");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.cancel();
    operator.await.unwrap();
    server.await.unwrap().unwrap();
    plane.shutdown().await;
}

//! A real Prometheus and a real Alertmanager (the Debian packages `prometheus` and
//! `prometheus-alertmanager`) on loopback, each with its own configuration and data in a
//! directory of its own: what the prometheus and webhook monitors are tested against. Dropping
//! one kills it; its directory is removed unless the test failed, when its log helps.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::realplane::free_port;
use crate::realplane::process::{self, Server};

/// How long a server may take to answer ready, and then what a test waits for.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One running server.
pub struct Component {
    /// Declared before `_dir`: killed before its directory is removed.
    server: Server,
    _dir: WorkDir,
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub url: String,
}

/// A component's directory: removed on drop, kept when the test failed.
struct WorkDir(PathBuf);

/// Prometheus scraping the `/metrics` of each of `targets` every 200 ms.
pub async fn prometheus(targets: &[SocketAddr]) -> anyhow::Result<Component> {
    let targets: Vec<String> = targets.iter().map(|target| format!("'{target}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\n\
         scrape_configs:\n  - job_name: fixture\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    Component::start("prometheus", "prometheus", &config, |dir, config, address| {
        vec![
            format!("--config.file={config}"),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address={address}"),
            "--log.level=warn".into(),
        ]
    })
    .await
}

/// Alertmanager routing every alert at once to `receiver_url` with the bearer `token`.
pub async fn alertmanager(receiver_url: &str, token: &str) -> anyhow::Result<Component> {
    // group_wait is how long Alertmanager holds a new group before its first notification.
    let config = format!(
        "route:\n  receiver: trainloop\n  group_by: ['...']\n  group_wait: 50ms\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: trainloop\n    webhook_configs:\n      - url: '{receiver_url}'\n        send_resolved: true\n\
         \x20       http_config:\n          authorization:\n            type: Bearer\n            credentials: '{token}'\n"
    );
    Component::start("alertmanager", "prometheus-alertmanager", &config, |dir, config, address| {
        vec![
            format!("--config.file={config}"),
            format!("--storage.path={}", dir.join("data").display()),
            format!("--web.listen-address={address}"),
            // No cluster: a gossip port shared by parallel tests, and a peer wait before sending.
            "--cluster.listen-address=".into(),
            "--log.level=warn".into(),
        ]
    })
    .await
}

impl Component {
    async fn start(
        name: &'static str,
        binary: &str,
        config: &str,
        args: impl Fn(&Path, &str, &str) -> Vec<String>,
    ) -> anyhow::Result<Component> {
        let binary = find(binary)?;
        let dir = std::env::temp_dir().join(format!("trainloop-{name}-{}", crate::unique()));
        std::fs::create_dir_all(&dir)?;
        let config_file = dir.join(format!("{name}.yml"));
        std::fs::write(&config_file, config)?;
        let address = format!("127.0.0.1:{}", free_port()?);
        let server = Server::start(name, &binary, &args(&dir, &config_file.to_string_lossy(), &address), &dir)?;
        let mut component = Component { server, _dir: WorkDir(dir), url: format!("http://{address}") };
        let http = trainloop::triggers::data::http_client()?;
        let ready = format!("{}/-/ready", component.url);
        component
            .wait_until("it answers ready", async || {
                Ok(http.get(&ready).send().await.is_ok_and(|answer| answer.status().is_success()))
            })
            .await?;
        Ok(component)
    }

    /// Poll `done` until it answers true; fail with the server's log if it exits, or after
    /// [`START_TIMEOUT`].
    pub async fn wait_until(
        &mut self,
        what: &str,
        done: impl AsyncFnMut() -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        process::wait_until(std::slice::from_mut(&mut self.server), what, START_TIMEOUT, done).await
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("configuration, data and log kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `binary` on PATH or in /usr/bin, where the Debian packages put it.
fn find(binary: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| anyhow::anyhow!("{binary} is not installed: `make test` installs it (Debian package)"))
}

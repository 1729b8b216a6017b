//! The servers a benchmark run starts, each stopped when its guard drops,
//! whether the run succeeded or failed.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A started server process; dropping it stops the process (and, for nginx,
/// its workers: SIGTERM lets the master take them down with it).
pub struct ServerProcess {
    pub name: &'static str,
    pub base: String,
    child: Child,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while terminated && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    fn spawn(name: &'static str, port: u16, command: &mut Command) -> BenchResult<Self> {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(ServerProcess { name, base: format!("http://127.0.0.1:{port}"), child })
    }

    /// CPU time (user and system) used so far by the process and its
    /// children (nginx's workers), from `/proc`; `None` where that is not readable.
    pub fn cpu_time(&self) -> Option<Duration> {
        let pid = self.child.id();
        let ticks_per_second = clock_ticks_per_second()?;
        let mut ticks = 0;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // Fields after the command name, which may hold spaces: state is
            // field 3, ppid 4, utime 14, stime 15.
            let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let own = head.split_whitespace().next() == Some(pid.to_string().as_str());
            let child = fields.get(1) == Some(&pid.to_string().as_str());
            if own || child {
                for field in [11, 12] {
                    ticks += fields.get(field)?.parse::<u64>().ok()?;
                }
            }
        }
        Some(Duration::from_secs_f64(ticks as f64 / ticks_per_second))
    }

    /// Polls `path` with `body` until it answers 200, the process exits, or
    /// the deadline passes.
    pub fn await_ready(&mut self, path: &str, body: &str) -> BenchResult<()> {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let answered = client.post(format!("{}{path}", self.base)).body(body.to_string()).send();
            if answered.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("{} exited early with {status}", self.name).into());
            }
            if Instant::now() > deadline {
                return Err(format!("{} not ready within {READY_TIMEOUT:?}", self.name).into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn clock_ticks_per_second() -> Option<f64> {
    let output = Command::new("getconf").arg("CLK_TCK").output().ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

pub fn free_port() -> BenchResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The release model server binary serving the artifact.
pub fn model_server(artifact_uri: &str, digest: &str) -> BenchResult<ServerProcess> {
    let port = free_port()?;
    ServerProcess::spawn(
        "model server",
        port,
        Command::new(env!("CARGO_BIN_EXE_trainloop-example-model-server"))
            .env("MODEL_URI", artifact_uri)
            .env("MODEL_DIGEST", digest)
            .env("POD_IP", "127.0.0.1")
            .env("PORT", port.to_string()),
    )
}

/// This bench binary again, as the no-op server answering `answer_file`.
pub fn noop_server(answer_file: &Path) -> BenchResult<ServerProcess> {
    let port = free_port()?;
    ServerProcess::spawn(
        "no-op server",
        port,
        Command::new(std::env::current_exe()?).arg("--noop-server").arg(format!("127.0.0.1:{port}")).arg(answer_file),
    )
}

/// nginx (two workers, as many as cores) answering every request with
/// `answer`, from a configuration in `dir`.
pub fn nginx(dir: &Path, answer: &str) -> BenchResult<ServerProcess> {
    let port = free_port()?;
    let quoted = answer.replace('\\', "\\\\").replace('\'', "\\'");
    let config = format!(
        "daemon off;\n\
         worker_processes 2;\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
           access_log off;\n\
           client_body_temp_path {dir}/body;\n\
           proxy_temp_path {dir}/proxy;\n\
           fastcgi_temp_path {dir}/fastcgi;\n\
           uwsgi_temp_path {dir}/uwsgi;\n\
           scgi_temp_path {dir}/scgi;\n\
           keepalive_requests 1000000;\n\
           server {{\n\
             listen 127.0.0.1:{port};\n\
             location / {{ default_type application/json; return 200 '{quoted}'; }}\n\
           }}\n\
         }}\n",
        dir = dir.display()
    );
    let config_path = dir.join("nginx.conf");
    std::fs::write(&config_path, config)?;
    ServerProcess::spawn(
        "nginx",
        port,
        Command::new("nginx").arg("-e").arg(dir.join("error.log")).arg("-p").arg(dir).arg("-c").arg(&config_path),
    )
}

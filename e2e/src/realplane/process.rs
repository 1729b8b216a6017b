//! One server process of the real control plane: its own process group, its output in a log
//! file, and killed with everything it started when dropped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    pub name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Start `binary` with `args`, writing its output to `<log_dir>/<name>.log`.
    pub fn start(name: &'static str, binary: &Path, args: &[String], log_dir: &Path) -> anyhow::Result<Server> {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let mut command = Command::new(binary);
        command.args(args).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out).process_group(0);
        // SAFETY: prctl is async-signal-safe. If the test process dies without running drop (a
        // SIGKILL, a timeout), the kernel still kills the server rather than leave it behind.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| anyhow::anyhow!("starting {}: {e}", binary.display()))?;
        Ok(Server { name, child, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error if the process has already exited, with the end of its log.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => anyhow::bail!("{} exited ({status}):\n{}", self.name, self.log_tail()),
        }
    }

    /// The last lines of the server's output, for a failure message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The whole group: a server that forked helpers takes them along.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: signalling a process group we created; no memory is involved.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

/// Poll `ready` until it answers true; fail early, with its log, if one of `servers` exits, and
/// after `limit` with all their logs.
pub async fn wait_until(
    servers: &mut [Server],
    what: &str,
    limit: Duration,
    mut ready: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        for server in servers.iter_mut() {
            server.check_running()?;
        }
        let last = match ready().await {
            Ok(true) => return Ok(()),
            Ok(false) => "not yet".to_string(),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() > deadline {
            let logs: Vec<String> = servers.iter().map(|s| format!("--- {}:\n{}", s.name, s.log_tail())).collect();
            anyhow::bail!("timed out waiting for {what} (last: {last})\n{}", logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

//! Container processes: start one in its own process group, stop the whole group.
//!
//! A container's command is often `sh -c '...'` whose children must die with it, as they would
//! with their container; so each process leads a new group and signals go to the group.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

/// What to start.
#[derive(Debug, Clone)]
pub struct Launch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub work_dir: PathBuf,
    pub log: PathBuf,
}

/// A running container process. Dropping it kills the group, so no process outlives the
/// kubelet task that owns it (even when the runtime is dropped without a clean shutdown).
#[derive(Debug)]
pub struct Process {
    child: Child,
    pgid: Option<i32>,
}

/// Sends `signal` to a process group. Returns false if no such group exists any more.
fn signal_group(pgid: i32, signal: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names a process group.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

impl Process {
    pub fn start(launch: &Launch) -> std::io::Result<Process> {
        let Some(program) = launch.argv.first() else {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"));
        };
        let log = OpenOptions::new().create(true).append(true).open(&launch.log)?;
        let log_err = log.try_clone()?;
        let mut cmd = Command::new(program);
        cmd.args(&launch.argv[1..])
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&launch.work_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .kill_on_drop(true);
        // If localplane itself dies without a clean shutdown (SIGKILL, a killed test binary),
        // the kernel kills the container's main process too instead of leaving it running.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        let pgid = child.id().and_then(|id| i32::try_from(id).ok());
        Ok(Process { child, pgid })
    }

    pub fn pid(&self) -> Option<i32> {
        self.pgid
    }

    /// Waits for the main process to exit, then kills whatever it left in its group
    /// (a container's processes end with its main process).
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        if let Some(pgid) = self.pgid {
            signal_group(pgid, libc::SIGKILL);
        }
        Ok(status)
    }

    /// Graceful stop: SIGTERM to the group, then SIGKILL after `grace`.
    pub async fn terminate(&mut self, grace: Duration) -> std::io::Result<ExitStatus> {
        if let Some(pgid) = self.pgid {
            signal_group(pgid, libc::SIGTERM);
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => {
                if let Some(pgid) = self.pgid {
                    signal_group(pgid, libc::SIGKILL);
                }
                status
            }
            Err(_) => {
                if let Some(pgid) = self.pgid {
                    signal_group(pgid, libc::SIGKILL);
                }
                let _ = self.child.start_kill();
                self.child.wait().await
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait()
            && let Some(pgid) = self.pgid
        {
            signal_group(pgid, libc::SIGKILL);
        }
    }
}

/// The container exit code of a process status: its code, or 128 + the signal that ended it.
pub fn exit_code(status: &ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(255)
}

/// Finds an executable the way the process will: a name without `/` is searched on `path_var`.
pub fn find_executable(program: &str, path_var: Option<&str>, cwd: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    if program.contains('/') {
        let p = cwd.join(program);
        return is_exec(&p).then_some(p);
    }
    path_var?.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(program)).find(|p| is_exec(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a process exists and is not a zombie waiting for its new parent to reap it.
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
                state != Some('Z')
            })
            .unwrap_or(false)
    }

    fn launch(script: &str, dir: &Path) -> Launch {
        Launch {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default()), ("GREETING".into(), "hi".into())],
            work_dir: dir.to_path_buf(),
            log: dir.join("log"),
        }
    }

    #[tokio::test]
    async fn runs_logs_and_stops_process_groups() {
        let dir = std::env::temp_dir().join(format!("lp-rt-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = Process::start(&launch("echo $GREETING; pwd; exit 3", &dir)).unwrap();
        let status = p.wait().await.unwrap();
        assert_eq!(exit_code(&status), 3);
        let log = std::fs::read_to_string(dir.join("log")).unwrap();
        assert!(log.starts_with("hi\n"), "{log}");

        // A child in the background must die with the group when the leader is stopped.
        let mut p = Process::start(&launch("sleep 300 & echo $! > child.pid; wait", &dir)).unwrap();
        let pid_file = dir.join("child.pid");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !pid_file.exists() || std::fs::read_to_string(&pid_file).unwrap().trim().is_empty() {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let child: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        let status = p.terminate(Duration::from_secs(5)).await.unwrap();
        assert_eq!(exit_code(&status), 128 + libc::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while alive(child) {
            assert!(std::time::Instant::now() < deadline, "child survived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(find_executable("sh", std::env::var("PATH").ok().as_deref(), &dir).is_some());
        assert!(find_executable("no-such-program-xyz", Some("/bin"), &dir).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

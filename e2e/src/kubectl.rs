//! The real `kubectl`, run as a user runs it against the test's plane, with the kubectl plugin
//! installed as a user installs it: alone in a directory put first on kubectl's PATH.

use std::path::{Path, PathBuf};

use crate::{Env, TIMEOUT};

pub struct Kubectl {
    /// The directory put first on the PATH (holds the plugin, when installed).
    pub dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

/// What one kubectl command did.
pub struct Outcome {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    /// kubectl against `env`'s plane, with each of `executables` (a name such as
    /// `kubectl-trainloop`, and the binary cargo built) linked under that name into the directory
    /// first on its PATH.
    pub fn with_plugins(env: &Env, executables: &[(&str, &Path)]) -> anyhow::Result<Kubectl> {
        let dir = tempfile::tempdir()?;
        for (name, executable) in executables {
            std::os::unix::fs::symlink(executable, dir.path().join(name))?;
        }
        Ok(Kubectl { dir, kubeconfig: env.kubeconfig_path() })
    }

    /// The PATH kubectl runs with: the plugin directory first.
    fn path(&self) -> String {
        format!("{}:{}", self.dir.path().display(), std::env::var("PATH").unwrap_or_default())
    }

    /// `kubectl ARGS`, with `stdin` as its standard input (none when empty).
    pub async fn run_with_input(&self, args: &[&str], stdin: &[u8]) -> Outcome {
        use tokio::io::AsyncWriteExt;
        let mut command = tokio::process::Command::new("kubectl");
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("PATH", self.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("kubectl on the PATH");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin).await.expect("kubectl reads its input");
        }
        let output = tokio::time::timeout(TIMEOUT, child.wait_with_output()).await.expect("kubectl finished");
        let output = output.expect("kubectl's output");
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).to_string();
        Outcome { ok: output.status.success(), stdout: text(&output.stdout), stderr: text(&output.stderr) }
    }

    pub async fn run(&self, args: &[&str]) -> Outcome {
        self.run_with_input(args, b"").await
    }

    /// A command that must succeed: its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let outcome = self.run(args).await;
        assert!(outcome.ok, "kubectl {args:?} failed: {}{}", outcome.stdout, outcome.stderr);
        outcome.stdout
    }

    /// A command that must fail: its stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        let outcome = self.run(args).await;
        assert!(!outcome.ok, "kubectl {args:?} succeeded: {}", outcome.stdout);
        outcome.stderr
    }
}

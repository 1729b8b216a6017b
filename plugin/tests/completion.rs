//! The completion scripts load in a real bash and a real zsh and complete the subcommands; zsh
//! completes them through kubectl too (kubectl_complete-trainloop).

use std::path::Path;
use std::process::Command;

#[test]
fn bash_sources_the_script_and_completes_subcommands() {
    let plugin = env!("CARGO_BIN_EXE_kubectl-trainloop");
    // What a user's .bashrc does, then what bash does on `kubectl-trainloop re<TAB>`.
    let session = format!(
        r#"source <("{plugin}" completion bash) || exit 3
COMP_WORDS=(kubectl-trainloop re); COMP_CWORD=1; COMP_LINE="kubectl-trainloop re"; COMP_POINT=${{#COMP_LINE}}
_kubectl__trainloop kubectl-trainloop re kubectl-trainloop
printf '%s\n' "${{COMPREPLY[@]}}""#
    );
    let output = Command::new("bash").arg("-c").arg(session).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let mut offered: Vec<&str> = stdout.lines().collect();
    offered.sort();
    assert_eq!(offered, ["reproduce", "retrain"]);
}

/// What a real zsh lists on TAB after `line`, its completion set up by `setup`, with the plugin's
/// two executables on the PATH: the matches, in order (`tests/zsh_lists.zsh` drives zsh on a
/// pseudo-terminal).
fn zsh_lists(setup: &str, line: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, built) in [
        ("kubectl-trainloop", env!("CARGO_BIN_EXE_kubectl-trainloop")),
        ("kubectl_complete-trainloop", env!("CARGO_BIN_EXE_kubectl_complete-trainloop")),
    ] {
        std::os::unix::fs::symlink(built, dir.path().join(name)).unwrap();
    }
    let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zsh_lists.zsh");
    // Bounded: a zsh that never lists is killed, and the test fails on what it printed.
    let output = Command::new("timeout")
        .args(["60", "zsh", "-f"])
        .arg(script)
        .args([setup, line])
        .env("PATH", path)
        .env("KUBECONFIG", dir.path().join("no-cluster"))
        .output()
        .expect("zsh on the PATH (`make test` installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let listed = stdout.lines().filter(|l| l.contains(" -- ")).filter_map(|l| l.split_whitespace().next());
    listed.map(String::from).collect()
}

#[test]
fn zsh_completes_the_plugin_through_kubectl_and_alone() {
    // kubectl's own zsh completion runs `kubectl __complete trainloop re`, which runs
    // kubectl_complete-trainloop.
    assert_eq!(zsh_lists("source <(kubectl completion zsh)", "kubectl trainloop re"), ["reproduce", "retrain"]);
    assert_eq!(
        zsh_lists("source <(kubectl-trainloop completion zsh)", "kubectl-trainloop re"),
        ["reproduce", "retrain"]
    );
}

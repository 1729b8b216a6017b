//! The bash completion script loads in a real bash and completes the plugin's subcommands.

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

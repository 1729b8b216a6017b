//! `completion bash|zsh`: the shell completion script of `kubectl-trainloop`.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::args::Cli;

pub fn script(shell: Shell) -> anyhow::Result<String> {
    let mut buffer = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kubectl-trainloop", &mut buffer);
    Ok(String::from_utf8(buffer)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_complete_the_plugins_subcommands() {
        let bash = script(Shell::Bash).unwrap();
        assert!(bash.contains("complete -F _kubectl__trainloop"), "{bash}");
        let zsh = script(Shell::Zsh).unwrap();
        assert!(zsh.starts_with("#compdef kubectl-trainloop"), "{zsh}");
        for command in ["runs", "compare", "lineage", "retrain", "promote", "rollback", "reproduce", "completion"] {
            assert!(bash.contains(command) && zsh.contains(command), "{command}");
        }
    }
}

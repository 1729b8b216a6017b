//! `kubectl_complete-trainloop`: kubectl (1.26 and later) completes `kubectl trainloop ...` by
//! running this executable from the PATH with the words after `trainloop`, the last one being the
//! word under completion, and reads Cobra's format back: one candidate a line (`value\tdescription`),
//! then `:DIRECTIVE`. Names of pipelines, runs and deployments come from the cluster.

use clap::CommandFactory;
use trainloop_api::{ModelDeployment, TrainingPipeline, TrainingRun};

use crate::args::{Cli, ClusterArgs};
use crate::cluster::{Cluster, Kind};

/// Cobra's directives: let the shell complete file names, or not; add no space after the word
/// (`md/`, which a name follows).
const FILES: u32 = 0;
const NO_SPACE: u32 = 2;
const NO_FILES: u32 = 4;

/// What the word under completion can be.
#[derive(Debug, PartialEq)]
pub enum Wanted {
    /// These values, with their descriptions.
    Values(Vec<(String, String)>),
    /// Names of objects of a kind in the namespace, each after `prefix` (`md/`, `tr/`).
    Names { kind: &'static str, prefix: &'static str },
    /// A file name (`--kubeconfig`).
    File,
}

/// The words typed after `trainloop`, split: connection flags, the subcommand and its arguments.
#[derive(Debug, Default)]
struct Typed {
    cluster: ClusterArgs,
    /// The flag whose value is under completion (the word before it, when it takes one).
    pending_flag: Option<String>,
    positional: Vec<String>,
}

/// The flags that take a value, long and short.
fn takes_value(flag: &str) -> bool {
    Cli::command()
        .get_arguments()
        .chain(Cli::command().get_subcommands().flat_map(|c| c.get_arguments()))
        .filter(|arg| arg.get_action().takes_values())
        .any(|arg| {
            arg.get_long().is_some_and(|l| flag == format!("--{l}"))
                || arg.get_short().is_some_and(|s| flag == format!("-{s}"))
        })
}

fn split(words: &[String]) -> Typed {
    let mut typed = Typed::default();
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => (flag, Some(value.to_string())),
            _ => (word.as_str(), None),
        };
        if !flag.starts_with('-') {
            typed.positional.push(word.clone());
            continue;
        }
        if !takes_value(flag) {
            continue;
        }
        let Some(value) = inline.or_else(|| words.next().cloned()) else {
            typed.pending_flag = Some(flag.to_string());
            break;
        };
        match flag {
            "--kubeconfig" => typed.cluster.kubeconfig = Some(value.into()),
            "--context" => typed.cluster.context = Some(value),
            "-n" | "--namespace" => typed.cluster.namespace = Some(value),
            _ => {}
        }
    }
    typed
}

/// What `current` (the last word) can be after `before` (the words between `trainloop` and it).
pub fn wanted(before: &[String], current: &str) -> Wanted {
    let typed = split(before);
    let command = Cli::command();
    if let Some(flag) = typed.pending_flag.as_deref() {
        return match flag {
            "--kubeconfig" => Wanted::File,
            "-o" | "--output" => values(["table", "json", "yaml"]),
            "-n" | "--namespace" => Wanted::Names { kind: "namespace", prefix: "" },
            "--deployment" => Wanted::Names { kind: ModelDeployment::SHORT, prefix: "" },
            _ => Wanted::Values(Vec::new()),
        };
    }
    let Some((name, arguments)) = typed.positional.split_first() else {
        if current.starts_with('-') {
            return Wanted::Values(flags(&command));
        }
        let subcommands = command.get_subcommands().filter(|c| c.get_name() != "help");
        return Wanted::Values(subcommands.map(|c| (c.get_name().to_string(), about(c))).collect());
    };
    if current.starts_with('-') {
        return Wanted::Values(command.find_subcommand(name).map(flags).unwrap_or_default());
    }
    let names = |kind| Wanted::Names { kind, prefix: "" };
    match (name.as_str(), arguments.len()) {
        ("runs" | "retrain", 0) => names(TrainingPipeline::SHORT),
        ("compare", _) | ("promote" | "reproduce", 0) => names(TrainingRun::SHORT),
        ("rollback", 0) => names(ModelDeployment::SHORT),
        ("lineage", 0) if current.starts_with("md/") => Wanted::Names { kind: ModelDeployment::SHORT, prefix: "md/" },
        ("lineage", 0) if current.starts_with("tr/") => Wanted::Names { kind: TrainingRun::SHORT, prefix: "tr/" },
        ("lineage", 0) => values(["md/", "tr/"]),
        ("completion", 0) => values(["bash", "zsh", "fish", "elvish", "powershell"]),
        _ => Wanted::Values(Vec::new()),
    }
}

fn values<const N: usize>(values: [&str; N]) -> Wanted {
    Wanted::Values(values.iter().map(|v| (v.to_string(), String::new())).collect())
}

/// The first clause of a subcommand's help: a shell shows it beside the name.
fn about(command: &clap::Command) -> String {
    let about = command.get_about().map(|a| a.to_string()).unwrap_or_default();
    let end = [". ", ": ", "; ", " ("].iter().filter_map(|stop| about.find(stop)).min().unwrap_or(about.len());
    about[..end].trim_end_matches('.').to_string()
}

/// The long flags of `command` and the global ones.
fn flags(command: &clap::Command) -> Vec<(String, String)> {
    let global = Cli::command();
    let arguments = command.get_arguments().chain(global.get_arguments());
    let mut flags: Vec<(String, String)> = arguments
        .filter_map(|arg| {
            Some((format!("--{}", arg.get_long()?), arg.get_help().map(|h| h.to_string()).unwrap_or_default()))
        })
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

/// The candidates for `current`, and the directive (files or not), in Cobra's format.
pub async fn complete(words: &[String]) -> String {
    let (current, before) = words.split_last().map_or(("", &[][..]), |(c, b)| (c.as_str(), b));
    let (candidates, directive) = match wanted(before, current) {
        Wanted::File => (Vec::new(), FILES),
        Wanted::Values(values) => (values, NO_FILES),
        // No cluster, no rights: no names, and nothing to say on a terminal in the middle of a line.
        Wanted::Names { kind, prefix } => {
            (names(&split(before).cluster, kind, prefix).await.unwrap_or_default(), NO_FILES)
        }
    };
    let candidates: Vec<(String, String)> =
        candidates.into_iter().filter(|(value, _)| value.starts_with(current)).collect();
    let directive = if !candidates.is_empty() && candidates.iter().all(|(v, _)| v.ends_with('/')) {
        directive | NO_SPACE
    } else {
        directive
    };
    let mut text: String = candidates
        .into_iter()
        .map(|(value, about)| if about.is_empty() { format!("{value}\n") } else { format!("{value}\t{about}\n") })
        .collect();
    text.push_str(&format!(":{directive}\n"));
    text
}

async fn names(cluster: &ClusterArgs, kind: &str, prefix: &str) -> anyhow::Result<Vec<(String, String)>> {
    let cluster = Cluster::connect(cluster).await?;
    let names: Vec<String> = match kind {
        "namespace" => {
            let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(cluster.client.clone());
            api.list_metadata(&Default::default()).await?.items.into_iter().filter_map(|n| n.metadata.name).collect()
        }
        TrainingPipeline::SHORT => names_of::<TrainingPipeline>(&cluster).await?,
        ModelDeployment::SHORT => names_of::<ModelDeployment>(&cluster).await?,
        _ => names_of::<TrainingRun>(&cluster).await?,
    };
    Ok(names.into_iter().map(|name| (format!("{prefix}{name}"), String::new())).collect())
}

async fn names_of<K: Kind>(cluster: &Cluster) -> anyhow::Result<Vec<String>> {
    let list = cluster.api::<K>().list_metadata(&Default::default()).await?;
    Ok(list.items.into_iter().filter_map(|object| object.metadata.name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted_after(line: &str) -> Wanted {
        let mut words: Vec<String> = line.split(' ').map(String::from).collect();
        let current = words.pop().unwrap_or_default();
        wanted(&words, &current)
    }

    fn offered(wanted: Wanted) -> Vec<String> {
        match wanted {
            Wanted::Values(values) => values.into_iter().map(|(v, _)| v).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_position_asks_for_what_the_command_takes_there() {
        let commands = offered(wanted_after(""));
        assert_eq!(
            commands,
            ["runs", "compare", "lineage", "retrain", "promote", "rollback", "reproduce", "completion"]
        );
        let pipelines = Wanted::Names { kind: "tp", prefix: "" };
        let runs = Wanted::Names { kind: "tr", prefix: "" };
        assert_eq!(wanted_after("runs "), pipelines);
        assert_eq!(wanted_after("-n ml --context=x retrain "), pipelines);
        assert_eq!(wanted_after("compare cancer-1 cancer-"), runs);
        assert_eq!(wanted_after("promote cancer-1 --deployment "), Wanted::Names { kind: "md", prefix: "" });
        assert_eq!(wanted_after("lineage md/ca"), Wanted::Names { kind: "md", prefix: "md/" });
        assert_eq!(offered(wanted_after("lineage ")), ["md/", "tr/"]);
        assert_eq!(wanted_after("--namespace "), Wanted::Names { kind: "namespace", prefix: "" });
        assert_eq!(wanted_after("runs --kubeconfig "), Wanted::File);
        assert_eq!(offered(wanted_after("runs -o ")), ["table", "json", "yaml"]);
        assert!(offered(wanted_after("rollback cancer ")).is_empty(), "one deployment only");
        assert!(offered(wanted_after("reproduce --")).contains(&"--timeout".to_string()));
        assert!(offered(wanted_after("--")).contains(&"--namespace".to_string()));
    }

    #[test]
    fn the_typed_connection_flags_choose_the_cluster() {
        let words: Vec<String> = ["--kubeconfig=/k", "-n", "ml", "--context", "c", "runs"].map(String::from).into();
        let typed = split(&words);
        assert_eq!(typed.cluster.kubeconfig.as_deref(), Some(std::path::Path::new("/k")));
        assert_eq!((typed.cluster.namespace.as_deref(), typed.cluster.context.as_deref()), (Some("ml"), Some("c")));
        assert_eq!(typed.positional, ["runs"]);
    }

    #[tokio::test]
    async fn candidates_are_filtered_by_the_typed_prefix_and_end_with_the_directive() {
        let words: Vec<String> = ["runs", "-o", "j"].map(String::from).into();
        assert_eq!(complete(&words).await, "json\n:4\n");
        let words: Vec<String> = ["re"].map(String::from).into();
        let text = complete(&words).await;
        assert!(text.starts_with("retrain\tStart a run now\n") && text.ends_with(":4\n"), "{text}");
        let words: Vec<String> = ["lineage", ""].map(String::from).into();
        assert_eq!(complete(&words).await, "md/\ntr/\n:6\n", "no space after md/");
        let words: Vec<String> = ["comp"].map(String::from).into();
        assert_eq!(
            complete(&words).await,
            "compare\tMetrics of runs of one pipeline side by side\ncompletion\tPrint the shell completion script\n:4\n"
        );
    }
}

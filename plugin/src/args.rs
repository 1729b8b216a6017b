//! The command line: kubectl's connection flags, the output format, and one subcommand each.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Runs, comparisons and lineage of trainloop models; retrain, promote, roll back, reproduce.
#[derive(Debug, Parser)]
#[command(name = "kubectl-trainloop", bin_name = "kubectl-trainloop", version)]
pub struct Cli {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format: a table for people, or the same data as JSON or YAML.
    #[arg(short = 'o', long, global = true, value_enum, default_value = "table")]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach the cluster, as kubectl reads it.
#[derive(Clone, Debug, Default, Args)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace (default: the context's, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAME")]
    pub namespace: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The runs (of one pipeline): trigger, phase, headline metric, gate verdict, champion, age.
    Runs {
        /// Only the runs of this pipeline.
        pipeline: Option<String>,
    },
    /// Metrics of runs of one pipeline side by side (deltas against the first), and what differs
    /// in their frozen inputs.
    Compare {
        /// Two or more runs; the first is the baseline.
        #[arg(num_args = 2.., required = true)]
        runs: Vec<String>,
    },
    /// What made a model: deployment, run, artifact, data, config, image, pipeline generation,
    /// trigger.
    Lineage {
        /// `md/NAME` (the model a ModelDeployment serves) or `tr/NAME` (a TrainingRun).
        target: String,
    },
    /// Start a run now: sets the pipeline's `spec.triggers.retrainToken` (time and reason).
    Retrain {
        pipeline: String,
        /// Why: recorded in the token, which the run's trigger reason quotes.
        #[arg(long, required = true)]
        reason: String,
        /// Print the patch for a GitOps repository instead of applying it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Serve this run: pins the deployment's `source.runRef` to it.
    Promote {
        run: String,
        /// The ModelDeployment to pin.
        #[arg(long, required = true, value_name = "MD")]
        deployment: String,
        /// Print the patch for a GitOps repository instead of applying it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Serve the previous model again: pins `source.runRef` to the newest earlier model in the
    /// deployment's status.
    Rollback {
        deployment: String,
        /// Print the patch for a GitOps repository instead of applying it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Train a run's frozen spec again and tell whether the artifact and data digests are
    /// identical; exit 1 when they differ.
    Reproduce {
        run: String,
        /// Seconds to wait for the new run to finish.
        #[arg(long, default_value_t = 600, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Print the shell completion script (e.g. `source <(kubectl-trainloop completion bash)`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

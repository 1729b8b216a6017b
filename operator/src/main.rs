//! The `trainloop` binary: `run` the operator, print the `crds`, compare data for `drift`, or print
//! the `version`.

use clap::{Parser, Subcommand};
use trainloop::cli::{self, LogFormat, RunArgs};

#[derive(Parser)]
#[command(name = "trainloop", version, about = "Continuous training of ML models on Kubernetes")]
struct Cli {
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "TRAINLOOP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against the current kubeconfig context or in-cluster config.
    Run(RunArgs),
    /// Print every CustomResourceDefinition as YAML, or write one file each into `--dir`.
    Crds {
        /// Directory to write `<name>.yaml` files into, instead of printing.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Also write the Helm chart's copy (annotated to be kept on uninstall) into this directory.
        #[arg(long, requires = "dir")]
        chart_dir: Option<std::path::PathBuf>,
    },
    /// Drift statistics for people and scripts.
    Drift {
        #[command(subcommand)]
        command: cli::drift::DriftCommand,
    },
    /// Print the version.
    Version,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    cli::init_logging(cli.log_format);
    let result = match cli.command {
        Command::Run(args) => cli::run(args).await,
        Command::Crds { dir: None, .. } => cli::print_crds(),
        Command::Crds { dir: Some(dir), chart_dir } => {
            cli::write_crds(&dir).and_then(|()| chart_dir.map_or(Ok(()), |chart| cli::write_chart_crds(&chart)))
        }
        Command::Drift { command } => return cli::drift::run_drift(&command),
        Command::Version => {
            println!("trainloop {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // kube's errors already repeat their sources in Display: print the context and the
            // root cause once each rather than the whole chain.
            match error.chain().nth(1) {
                Some(_) => eprintln!("error: {error}: {}", error.root_cause()),
                None => eprintln!("error: {error}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

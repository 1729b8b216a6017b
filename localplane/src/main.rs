//! `localplane serve --kubeconfig PATH [--port N] [--images FILE] [--work-dir DIR]`

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use localplane::{Config, LocalPlane};

#[derive(Parser)]
#[command(name = "localplane", about = "A local Kubernetes control plane on loopback")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve until SIGINT/SIGTERM; the kubeconfig is written once the server is ready.
    Serve {
        #[arg(long)]
        kubeconfig: PathBuf,
        /// 0 picks any free port.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// File mapping container images to local executables.
        #[arg(long)]
        images: Option<PathBuf>,
        /// Where pods run and write logs (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Command::Serve { kubeconfig, port, images, work_dir } = Cli::parse().command;
    let plane =
        LocalPlane::start(Config { port, images, work_dir, kubeconfig: Some(kubeconfig), identity: None }).await?;
    tracing::info!(url = %plane.url(), kubeconfig = %plane.kubeconfig_path().display(), "localplane ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    plane.shutdown().await;
    Ok(())
}

//! `trainloop run` as a process of its own, built with the end-to-end tests so that the kill
//! test sends SIGKILL to the current operator code (`CARGO_BIN_EXE_trainloop-operator`; the
//! `trainloop` binary belongs to another package, so a test cannot know it is up to date).
//! Usage: `trainloop-operator <metrics address> <artifact root> [<service account dir>]`, the
//! cluster from `KUBECONFIG`, else in-cluster (see `trainloop run --service-account-dir`).

use std::process::ExitCode;

use trainloop::cli::{LogFormat, RunArgs, init_logging, run};

#[tokio::main]
async fn main() -> ExitCode {
    init_logging(LogFormat::Text);
    let mut args = std::env::args().skip(1);
    let (Some(Ok(metrics_addr)), Some(artifact_root)) = (args.next().map(|a| a.parse()), args.next()) else {
        eprintln!("usage: trainloop-operator <metrics address> <artifact root> [<service account dir>]");
        return ExitCode::from(2);
    };
    let mut run_args = RunArgs::new(metrics_addr, artifact_root);
    // Its pods are processes on this host, on both planes: file:// roots need no volume.
    run_args.local_files = true;
    if let Some(dir) = args.next() {
        run_args.service_account_dir = dir.into();
    }
    // The failover test runs two candidates for one lease.
    if let Ok(seconds) = std::env::var("TRAINLOOP_LEASE_DURATION_SECONDS") {
        run_args.leader_election = true;
        run_args.lease_duration_seconds = seconds.parse().unwrap_or(15);
    }
    match run(run_args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

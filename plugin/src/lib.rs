//! `kubectl trainloop`: the runs, comparisons and lineage of trainloop models, and the user's
//! side of the loop (retrain, promote, roll back, reproduce), from the command line.

mod args;
mod change;
mod cluster;
mod compare;
#[cfg(test)]
mod fixtures;
mod lineage;
mod output;
mod promote;
mod retrain;
mod runs;

use std::process::ExitCode;

use clap::Parser;
use k8s_openapi::jiff::Timestamp;
use trainloop::api::{ModelDeployment, TrainingPipeline, TrainingRun};

pub use args::{Cli, Command, Output};
use cluster::Cluster;

/// Parse the command line, run the command, print its result; errors go to stderr with exit 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error.into()),
    };
    match runtime.block_on(execute(cli)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => fail(&error),
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::FAILURE
}

/// What the command prints.
async fn execute(cli: Cli) -> anyhow::Result<String> {
    let format = cli.output;
    let cluster = Cluster::connect(&cli.cluster).await?;
    match cli.command {
        Command::Runs { pipeline } => {
            let runs: Vec<TrainingRun> = cluster.list().await?;
            let deployments: Vec<ModelDeployment> = cluster.list().await?;
            let rows = runs::rows(&runs, &deployments, pipeline.as_deref(), Timestamp::now());
            if rows.is_empty() && format == Output::Table {
                return Ok(match pipeline {
                    Some(name) => {
                        cluster.get::<TrainingPipeline>(&name).await?;
                        format!("No runs of pipeline {name} in namespace {} yet.\n", cluster.namespace)
                    }
                    None => format!("No runs in namespace {}.\n", cluster.namespace),
                });
            }
            Ok(output::structured(format, &rows)?.unwrap_or_else(|| runs::render(&rows)))
        }
        Command::Compare { runs } => {
            let mut fetched = Vec::new();
            for name in &runs {
                fetched.push(cluster.get::<TrainingRun>(name).await?);
            }
            compare::same_pipeline(&fetched)?;
            let comparison = compare::compare(&fetched);
            Ok(output::structured(format, &comparison)?.unwrap_or_else(|| compare::render(&comparison)))
        }
        Command::Lineage { target } => {
            let chain = lineage::fetch(&cluster, &target.parse()?).await?;
            Ok(output::structured(format, &chain)?.unwrap_or_else(|| lineage::render(&chain)))
        }
        Command::Retrain { pipeline, reason, dry_run } => {
            let pipeline: TrainingPipeline = cluster.get(&pipeline).await?;
            let token = retrain::token(&reason, Timestamp::now());
            let change = retrain::change(&pipeline, &cluster.namespace, &token);
            if dry_run {
                return change.dry_run(format);
            }
            change.apply::<TrainingPipeline>(&cluster).await?;
            Ok(retrain::applied(&pipeline, &token))
        }
        Command::Promote { run, deployment, dry_run } => pin(&cluster, format, &deployment, Some(&run), dry_run).await,
        Command::Rollback { deployment, dry_run } => pin(&cluster, format, &deployment, None, dry_run).await,
    }
}

/// Pin `deployment` to `run`, or to its previous model when `run` is `None`.
async fn pin(
    cluster: &Cluster,
    format: Output,
    deployment: &str,
    run: Option<&str>,
    dry_run: bool,
) -> anyhow::Result<String> {
    let md: ModelDeployment = cluster.get(deployment).await?;
    let target = match run {
        Some(run) => run.to_string(),
        None => promote::previous_run(&md)?,
    };
    let run: TrainingRun = cluster.get(&target).await?;
    let pinned = match &md.spec.source.run_ref {
        Some(pinned) => cluster.api::<TrainingRun>().get_opt(&pinned.name).await.map_err(|e| cluster.explain(e))?,
        None => None,
    };
    promote::check(&run, &md, pinned.as_ref())?;
    let change = promote::change(&md, &cluster.namespace, &target);
    if dry_run {
        return change.dry_run(format);
    }
    change.apply::<ModelDeployment>(cluster).await?;
    Ok(promote::applied(&md, &target))
}

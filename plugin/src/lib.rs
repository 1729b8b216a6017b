//! `kubectl trainloop`: the runs, comparisons and lineage of trainloop models, and the user's
//! side of the loop (retrain, promote, roll back, reproduce), from the command line.

mod args;
mod change;
mod cluster;
mod compare;
mod complete;
mod completion;
#[cfg(test)]
mod fixtures;
mod lineage;
mod output;
mod promote;
mod reproduce;
mod retrain;
mod runs;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use k8s_openapi::jiff::Timestamp;
use trainloop_api::{ModelDeployment, TrainingPipeline, TrainingRun};

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
        Ok(Printed { text, success }) => {
            print!("{text}");
            if success { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(error) => fail(&error),
    }
}

/// Complete the words kubectl passes (those after `trainloop`, the last one under completion):
/// the candidates and Cobra's directive on stdout. Never fails: no candidates is an answer.
pub fn complete_main() -> ExitCode {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return ExitCode::FAILURE;
    };
    print!("{}", runtime.block_on(complete::complete(&words)));
    ExitCode::SUCCESS
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::FAILURE
}

/// What a command prints, and whether it found what it was asked to check.
struct Printed {
    text: String,
    success: bool,
}

impl From<String> for Printed {
    fn from(text: String) -> Printed {
        Printed { text, success: true }
    }
}

async fn execute(cli: Cli) -> anyhow::Result<Printed> {
    let format = cli.output;
    // Completion needs no cluster.
    if let Command::Completion { shell } = cli.command {
        return completion::script(shell).map(Printed::from);
    }
    let cluster = Cluster::connect(&cli.cluster).await?;
    let text = match cli.command {
        Command::Completion { shell } => completion::script(shell)?,
        Command::Runs { pipeline } => list_runs(&cluster, format, pipeline.as_deref()).await?,
        Command::Compare { runs } => compare_runs(&cluster, format, &runs).await?,
        Command::Lineage { target } => {
            let chain = lineage::fetch(&cluster, &target.parse()?).await?;
            output::structured(format, &chain)?.unwrap_or_else(|| lineage::render(&chain))
        }
        Command::Retrain { pipeline, reason, dry_run } => {
            retrain(&cluster, format, &pipeline, &reason, dry_run).await?
        }
        Command::Promote { run, deployment, dry_run } => {
            pin(&cluster, format, &deployment, Some(&run), dry_run).await?
        }
        Command::Rollback { deployment, dry_run } => pin(&cluster, format, &deployment, None, dry_run).await?,
        Command::Reproduce { run, timeout } => {
            let original: TrainingRun = cluster.get(&run).await?;
            reproduce::check(&original)?;
            let copy = reproduce::run(&cluster, &original, Duration::from_secs(timeout)).await?;
            let verdict = reproduce::verdict(&original, &copy);
            let text = output::structured(format, &verdict)?.unwrap_or_else(|| reproduce::render(&verdict));
            return Ok(Printed { text, success: verdict.identical });
        }
    };
    Ok(Printed::from(text))
}

async fn list_runs(cluster: &Cluster, format: Output, pipeline: Option<&str>) -> anyhow::Result<String> {
    let runs: Vec<TrainingRun> = cluster.list().await?;
    let deployments: Vec<ModelDeployment> = cluster.list().await?;
    let rows = runs::rows(&runs, &deployments, pipeline, Timestamp::now());
    if rows.is_empty() && format == Output::Table {
        return Ok(match pipeline {
            Some(name) => {
                cluster.get::<TrainingPipeline>(name).await?;
                format!("No runs of pipeline {name} in namespace {} yet.\n", cluster.namespace)
            }
            None => format!("No runs in namespace {}.\n", cluster.namespace),
        });
    }
    Ok(output::structured(format, &rows)?.unwrap_or_else(|| runs::render(&rows)))
}

async fn compare_runs(cluster: &Cluster, format: Output, names: &[String]) -> anyhow::Result<String> {
    let mut runs = Vec::new();
    for name in names {
        runs.push(cluster.get::<TrainingRun>(name).await?);
    }
    compare::same_pipeline(&runs)?;
    let comparison = compare::compare(&runs);
    Ok(output::structured(format, &comparison)?.unwrap_or_else(|| compare::render(&comparison)))
}

async fn retrain(
    cluster: &Cluster,
    format: Output,
    pipeline: &str,
    reason: &str,
    dry_run: bool,
) -> anyhow::Result<String> {
    let pipeline: TrainingPipeline = cluster.get(pipeline).await?;
    let token = retrain::token(reason, Timestamp::now());
    let change = retrain::change(&pipeline, &cluster.namespace, &token);
    if dry_run {
        return change.dry_run(format);
    }
    change.apply::<TrainingPipeline>(cluster).await?;
    Ok(retrain::applied(&pipeline, &token))
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

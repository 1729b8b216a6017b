//! `trainloop-example-traffic`: sends dataset rows to a model server, e.g.
//! `trainloop-example-traffic --url http://127.0.0.1:8080 --data examples/data/breast_cancer_wisconsin.csv
//!  --features examples/data/breast_cancer_features.json --count 500 --shift 'mean_radius*1.5'`.

use std::process::ExitCode;

use clap::Parser;
use trainloop_example_traffic::{Shift, TrafficOptions, send_traffic};

#[derive(Debug, Parser)]
#[command(version, about = "Send dataset rows, optionally shifted, to a trainloop model server")]
struct Args {
    /// Base URL of the model server.
    #[arg(long, env = "TRAFFIC_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Model name in the protocol paths.
    #[arg(long, default_value = "model")]
    model: String,
    /// Dataset: file://, http(s):// or a path of a CSV with a header.
    #[arg(long)]
    data: String,
    /// Feature schema: a path or the JSON itself.
    #[arg(long)]
    features: String,
    /// Rows to send.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Rows per request.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Rows per second (0: as fast as the server answers).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Drift to simulate, repeatable: NAME*FACTOR, NAME+OFFSET or NAME=VALUE.
    #[arg(long = "shift")]
    shifts: Vec<Shift>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let run = || -> Result<(), String> {
        let data = trainloop_example_trainer::fetch::read_uri(&args.data).map_err(|e| e.to_string())?;
        let schema = trainloop_example_trainer::train::load_schema(&args.features).map_err(|e| e.to_string())?;
        let report = send_traffic(&TrafficOptions {
            url: args.url.clone(),
            model: args.model.clone(),
            data,
            schema,
            count: args.count,
            batch: args.batch,
            rate: args.rate,
            shifts: args.shifts.clone(),
            seed: args.seed,
        })
        .map_err(|e| e.to_string())?;
        println!(
            "sent {} rows: {} accepted, {} requests rejected",
            report.rows_sent, report.rows_accepted, report.requests_rejected
        );
        if let Some(error) = report.first_error {
            println!("first rejection: {error}");
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

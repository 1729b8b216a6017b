//! `trainloop drift compare`: drift between a reference and a current
//! input, each a feature profile or a CSV or Parquet data file, local or in
//! object storage, for people (an aligned table) and scripts (`--json`).

mod compare;
mod csv_data;
mod csv_records;
mod data_file;
mod error;
mod input;
mod number;
mod parquet_data;
mod plain_line;
mod table;

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use crate::artifact::DriftMethod;

pub use compare::{
    ALL_METHODS, BinnedValue, CompareRequest, Comparison, FeatureComparison, RawStatistics, Source, compare,
    counts_of_sorted,
};
pub use error::CompareError;
pub use input::InputKind;
pub use table::render;

/// Exit status of bad input, as for a usage error.
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Subcommand)]
pub enum DriftCommand {
    /// Compare a current input with a reference: every drift statistic per feature.
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The reference: a feature profile (JSON, as the trainer writes it) or a CSV or Parquet
    /// data file; a local path or a URI (s3://, gs://, az://, http(s)://, file://).
    #[arg(long)]
    pub reference: String,
    /// The current input: a feature profile (JSON, e.g. a model server's) or a CSV or Parquet
    /// data file; a local path or a URI (s3://, gs://, az://, http(s)://, file://).
    #[arg(long)]
    pub current: String,
    /// The binned statistics to compute, comma-separated [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub method: Vec<Method>,
    /// The features to compare, comma-separated [default: all of the reference].
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,
    /// Mark statistics above this value, and the features that have any.
    #[arg(long, value_parser = parse_threshold)]
    pub threshold: Option<f64>,
    /// Quantile bins per numeric feature when the reference is data (the trainer's `profileBins`).
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A binned drift statistic (the command line's spelling of [`DriftMethod`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    Psi,
    Ks,
    Js,
    Wasserstein,
    Chi2,
}

impl From<Method> for DriftMethod {
    fn from(method: Method) -> Self {
        match method {
            Method::Psi => DriftMethod::Psi,
            Method::Ks => DriftMethod::Ks,
            Method::Js => DriftMethod::Js,
            Method::Wasserstein => DriftMethod::Wasserstein,
            Method::Chi2 => DriftMethod::Chi2,
        }
    }
}

fn parse_threshold(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!("{text:?} is not a non-negative number")),
    }
}

impl CompareArgs {
    pub fn request(&self) -> CompareRequest<'_> {
        let mut methods: Vec<DriftMethod> = Vec::new();
        for method in self.method.iter().map(|m| DriftMethod::from(*m)) {
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
        if methods.is_empty() {
            methods = ALL_METHODS.to_vec();
        }
        CompareRequest {
            reference: &self.reference,
            current: &self.current,
            methods,
            features: self.features.clone(),
            threshold: self.threshold,
            bins: self.bins,
        }
    }
}

/// Runs a `drift` subcommand, printing its result or its error; bad input
/// exits with status 2.
pub fn run_drift(command: &DriftCommand) -> ExitCode {
    let DriftCommand::Compare(args) = command;
    let comparison = match compare(&args.request()) {
        Ok(comparison) => comparison,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let text = if args.json {
        match serde_json::to_string_pretty(&comparison) {
            Ok(json) => json + "\n",
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        render(&comparison)
    };
    // A closed pipe (`| head`) is not worth a panic or an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

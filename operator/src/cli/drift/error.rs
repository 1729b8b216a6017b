//! Why a comparison cannot be made. Every one is the user's input, so the
//! command reports it and exits with status 2 (as for a usage error).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path} is not a feature profile: {reason}")]
    MalformedProfile { path: PathBuf, reason: String },
    #[error("{path} has profile format version {found}; this build reads version {supported}")]
    UnsupportedProfileVersion { path: PathBuf, found: u64, supported: u32 },
    #[error("{path}: not readable Parquet: {reason}")]
    MalformedParquet { path: PathBuf, reason: String },
    #[error("{path}: column {column:?} holds {kind} values, not numbers{hint}")]
    NotNumericColumn { path: PathBuf, column: String, kind: &'static str, hint: &'static str },
    #[error("{path}: feature {column:?} is categorical; Parquet columns are read as numbers only")]
    CategoricalParquet { path: PathBuf, column: String },
    #[error("{path}: not valid CSV: {reason}")]
    MalformedCsv { path: PathBuf, reason: String },
    #[error("{path} has no data rows")]
    NoRows { path: PathBuf },
    #[error("{path}: column {column:?} is not numeric: row {row} holds {value:?}{hint}")]
    NotNumeric { path: PathBuf, column: String, row: u64, value: String, hint: &'static str },
    #[error("{path}: column {column:?} has no value in row {row}")]
    MissingValue { path: PathBuf, column: String, row: u64 },
    #[error("unknown feature {name:?} in {which}; it has {available}")]
    UnknownFeature { name: String, which: &'static str, available: String },
    #[error(
        "feature {name:?} has other bins in the current profile than in the reference; compare profiles \
         binned on the same reference, or pass the reference's data or profile"
    )]
    DifferentBins { name: String },
    #[error("feature {name:?} has {counts} counts for {bins} bins in {which}")]
    CountsDoNotMatchBins { name: String, which: &'static str, counts: usize, bins: usize },
    #[error("feature {name:?} has no samples in {which}")]
    NoSamples { name: String, which: &'static str },
    #[error("internal error: {0}")]
    Internal(String),
    #[error("--bins must be at least 2, got {0}")]
    TooFewBins(usize),
}

//! The comparison itself: bins from the reference (its profile's, or the
//! trainer's quantile bins of its data), every requested binned statistic per
//! feature, and the raw two-sample statistics when both sides are data.

use serde::Serialize;

use crate::artifact::{Bins, DriftMethod, FeatureProfile, drift, quantile_edges_of_sorted};
use crate::stats::{KsTest, ks_and_wasserstein, sort_floats};

use super::data_file::DataFile;
use super::error::CompareError;
use super::input::{Format, Input, InputKind, read_profile};

/// Every statistic, in the order the table shows them.
pub const ALL_METHODS: [DriftMethod; 5] =
    [DriftMethod::Psi, DriftMethod::Ks, DriftMethod::Js, DriftMethod::Wasserstein, DriftMethod::Chi2];

/// What to compare and how.
#[derive(Clone, Debug)]
pub struct CompareRequest<'a> {
    /// A local path or an object-storage URI.
    pub reference: &'a str,
    pub current: &'a str,
    pub methods: Vec<DriftMethod>,
    /// Empty means every feature of the reference.
    pub features: Vec<String>,
    pub threshold: Option<f64>,
    /// Number bins per feature when the reference is data (the trainer's `profileBins`).
    pub bins: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Source {
    pub path: String,
    pub kind: InputKind,
    /// Rows of a data file, or samples of a profile.
    pub rows: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub reference: Source,
    pub current: Source,
    pub methods: Vec<DriftMethod>,
    pub threshold: Option<f64>,
    pub features: Vec<FeatureComparison>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureComparison {
    pub name: String,
    pub bins: usize,
    pub reference_samples: u64,
    pub current_samples: u64,
    /// The binned statistics, in the order of `methods`.
    pub binned: Vec<BinnedValue>,
    /// Whether any binned statistic is above the threshold.
    pub drifted: bool,
    /// Present when both inputs are data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawStatistics>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BinnedValue {
    pub method: DriftMethod,
    pub value: f64,
    pub above_threshold: bool,
}

/// Statistics of the raw values, as SciPy computes them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RawStatistics {
    pub ks: KsTest,
    pub wasserstein: f64,
}

/// Runs a comparison.
pub fn compare(request: &CompareRequest) -> Result<Comparison, CompareError> {
    if request.bins < 2 {
        return Err(CompareError::TooFewBins(request.bins));
    }
    let (reference, current) = open_both(request)?;
    let (features, reference, current) = match (reference.format.kind(), current.format.kind()) {
        (InputKind::Profile, _) => profile_against_any(request, &reference, &current)?,
        (InputKind::Data, InputKind::Profile) => data_against_profile(request, &reference, &current)?,
        (InputKind::Data, InputKind::Data) => data_against_data(request, &reference, &current)?,
    };
    Ok(Comparison { reference, current, methods: request.methods.clone(), threshold: request.threshold, features })
}

type Compared = (Vec<FeatureComparison>, Source, Source);

fn source(input: &Input, rows: u64) -> Source {
    Source { path: input.name.display().to_string(), kind: input.format.kind(), rows }
}

/// Opens both inputs at once: fetching two objects takes the time of one.
fn open_both(request: &CompareRequest) -> Result<(Input, Input), CompareError> {
    std::thread::scope(|scope| {
        let reference = scope.spawn(|| Input::open(request.reference));
        let current = Input::open(request.current)?;
        let reference =
            reference.join().map_err(|_| CompareError::Internal("the opening thread panicked".into()))??;
        Ok((reference, current))
    })
}

/// The reference's bins and counts apply to both sides; current data is
/// binned one record at a time.
fn profile_against_any(
    request: &CompareRequest,
    reference_input: &Input,
    current: &Input,
) -> Result<Compared, CompareError> {
    let reference = read_profile(reference_input)?;
    let names = chosen_features(
        &request.features,
        reference.features.iter().map(|f| f.name.as_str()),
        "the reference profile",
    )?;
    let reference_bins: Vec<(String, &Bins, &[u64])> = names
        .iter()
        .filter_map(|name| reference.feature(name))
        .map(|f| (f.name.clone(), &f.bins, f.counts.as_slice()))
        .collect();
    let (current_counts, current_rows) = match current.format {
        Format::Profile => {
            let current = read_profile(current)?;
            let wanted = reference_bins.iter().map(|(name, bins, _)| (name.as_str(), *bins));
            (counts_on_same_bins(&current, wanted)?, current.samples)
        }
        Format::Csv | Format::Parquet => {
            let columns: Vec<(String, &Bins)> = reference_bins.iter().map(|(n, b, _)| (n.clone(), *b)).collect();
            DataFile::open(current)?.bin_columns(&columns)?
        }
    };
    let features = reference_bins
        .iter()
        .zip(&current_counts)
        .map(|((name, bins, reference_counts), current_counts)| {
            binned_comparison(request, name, bins.len(), reference_counts, current_counts, None)
        })
        .collect::<Result<_, _>>()?;
    Ok((features, source(reference_input, reference.samples), source(current, current_rows)))
}

/// The current profile's counts of each feature, which must use the reference's bins.
fn counts_on_same_bins<'a>(
    current: &FeatureProfile,
    wanted: impl Iterator<Item = (&'a str, &'a Bins)>,
) -> Result<Vec<Vec<u64>>, CompareError> {
    wanted
        .map(|(name, bins)| {
            let feature = current.feature(name).ok_or_else(|| CompareError::UnknownFeature {
                name: name.to_string(),
                which: "the current profile",
                available: feature_list(current.features.iter().map(|f| f.name.as_str())),
            })?;
            if feature.bins != *bins {
                return Err(CompareError::DifferentBins { name: name.to_string() });
            }
            Ok(feature.counts.clone())
        })
        .collect()
}

/// Bins come from the reference data as the trainer makes them, and must be
/// the bins the current profile was counted on.
fn data_against_profile(
    request: &CompareRequest,
    reference_input: &Input,
    current_input: &Input,
) -> Result<Compared, CompareError> {
    let (reference, names, hint) = open_data(reference_input, &request.features)?;
    let mut reference = reference.read_columns(&names, hint)?;
    let current = read_profile(current_input)?;
    let mut features = Vec::with_capacity(names.len());
    let mut spare = Vec::new();
    for ((name, column), shape) in names.iter().zip(reference.values.iter_mut()).zip(&reference.shapes) {
        sort_floats(column, &mut spare, *shape);
        let bins = Bins::Number { edges: quantile_edges_of_sorted(column, request.bins) };
        let reference_counts = counts_of_sorted(&bins, column);
        // Done with: the next column's sort borrows it (see `data_against_data`).
        spare = std::mem::take(column);
        let current_counts = counts_on_same_bins(&current, std::iter::once((name.as_str(), &bins)))?;
        features.push(binned_comparison(request, name, bins.len(), &reference_counts, &current_counts[0], None)?);
    }
    Ok((features, source(reference_input, reference.rows), source(current_input, current.samples)))
}

/// Both files are read at once (one thread each), then the features are
/// shared between the cores: each sorts its two columns once and derives
/// the bins, the counts and the raw statistics from them. Columns of narrow
/// decimal keys sort in their own memory; for wider ones the radix sort's
/// second buffer is a column of the feature before (a core's first such
/// feature is sorted by comparison), so that no memory is added to the
/// columns (every one is held by then).
fn data_against_data(
    request: &CompareRequest,
    reference_input: &Input,
    current_input: &Input,
) -> Result<Compared, CompareError> {
    let (reference, names, hint) = open_data(reference_input, &request.features)?;
    let current = DataFile::open(current_input)?;
    let (reference, current) = std::thread::scope(|scope| {
        let reference = scope.spawn(|| reference.read_columns(&names, hint));
        let current = current.read_columns(&names, "");
        let reference = reference.join().map_err(|_| CompareError::Internal("the reading thread panicked".into()))?;
        Ok::<_, CompareError>((reference?, current?))
    })?;
    let (reference_rows, current_rows) = (reference.rows, current.rows);
    let shapes = reference.shapes.into_iter().zip(current.shapes);
    let mut pairs: Vec<(String, Vec<f64>, Vec<f64>, _)> = names
        .into_iter()
        .zip(reference.values)
        .zip(current.values)
        .zip(shapes)
        .map(|(((name, reference), current), shapes)| (name, reference, current, shapes))
        .collect();
    let features = in_parallel(&mut pairs, |(name, reference, current, shapes), spare: &mut Vec<f64>| {
        sort_floats(reference, spare, shapes.0);
        sort_floats(current, spare, shapes.1);
        let bins = Bins::Number { edges: quantile_edges_of_sorted(reference, request.bins) };
        let raw = ks_and_wasserstein(reference, current).map(|(ks, wasserstein)| RawStatistics { ks, wasserstein });
        let (reference_counts, current_counts) = (counts_of_sorted(&bins, reference), counts_of_sorted(&bins, current));
        // The columns are not needed any more: the longer is the next feature's
        // spare, the other's memory goes back (and the old spare's).
        let (reference, current) = (std::mem::take(reference), std::mem::take(current));
        *spare = if reference.len() >= current.len() { reference } else { current };
        binned_comparison(request, name, bins.len(), &reference_counts, &current_counts, raw)
    })?;
    Ok((features, source(reference_input, reference_rows), source(current_input, current_rows)))
}

/// Opens the reference data and picks its columns: the chosen ones, or all
/// of them, with a hint for the error of a non-numeric column in that case.
fn open_data(input: &Input, chosen: &[String]) -> Result<(DataFile, Vec<String>, &'static str), CompareError> {
    let data = DataFile::open(input)?;
    let names = chosen_features(chosen, data.header().iter().map(String::as_str), "the reference data")?;
    let hint = if chosen.is_empty() { " (choose the numeric columns with --features)" } else { "" };
    Ok((data, names, hint))
}

/// The chosen features, each checked against what the reference has; all of
/// them when none are chosen.
fn chosen_features<'a>(
    chosen: &[String],
    available: impl Iterator<Item = &'a str> + Clone,
    which: &'static str,
) -> Result<Vec<String>, CompareError> {
    if chosen.is_empty() {
        return Ok(available.map(str::to_string).collect());
    }
    for name in chosen {
        if !available.clone().any(|a| a == name) {
            return Err(CompareError::UnknownFeature { name: name.clone(), which, available: feature_list(available) });
        }
    }
    Ok(chosen.to_vec())
}

fn feature_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    format!("features {:?}", names.collect::<Vec<_>>())
}

/// How many values of a sorted column fall in each number bin: the same
/// counts as [`Bins::number_index`] of every value, by one binary search per
/// edge instead of one per value.
pub fn counts_of_sorted(bins: &Bins, sorted: &[f64]) -> Vec<u64> {
    let Bins::Number { edges } = bins else { return vec![0; bins.len()] };
    let mut counts = Vec::with_capacity(edges.len() + 1);
    let mut below_previous = 0;
    for edge in edges {
        let below = sorted.partition_point(|v| v < edge);
        counts.push((below - below_previous) as u64);
        below_previous = below;
    }
    counts.push((sorted.len() - below_previous) as u64);
    counts
}

fn binned_comparison(
    request: &CompareRequest,
    name: &str,
    bins: usize,
    reference_counts: &[u64],
    current_counts: &[u64],
    raw: Option<RawStatistics>,
) -> Result<FeatureComparison, CompareError> {
    let no_samples = |which| CompareError::NoSamples { name: name.to_string(), which };
    let reference_samples: u64 = reference_counts.iter().sum();
    let current_samples: u64 = current_counts.iter().sum();
    if reference_samples == 0 {
        return Err(no_samples("the reference"));
    }
    if current_samples == 0 {
        return Err(no_samples("the current input"));
    }
    let binned = request
        .methods
        .iter()
        .map(|method| {
            let value =
                drift(*method, reference_counts, current_counts).map_err(|_| CompareError::CountsDoNotMatchBins {
                    name: name.to_string(),
                    which: "the current input",
                    counts: current_counts.len(),
                    bins,
                })?;
            Ok(BinnedValue { method: *method, value, above_threshold: request.threshold.is_some_and(|t| value > t) })
        })
        .collect::<Result<Vec<_>, CompareError>>()?;
    Ok(FeatureComparison {
        name: name.to_string(),
        bins,
        reference_samples,
        current_samples,
        drifted: binned.iter().any(|b| b.above_threshold),
        binned,
        raw,
    })
}

/// Maps `work` over `items` on every core, keeping the order; each core's
/// calls share a state of their own, starting from its default.
fn in_parallel<T: Send, R: Send, S: Default>(
    items: &mut [T],
    work: impl Fn(&mut T, &mut S) -> Result<R, CompareError> + Sync,
) -> Result<Vec<R>, CompareError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len()).max(1);
    let (count, chunk) = (items.len(), items.len().div_ceil(threads).max(1));
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks_mut(chunk)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut state = S::default();
                    chunk.iter_mut().map(|item| work(item, &mut state)).collect::<Result<Vec<R>, _>>()
                })
            })
            .collect();
        let mut results = Vec::with_capacity(count);
        for handle in handles {
            results.extend(handle.join().map_err(|_| CompareError::Internal("a worker thread panicked".into()))??);
        }
        Ok(results)
    })
}

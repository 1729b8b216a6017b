//! `trainloop drift compare` on Parquet written by pyarrow (the pinned `.venv`: `make test`
//! installs it): the same statistics as the CSV of the same values in every pairing, across
//! row groups, Snappy pages, dictionary encoding and the four numeric physical types; and bad
//! Parquet refused with the file, column and row.

use std::path::Path;
use std::process::{Command, Output};

mod support;

use serde_json::Value;
use trainloop::artifact::{FeatureProfile, FeatureSchema, FeatureValue};

/// Writes `reference` and `current` as Parquet (several row groups, pyarrow's defaults
/// otherwise: Snappy, dictionary pages) and as CSV with the same values (floats printed so
/// that they parse back exactly), and a few bad files.
const WRITE: &str = r#"
import sys
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

folder = sys.argv[1]
rng = np.random.default_rng(7)

def table(rows, shift):
    return pa.table({
        "wide": pa.array(rng.normal(shift, 3, rows), pa.float64()),
        "narrow": pa.array(rng.normal(shift, 1, rows).astype(np.float32), pa.float32()),
        "small": pa.array(rng.integers(-50, 50 + int(shift * 20), rows, dtype=np.int32), pa.int32()),
        "large": pa.array(rng.integers(0, 10**12, rows, dtype=np.int64), pa.int64()),
    })

for name, rows, shift in [("reference", 3000, 0.0), ("current", 2000, 0.5)]:
    data = table(rows, shift)
    pq.write_table(data, f"{folder}/{name}.parquet", row_group_size=700)
    columns = [column.to_pylist() for column in data.columns]
    with open(f"{folder}/{name}.csv", "w") as f:
        f.write(",".join(data.column_names) + "\n")
        for row in zip(*columns):
            f.write(",".join(repr(v) for v in row) + "\n")

pq.write_table(pa.table({"x": pa.array([1.0, None, 3.0]), "y": [1.0, 2.0, 3.0]}), f"{folder}/nulls.parquet")
pq.write_table(pa.table({"x": [1.0, 2.0], "y": ["a", "b"]}), f"{folder}/words.parquet")
pq.write_table(pa.table({"x": [1.0, 2.0], "y": [1.0, float("inf")]}), f"{folder}/infinite.parquet")
pq.write_table(pa.table({"x": pa.array([], pa.float64()), "y": pa.array([], pa.float64())}), f"{folder}/empty.parquet")
"#;

fn python3() -> &'static str {
    support::python3_with("numpy, pyarrow")
}

fn write_files(folder: &Path) {
    let out = Command::new(python3()).arg("-c").arg(WRITE).arg(folder).output().expect("python3");
    assert!(out.status.success(), "writing Parquet failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainloop")).arg("drift").arg("compare").args(args).output().expect("run")
}

/// The per-feature statistics of a comparison (the sources differ by name only).
fn features(reference: &Path, current: &Path) -> Value {
    let out =
        run(&["--json", "--reference", &reference.display().to_string(), "--current", &current.display().to_string()]);
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    json["features"].take()
}

#[test]
fn parquet_gives_the_statistics_of_the_csv_of_the_same_values_in_every_pairing() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_files(dir.path());
    let file = |name: &str| dir.path().join(name);

    let from_csv = features(&file("reference.csv"), &file("current.csv"));
    assert_eq!(from_csv.as_array().map(Vec::len), Some(4), "{from_csv}");
    // Raw statistics too: every value was read, exactly.
    assert!(from_csv[0]["raw"]["ks"]["statistic"].as_f64().is_some_and(|ks| ks > 0.0), "{from_csv}");
    for (reference, current) in [
        ("reference.parquet", "current.parquet"),
        ("reference.parquet", "current.csv"),
        ("reference.csv", "current.parquet"),
    ] {
        assert_eq!(features(&file(reference), &file(current)), from_csv, "{reference} against {current}");
    }

    // A profile's bins count Parquet rows as they count CSV rows.
    let schema = FeatureSchema::from_json(
        r#"[{"name":"wide","type":"number"},{"name":"narrow","type":"number"},
            {"name":"small","type":"number"},{"name":"large","type":"number"}]"#,
    )
    .expect("schema");
    let rows: Vec<Vec<FeatureValue>> =
        (0..200).map(|i| vec![FeatureValue::Number(f64::from(i) / 20.0 - 5.0); 4]).collect();
    let profile = file("profile.json");
    let json = serde_json::to_vec(&FeatureProfile::reference(&schema, &rows, 10)).expect("profile");
    std::fs::write(&profile, json).expect("write");
    assert_eq!(features(&profile, &file("current.parquet")), features(&profile, &file("current.csv")));
}

#[test]
fn bad_parquet_is_refused_naming_the_file_column_and_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_files(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    let refused = |reference: &str, features: &str, expected: &str| {
        let out = run(&["--reference", reference, "--current", reference, "--features", features]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "expected {expected:?} in {stderr:?}");
    };
    let nulls = file("nulls.parquet");
    let words = file("words.parquet");
    let infinite = file("infinite.parquet");
    let empty = file("empty.parquet");
    refused(&nulls, "x", &format!("{nulls}: column \"x\" has no value in row 2"));
    refused(&words, "y", &format!("{words}: column \"y\" holds BYTE_ARRAY values, not numbers"));
    refused(&infinite, "y", &format!("{infinite}: column \"y\" is not numeric: row 2 holds \"inf\""));
    refused(&empty, "x", &format!("{empty} has no data rows"));
    let truncated = dir.path().join("truncated.parquet");
    let bytes = std::fs::read(dir.path().join("reference.parquet")).expect("read");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let truncated = truncated.display().to_string();
    refused(&truncated, "wide", &format!("{truncated}: not readable Parquet"));
}

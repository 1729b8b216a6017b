//! `trainloop drift compare` as a person or a script runs it: profiles and CSV data in every
//! pairing, binned on the reference's bins exactly as the trainer and model server bin, and
//! every kind of bad input refused with a clear message and exit status 2, never a panic.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use trainloop::artifact::{DriftMethod, FeatureProfile, FeatureSchema, FeatureValue, compare_profiles};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainloop")).arg("drift").arg("compare").args(args).output().expect("run")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn schema() -> FeatureSchema {
    FeatureSchema::from_json(
        r#"[{"name":"size","type":"number"},{"name":"colour","type":"category","values":["red","blue"]}]"#,
    )
    .expect("schema")
}

/// Rows whose size grows with `shift` and whose colours alternate (one in five unlisted).
fn rows(count: usize, shift: f64) -> Vec<Vec<FeatureValue>> {
    (0..count)
        .map(|i| {
            let colour = ["red", "blue", "red", "blue", "green"][i % 5];
            vec![FeatureValue::Number((i % 100) as f64 + shift), FeatureValue::Category(colour.into())]
        })
        .collect()
}

fn csv_of(rows: &[Vec<FeatureValue>]) -> String {
    let mut text = String::from("size,colour,label\n");
    for row in rows {
        let (FeatureValue::Number(size), FeatureValue::Category(colour)) = (&row[0], &row[1]) else { unreachable!() };
        text.push_str(&format!("{size},{colour},yes\n"));
    }
    text
}

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Files(tempfile::tempdir().expect("temp dir"))
    }

    fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, content).expect("write");
        path
    }

    fn profile(&self, name: &str, profile: &FeatureProfile) -> String {
        self.write(name, serde_json::to_vec_pretty(profile).expect("profile")).display().to_string()
    }
}

fn value_of(json: &Value, feature: usize, method: &str) -> f64 {
    let binned = json["features"][feature]["binned"].as_array().expect("binned");
    binned.iter().find(|b| b["method"] == method).and_then(|b| b["value"].as_f64()).expect("value")
}

#[test]
fn current_data_is_binned_on_the_reference_profile_bins_as_a_model_server_bins_it() {
    let files = Files::new();
    let reference = FeatureProfile::reference(&schema(), &rows(1000, 0.0), 10);
    let reference_path = files.profile("reference.json", &reference);
    let shifted = rows(500, 30.0);
    let current_path = files.write("current.csv", csv_of(&shifted));
    // What a model server would count for the same traffic.
    let mut served = reference.empty_like();
    shifted.iter().for_each(|row| served.observe(row));

    let out = run(&["--reference", &reference_path, "--current", &current_path.display().to_string(), "--json"]);
    let json: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    for method in [DriftMethod::Psi, DriftMethod::Ks, DriftMethod::Js, DriftMethod::Wasserstein, DriftMethod::Chi2] {
        let expected = compare_profiles(&reference, &served, method).expect("drift");
        let name = serde_json::to_value(method).expect("method");
        for (index, feature) in expected.iter().enumerate() {
            assert_eq!(
                value_of(&json, index, name.as_str().expect("name")),
                feature.value,
                "{method:?} {}",
                feature.name
            );
        }
    }
    assert_eq!(json["current"]["rows"], 500);
    assert!(json["features"][0].get("raw").is_none(), "raw statistics need raw reference data");
}

#[test]
fn the_table_marks_what_is_above_the_threshold() {
    let files = Files::new();
    let reference = files.write("reference.csv", csv_of(&rows(1000, 0.0)));
    let current = files.write("current.csv", csv_of(&rows(1000, 30.0)));
    let out = run(&[
        "--reference",
        &reference.display().to_string(),
        "--current",
        &current.display().to_string(),
        "--features",
        "size",
        "--method",
        "psi,ks",
        "--threshold",
        "0.2",
    ]);
    let table = stdout(&out);
    let header = table.lines().find(|l| l.starts_with("feature")).expect("header");
    assert!(
        header.split_whitespace().eq([
            "feature",
            "bins",
            "psi",
            "ks",
            "ks",
            "(raw)",
            "p-value",
            "wasserstein",
            "(raw)"
        ]),
        "{table}"
    );
    let size = table.lines().find(|l| l.starts_with("size")).expect("row");
    // A shift of 30 on 0..100 moves 30% of the mass past every edge.
    assert!(size.contains("0.300000*"), "{table}");
    assert!(size.ends_with("30.000000"), "wasserstein of the raw values is the shift: {table}");
    assert!(table.contains("1 of 1 feature(s) drifted"), "{table}");
}

#[test]
fn identical_data_and_profiles_show_no_drift_in_any_pairing() {
    let files = Files::new();
    let data = rows(1000, 0.0);
    let csv = files.write("data.csv", csv_of(&data)).display().to_string();
    let numeric = FeatureSchema::from_json(r#"[{"name":"size","type":"number"}]"#).expect("schema");
    let sizes: Vec<Vec<FeatureValue>> = data.iter().map(|row| vec![row[0].clone()]).collect();
    let profile = files.profile("profile.json", &FeatureProfile::reference(&numeric, &sizes, 10));
    for (reference, current) in [(&csv, &csv), (&csv, &profile), (&profile, &csv), (&profile, &profile)] {
        let out = run(&["--reference", reference, "--current", current, "--features", "size", "--json"]);
        let json: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
        for binned in json["features"][0]["binned"].as_array().expect("binned") {
            assert!(binned["value"].as_f64().expect("value").abs() < 1e-12, "{reference} vs {current}: {binned}");
        }
    }
}

/// Runs with bad input: status 2, one clear line on stderr that contains `expected`, no output.
fn refused(args: &[&str], expected: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_input_is_refused_with_status_2_and_a_clear_message() {
    let files = Files::new();
    let path = |p: PathBuf| p.display().to_string();
    let good = path(files.write("good.csv", "x,y\n1,2\n3,4\n"));
    let reference = FeatureProfile::reference(&schema(), &rows(100, 0.0), 4);
    let profile = files.profile("profile.json", &reference);
    let mut other_bins = reference.clone();
    other_bins.features[0].bins = trainloop::artifact::Bins::Number { edges: vec![1.0, 2.0] };
    other_bins.features[0].counts = vec![1, 2, 3];
    let other_bins = files.profile("other-bins.json", &other_bins);
    let mut newer = serde_json::to_value(&reference).expect("profile");
    newer["formatVersion"] = 2.into();
    let newer = path(files.write("newer.json", newer.to_string()));

    refused(&["--reference", "/no/such/file.csv", "--current", &good], "cannot read /no/such/file.csv");
    refused(&["--reference", &newer, "--current", &good], "profile format version 2; this build reads version 1");
    refused(&["--reference", &profile, "--current", &other_bins], "feature \"size\" has other bins");
    refused(&["--reference", &good, "--current", &good, "--features", "x,z"], "unknown feature \"z\"");
    refused(&["--reference", &profile, "--current", &good], "unknown feature \"size\" in the current data");
    let words = path(files.write("words.csv", "x,y\n1,a\n2,b\n"));
    refused(&["--reference", &words, "--current", &good], "column \"y\" is not numeric: row 1 holds \"a\" (choose");
    refused(&["--reference", &good, "--current", &words], "column \"y\" is not numeric: row 1 holds \"a\"");
    let infinite = path(files.write("infinite.csv", "x,y\n1,2\n3,inf\n"));
    refused(&["--reference", &good, "--current", &infinite], "row 2 holds \"inf\"");
    let gap = path(files.write("gap.csv", "x,y\n1,\n"));
    refused(&["--reference", &gap, "--current", &good], "column \"y\" has no value in row 1");
    let header_only = path(files.write("header.csv", "x,y\n"));
    refused(&["--reference", &header_only, "--current", &good], "has no data rows");
    let ragged = path(files.write("ragged.csv", "x,y\n1,2\n3\n"));
    refused(&["--reference", &good, "--current", &ragged], "not valid CSV");
    let parquet = path(files.write("data.bin", b"PAR1\x15\x04"));
    refused(&["--reference", &parquet, "--current", &good], "data.bin: not readable Parquet");
    let broken = path(files.write("broken.json", "{\"formatVersion\": 1, \"features\": 3}"));
    refused(&["--reference", &broken, "--current", &good], "is not a feature profile");
    refused(&["--reference", &good, "--current", &good, "--threshold", "NaN"], "not a non-negative number");
    refused(&["--reference", &good, "--current", &good, "--bins", "1"], "--bins must be at least 2");
}

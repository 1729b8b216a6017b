//! `trainloop drift compare` agrees with NumPy/SciPy to 1e-9 on generated data: every binned
//! statistic, the two-sample KS statistic and p-value (`scipy.stats.ks_2samp`, method 'auto',
//! so both the exact and the asymptotic p-values) and the Wasserstein-1 distance
//! (`scipy.stats.wasserstein_distance`). Also the KS distribution (`scipy.stats.kstwo.sf`) on a
//! grid that reaches each of its branches. Needs python3 with numpy and scipy: `make test`
//! installs them into .venv (scripts/python-env.sh) and puts .venv/bin first on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

use serde_json::Value;
use trainloop::stats::ks_distribution::kolmogorov_sf;

const TOLERANCE: f64 = 1e-9;

fn python3() -> &'static str {
    support::python3_with("numpy, scipy")
}

fn workspace_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A deterministic generator (splitmix64), so a failure can be replayed.
struct Random(u64);

impl Random {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (1.0 - self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Four columns unlike each other: normal, normal rounded to one decimal (ties), small integers
/// (few distinct values, so fewer bins), exponential; `shift` moves each.
fn write_csv(path: &Path, rows: usize, shift: f64, random: &mut Random) {
    let mut text = String::from("normal,rounded,integer,exponential\n");
    for _ in 0..rows {
        let normal = random.normal() + shift;
        let rounded = ((random.normal() + 2.0 * shift) * 10.0).round() / 10.0;
        let integer = (random.uniform() * 5.0).floor() + if shift > 0.0 { 1.0 } else { 0.0 };
        let exponential = -(1.0 - random.uniform()).ln() * (1.0 + shift);
        text.push_str(&format!("{normal:?},{rounded:?},{integer:?},{exponential:?}\n"));
    }
    std::fs::write(path, text).expect("write csv");
}

fn json_of(command: &mut Command) -> Value {
    let out = command.output().expect("run");
    assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn assert_close(what: &str, ours: f64, scipy: f64) {
    let scale = scipy.abs().max(1.0);
    assert!((ours - scipy).abs() <= TOLERANCE * scale, "{what}: trainloop {ours:e}, SciPy {scipy:e}");
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"))
}

#[test]
fn drift_compare_agrees_with_scipy_on_generated_data() {
    let python = python3();
    let dir = tempfile::tempdir().expect("temp dir");
    let (reference, current) = (dir.path().join("reference.csv"), dir.path().join("current.csv"));
    // (reference rows, current rows, shift): exact p-values for equal and unequal sizes, then
    // the asymptotic one at effective sizes in each of kstwo's regimes.
    let cases = [
        (50, 50, 0.3),
        (40, 70, 0.2),
        (3000, 2000, 0.05),
        (30, 20_000, 0.5),
        (200, 20_000, 0.1),
        (12_000, 15_000, 0.02),
        (12_000, 15_000, 0.2),
    ];
    let mut methods_seen = std::collections::BTreeSet::new();
    for (seed, (reference_rows, current_rows, shift)) in cases.into_iter().enumerate() {
        let mut random = Random(seed as u64);
        write_csv(&reference, reference_rows, 0.0, &mut random);
        write_csv(&current, current_rows, shift, &mut random);
        let ours = json_of(Command::new(env!("CARGO_BIN_EXE_trainloop")).args([
            "drift".as_ref(),
            "compare".as_ref(),
            "--json".as_ref(),
            "--reference".as_ref(),
            reference.as_os_str(),
            "--current".as_ref(),
            current.as_os_str(),
        ]));
        let scipy = json_of(
            Command::new(python).arg(workspace_file("scripts/drift-reference.py")).args([&reference, &current]),
        );
        let (ours, scipy) =
            (ours["features"].as_array().expect("features"), scipy["features"].as_array().expect("features"));
        assert_eq!(ours.len(), 4);
        assert_eq!(ours.len(), scipy.len());
        for (ours, scipy) in ours.iter().zip(scipy) {
            let case = format!("{reference_rows} vs {current_rows} rows, shift {shift}, {}", ours["name"]);
            assert_eq!(ours["name"], scipy["name"]);
            assert_eq!(ours["bins"], scipy["bins"], "{case}: bins");
            for binned in ours["binned"].as_array().expect("binned") {
                let method = binned["method"].as_str().expect("method");
                assert_close(&format!("{case}: {method}"), number(&binned["value"]), number(&scipy["binned"][method]));
            }
            let raw = &ours["raw"];
            assert_close(&format!("{case}: ks"), number(&raw["ks"]["statistic"]), number(&scipy["ks"]["statistic"]));
            assert_close(&format!("{case}: p-value"), number(&raw["ks"]["pValue"]), number(&scipy["ks"]["pValue"]));
            assert_close(&format!("{case}: wasserstein"), number(&raw["wasserstein"]), number(&scipy["wasserstein"]));
            methods_seen.insert(raw["ks"]["method"].as_str().unwrap_or_default().to_string());
        }
    }
    assert_eq!(methods_seen.into_iter().collect::<Vec<_>>(), ["asymptotic", "exact"]);
}

#[test]
fn the_ks_distribution_agrees_with_scipy_kstwo_in_every_branch() {
    let python = python3();
    // x in multiples of 1/sqrt(n) from the support's start to the far tail, at sizes on either
    // side of each cut-off (140, 100,000 and 1,000,000).
    let sizes = [1u64, 2, 3, 5, 10, 50, 140, 141, 500, 5_000, 100_000, 100_001, 1_000_000, 1_000_001, 4_000_000];
    let multiples = [0.3, 0.5, 0.6, 0.75, 0.9, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0, 20.0];
    let mut grid = Vec::new();
    for n in sizes {
        for z in multiples {
            grid.push((n, (z / (n as f64).sqrt()).min(1.0)));
        }
        grid.extend([(n, 0.5 / n as f64 + 1e-12), (n, 0.9 / n as f64), (n, 0.55), (n, 1.0 - 1.5 / n as f64)]);
    }
    let grid: Vec<(u64, f64)> = grid.into_iter().filter(|(_, x)| (0.0..=1.0).contains(x)).collect();
    let script = "import json, sys\nfrom scipy.stats import kstwo\n\
                  print(json.dumps([float(kstwo.sf(x, n)) for n, x in json.load(sys.stdin)]))";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let input = serde_json::to_vec(&grid).expect("grid");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &input).expect("send grid");
    let out = child.wait_with_output().expect("kstwo");
    assert!(out.status.success());
    let scipy: Vec<f64> = serde_json::from_slice(&out.stdout).expect("JSON");
    for ((n, x), expected) in grid.iter().zip(scipy) {
        assert_close(&format!("kstwo.sf({x:e}, {n})"), kolmogorov_sf(*n, *x), expected);
    }
}

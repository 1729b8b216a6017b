#!/usr/bin/env python3
"""`trainloop drift compare` of two CSV data files, computed with NumPy and SciPy.

The reference for the Rust implementation: the drift test compares its output with
`trainloop drift compare --json` to 1e-9, and `make bench` times the two. Bins are the
trainer's: the lower empirical quantiles of the reference column at 1/bins ... (bins-1)/bins,
kept strictly increasing and above the minimum; a value x falls in bin #(edges <= x).

Usage: drift-reference.py REFERENCE.csv CURRENT.csv [--bins 10]
Prints JSON: {"features": [{"name", "binned": {...}, "ks": {...}, "wasserstein"}], "seconds": {...}}
"""
import argparse
import json
import time

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

# Proportion used in place of an empty bin (PSI and chi-square), as in the operator.
EMPTY_BIN_PROPORTION = 1e-4


def load(path):
    with open(path) as f:
        names = [name.strip() for name in f.readline().split(",")]
    values = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    return names, values


def quantile_edges(sorted_values, bins):
    n = len(sorted_values)
    ranks = np.minimum((np.arange(1, bins) * n + bins - 1) // bins, n - 1)
    edges = []
    for edge in sorted_values[ranks]:
        if edge > sorted_values[0] and (not edges or edge > edges[-1]):
            edges.append(edge)
    return np.asarray(edges, dtype=np.float64)


def bin_counts(edges, values):
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def binned_statistics(reference_counts, current_counts):
    p = reference_counts / reference_counts.sum()
    q = current_counts / current_counts.sum()
    p_floor = np.maximum(p, EMPTY_BIN_PROPORTION)
    q_floor = np.maximum(q, EMPTY_BIN_PROPORTION)
    gaps = np.abs(np.cumsum(p) - np.cumsum(q))
    expected = np.where(p > 0, p, EMPTY_BIN_PROPORTION) * current_counts.sum()
    return {
        "psi": float(np.sum((q_floor - p_floor) * np.log(q_floor / p_floor))),
        "ks": float(gaps.max()),
        "js": float(jensenshannon(p, q, base=2)),
        "wasserstein": float(gaps[:-1].sum() / (len(p) - 1)) if len(p) > 1 else 0.0,
        # A bin empty on both sides is left out, as in the operator.
        "chi2": float(np.sum(np.where((p > 0) | (current_counts > 0), (current_counts - expected) ** 2 / expected, 0))),
    }


def compare(reference, current, bins):
    features = []
    for column, name in enumerate(reference[0]):
        ref = reference[1][:, column]
        cur = current[1][:, current[0].index(name)]
        edges = quantile_edges(np.sort(ref), bins)
        ks = stats.ks_2samp(ref, cur)
        features.append({
            "name": name,
            "bins": len(edges) + 1,
            "binned": binned_statistics(bin_counts(edges, ref), bin_counts(edges, cur)),
            "ks": {"statistic": float(ks.statistic), "pValue": float(ks.pvalue)},
            "wasserstein": float(stats.wasserstein_distance(ref, cur)),
        })
    return features


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("current")
    parser.add_argument("--bins", type=int, default=10)
    args = parser.parse_args()
    start = time.perf_counter()
    reference, current = load(args.reference), load(args.current)
    loaded = time.perf_counter()
    features = compare(reference, current, args.bins)
    done = time.perf_counter()
    seconds = {"load": loaded - start, "compute": done - loaded}
    print(json.dumps({"features": features, "seconds": seconds}))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark of `trainloop drift compare` against the same computation in NumPy/SciPy.

Generates a reference and a shifted current CSV (1,000,000 rows x 20 numeric features by
default) in a temporary folder, runs `trainloop drift compare` and scripts/drift-reference.py
on them, checks that they agree, and prints the wall time and peak memory (RSS) of each and the
ratio. To show that trainloop's memory does not grow with the rows beyond the data itself (the
sorted f64 columns the raw KS and Wasserstein need), it also runs on a quarter of the rows and
prints the memory above those columns at both sizes.

Usage: bench-drift.py TRAINLOOP_BINARY [--rows 1000000] [--features 20]

Peak memory is each child's ru_maxrss, which Linux carries over from the forked driver: the data
is therefore generated in a child of its own and the driver stays small (it does not load NumPy).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20261127


def write_csv(path, values):
    """Fixed-point text (sign, two digits, five decimals) built with array operations: the
    benchmark should not wait a minute for np.savetxt."""
    import numpy as np

    rows, columns = values.shape
    scaled = np.rint(np.clip(values, -99.99999, 99.99999) * 1e5).astype(np.int64)
    digits = np.abs(scaled)
    width = 10  # "+12.34567" and a separator
    text = np.empty((rows, columns, width), dtype=np.uint8)
    text[:, :, 0] = np.where(scaled < 0, ord("-"), ord("+"))
    for position, power in zip([1, 2, 4, 5, 6, 7, 8], [10**6, 10**5, 10**4, 10**3, 10**2, 10, 1]):
        text[:, :, position] = ord("0") + (digits // power) % 10
    text[:, :, 3] = ord(".")
    text[:, :, 9] = ord(",")
    text[:, -1, 9] = ord("\n")
    with open(path, "wb") as f:
        f.write((",".join(f"f{i:02d}" for i in range(columns)) + "\n").encode())
        f.write(text.tobytes())


def generate(folder, rows, features):
    import numpy as np

    rng = np.random.default_rng(SEED)
    # Feature j of the current data is shifted by 0.02 j standard deviations and widened a
    # little, so the features range from no drift to clear drift.
    shift = 0.02 * np.arange(features)
    reference = rng.standard_normal((rows, features)) * 3
    write_csv(os.path.join(folder, "reference.csv"), reference)
    del reference
    current = rng.standard_normal((rows, features)) * 3 * (1 + shift / 4) + 3 * shift
    write_csv(os.path.join(folder, "current.csv"), current)


def measure(command, env=None):
    """Runs a command; returns its stdout, wall seconds, peak RSS in MiB and CPU seconds."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, stdout=out, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            sys.exit(f"{command[0]} failed with status {process.returncode}")
        out.seek(0)
        return out.read(), seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def agree(ours, scipy):
    worst = 0.0
    for mine, theirs in zip(ours["features"], scipy["features"]):
        pairs = [(b["value"], theirs["binned"][b["method"]]) for b in mine["binned"]]
        pairs += [(mine["raw"]["ks"]["statistic"], theirs["ks"]["statistic"]),
                  (mine["raw"]["ks"]["pValue"], theirs["ks"]["pValue"]),
                  (mine["raw"]["wasserstein"], theirs["wasserstein"])]
        worst = max([worst] + [abs(a - b) / max(1.0, abs(b)) for a, b in pairs])
    return worst


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trainloop")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--generate-into", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_into:
        generate(args.generate_into, args.rows, args.features)
        return
    generate_into = lambda folder, rows: subprocess.run(
        [sys.executable, __file__, args.trainloop, "--rows", str(rows), "--features", str(args.features),
         "--generate-into", folder], check=True)
    columns_mib = lambda rows: 2 * rows * args.features * 8 / 2**20  # both files as f64

    with tempfile.TemporaryDirectory(prefix="trainloop-drift-bench-") as folder:
        files = [os.path.join(folder, name) for name in ("reference.csv", "current.csv")]
        compare = [args.trainloop, "drift", "compare", "--json", "--reference", files[0], "--current", files[1]]

        generate_into(folder, args.rows // 4)
        _, _, small_rss, _ = measure(compare)

        generate_into(folder, args.rows)
        # Written back before timing, so that neither side competes with the writeback.
        os.sync()
        size_mib = sum(os.path.getsize(f) for f in files) / 2**20
        # The median of three: a second is easily lost to a neighbour on a shared machine.
        runs = sorted((measure(compare) for _ in range(3)), key=lambda run: run[1])
        ours, ours_seconds, ours_rss, ours_cpu = runs[1]
        # One BLAS thread: OpenBLAS's idle threads spin, which slows NumPy on a busy machine
        # and bills CPU time for no work; nothing here is a matrix product worth threads.
        single = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        scipy, scipy_seconds, scipy_rss, scipy_cpu = measure(
            [sys.executable, os.path.join(HERE, "drift-reference.py"), *files], env=single)
        ours, scipy = json.loads(ours), json.loads(scipy)

    load, compute = scipy["seconds"]["load"], scipy["seconds"]["compute"]
    print(f"drift compare, {args.rows:,} rows x {args.features} features, reference and shifted current "
          f"({size_mib:.0f} MiB of CSV); all binned statistics + raw KS and Wasserstein")
    print(f"  trainloop      {ours_seconds:7.2f} s wall {ours_cpu:7.2f} s CPU   peak RSS {ours_rss:7.1f} MiB"
          "   (median of 3 runs)")
    print(f"  NumPy/SciPy    {scipy_seconds:7.2f} s wall {scipy_cpu:7.2f} s CPU   peak RSS {scipy_rss:7.1f} MiB"
          f"   (np.loadtxt {load:.2f} s, statistics {compute:.2f} s)")
    print(f"  ratio          {scipy_seconds / ours_seconds:7.1f}x faster end to end (goal: 20x); "
          f"{scipy_cpu / ours_cpu:.1f}x less CPU time; {compute / ours_seconds:.1f}x faster than SciPy's "
          "statistics alone")
    print(f"  memory above the f64 columns ({columns_mib(args.rows):.0f} MiB): "
          f"{ours_rss - columns_mib(args.rows):.1f} MiB at {args.rows:,} rows, "
          f"{small_rss - columns_mib(args.rows // 4):.1f} MiB at {args.rows // 4:,} rows")
    print(f"  largest difference from SciPy: {agree(ours, scipy):.1e} (relative to max(1, |value|))")
    # Wall-time ratios move with the machine's load: every figure goes with it.
    print("  load average (1, 5, 15 min) at the end: " + ", ".join(f"{load:.2f}" for load in os.getloadavg()))


if __name__ == "__main__":
    main()

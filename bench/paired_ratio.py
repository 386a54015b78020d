"""Does the ABBA-paired speedup recover a known ratio on this machine while another process loads it?

k matmuls against 1 (same matrices, one thread): the true ratio of their costs is k (a call's fixed
overhead is ~0.2% of one 384x384 matmul). Each trial times both with ``timing.measure_interleaved``
in ABBA blocks and estimates the ratio with ``stats.paired_speedup_ci`` (median of per-pair ratios,
sign-test CI) and with the estimator it replaced (geometric mean of per-block ratios of sums), and
counts how often each 95% CI contains k. ``--load N`` starts N busy single-thread matmul processes
next to the measurement (what a neighbour's job does to a shared box).

    .venv/bin/python bench/paired_ratio.py --trials 30 --load 1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.estimator_coverage import old_paired  # noqa: E402
from harness.stats import paired_speedup_ci  # noqa: E402
from harness.timing import TimingPolicy, measure_interleaved  # noqa: E402

LOADER = "import torch\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\nwhile True:\n    a @ a\n"


def workload(k: int, n: int) -> callable:
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(0))

    def f() -> None:
        for _ in range(k):
            torch.mm(a, a)

    return f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--ks", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--n", type=int, default=384, help="matrix size")
    ap.add_argument("--load", type=int, default=1, help="busy single-thread processes running next to the timing")
    ap.add_argument("--pairs", type=int, default=40, help="ABBA pairs per measurement (calls of each variant)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    loaders = [subprocess.Popen([sys.executable, "-c", LOADER]) for _ in range(args.load)]
    try:
        policy = TimingPolicy(warmup_min_calls=3, warmup_min_s=0.0, min_repeats=args.pairs, min_time_s=0.0,
                              max_repeats=args.pairs, max_time_s=60.0, target_rel_ci=0.0)
        one = workload(1, args.n)
        print(f"k matmuls ({args.n}x{args.n}, 1 thread) vs 1; {args.load} busy process(es) alongside; "
              f"{args.trials} trials of {args.pairs} ABBA pairs per k; load average before: {os.getloadavg()[0]:.2f}\n")
        print("| k | estimator | median estimate | estimates (min-max) | median CI half-width | CI covers k |")
        print("| --- | --- | --- | --- | --- | --- |")
        for k in args.ks:
            many = workload(k, args.n)
            res: dict[str, list] = {"new": [], "old": []}
            for _ in range(args.trials):
                base, meth = measure_interleaved(many, one, policy)  # baseline = k matmuls: the speedup is k
                b, m = np.asarray(base.samples_s), np.asarray(meth.samples_s)
                res["new"].append(paired_speedup_ci(b, m))
                res["old"].append(old_paired(b, m))
            for name, label in (("new", "median of per-pair ratios, sign-test CI"),
                                ("old", "geometric mean of block ratios of sums (replaced)")):
                v = np.array([e.value for e in res[name]])
                half = np.array([(e.high - e.low) / 2 / e.value for e in res[name]])
                cover = np.mean([e.low <= k <= e.high for e in res[name]])
                print(f"| {k} | {label} | {np.median(v):.3f} | {v.min():.3f}-{v.max():.3f} | {np.median(half):.1%} | "
                      f"{cover:.0%} ({int(round(cover * args.trials))}/{args.trials}) |", flush=True)
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    finally:
        for p in loaders:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()

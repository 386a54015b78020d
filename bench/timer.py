"""Benchmark (not a test): our timer vs ``torch.utils.benchmark.Timer`` on the same workloads, one run.

1. Per-call overhead: the median time each timer reports for an empty call.
2. Error on a known ratio at equal measuring time: k calls of f against one call of f must come
   out k; each timer gets the same time budget per measurement, repeated over trials.

    .venv/bin/python bench/timer.py [--trials 15] [--budgets 0.1 0.3 1.0] [--k 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.utils.benchmark as tbench

from harness.env import environment
from harness.timing import TimingPolicy, measure


def workload(k: int, n: int = 128):
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(0))

    def f() -> None:
        for _ in range(k):
            torch.mm(a, a)

    return f


def ours(fn, budget: float) -> float:
    policy = TimingPolicy(warmup_min_calls=3, warmup_min_s=0.0, min_repeats=7, min_time_s=budget,
                          max_time_s=budget, max_repeats=10**7, target_rel_ci=0.0)
    return float(np.median(measure(fn, policy).samples_s))


def theirs(fn, budget: float) -> float:
    return tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()).blocked_autorange(
        min_run_time=budget).median


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=15)
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# timer benchmark: torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{environment(torch.device('cpu'))['cpu']}, {time.strftime('%Y-%m-%d')}\n")

    empty = lambda: None  # noqa: E731
    print("| timer | empty call, median per call (ns) |\n| --- | --- |")
    for name, t in (("harness.timing.measure", ours), ("torch.utils.benchmark.Timer", theirs)):
        print(f"| {name} | {np.median([t(empty, 0.2) for _ in range(5)]) * 1e9:.0f} |")

    one, many = workload(1), workload(args.k)
    print(f"\nknown ratio: {args.k} matmuls vs 1 (128x128), {args.trials} trials per cell, trials interleaved; "
          "|error| = |measured ratio / k - 1|\n")
    print("| budget per measurement (s) | timer | median ratio | median abs error | 90th pct abs error |")
    print("| --- | --- | --- | --- | --- |")
    for budget in args.budgets:
        ratios: dict[str, list[float]] = {"harness.timing.measure": [], "torch.utils.benchmark.Timer": []}
        for _ in range(args.trials):  # interleave the two timers so drift hits both alike
            for name, t in (("harness.timing.measure", ours), ("torch.utils.benchmark.Timer", theirs)):
                ratios[name].append(t(many, budget) / t(one, budget))
        for name, r in ratios.items():
            err = np.abs(np.asarray(r) / args.k - 1)
            print(f"| {budget} | {name} | {np.median(r):.3f} | {np.median(err):.2%} | {np.quantile(err, 0.9):.2%} |")


if __name__ == "__main__":
    main()

"""Coverage of the speedup intervals in simulation, where the truth is known (not a timed test).

Paired (ABBA blocks: baseline, method, method, baseline; ``stats.paired_speedup_ci``) and unpaired
(``stats.speedup_ci``) estimators, the new ones against the ones they replaced, in scenarios that
break the old ones: unequal noise of the two calls, rare 10x outliers, a shared random-walk drift,
and interruptions whose count grows with a call's length (a long call is interrupted more often).
Each interval is checked against the estimator's own target (computed from 400,000 draws of the
generating process) and against the clean ratio k (what the calls cost without noise).

    .venv/bin/python bench/estimator_coverage.py [--trials 1000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.stats import SMALL_SAMPLE, Estimate, paired_speedup_ci, speedup_ci  # noqa: E402

K = 4.0  # the clean ratio: baseline calls cost 4x the method's


def old_paired(b: np.ndarray, m: np.ndarray, confidence: float = 0.95) -> Estimate:
    """The replaced paired estimator: geometric mean of per-block ratios of sums, t on log block ratios."""
    k = min(len(b), len(m)) // 2
    r = np.log(b[: 2 * k].reshape(k, 2).sum(1) / m[: 2 * k].reshape(k, 2).sum(1))
    half = stats.t.ppf((1 + confidence) / 2, k - 1) * r.std(ddof=1) / np.sqrt(k)
    return Estimate(float(np.exp(r.mean())), float(np.exp(r.mean() - half)), float(np.exp(r.mean() + half)), "old")


def old_unpaired(b: np.ndarray, m: np.ndarray, seed: int) -> Estimate:
    """The replaced unpaired estimator: ratio of geometric means, percentile bootstrap (Welch below 15)."""
    lb, lm = np.log(b), np.log(m)
    point = float(np.exp(lb.mean() - lm.mean()))
    if min(len(b), len(m)) < 15:
        ci = stats.ttest_ind(lb, lm, equal_var=False).confidence_interval(0.95)
        return Estimate(point, float(np.exp(ci.low)), float(np.exp(ci.high)), "old")
    res = stats.bootstrap((b, m), lambda x, y, axis=-1: np.exp(np.mean(np.log(x), axis) - np.mean(np.log(y), axis)),
                          n_resamples=2000, method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return Estimate(point, float(res.confidence_interval.low), float(res.confidence_interval.high), "old")


def scenarios(rng: np.random.Generator) -> dict[str, Callable[[int], tuple[np.ndarray, np.ndarray]]]:
    """Each draws (baseline, method) call times for n calls each, in ABBA order (call i of both in
    block i // 2)."""

    def lognormal(sd_b: float, sd_m: float) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
        return lambda n: (K * rng.lognormal(0, sd_b, n), rng.lognormal(0, sd_m, n))

    def outliers(p_b: float, p_m: float) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
        return lambda n: (K * rng.lognormal(0, 0.05, n) * np.where(rng.random(n) < p_b, 10, 1),
                          rng.lognormal(0, 0.05, n) * np.where(rng.random(n) < p_m, 10, 1))

    def drift(n: int) -> tuple[np.ndarray, np.ndarray]:  # shared by both calls of a block
        d = np.repeat(np.exp(np.cumsum(rng.normal(0, 0.15, (n + 1) // 2))), 2)[:n]
        return K * d * rng.lognormal(0, 0.05, n), d * rng.lognormal(0, 0.05, n)

    def interrupts(rate: float, cost: float) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
        # Poisson interruptions at `rate` per unit of clean time, each costing `cost` (a time slice)
        def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
            b, m = K * rng.lognormal(0, 0.03, n), rng.lognormal(0, 0.03, n)
            return b + cost * rng.poisson(rate * b), m + cost * rng.poisson(rate * m)
        return draw

    return {
        "equal noise (log sd 0.1)": lognormal(0.1, 0.1),
        "unequal noise (0.05 vs 0.3)": lognormal(0.05, 0.3),
        "unequal noise (0.3 vs 0.05)": lognormal(0.3, 0.05),
        "2% outliers x10, both": outliers(0.02, 0.02),
        "5% outliers x10, both": outliers(0.05, 0.05),
        "5% outliers x10, baseline only": outliers(0.05, 0.0),
        "random-walk drift (sd 0.15/block)": drift,
        "interruptions (18% of long, 5% of short calls)": interrupts(0.05, 2.0),
    }


def targets(draw: Callable[[int], tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    b, m = draw(400_000)
    d = np.log(b) - np.log(m)
    sums = np.log(b.reshape(-1, 2).sum(1) / m.reshape(-1, 2).sum(1))
    return {"paired new": float(np.exp(np.median(d))), "paired old": float(np.exp(sums.mean())),
            "unpaired new": float(np.median(b) / np.median(m)),
            "unpaired old": float(np.exp(np.log(b).mean() - np.log(m).mean()))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--paired-n", type=int, nargs="+", default=[20, 50, 200], help="calls per variant, paired")
    ap.add_argument("--unpaired-n", type=int, nargs="+", default=[7, 25, 60], help="calls per variant, unpaired")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"coverage of nominal 95% intervals, {args.trials} trials per cell; 'target' = each estimator's own "
          f"target, 'k' = the clean ratio {K:g}; old = geometric mean of block ratios of sums (paired) / ratio of "
          "geometric means (unpaired); new = median of per-pair ratios, sign-test CI (paired) / ratio of medians, "
          "bootstrap (unpaired; Welch on logs below 10 calls)\n")
    print("| scenario | kind | calls | old target | old: covers target / k | new target | new: covers target / k |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, draw in scenarios(rng).items():
        tg = targets(draw)
        for kind, ns in (("paired", args.paired_n), ("unpaired", args.unpaired_n)):
            for n in ns:
                hits = {"old": [0, 0], "new": [0, 0]}
                for t in range(args.trials):
                    b, m = draw(n)
                    if kind == "paired":
                        ests = {"old": old_paired(b, m), "new": paired_speedup_ci(b, m)}
                    else:
                        ests = {"old": old_unpaired(b, m, t), "new": speedup_ci(b, m, n_resamples=2000, seed=t)}
                    for which, e in ests.items():
                        # below SMALL_SAMPLE calls the new unpaired interval is Welch's: its target is the old one
                        key = "unpaired old" if kind == "unpaired" and n < SMALL_SAMPLE else f"{kind} {which}"
                        hits[which][0] += e.low <= tg[key] <= e.high
                        hits[which][1] += e.low <= K <= e.high
                cov = {w: f"{h[0] / args.trials:.1%} / {h[1] / args.trials:.1%}" for w, h in hits.items()}
                new_tg = tg["unpaired old"] if kind == "unpaired" and n < SMALL_SAMPLE else tg[f"{kind} new"]
                print(f"| {name} | {kind} | {n} | {tg[f'{kind} old']:.3f} | {cov['old']} | {new_tg:.3f} | "
                      f"{cov['new']} |", flush=True)


if __name__ == "__main__":
    main()

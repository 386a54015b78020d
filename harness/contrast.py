"""One contrast of two measured points on one metric: the estimator is picked here and only here.

``report`` (speedups, quality deltas), ``compare`` and ``history`` (ratios between runs),
``budget`` (ties) and ``claims`` (checks) all call ``contrast`` with two rows of
``harness.analysis.estimates`` and get back the estimate, its CI and the estimator's name.

Which estimator, in order (two measured points, ``contrast``):
- ratio or speedup of repeated samples (latency):
  - ABBA-paired when the other point timed this very baseline in alternation with itself (same
    setting, its ``paired_with`` is the baseline's method): the median of per-pair ratios of
    adjacent calls, sign-test CI (``stats.paired_speedup_ci``);
  - else the ratio of medians with a two-sample bootstrap interval (``stats.speedup_ci``);
- ratio of single values with bootstrap replicates on both sides (FID): the replicate-wise ratio,
  re-centred; paired when both drew the same resample indices (same seed and n), otherwise an
  independent resample of each, which is valid too;
- difference of single values with replicates: the replicate-wise difference, re-centred, named
  paired when both drew the same indices;
- anything else: the exact value, no CI, and the name says so.

Between result sets (``compare``, ``history``, ``ab``) the unit is the run, not the repeat
(``contrast_runs``): each run of a point gives one estimate (the log of its median latency), and
the CI of B/A comes from the spread between runs (``stats.run_ratio_ci``: Welch over runs, or
paired rounds of an interleaved A/B). A side with one run borrows the between-run spread from a
stored noise profile; without one there is no CI and the verdict is inconclusive. Deterministic
metrics (``MetricInfo.deterministic``: NFE, FLOPs, token counts) are compared exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from harness.stats import Estimate, Spread, paired_speedup_ci, recentred_bootstrap_ci, run_ratio_ci, speedup_ci

KINDS = {"speedup": "baseline / method", "ratio": "method / baseline", "difference": "method - baseline"}
MIN_REPLICATES = 20


def _replicates(row: pd.Series) -> np.ndarray | None:
    reps = row.get("replicates")
    return None if reps is None or (isinstance(reps, float) and math.isnan(reps)) else np.asarray(reps, dtype=float)


def _same_draws(a: pd.Series, b: pd.Series) -> bool:
    """Both bootstrapped the same sample indices: same seed and same n (the image task seeds its bootstrap)."""
    return a.get("seed") == b.get("seed") and a.get("n") == b.get("n")


def abba_samples(est: pd.DataFrame | None, base: pd.Series, other: pd.Series) -> np.ndarray | None:
    """The baseline's samples timed in ABBA blocks with ``other``, if ``other`` was paired with ``base``."""
    if est is None or other.get("paired_with") is None or other.get("paired_with") != base.get("method_config"):
        return None
    if other.get("setting") != base.get("setting"):
        return None
    sel = est[(est.key == other.key) & (est.metric == f"{other.metric}@abba_baseline")]
    return sel.iloc[0].samples if len(sel) else None


def contrast(base: pd.Series, other: pd.Series, kind: str, confidence: float = 0.95,
             est: pd.DataFrame | None = None) -> Estimate:
    """``other`` against ``base`` on the metric of both rows; ``kind`` is one of ``KINDS``.

    ``est`` (the estimates both rows come from) lets a latency contrast find ABBA-paired samples.
    """
    if kind not in KINDS:
        raise ValueError(f"contrast kind {kind!r}; valid: {', '.join(KINDS)}")
    if kind == "difference":
        return _difference(base, other, confidence)
    paired = abba_samples(est, base, other)
    if paired is not None:
        e = paired_speedup_ci(paired, other.samples, confidence)
        return e if kind == "speedup" else Estimate(1 / e.value, 1 / e.high, 1 / e.low, e.estimator)
    num, den = (base, other) if kind == "speedup" else (other, base)
    if num.n_samples >= 2 and den.n_samples >= 2:
        return speedup_ci(num.samples, den.samples, confidence)  # median(num) / median(den)
    if num.value == den.value:
        return Estimate(1.0, 1.0, 1.0, "identical single values")
    if num.value <= 0 or den.value <= 0:
        return Estimate(math.nan, math.nan, math.nan, "ratio undefined (value <= 0)")
    value = num.value / den.value
    rn, rd = _replicates(num), _replicates(den)
    if rn is not None and rd is not None and len(rn) == len(rd) >= MIN_REPLICATES:
        e = recentred_bootstrap_ci(value, rn / rd, confidence)
        return Estimate(value, e.low, e.high, "ratio of bootstrap replicates, re-centred")
    return Estimate(value, value, value, "exact ratio of single values")


def _difference(base: pd.Series, other: pd.Series, confidence: float) -> Estimate:
    value = float(other.value - base.value)
    ra, rb = _replicates(base), _replicates(other)
    if ra is not None and rb is not None and len(ra) == len(rb) >= MIN_REPLICATES:
        e = recentred_bootstrap_ci(value, rb - ra, confidence)
        name = "paired bootstrap difference, re-centred" if _same_draws(base, other) else \
            "bootstrap difference of independent resamples, re-centred"
        return Estimate(value, e.low, e.high, name)
    return Estimate(value, math.nan, math.nan, "difference, no CI (no paired replicates)")


def excludes(e: Estimate, value: float) -> bool:
    """The CI lies wholly on one side of ``value``; False where there is no CI."""
    return not (math.isnan(e.low) or math.isnan(e.high)) and (e.low > value or e.high < value)


def pick(est: pd.DataFrame, key: Any, metric: str) -> pd.Series | None:
    """The estimates row of point ``key`` and ``metric``, or None."""
    sel = est[(est.key == key) & (est.metric == metric)]
    return sel.iloc[0] if len(sel) else None


EXACT_SAME, EXACT_DIFFERENT, EXACT_UNSTABLE = ("exact: identical values", "exact: values differ",
                                               "exact metric varies between runs of one side")


def contrast_runs(a_runs: list[pd.Series], b_runs: list[pd.Series], confidence: float = 0.95,
                  spread_a: Spread | None = None, spread_b: Spread | None = None, paired: bool = False,
                  exact: bool = False) -> Estimate:
    """B / A for one point and metric measured in one or more runs per side (estimates rows, one per run).

    - ``exact`` (a deterministic metric): the values themselves; any difference is a change;
    - repeated samples (latency): runs as units, ``stats.run_ratio_ci`` on the log of each run's
      median; ``spread_*`` is a noise profile's between-run spread for a side with one run;
    - single values that every run of a side reproduces (FID at a fixed seed): ``contrast`` of one
      run per side (the bootstrap replicates' CI);
    - single values that vary between runs: runs as units, as for latency.
    """
    if not a_runs or not b_runs:
        raise ValueError(f"contrast_runs needs runs on both sides, got {len(a_runs)} and {len(b_runs)}")
    va = np.array([float(r.value) for r in a_runs])
    vb = np.array([float(r.value) for r in b_runs])
    if exact:
        if len(set(va)) > 1 or len(set(vb)) > 1:
            return Estimate(math.nan, math.nan, math.nan, EXACT_UNSTABLE)
        if va[0] == vb[0]:
            return Estimate(1.0, 1.0, 1.0, EXACT_SAME)
        ratio = vb[0] / va[0] if va[0] != 0 else math.inf
        return Estimate(ratio, ratio, ratio, EXACT_DIFFERENT)
    repeated = any(r.n_samples >= 2 for r in [*a_runs, *b_runs])
    if not repeated and len(set(va)) == 1 and len(set(vb)) == 1:
        return contrast(a_runs[0], b_runs[0], "ratio", confidence)
    if (va <= 0).any() or (vb <= 0).any():
        return Estimate(math.nan, math.nan, math.nan, "ratio undefined (value <= 0)")
    return run_ratio_ci(np.log(va), np.log(vb), confidence, spread_a, spread_b, paired)

"""Statistics shared by the timer and the analysis: medians with exact CIs, ratio and bootstrap CIs.

Keep every raw sample, summarise lazily, name the estimator (docs/analysis.md, "Estimators").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    estimator: str

    @property
    def rel_halfwidth(self) -> float:
        return (self.high - self.low) / 2 / abs(self.value) if self.value else float("inf")


def median_ci(samples: np.ndarray | list[float], confidence: float = 0.95) -> Estimate:
    """Median with a distribution-free CI from order statistics (binomial(n, 1/2) ranks).

    Exact coverage >= ``confidence`` for any continuous distribution; needs n >= 6 at 95%,
    below that the interval is the sample range and is reported as such (``estimator`` says so).
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n == 0:
        raise ValueError("median_ci needs at least one sample")
    med = float(np.median(x))
    alpha = 1 - confidence
    # Largest j with P(Binom(n, .5) < j) <= alpha/2: the interval [x_(j), x_(n-j+1)] (1-based).
    j = int(stats.binom.ppf(alpha / 2, n, 0.5))
    if j >= 1 and stats.binom.cdf(j - 1, n, 0.5) <= alpha / 2 and n - j >= j:
        return Estimate(med, float(x[j - 1]), float(x[n - j]), "median, order-statistic CI")
    return Estimate(med, float(x[0]), float(x[-1]), f"median, range (n={n} too small for a {confidence:.0%} CI)")


def _median_ratio(num: np.ndarray, den: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(num, axis=axis) / np.median(den, axis=axis)


SMALL_SAMPLE = 10  # below this many samples on a side the bootstrap of a median under-covers


def speedup_ci(
    baseline: np.ndarray | list[float],
    method: np.ndarray | list[float],
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Estimate:
    """Speedup = median baseline time / median method time, for samples timed apart.

    Target: the ratio of the two medians (the latency columns show medians, so the speedup is the
    ratio of the numbers printed next to it). A geometric mean moves with rare slow calls: 5% of
    calls interrupted 10x on one side moved the ratio of geometric means by 12%, the ratio of
    medians by 0.3% (``bench/estimator_coverage.py``). 95% CI: independent two-sample percentile
    bootstrap (scipy.stats.bootstrap), 10^4 resamples, fixed seed so reports are repeatable; it
    covered 94.5-97.5% with unequal noise and with 2-5% of calls 10x slower, where the percentile
    bootstrap of geometric means covered 88.8-93.3%. With fewer than ``SMALL_SAMPLE`` samples on a
    side the bootstrap of a median is too coarse (91% at n=7 with unequal noise), so there the CI is
    Welch's t-interval on the difference of mean log times (93-97%), and the estimator name says so:
    its target is the ratio of geometric means, equal to the ratio of medians for log-symmetric noise.
    """
    b = np.asarray(baseline, dtype=float)
    m = np.asarray(method, dtype=float)
    if len(b) < 2 or len(m) < 2 or (b <= 0).any() or (m <= 0).any():
        raise ValueError(f"speedup_ci needs >= 2 positive samples each, got {len(b)} and {len(m)}")
    if min(len(b), len(m)) < SMALL_SAMPLE:
        lb, lm = np.log(b), np.log(m)
        point = float(np.exp(lb.mean() - lm.mean()))
        if lb.std() == 0 and lm.std() == 0:
            return Estimate(point, point, point, "ratio of geometric means, no spread")
        ci = stats.ttest_ind(lb, lm, equal_var=False).confidence_interval(confidence)
        return Estimate(point, float(np.exp(ci.low)), float(np.exp(ci.high)),
                        "ratio of geometric means, Welch t-interval on log times (small samples)")
    point = float(_median_ratio(b, m))
    res = stats.bootstrap(
        (b, m), lambda bb, mm, axis=-1: _median_ratio(bb, mm, axis), n_resamples=n_resamples,
        confidence_level=confidence, method="percentile", vectorized=True,
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return Estimate(point, float(ci.low), float(ci.high), "ratio of medians, bootstrap percentile CI")


def recentred_bootstrap_ci(point: float, replicates: np.ndarray | list[float], confidence: float = 0.95) -> Estimate:
    """Percentile interval of bootstrap replicates, shifted so their median sits on the estimate.

    For FID over resampled generated samples: resampling with replacement duplicates samples,
    which inflates every replicate (at n=1797 on 128-d features the replicates sat ~8 above the
    estimate, more than their spread). The plain percentile interval then misses the estimate
    and the basic interval 2t - q goes below zero; the spread of the replicates is still a fair
    picture of how much FID moves when the samples are redrawn, so keep the spread, drop the shift.
    """
    r = np.asarray(replicates, dtype=float)
    if len(r) < 20:
        raise ValueError(f"recentred_bootstrap_ci needs >= 20 replicates, got {len(r)}")
    lo_q, mid, hi_q = np.quantile(r, [(1 - confidence) / 2, 0.5, (1 + confidence) / 2])
    return Estimate(point, float(point - (mid - lo_q)), float(point + (hi_q - mid)),
                    "bootstrap percentile spread re-centred on the estimate")


def paired_speedup_ci(baseline: np.ndarray | list[float], method: np.ndarray | list[float],
                      confidence: float = 0.95) -> Estimate:
    """Speedup from interleaved (ABBA) repeats: the median of per-pair time ratios.

    ``baseline[i]`` and ``method[i]`` are adjacent calls of one ABBA block (block ``i // 2``:
    baseline, method, method, baseline), so their ratio cancels drift slower than two calls.
    Target: the median over such pairs of baseline time / method time; for log-symmetric noise it
    equals the ratio of medians. CI: the sign-test interval (order statistics of the log ratios,
    ``median_ci``), exact for any continuous distribution of independent pairs.

    It replaces the geometric mean of per-block ratios of sums, whose target moved with
    interruptions: a long call is interrupted more often than a short one, the sum of a block takes
    the whole interruption, and the mean of logs follows it (issue 11 measured +10% at a true 8:1
    ratio on this machine under load, with a CI that excluded 8; in simulation it covered k in 84%
    of trials when the two calls' noise differs, log sd 0.05 vs 0.3, this estimator 95%). A median
    moves only by a fraction of the uninterrupted spread while fewer than half of the pairs are hit
    (+0.8% where the old target moved +1.8%, ``bench/estimator_coverage.py``).
    """
    b = np.asarray(baseline, dtype=float)
    m = np.asarray(method, dtype=float)
    n = min(len(b), len(m))
    if n < 2 or (b <= 0).any() or (m <= 0).any():
        raise ValueError(f"paired_speedup_ci needs >= 2 pairs of positive samples, got {len(b)} and {len(m)} samples")
    e = median_ci(np.log(b[:n] / m[:n]), confidence)
    name = "ABBA-paired: median of per-pair ratios, sign-test CI"
    if e.estimator.startswith("median, range"):
        name += f" (n={n} pairs: range, too few for a {confidence:.0%} CI)"
    return Estimate(float(np.exp(e.value)), float(np.exp(e.low)), float(np.exp(e.high)), name)


def paired_difference_ci(a: float, b: float, reps_a: np.ndarray | list[float], reps_b: np.ndarray | list[float],
                         confidence: float = 0.95) -> Estimate:
    """``b - a`` for two estimates whose bootstrap replicates used the same resample indices.

    When two methods start from the same noise per sample and replicate j of both resampled the
    same sample indices (the image task's bootstrap does: its generator is seeded by the run's
    seed), ``reps_b[j] - reps_a[j]`` is a paired bootstrap replicate of the difference, and most
    of the sample-to-sample variation cancels. Interval: spread of the paired replicates re-centred
    on the estimate, as in ``recentred_bootstrap_ci``.
    """
    ra = np.asarray(reps_a, dtype=float)
    rb = np.asarray(reps_b, dtype=float)
    if len(ra) != len(rb):
        raise ValueError(f"paired replicates must have equal counts, got {len(ra)} and {len(rb)}")
    est = recentred_bootstrap_ci(b - a, rb - ra, confidence)
    return Estimate(est.value, est.low, est.high, "paired bootstrap difference, re-centred")


def log_ratio_t_ci(log_ratios: np.ndarray | list[float], confidence: float = 0.95) -> Estimate:
    """Geometric mean of ratios with a t-interval on their logs; for summaries over points."""
    r = np.asarray(log_ratios, dtype=float)
    mean = float(r.mean())
    if len(r) < 2:
        return Estimate(float(np.exp(mean)), float("nan"), float("nan"), "single ratio, no CI")
    half = stats.t.ppf((1 + confidence) / 2, len(r) - 1) * r.std(ddof=1) / np.sqrt(len(r))
    return Estimate(float(np.exp(mean)), float(np.exp(mean - half)), float(np.exp(mean + half)),
                    "geometric mean over points, t-interval on log ratios")


def mean_t_ci(values: np.ndarray | list[float], confidence: float = 0.95) -> Estimate:
    """Mean with a Student t-interval; for replicates such as per-seed estimates."""
    v = np.asarray(values, dtype=float)
    mean = float(v.mean())
    if len(v) < 2:
        return Estimate(mean, float("nan"), float("nan"), "single value, no CI")
    half = stats.t.ppf((1 + confidence) / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return Estimate(mean, mean - half, mean + half, f"mean, t-interval (n={len(v)})")


# ---- Runs as the unit (Kalibera & Jones 2013): one estimate per run, the CI from the spread between runs ----


@dataclass(frozen=True)
class Spread:
    """Between-run spread of one side's per-run log estimates: sd, its degrees of freedom, and where
    it came from (the side's own runs, or a stored noise profile of the machine)."""

    sd: float
    df: float
    source: str


@dataclass(frozen=True)
class RunEstimate(Estimate):
    """A ratio judged with runs as the unit; ``se`` and ``df`` are those of its log (t reference)."""

    se: float = float("nan")
    df: float = float("nan")


def _t(q: float, df: float) -> float:
    return float(stats.norm.ppf(q) if not np.isfinite(df) else stats.t.ppf(q, df))


def run_ratio_ci(logs_a: np.ndarray | list[float], logs_b: np.ndarray | list[float], confidence: float = 0.95,
                 spread_a: Spread | None = None, spread_b: Spread | None = None,
                 paired: bool = False) -> RunEstimate:
    """Ratio B/A from per-run log estimates (e.g. the log of each run's median latency).

    Target: the ratio of the geometric means over runs of the per-run estimates. Unpaired: Welch's
    t over runs (Satterthwaite degrees of freedom); a side with one run takes its between-run spread
    from ``spread_*`` (a stored noise profile), and without one the CI is unknown (NaN) and the
    estimator says why. ``paired``: run i of A and run i of B ran next to each other (interleaved
    A/B rounds); Student t on the per-round differences, which cancels drift slower than a round.
    """
    a, b = np.asarray(logs_a, dtype=float), np.asarray(logs_b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"run_ratio_ci needs at least one run per side, got {len(a)} and {len(b)}")
    nan = float("nan")
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired runs need equal counts, got {len(a)} and {len(b)}")
        d = b - a
        value = float(np.exp(d.mean()))
        if len(d) < 2:
            return RunEstimate(value, nan, nan, "paired runs: one round, no CI", nan, nan)
        se, df = float(d.std(ddof=1) / np.sqrt(len(d))), float(len(d) - 1)
        name = f"paired runs: geometric mean of per-round ratios, t over {len(d)} rounds"
    else:
        value = float(np.exp(b.mean() - a.mean()))
        sides = []
        for runs, given, label in ((a, spread_a, "A"), (b, spread_b, "B")):
            if len(runs) >= 2:
                sides.append((float(runs.std(ddof=1)), float(len(runs) - 1), len(runs), None))
            elif given is not None:
                sides.append((given.sd, given.df, 1, f"{label}: one run, spread from {given.source}"))
            else:
                return RunEstimate(value, nan, nan, f"inconclusive: between-run variance unknown ({label} has one run "
                                   "and no noise profile)", nan, nan)
        v = [sd**2 / n for sd, _, n, _ in sides]
        se = float(np.sqrt(sum(v)))
        # Welch-Satterthwaite; a side with zero spread contributes no uncertainty (and no df term).
        den = sum(vi**2 / df for vi, (_, df, _, _) in zip(v, sides) if vi > 0)
        df = float(sum(v) ** 2 / den) if den > 0 else float("inf")
        notes = "; ".join(n for *_, n in sides if n)
        name = (f"runs as units: ratio of geometric means of run medians, Welch t over runs ({len(a)} vs {len(b)})"
                + (f" [{notes}]" if notes else ""))
    if se == 0:
        return RunEstimate(value, value, value, name + ", no spread between runs", 0.0, float("inf"))
    half = _t((1 + confidence) / 2, df) * se
    mean = float(np.log(value))
    return RunEstimate(value, float(np.exp(mean - half)), float(np.exp(mean + half)), name, se, df)


def detectable_change(se: float, df: float, margin: float, confidence: float = 0.95, power: float = 0.8) -> float:
    """Smallest true relative change that the verdict rule calls a regression (the CI's low end above
    1 + margin) with probability ``power``: exp(log(1 + margin) + (t_{(1+c)/2} + t_power) se) - 1,
    for a log-ratio estimate with standard error ``se`` and ``df`` degrees of freedom."""
    if not np.isfinite(se):
        return float("nan")
    return float(np.expm1(np.log1p(margin) + (_t((1 + confidence) / 2, df) + _t(power, df)) * se))


def margin_p_values(value: float, low: float, high: float, margin: float, confidence: float = 0.95,
                    df: float = float("inf")) -> tuple[float, float]:
    """One-sided p-values of "worse than 1 + margin" and "better than 1 / (1 + margin)" for a ratio
    (lower is better) with CI [low, high], inverting the CI on the log scale with a t(df) reference.

    The side of the CI towards each boundary gives that test's standard error, so a p-value below
    (1 - confidence) / 2 is exactly a CI wholly beyond that boundary (the verdict rule). For CIs from
    a bootstrap (no df) the normal reference is an approximation; the returned p-values feed the
    false-discovery-rate control across many contrasts (``benjamini_hochberg``).
    """
    if not all(np.isfinite([value, low, high])) or value <= 0 or low <= 0:
        return float("nan"), float("nan")
    d, lo, hi, m = np.log(value), np.log(low), np.log(high), np.log1p(margin)
    q = _t((1 + confidence) / 2, df)
    ref = stats.norm if not np.isfinite(df) else stats.t(df)
    se_lo, se_hi = (d - lo) / q, (hi - d) / q
    p_reg = float(ref.sf((d - m) / se_lo)) if se_lo > 0 else float(d <= m)
    p_imp = float(ref.cdf((d + m) / se_hi)) if se_hi > 0 else float(d >= -m)
    return p_reg, p_imp


def benjamini_hochberg(p_values: np.ndarray | list[float], q: float = 0.05) -> np.ndarray:
    """Which hypotheses to reject with the false discovery rate held at ``q`` (Benjamini & Hochberg
    1995): the largest k with p_(k) <= k q / m, and every p-value at or below p_(k). NaN: not tested."""
    p = np.asarray(p_values, dtype=float)
    keep = np.isfinite(p)
    out = np.zeros(len(p), dtype=bool)
    m = int(keep.sum())
    if m == 0:
        return out
    order = np.sort(p[keep])
    passed = order <= q * np.arange(1, m + 1) / m
    if passed.any():
        out[keep] = p[keep] <= order[np.nonzero(passed)[0].max()]
    return out


def change_points(x: np.ndarray | list[float], min_segment: int = 2, alpha: float = 0.05) -> list[tuple[int, float]]:
    """Persistent shifts in a series of per-run estimates (binary segmentation).

    For every split with at least ``min_segment`` runs on each side (so a shift must be confirmed by
    ``min_segment`` later runs), a pooled two-sample t statistic; the best split's p-value is
    Bonferroni-corrected over the splits tried. A significant split is kept and both halves are
    searched again. Returns ``(index of the first run after the shift, corrected p)``, in order.
    A one-off slow run cannot be a change: it never fills a segment of its own.
    """
    v = np.asarray(x, dtype=float)
    found: list[tuple[int, float]] = []

    def search(lo: int, hi: int) -> None:
        n = hi - lo
        splits = range(lo + min_segment, hi - min_segment + 1)
        if n < 2 * min_segment or n < 3:
            return
        best_k, best_p = -1, 1.0
        for k in splits:
            left, right = v[lo:k], v[k:hi]
            ss = ((left - left.mean()) ** 2).sum() + ((right - right.mean()) ** 2).sum()
            diff = abs(right.mean() - left.mean())
            if ss == 0:
                p = 0.0 if diff > 0 else 1.0
            else:
                se = np.sqrt(ss / (n - 2) * (1 / len(left) + 1 / len(right)))
                p = float(2 * stats.t.sf(diff / se, n - 2))
            if p < best_p:
                best_k, best_p = k, p
        p_adj = min(1.0, best_p * len(splits))
        if best_k < 0 or p_adj >= alpha:
            return
        found.append((best_k, p_adj))
        search(lo, best_k)
        search(best_k, hi)

    search(0, len(v))
    return sorted(found)

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


def _gmean_ratio(num: np.ndarray, den: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.exp(np.mean(np.log(num), axis=axis) - np.mean(np.log(den), axis=axis))


SMALL_SAMPLE = 15  # below this many samples on a side the percentile bootstrap under-covers


def speedup_ci(
    baseline: np.ndarray | list[float],
    method: np.ndarray | list[float],
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Estimate:
    """Speedup = geometric mean of baseline times / geometric mean of method times.

    95% CI by an independent two-sample percentile bootstrap (scipy.stats.bootstrap; BCa is
    unstable for ratios of small samples), 10^4 resamples, fixed seed so reports are repeatable.
    With fewer than ``SMALL_SAMPLE`` samples on a side the percentile bootstrap is too narrow
    (measured: 88% coverage at n=7 for a nominal 95%), so there the CI is Welch's t-interval on
    the difference of mean log times (94% at n=7), and the estimator name says so.
    """
    b = np.asarray(baseline, dtype=float)
    m = np.asarray(method, dtype=float)
    if len(b) < 2 or len(m) < 2 or (b <= 0).any() or (m <= 0).any():
        raise ValueError(f"speedup_ci needs >= 2 positive samples each, got {len(b)} and {len(m)}")
    point = float(_gmean_ratio(b, m))
    if min(len(b), len(m)) < SMALL_SAMPLE:
        lb, lm = np.log(b), np.log(m)
        if lb.std() == 0 and lm.std() == 0:
            return Estimate(point, point, point, "ratio of geometric means, no spread")
        ci = stats.ttest_ind(lb, lm, equal_var=False).confidence_interval(confidence)
        return Estimate(point, float(np.exp(ci.low)), float(np.exp(ci.high)),
                        "ratio of geometric means, Welch t-interval on log times (small samples)")
    res = stats.bootstrap(
        (b, m), lambda bb, mm, axis=-1: _gmean_ratio(bb, mm, axis), n_resamples=n_resamples,
        confidence_level=confidence, method="percentile", vectorized=True,
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return Estimate(point, float(ci.low), float(ci.high), "ratio of geometric means, bootstrap percentile CI")


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
                      confidence: float = 0.95, block: int = 2) -> Estimate:
    """Speedup from interleaved (ABBA) repeats: per block, baseline time / method time.

    ``baseline[i]`` and ``method[i]`` were timed in the same ABBA block when ``i // block`` is
    equal; each block ratio (sum of its baseline calls / sum of its method calls) cancels drift
    slower than a block. Estimate: geometric mean of block ratios; CI: Student t on the mean log
    ratio (blocks are independent given the drift cancels; log block ratios are close to normal
    because each is a ratio of sums).
    """
    b = np.asarray(baseline, dtype=float)
    m = np.asarray(method, dtype=float)
    k = min(len(b), len(m)) // block
    if k < 2 or (b <= 0).any() or (m <= 0).any():
        raise ValueError(f"paired_speedup_ci needs >= 2 complete blocks of {block} positive samples each, "
                         f"got {len(b)} and {len(m)} samples")
    r = np.log(b[: k * block].reshape(k, block).sum(1) / m[: k * block].reshape(k, block).sum(1))
    half = stats.t.ppf((1 + confidence) / 2, k - 1) * r.std(ddof=1) / np.sqrt(k)
    mean = r.mean()
    return Estimate(float(np.exp(mean)), float(np.exp(mean - half)), float(np.exp(mean + half)),
                    "ABBA-paired: geometric mean of block ratios, t-interval on log ratios")


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

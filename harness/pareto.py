"""Pareto front of (cost, quality) points: a sort and a scan, no dependency."""

from __future__ import annotations

import numpy as np


def pareto_mask(cost: np.ndarray | list[float], quality: np.ndarray | list[float],
                higher_is_better: bool) -> np.ndarray:
    """True for the non-dominated points: no other point is at most as costly and strictly better,
    or strictly cheaper and at least as good. NaNs are never on the front."""
    c = np.asarray(cost, dtype=float)
    q = np.asarray(quality, dtype=float)
    q = q if higher_is_better else -q  # maximise q from here on
    mask = np.zeros(len(c), dtype=bool)
    ok = ~(np.isnan(c) | np.isnan(q))
    idx = np.flatnonzero(ok)
    # cheapest first; among equal cost the best quality first, so ties in cost keep one point
    order = idx[np.lexsort((-q[idx], c[idx]))]
    best = -np.inf
    for i in order:
        if q[i] > best:
            mask[i] = True
            best = q[i]
    return mask


def near_front_mask(cost_low: np.ndarray | list[float], quality_best: np.ndarray | list[float],
                    front_cost: np.ndarray | list[float], front_quality: np.ndarray | list[float],
                    higher_is_better: bool) -> np.ndarray:
    """True where a point's optimistic corner (lower cost bound, better quality bound) is not
    dominated by any front point: within its CIs it could be on the front, so "off the front" is
    not established for it."""
    sign = 1.0 if higher_is_better else -1.0
    c = np.asarray(cost_low, dtype=float)[:, None]
    q = sign * np.asarray(quality_best, dtype=float)[:, None]
    fc = np.asarray(front_cost, dtype=float)[None, :]
    fq = sign * np.asarray(front_quality, dtype=float)[None, :]
    dominated = ((fc <= c) & (fq > q)) | ((fc < c) & (fq >= q))
    return ~dominated.any(axis=1)


def hypervolume(cost: np.ndarray | list[float], quality: np.ndarray | list[float], higher_is_better: bool,
                ref_cost: float, ref_quality: float) -> float:
    """Area of the (cost, quality) region dominated by the points and bounded by the reference
    point (a cost no one wants to pay, a quality no one wants): larger is a better front.

    In the minimise-cost / maximise-quality frame, with the front sorted by cost (quality then
    rises too): sum over front points of (ref_cost - c_i) * (q_i - q_{i-1}), q_{-1} = ref_quality.
    Points beyond the reference on either axis add nothing.
    """
    sign = 1.0 if higher_is_better else -1.0
    c = np.asarray(cost, dtype=float)
    q = sign * np.asarray(quality, dtype=float)
    qr = sign * ref_quality
    keep = (c < ref_cost) & (q > qr) & ~np.isnan(c) & ~np.isnan(q)
    c, q = c[keep], q[keep]
    front = pareto_mask(c, q, higher_is_better=True)
    order = np.argsort(c[front])
    fc, fq = c[front][order], q[front][order]
    prev = np.concatenate([[qr], fq[:-1]])
    return float(np.sum((ref_cost - fc) * (fq - prev)))

"""Pareto front of (cost, quality) points: a sort and a scan, no dependency."""

from __future__ import annotations

import numpy as np


def pareto_mask(cost: np.ndarray | list[float], quality: np.ndarray | list[float], higher_is_better: bool) -> np.ndarray:
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

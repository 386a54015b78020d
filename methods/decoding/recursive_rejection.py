"""Recursive rejection sampling (RRS), the multi-draft verifier of SpecInfer (Miao et al. 2024,
arXiv 2305.09781, Sec. 4.2) and of multi-candidate speculative decoding (Yang et al. 2024,
arXiv 2401.06706, Alg. 1 with replacement, Alg. 2 without), one draft after another:

1. p_1 = p; draft i was drawn from q_i (q itself with replacement; q renormalised over the
   tokens not drawn yet without replacement);
2. accept draft x_i with probability min(1, p_i(x_i) / q_i(x_i)) and output it;
3. else continue with the residual p_{i+1} = max(p_i - q_i, 0) / (1 - sum_y min(p_i(y), q_i(y)));
4. after K rejections output a token drawn from p_{K+1}. The output is distributed as p.

Acceptance, exactly: with replacement the residual chain does not depend on which token was
rejected, so alpha = 1 - prod_i (1 - beta_i), beta_i = sum_y min(p_i(y), q(y)). Without
replacement q_i depends on the tokens drawn so far: the rate sums over every draw history, level
by level (at most support^(K-1) histories, vectorised), which is exact, not a Monte Carlo estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.plugin import PluginConfig
from harness.registry import register_method
from tasks.decoding.multidraft import MultiDraftVerifier


@dataclass
class RecursiveRejectionConfig(PluginConfig):
    LABEL_ALWAYS = ("drafts",)
    drafts: int = 2  # K, drafted tokens per step

    def __post_init__(self) -> None:
        if self.drafts < 1:
            raise ValueError(f"method.drafts must be >= 1, got {self.drafts}")


def _residual(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Step 3: max(p - q, 0), renormalised (rows); an all-zero row (p = q, accepted surely) stays zero."""
    r = np.clip(p - q, 0.0, None)
    z = r.sum(-1, keepdims=True)
    return np.divide(r, z, out=np.zeros_like(r), where=z > 0)


def rrs_acceptance(p: np.ndarray, q: np.ndarray, drafts: int, replacement: bool) -> float:
    """P(RRS outputs one of the K drafts), exactly."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if replacement:
        acc, alive, r = 0.0, 1.0, p
        for _ in range(drafts):
            beta = float(np.minimum(r, q).sum())
            acc += alive * beta
            alive *= 1.0 - beta
            r = _residual(r, q)
        return acc
    # Without replacement: states are draw histories (weight = P(reached and all rejected so far)).
    weight, resid, used = np.ones(1), p[None, :], np.zeros((1, len(p)), dtype=bool)
    acc = 0.0
    for level in range(drafts):
        qi = np.where(used, 0.0, q[None, :])
        z = qi.sum(1, keepdims=True)
        qi = np.divide(qi, z, out=np.zeros_like(qi), where=z > 0)
        acc += float((weight * np.minimum(resid, qi).sum(1)).sum())
        if level == drafts - 1:
            break
        # Child (state s, rejected token x): weight * q_i(x) * (1 - min(1, r(x)/q_i(x))) = weight * max(q_i - r, 0)(x).
        child = weight[:, None] * np.clip(qi - resid, 0.0, None)
        s_idx, x_idx = np.nonzero(child > 1e-15)
        nxt = _residual(resid, qi)
        weight, resid = child[s_idx, x_idx], nxt[s_idx]
        used = used[s_idx].copy()
        used[np.arange(len(x_idx)), x_idx] = True
    return acc


@register_method("recursive_rejection", RecursiveRejectionConfig)
class RecursiveRejection(MultiDraftVerifier):
    def acceptance(self, p: np.ndarray, q: np.ndarray, replacement: bool) -> float:
        return rrs_acceptance(p, q, self.drafts, replacement)

    def verify(self, p: np.ndarray, q: np.ndarray, drafted: np.ndarray, replacement: bool,
               rng: np.random.Generator) -> int:
        r, qi = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
        used = np.zeros(len(p), dtype=bool)
        for x in drafted:
            if not replacement:  # step 1: the distribution this draft was drawn from
                qi = np.where(used, 0.0, q)
                qi = qi / qi.sum()
            if rng.random() * qi[x] < r[x]:  # step 2: accept with probability min(1, r(x) / q_i(x))
                return int(x)
            r = _residual(r, qi)  # step 3
            used[x] = True
        return int(rng.choice(len(p), p=r))  # step 4

"""The optimal multi-draft verifier: the transport LP solved per step (Sun et al. 2023, SpecTr,
arXiv 2310.15141, Sec. 3; Hu et al. 2025, arXiv 2502.18779, Sec. 3: the optimal acceptance rate).

1. Q = the distribution of the drafted set (``tasks.decoding.multidraft.draft_set_distribution``).
2. Max-flow LP over x[S, y] >= 0 for y in S: maximise sum x subject to sum_{y in S} x[S, y] <= Q(S)
   and sum_{S ni y} x[S, y] <= p(y); solved with scipy's HiGHS. Its value is the acceptance rate.
3. A full coupling from the flow: the unaccepted masses Q_res(S) = Q(S) - sum_y x[S, y] and
   p_res(y) = p(y) - sum_S x[S, y] both total 1 - alpha and are coupled independently, so the
   output's marginal is exactly p (lossless) and P(Y in S) = alpha, the maximum.
4. ``verify``: for the drafted set S, output y in S with probability x[S, y] / Q(S), otherwise a
   token drawn from p_res. The LP runs every step: the timed call measures what optimality costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from harness.plugin import PluginConfig
from harness.registry import register_method
from tasks.decoding.multidraft import MultiDraftVerifier, draft_set_distribution


@dataclass
class OptimalTransportConfig(PluginConfig):
    LABEL_ALWAYS = ("drafts",)
    drafts: int = 2  # K, drafted tokens per step

    def __post_init__(self) -> None:
        if self.drafts < 1:
            raise ValueError(f"method.drafts must be >= 1, got {self.drafts}")


def optimal_plan(p: np.ndarray, q: np.ndarray, drafts: int, replacement: bool
                 ) -> tuple[float, list[np.ndarray], np.ndarray, np.ndarray]:
    """(alpha*, sets grouped by size, Q per set, accepted flow per (set, member) in the sets' row-major order)."""
    p = np.asarray(p, dtype=float)
    sets, qs = draft_set_distribution(q, drafts, replacement)
    rows_set, rows_tok, offset = [], [], 0
    for s in sets:  # variable v = (set index, member) for every member of every set
        rows_set.append(np.repeat(np.arange(offset, offset + len(s)), s.shape[1]))
        rows_tok.append(s.reshape(-1))
        offset += len(s)
    set_of, tok_of = np.concatenate(rows_set), np.concatenate(rows_tok)
    nvar, nset = len(set_of), offset
    cols = np.arange(nvar)
    a_ub = sp.vstack([sp.csr_matrix((np.ones(nvar), (set_of, cols)), shape=(nset, nvar)),
                      sp.csr_matrix((np.ones(nvar), (tok_of, cols)), shape=(len(p), nvar))]).tocsr()
    res = linprog(-np.ones(nvar), A_ub=a_ub, b_ub=np.concatenate([qs, p]), bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"HiGHS did not solve the transport LP ({drafts} drafts, support {len(p)}): {res.message}")
    return float(-res.fun), sets, qs, np.clip(res.x, 0.0, None)


@register_method("optimal_transport", OptimalTransportConfig)
class OptimalTransport(MultiDraftVerifier):
    def acceptance(self, p: np.ndarray, q: np.ndarray, replacement: bool) -> float:
        return optimal_plan(p, q, self.drafts, replacement)[0]

    def verify(self, p: np.ndarray, q: np.ndarray, drafted: np.ndarray, replacement: bool,
               rng: np.random.Generator) -> int:
        alpha, sets, qs, flow = optimal_plan(p, q, self.drafts, replacement)
        key = np.unique(drafted)
        start, var = 0, 0
        for s in sets:  # find the drafted set's index and its variables
            if s.shape[1] == len(key):
                hit = np.flatnonzero((s == key).all(1))
                if len(hit):
                    i = start + int(hit[0])
                    members = flow[var + int(hit[0]) * len(key): var + (int(hit[0]) + 1) * len(key)]
                    break
            start += len(s)
            var += s.size
        else:
            raise ValueError(f"drafted tokens {drafted.tolist()} form no set of the {self.drafts}-draft scheme")
        u = rng.random() * qs[i]
        c = np.cumsum(members)
        if u < c[-1]:  # accepted: one of the drafted tokens, with probability x[S, y] / Q(S)
            return int(key[np.searchsorted(c, u, side="right")])
        used = np.zeros(len(p))  # rejected: the target's mass no accepted flow covered, p_res / (1 - alpha)
        for s, lo in zip(sets, np.cumsum([0] + [x.size for x in sets[:-1]])):
            np.add.at(used, s.reshape(-1), flow[lo:lo + s.size])
        rest = np.clip(p - used, 0.0, None)
        if rest.sum() <= 0:  # alpha = 1 up to rounding: nothing left to draw from
            return int(key[np.argmax(members)])
        return int(rng.choice(len(p), p=rest / rest.sum()))

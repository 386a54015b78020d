"""Multi-draft verification (tasks/decoding/multidraft.py, methods/decoding/optimal_transport.py and
recursive_rejection.py): the LP against closed forms and its dual, the two draft schemes, RRS below the
optimum, and both verifiers lossless."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from methods.decoding.optimal_transport import OptimalTransport, OptimalTransportConfig, optimal_plan
from methods.decoding.recursive_rejection import RecursiveRejection, RecursiveRejectionConfig, rrs_acceptance
from tasks.decoding.multidraft import draft_set_distribution, sample_drafts, truncate


def _pairs(count: int, seed: int = 0, sizes: tuple[int, int] = (3, 7)) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        m = int(rng.integers(*sizes))
        out.append((rng.dirichlet(np.full(m, rng.uniform(0.1, 2))), rng.dirichlet(np.full(m, rng.uniform(0.1, 2)))))
    return out


def test_one_draft_lp_is_the_closed_form() -> None:
    for p, q in _pairs(30):
        want = np.minimum(p, q).sum()  # Leviathan et al.: the best one-draft acceptance is 1 - TV(p, q)
        assert optimal_plan(p, q, 1, True)[0] == pytest.approx(want, abs=1e-9)
        assert rrs_acceptance(p, q, 1, True) == pytest.approx(want, abs=1e-12)
        assert rrs_acceptance(p, q, 1, False) == pytest.approx(want, abs=1e-12)


def test_lp_equals_its_dual_subset_form() -> None:
    # Hu et al. 2025: alpha* = min over token sets T of p(T) + 1 - Q(drafted set inside T); brute force.
    for p, q in _pairs(12, seed=1, sizes=(3, 6)):
        m = len(p)
        for drafts, repl in ((2, True), (2, False), (3, True), (3, False)):
            if drafts > m:
                continue
            sets, qs = draft_set_distribution(q, drafts, repl)
            members = [set(s) for g in sets for s in g.tolist()]
            dual = min(p[list(t)].sum() + 1 - sum(w for s, w in zip(members, qs) if s <= set(t))
                       for r in range(m + 1) for t in itertools.combinations(range(m), r))
            assert optimal_plan(p, q, drafts, repl)[0] == pytest.approx(dual, abs=1e-7)


def test_without_replacement_at_least_with_and_rrs_below_the_optimum() -> None:
    gains, gaps = [], []
    for p, q in _pairs(60, seed=2, sizes=(4, 9)):
        for drafts in (2, 3, 4):
            with_r, without = optimal_plan(p, q, drafts, True)[0], optimal_plan(p, q, drafts, False)[0]
            gains.append(without - with_r)
            for repl, best in ((True, with_r), (False, without)):
                gaps.append(best - rrs_acceptance(p, q, drafts, repl))
    assert min(gains) >= -1e-9 and max(gains) > 0.01
    assert min(gaps) >= -1e-9 and max(gaps) > 0.01


def test_draft_set_distribution_matches_sampling() -> None:
    q = np.array([0.4, 0.3, 0.2, 0.1])
    rng = np.random.default_rng(0)
    for repl in (True, False):
        sets, qs = draft_set_distribution(q, 2, repl)
        index = {tuple(s): i for i, s in enumerate(s for g in sets for s in g.tolist())}
        counts = np.zeros(len(qs))
        for _ in range(20000):
            counts[index[tuple(np.unique(sample_drafts(q, 2, repl, rng)).tolist())]] += 1
        assert np.abs(counts / 20000 - qs).max() < 0.015


@pytest.mark.parametrize("verifier", ["optimal_transport", "recursive_rejection"])
@pytest.mark.parametrize("replacement", [True, False])
def test_verifiers_are_lossless_and_accept_at_their_rate(verifier: str, replacement: bool) -> None:
    p, q = np.array([0.5, 0.2, 0.2, 0.1]), np.array([0.1, 0.3, 0.2, 0.4])
    method = OptimalTransport(OptimalTransportConfig(drafts=2)) if verifier == "optimal_transport" else \
        RecursiveRejection(RecursiveRejectionConfig(drafts=2))
    rng, n = np.random.default_rng(1), 3000  # the LP verifier solves its LP every step: ~2 ms each here
    counts, accepted = np.zeros(4), 0
    for _ in range(n):
        drafted = sample_drafts(q, 2, replacement, rng)
        y = method.verify(p, q, drafted, replacement, rng)
        counts[y] += 1
        accepted += y in drafted
    sd = np.sqrt(p * (1 - p) / n)
    assert (np.abs(counts / n - p) < 4 * sd).all(), counts / n  # the output is distributed as p
    alpha = method.acceptance(p, q, replacement)
    assert abs(accepted / n - alpha) < 4 * np.sqrt(alpha * (1 - alpha) / n)


def test_truncation_keeps_the_top_tokens_and_says_how_much() -> None:
    p, q = np.array([0.6, 0.05, 0.3, 0.05]), np.array([0.1, 0.1, 0.7, 0.1])
    tp, tq, keep, mp, mq = truncate(p, q, 2)
    assert keep.tolist() == [0, 2] and mp == pytest.approx(0.9) and mq == pytest.approx(0.8)
    assert tp.sum() == pytest.approx(1) and tq.sum() == pytest.approx(1)
    with pytest.raises(ValueError, match="need at least 3 tokens"):
        draft_set_distribution(np.array([0.5, 0.5, 0.0]), 3, False)

"""harness.metrics.token_bleu equals NLTK sentence_bleu (the paper's bar: 1e-6) on random corpora."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from harness.metrics import METRICS, token_bleu
from harness.plan import CONF_DIR, plan
from harness.results import load
from harness.runner import measure_point
from tests.helpers import compose_cfg, run_cli

SMOOTHINGS = [None, "method0", "method1", "method2", "method3", "method4"]
TOL = 1e-6  # the paper's claim; the observed differences are ~1e-16 (float64 rounding)


def nltk_scores(cands: list[list[int]], refs: list[list[list[int]]], smoothing: str | None,
                weights: tuple[float, ...] = (0.25,) * 4) -> torch.Tensor:
    fn = getattr(SmoothingFunction(), smoothing or "method0")
    with warnings.catch_warnings():  # method0 warns on every zero precision
        warnings.simplefilter("ignore")
        return torch.tensor([float(sentence_bleu(r, c, weights, smoothing_function=fn))
                             for c, r in zip(cands, refs)], dtype=torch.float64)


def sentence(vocab: int, max_len: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, vocab - 1), max_size=max_len)


@st.composite
def corpus(draw: st.DrawFn, max_len: int = 14) -> tuple[list[list[int]], list[list[list[int]]]]:
    """A tiny vocabulary makes repeated and matching n-grams (the clipping cases) common."""
    vocab = draw(st.integers(2, 7))
    batch = draw(st.integers(1, 4))
    cands = [draw(sentence(vocab, max_len)) for _ in range(batch)]
    refs = [draw(st.lists(sentence(vocab, max_len), min_size=1, max_size=4)) for _ in range(batch)]
    return cands, refs


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(corpus(), st.sampled_from(SMOOTHINGS))
def test_lists_equal_nltk(data: tuple, smoothing: str | None) -> None:
    cands, refs = data
    ours = token_bleu(cands, refs, smoothing=smoothing)
    assert ours.dtype == torch.float64 and ours.shape == (len(cands),)
    assert torch.allclose(ours, nltk_scores(cands, refs, smoothing), atol=TOL, rtol=0)


@FAST
@given(corpus(max_len=10), st.sampled_from(SMOOTHINGS), st.integers(-1, 0))
def test_padded_tensors_equal_nltk(data: tuple, smoothing: str | None, pad_id: int) -> None:
    """Right-padded (batch, length) / (batch, refs, length) tensors; all-pad reference rows are absent."""
    cands, refs = data
    if pad_id == 0:  # token 0 is then padding: shift the real tokens above it
        cands = [[t + 1 for t in c] for c in cands]
        refs = [[[t + 1 for t in x] for x in r] for r in refs]
    length, n_refs = 12, 4
    cand_t = torch.full((len(cands), length), pad_id)
    ref_t = torch.full((len(cands), n_refs, length), pad_id)
    for i, (c, r) in enumerate(zip(cands, refs)):
        cand_t[i, : len(c)] = torch.tensor(c, dtype=torch.long)
        for j, x in enumerate(r):
            ref_t[i, j, : len(x)] = torch.tensor(x, dtype=torch.long)
    # an empty reference is indistinguishable from padding in a tensor: NLTK sees it as absent too
    nltk_refs = [[x for x in r if x] or [[]] for r in refs]
    if any(all(not x for x in r) for r in refs):
        with pytest.raises(ValueError, match="at least one reference"):
            token_bleu(cand_t, ref_t, pad_id=pad_id, smoothing=smoothing)
        return
    ours = token_bleu(cand_t, ref_t, pad_id=pad_id, smoothing=smoothing)
    assert torch.allclose(ours, nltk_scores(cands, nltk_refs, smoothing), atol=TOL, rtol=0)


@settings(max_examples=25, deadline=None)
@given(corpus(), st.sampled_from(["method1", "method3"]), st.integers(1, 4))
def test_other_orders_and_weights(data: tuple, smoothing: str, max_n: int) -> None:
    cands, refs = data
    weights = tuple(torch.linspace(1, 2, max_n).div(torch.linspace(1, 2, max_n).sum()).tolist())
    ours = token_bleu(cands, refs, max_n=max_n, weights=weights, smoothing=smoothing)
    assert torch.allclose(ours, nltk_scores(cands, refs, smoothing, weights), atol=TOL, rtol=0)


def test_edge_cases_by_hand() -> None:
    # empty candidate: BLEU 0 (brevity penalty 0 and no unigram match)
    assert token_bleu([[]], [[[1, 2, 3]]], smoothing="method1").item() == 0.0
    # identical sentences: BLEU 1
    assert token_bleu([[5, 6, 7, 8, 9]], [[[5, 6, 7, 8, 9]]]).item() == pytest.approx(1.0, abs=1e-12)
    # shorter than n with method1: p1 = 3/3, p2 = 2/2, p3 = 1/1, p4 = 0.1/1 (NLTK's max(1, 0) denominator)
    assert token_bleu([[1, 2, 3]], [[[1, 2, 3]]], smoothing="method1").item() == pytest.approx(0.1 ** 0.25)
    # closest reference length ties go to the shorter reference (4 and 6 around a length-5 candidate):
    # r = 4 < c = 5, so no brevity penalty; with r = 6 it would be exp(1 - 6/5)
    cand, refs = [1, 2, 3, 4, 5], [[1, 2, 3, 4], [1, 2, 3, 4, 5, 6]]
    expected = sentence_bleu(refs, cand)
    assert token_bleu([cand], [refs]).item() == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(1.0)
    # clipping: "the the the the" vs "the cat": unigram precision 1/4 (Papineni et al. 2002, sec. 2.1)
    assert token_bleu([[7, 7, 7, 7]], [[[7, 3]]], max_n=1, weights=[1.0]).item() == pytest.approx(
        0.25, abs=1e-12)


def test_large_vocabularies_stay_exact() -> None:
    """IDs whose V**4 overflows int64 take the compressed-vocabulary path; >55k distinct types the
    dictionary path. Both must give the same scores as small IDs with the same n-gram structure."""
    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 50, (3, 40), generator=g)
    refs = torch.stack([base, torch.randint(0, 50, (3, 40), generator=g)], dim=1)
    cand = torch.where(torch.rand(3, 40, generator=g) < 0.3, torch.randint(0, 50, (3, 40), generator=g), base)
    small = token_bleu(cand, refs, smoothing="method1")
    offset = 2**40
    assert torch.equal(token_bleu(cand * 7 + offset, refs * 7 + offset, smoothing="method1"), small)
    # 60k distinct token types: V'**4 > 2**63, n-gram ids come from torch.unique per order
    filler = torch.arange(60_000).view(1, 1, -1) + 1000
    wide_refs = torch.cat([refs, filler.expand(3, 2, -1)], dim=2)
    wide_cand = torch.cat([cand, torch.full((3, 60_000), -1)], dim=1)
    lists_c = [c.tolist() for c in cand]
    lists_r = [[x.tolist() for x in r] for r in wide_refs]
    assert torch.allclose(token_bleu(wide_cand, wide_refs, pad_id=-1, smoothing="method1"),
                          nltk_scores(lists_c, lists_r, "method1"), atol=TOL, rtol=0)


def test_invalid_inputs_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="smoothing='method9'; valid: None, method0"):
        token_bleu([[1]], [[[1]]], smoothing="method9")
    with pytest.raises(ValueError, match="padding must be on the right"):
        token_bleu(torch.tensor([[0, 1]]), torch.tensor([[[1, 0]]]), pad_id=0)
    with pytest.raises(ValueError, match="at least one reference"):
        token_bleu([[1, 2]], [[]])
    with pytest.raises(ValueError, match="weights has 2 entries"):
        token_bleu([[1]], [[[1]]], weights=[0.5, 0.5])
    with pytest.raises(ValueError, match=">= 0"):
        token_bleu([[-3, 1]], [[[1]]])


def test_bleu_kernel_points_match_nltk() -> None:
    """Every method of experiment=bleu_kernel runs through the runner; the tensor method equals NLTK."""
    cfg = compose_cfg(["experiment=bleu_kernel", "task.batch_size=6", "task.length=40", "timing.max_time_s=0.2",
                       "timing.min_time_s=0", "timing.min_repeats=2"])
    assert cfg.hardware.threads == 1 and cfg.baseline == "nltk" and cfg.results_dir == "results/bleu_kernel"
    assert dict(cfg.hydra.sweeper.params) == {"task.batch_size": "16,32,64,128,256,512", "task.length": "256,1024"}
    seen = {}
    for point in plan(cfg):
        obs, _ = measure_point(point)
        got = {o.metric: o for o in obs if o.sample is None}
        # no model evaluations and no FLOPs to count in n-gram counting: neither is recorded
        assert got["bleu_max_abs_error"].n == 6 and "nfe" not in got and "flops" not in got
        seen[point.variant] = (got["bleu_max_abs_error"].value, got["sentence_bleu_mean"].value)
    assert set(seen) == {"nltk", "sacrebleu", "token_bleu"}
    assert seen["token_bleu"][0] <= TOL and seen["nltk"][0] == 0
    assert seen["sacrebleu"][0] <= TOL  # every sentence here has >= 30 tokens: effective order changes nothing
    assert 0.1 < seen["nltk"][1] < 0.5  # noisy copies overlap: BLEU is far from 0 and from 1


@pytest.mark.slow
def test_bleu_kernel_multirun_grid_from_the_experiment(tmp_path: Path) -> None:
    """``-m experiment=bleu_kernel`` sweeps the experiment's hydra.sweeper.params (here narrowed on the
    command line, which replaces the same keys) and writes one file per point."""
    run_cli("-m", "experiment=bleu_kernel", "task.batch_size=3", "task.length=12,20", f"results_dir={tmp_path}",
            "timing.max_time_s=0.1", "timing.min_time_s=0", "timing.min_repeats=2", "report=false")
    rows = load(tmp_path)
    assert rows.point_id.nunique() == 6 and set(rows.variant) == {"nltk", "sacrebleu", "token_bleu"}
    err = rows[(rows.metric == "bleu_max_abs_error") & (rows.variant == "token_bleu")]
    assert len(err) == 2 and (err.value <= TOL).all()
    assert sorted({json.loads(c)["task"]["length"] for c in rows.config}) == [12, 20]


@pytest.mark.parametrize("claim", ["tensorbleu_a100", "tensorbleu_t4"])
def test_tensorbleu_claims_point_at_real_points_and_metrics(claim: str) -> None:
    """The claim files name an experiment, overrides, variants and metrics that exist."""
    spec = yaml.safe_load((CONF_DIR / "claims" / f"{claim}.yaml").read_text())
    cfg = compose_cfg([f"experiment={spec['experiment']}", *spec["overrides"]])
    variants = {p.variant for p in plan(cfg)}
    assert {spec["baseline"], spec["method"]} <= variants and cfg.task.length == 1024
    assert all(c["metric"] in METRICS for c in spec["checks"]) and set(spec["comparable_on"]) == {"cuda"}


def test_both_sort_branches_sort_every_row() -> None:
    """CPU tensors sort in place through numpy; anything else (CUDA, or a non-contiguous view, which
    takes the same branch here without a GPU) through torch.sort. Both must equal numpy's sort."""
    from harness.metrics.bleu import _sort_rows

    g = torch.Generator().manual_seed(1)
    keys = torch.randint(0, 50, (3, 4, 30), generator=g)
    want = np.sort(keys.numpy(), axis=-1)
    view = keys.clone().transpose(0, 1)  # non-contiguous: the torch.sort branch
    assert not view.is_contiguous()
    torch_sorted = _sort_rows(view)
    assert torch_sorted.data_ptr() != view.data_ptr()  # a new tensor, so this was not the numpy branch
    assert np.array_equal(torch_sorted.transpose(0, 1).numpy(), want)
    inplace = keys.clone()
    assert _sort_rows(inplace).data_ptr() == inplace.data_ptr() and np.array_equal(inplace.numpy(), want)

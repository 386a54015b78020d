"""Quality measurements against independent computations, and the large paired gaps on the embedded model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import linalg

from harness.counters import count_flops
from harness.metrics.fid import FrechetDistance, InceptionFeatures, classifier_scores
from harness.plan import plan
from harness.runner import measure_point
from tasks.zoo import ZOO_DIR, resolve
from tasks.zoo.digits import DigitsClassifier, digits_tensor, heldout_split
from tests.helpers import SMOKE, compose_cfg


def _fid_scipy(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_matches_scipy_sqrtm() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 16, generator=g, dtype=torch.float64)
    fake = torch.randn(400, 16, generator=g, dtype=torch.float64) * 1.3 + 0.2
    ours = FrechetDistance(real)(fake)
    assert ours == pytest.approx(_fid_scipy(real.numpy(), fake.numpy()), rel=1e-6)
    assert FrechetDistance(real)(real) == pytest.approx(0.0, abs=1e-6)


def test_classifier_scores_reference_values() -> None:
    # a confident, uniform-label classifier: IS = 10, entropy = log 10, confidence = 1
    logits = torch.full((100, 10), -1e4)
    logits[torch.arange(100), torch.arange(100) % 10] = 0
    s = classifier_scores(logits)
    assert s["inception_score"] == pytest.approx(10.0, rel=1e-6)
    assert s["label_entropy"] == pytest.approx(np.log(10), rel=1e-6)
    assert s["mean_confidence"] == pytest.approx(1.0)
    collapsed = classifier_scores(torch.zeros(50, 10))
    assert collapsed["inception_score"] == pytest.approx(1.0) and collapsed["mean_confidence"] == pytest.approx(0.1)


def test_embedded_classifier_accuracy_matches_its_card() -> None:
    card = json.loads((ZOO_DIR / "digits_classifier" / "card.json").read_text())
    model = DigitsClassifier.from_pretrained(resolve("zoo:digits_classifier"))
    x, y = digits_tensor()
    _, test_idx = heldout_split(len(x))
    with torch.no_grad():
        acc = (model(x[test_idx]).argmax(1) == y[test_idx]).float().mean().item()
    assert acc == pytest.approx(card["heldout_accuracy"], abs=1e-4) and acc > 0.95


def test_flops_count_attention_under_math_backend() -> None:
    b, h, s, d = 2, 4, 64, 32
    q = k = v = torch.randn(b, h, s, d)
    flops = count_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    assert flops == 4 * b * h * s * s * d  # QK^T and PV, 2*B*H*S*S*D each
    lin = torch.nn.Linear(64, 32)
    assert count_flops(lambda: lin(torch.zeros(8, 64))) == 2 * 8 * 64 * 32


def test_inception_without_the_extra_says_what_to_install() -> None:
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        with pytest.raises(ModuleNotFoundError, match=r"pip install -e '\.\[inception\]'"):
            InceptionFeatures()
    else:
        pytest.skip("torch-fidelity is installed here: the error path cannot be reached")


@pytest.mark.slow
def test_paired_gaps_on_the_embedded_model() -> None:
    """Only the large paired gaps, never absolute FIDs: DDIM-5 is far worse than DPM++-20 and DDIM-20."""
    cfg = compose_cfg([SMOKE, "task.n_samples=1000", "task.eval_batch=500",
                       "points=[{name: ddim, steps: 5}, {name: ddim, steps: 20}, {name: dpm_solver, steps: 20}]"])
    fid = {}
    for point in plan(cfg):
        obs, _ = measure_point(point)
        fid[point.variant] = next(o.value for o in obs if o.metric == "fid")
    assert fid["ddim/steps=5"] > 3 * fid["dpm_solver/steps=20"], fid
    assert fid["ddim/steps=5"] > 3 * fid["ddim/steps=20"], fid


def test_peak_memory_increase_sees_tensor_memory() -> None:
    from harness.counters import peak_memory

    with peak_memory(torch.device("cpu")) as mem:
        buf = torch.ones(50_000_000)  # 200 MB, touched
        del buf
    assert mem["kind"] == "process_peak_rss" and mem["increase"] >= 150e6 and mem["bytes"] >= mem["increase"]

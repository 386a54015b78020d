"""Image metrics against independent computations: FID vs scipy sqrtm, KID vs a numpy MMD, the real-feature
cache, and the pluggable feature extractor."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from scipy import linalg

from harness.metrics import fid as fid_mod
from harness.metrics.fid import FrechetDistance, KernelDistance, load_extractor
from methods.diffusion.ddim import DDIM, DDIMConfig
from tasks.diffusion.image_generation import ImageGeneration, ImageGenerationConfig
from tasks.zoo import resolve
from tasks.zoo.digits import DigitsClassifier, digits_tensor

CALLS = {"n": 0}


def flat_features() -> torch.nn.Module:
    """A user feature extractor for ``task.features=python:tests.test_metrics:flat_features``: raw pixels."""
    class Flat(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            CALLS["n"] += 1
            return x.flatten(1)

    return Flat()


def _fid_scipy(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # the classifier's ReLU features have dead units (singular covariances); sqrtm then warns but is exact enough
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))


def _kid_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2, k(a, b) = (a.b / d + 1)^3 (Binkowski et al. 2018, eq. 3), written out."""
    d, m = x.shape[1], x.shape[0]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())


@pytest.fixture(scope="module")
def digit_features() -> tuple[torch.Tensor, torch.Tensor]:
    """Real digits and noisy digits through the embedded classifier's 128-d features."""
    clf = DigitsClassifier.from_pretrained(resolve("zoo:digits_classifier"))
    x, _ = digits_tensor()
    g = torch.Generator().manual_seed(0)
    noisy = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    with torch.no_grad():
        return clf.features(x).double(), clf.features(noisy[:900]).double()


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_fid_on_digit_features_matches_scipy(digit_features: tuple) -> None:
    real, fake = digit_features
    ours = FrechetDistance(real)(fake)
    ref = _fid_scipy(real.numpy(), fake.numpy())
    assert ours > 1 and abs(ours - ref) <= 1e-6 * ref, (ours, ref)


def test_kid_matches_numpy_mmd(digit_features: tuple) -> None:
    real, fake = digit_features
    real, fake = real[:500], fake[:500]
    # one subset holding every sample: the subset draw no longer matters, so this is the plain estimator
    mean, std = KernelDistance(real, subsets=1, subset_size=500)(fake, seed=0)
    assert mean == pytest.approx(_kid_numpy(real.numpy(), fake.numpy()), rel=1e-9) and std == 0
    # several subsets: seeded and reproducible, with a spread; real vs its own subsets scores far lower
    kd = KernelDistance(real, subsets=5, subset_size=200)
    fake_kid = kd(fake, seed=1)
    assert fake_kid == kd(fake, seed=1) and fake_kid[1] > 0
    assert abs(kd(real, seed=1)[0]) < fake_kid[0]


def test_kid_subset_sizes_are_validated() -> None:
    with pytest.raises(ValueError, match=r"task.kid_subset_size=64; valid: 2..task.n_samples \(32\)"):
        ImageGenerationConfig(n_samples=32, kid_subset_size=64)
    with pytest.raises(ValueError, match=r"valid: 2..10 \(the real samples\)"):
        KernelDistance(torch.randn(10, 4), subsets=2, subset_size=11)
    with pytest.raises(ValueError, match="exceeds the 5 generated samples"):
        KernelDistance(torch.randn(10, 4), subsets=2, subset_size=8)(torch.randn(5, 4), seed=0)


def test_user_extractor_and_real_feature_cache() -> None:
    """A python:MODULE:FACTORY extractor feeds FID and KID; a second workload with other settings but
    the same (dataset, extractor) reuses the real features instead of extracting them again."""
    model, cpu, spec = {"source": "zoo:digits_ddpm"}, torch.device("cpu"), "python:tests.test_metrics:flat_features"
    # load_extractor imports tests.test_metrics, which pytest may hold under another name: count there
    counter = importlib.import_module("tests.test_metrics").CALLS
    before = dict(fid_mod.CACHE_STATS)
    ImageGeneration(ImageGenerationConfig(n_samples=64, features=spec), model, cpu, torch.float32)
    calls = counter["n"]
    task = ImageGeneration(ImageGenerationConfig(n_samples=32, batch_size=8, eval_batch=32, fid_bootstrap=0,
                                                 kid_subsets=3, features=spec), model, cpu, torch.float32)
    assert counter["n"] == calls  # the second workload did not re-extract the real digits
    assert fid_mod.CACHE_STATS["misses"] - before["misses"] <= 1 and fid_mod.CACHE_STATS["hits"] > before["hits"]
    assert ("digits", f"{spec}@{cpu}") in fid_mod._REAL_FEATURES
    obs = {o.metric: o for o in task.prepare(DDIM(DDIMConfig(name="ddim", steps=3)), seed=0).evaluate()}
    assert counter["n"] == calls + 1  # once, for the generated samples
    assert obs["fid"].value > 0 and obs["kid"].n == 32 and obs["kid_std"].value > 0


def test_bad_feature_specs_say_what_to_write() -> None:
    with pytest.raises(ValueError, match="want python:MODULE:FACTORY"):
        load_extractor("python:only_module")
    with pytest.raises(ValueError, match="cannot import tests.test_metrics.nope"):
        load_extractor("python:tests.test_metrics:nope")
    with pytest.raises(ValueError, match="valid: digits_classifier, inception, or python:MODULE:FACTORY"):
        ImageGenerationConfig(features="clip")

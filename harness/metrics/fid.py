"""FID and KID through torchmetrics on precomputed features, with a bootstrap over generated samples.

Features are extracted once per image set; the distances are torchmetrics'
``FrechetInceptionDistance`` and ``KernelInceptionDistance`` fed with an identity feature module.
Real-data features are cached per (dataset, extractor) for the whole process (``real_features``),
so points that differ in anything else (method, sample count, batch size) never re-extract them,
and each metric keeps its real statistics across ``reset()`` (``reset_real_features=False``).

Feature extractors are pluggable (``load_extractor``): the embedded digits classifier, Inception-v3
(optional extra), or any user callable named ``python:MODULE:FACTORY``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Callable

import torch
from torch import nn

Extractor = Callable[[torch.Tensor], torch.Tensor]

_REAL_FEATURES: dict[tuple[str, str], torch.Tensor] = {}
CACHE_STATS = {"hits": 0, "misses": 0}


def real_features(dataset: str, extractor: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Features of the real images of ``dataset`` under ``extractor`` (an id string), computed once
    per process by ``compute()`` and kept on the CPU. ``CACHE_STATS`` counts hits and misses."""
    key = (dataset, extractor)
    if key in _REAL_FEATURES:
        CACHE_STATS["hits"] += 1
    else:
        CACHE_STATS["misses"] += 1
        _REAL_FEATURES[key] = compute().detach().cpu()
    return _REAL_FEATURES[key]


def load_extractor(spec: str) -> Extractor:
    """A user feature extractor from ``python:MODULE:FACTORY``: ``FACTORY()`` returns a callable
    (usually an ``nn.Module``) mapping images (N, C, H, W) in [-1, 1] to features (N, D)."""
    _, module, attr = spec.split(":") if spec.count(":") == 2 else ("", "", "")
    extractor = extractor_factory(spec)()
    if not callable(extractor):
        raise TypeError(f"feature extractor {spec!r}: {module}.{attr}() returned {type(extractor).__name__}, "
                        "want a callable images -> (N, D) features")
    return extractor


def extractor_factory(spec: str) -> Callable[[], Extractor]:
    """The factory ``python:MODULE:FACTORY`` names, imported but not called (a check before a sweep runs)."""
    if not spec.startswith("python:") or spec.count(":") != 2 or not all(spec.split(":")[1:]):
        raise ValueError(f"feature extractor {spec!r}: want python:MODULE:FACTORY, e.g. python:mypkg.feats:build")
    _, module, attr = spec.split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"feature extractor {spec!r}: cannot import {module}.{attr} ({type(exc).__name__}: {exc}); "
                         "expected python:MODULE:FACTORY with MODULE importable here, or digits_classifier, inception"
                         ) from None


class _Identity(nn.Module):
    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features  # read by torchmetrics instead of a dummy forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class FrechetDistance:
    """FID between a fixed real feature set and generated features."""

    def __init__(self, real_features: torch.Tensor):
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.num_features = real_features.shape[1]
        self.n_real = real_features.shape[0]
        self._fid = FrechetInceptionDistance(feature=_Identity(self.num_features), reset_real_features=False)
        self._fid.update(real_features.double(), real=True)

    def __call__(self, fake_features: torch.Tensor) -> float:
        self._fid.reset()
        self._fid.update(fake_features.double(), real=False)
        return float(self._fid.compute())

    def bootstrap(self, fake_features: torch.Tensor, n_resamples: int, seed: int) -> list[float]:
        """FID of ``n_resamples`` resamples (with replacement) of the generated samples."""
        gen = torch.Generator().manual_seed(seed)
        n = fake_features.shape[0]
        return [self(fake_features[torch.randint(0, n, (n,), generator=gen)]) for _ in range(n_resamples)]


class KernelDistance:
    """KID (Binkowski et al. 2018, eq. 3): unbiased MMD^2 with the cubic polynomial kernel
    k(x, y) = (x.y / d + 1)^3, averaged over ``subsets`` random subsets of ``subset_size`` real and
    generated samples each. Returns (mean, std over subsets); the std is the subsets' spread
    (torchmetrics: population std), not a confidence interval."""

    def __init__(self, real_features: torch.Tensor, subsets: int, subset_size: int):
        from torchmetrics.image.kid import KernelInceptionDistance

        if not 2 <= subset_size <= real_features.shape[0]:
            raise ValueError(f"KID subset_size={subset_size}; valid: 2..{real_features.shape[0]} (the real samples)")
        self.subset_size = subset_size
        with warnings.catch_warnings():  # "will save all extracted features": that is the point here
            warnings.simplefilter("ignore", UserWarning)
            self._kid = KernelInceptionDistance(feature=_Identity(real_features.shape[1]), subsets=subsets,
                                                subset_size=subset_size, reset_real_features=False)
        self._kid.update(real_features.double(), real=True)

    def __call__(self, fake_features: torch.Tensor, seed: int) -> tuple[float, float]:
        if fake_features.shape[0] < self.subset_size:
            raise ValueError(f"KID subset_size={self.subset_size} exceeds the {fake_features.shape[0]} generated "
                             "samples; lower task.kid_subset_size or raise task.n_samples")
        self._kid.reset()
        self._kid.update(fake_features.double(), real=False)
        with torch.random.fork_rng(devices=[]):  # the subsets come from the global RNG: seed them here
            torch.manual_seed(seed)
            mean, std = self._kid.compute()
        return float(mean), float(std)


def classifier_scores(logits: torch.Tensor) -> dict[str, float]:
    """IS-like scores from a classifier's logits on generated samples.

    inception_score = exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016, eq. in sec. 4) with the
    task's own classifier; label_entropy = H(p(y)) (log 10 = 2.303 for uniform digits).
    """
    p = logits.double().softmax(dim=1)
    marginal = p.mean(dim=0)
    kl = (p * (p.clamp_min(1e-12).log() - marginal.clamp_min(1e-12).log())).sum(dim=1)
    return {
        "inception_score": float(kl.mean().exp()),
        "mean_confidence": float(p.max(dim=1).values.mean()),
        "label_entropy": float(-(marginal * marginal.clamp_min(1e-12).log()).sum()),
    }


class InceptionFeatures(nn.Module):
    """Inception-v3 pool features as torchmetrics computes them; needs the optional extra.

    Images in [-1, 1] with 1 or 3 channels; converted to uint8 RGB, resized inside the network.
    """

    def __init__(self, weights_path: str | None = None, feature: int = 2048):
        super().__init__()
        try:
            import torch_fidelity  # noqa: F401  (lazy: never imported unless asked for)
            from torchmetrics.image.fid import NoTrainInceptionV3
        except ImportError as exc:
            raise ModuleNotFoundError(
                "Inception FID needs torch-fidelity and its weights: pip install -e '.[inception]' "
                "(GPU environments only: torchvision breaks this project's CPU torch), and with it "
                "task.inception_weights=/path/to/pt_inception-2015-12-05.pth offline. Without it, use "
                "task.features=digits_classifier (the embedded classifier features)."
            ) from exc
        self.num_features = feature
        self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=[str(feature)],
                                      feature_extractor_weights_path=weights_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)).reshape(x.shape[0], -1)

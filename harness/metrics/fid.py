"""FID through torchmetrics on precomputed features, with a bootstrap over generated samples.

Features are extracted once per image set; the Frechet distance is torchmetrics'
``FrechetInceptionDistance`` fed with an identity feature module, so the real statistics are
computed once per (dataset, extractor) and kept across ``reset()`` (``reset_real_features=False``).
"""

from __future__ import annotations

import torch
from torch import nn


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
                "(GPU environments only: torchvision breaks this project's CPU torch), or pass "
                "metric.weights_path=/path/to/pt_inception-2015-12-05.pth. Offline, use "
                "metric=fid_digits (the embedded classifier features)."
            ) from exc
        self.num_features = feature
        self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=[str(feature)],
                                      feature_extractor_weights_path=weights_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)).reshape(x.shape[0], -1)

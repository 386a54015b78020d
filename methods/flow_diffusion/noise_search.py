"""Noise search: best of N short samples by a verifier (Ma et al. 2025, "Inference-Time Scaling for
Diffusion Models beyond Scaling Denoising Steps", arXiv 2501.09732, Sec. 3: random search).

For each item, ``candidates`` starting noises are each integrated with ``steps`` flow Euler steps;
the verifier (the task's digits classifier) scores each result by its probability of the
conditioning label, and the best candidate is kept. Cost: candidates x steps evaluations per
item, plus the verifier's calls (in FLOPs and latency). Candidate 0 is the task's paired noise;
the others come from a generator seeded by ``search_seed`` and the batch's own noise, so a run is
deterministic and every seed searches different noises. The task's judge_accuracy uses a second,
independently trained classifier, so a search that games its verifier is not rewarded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from harness.registry import register_method
from tasks.flow_diffusion.protocol import FlowModel, FlowSampler, Sampler, StepsConfig


@dataclass
class NoiseSearchConfig(StepsConfig):
    steps: int = 4
    candidates: int = 5
    search_seed: int = 0
    LABEL_ALWAYS = ("steps", "candidates")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.candidates < 1:
            raise ValueError(f"method.candidates must be >= 1, got {self.candidates}")


def _euler(tf: torch.nn.Module, sigmas: torch.Tensor, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        x = x + (s_next - s) * FlowModel.velocity(tf, x, s, labels)
    return x


@register_method("noise_search", NoiseSearchConfig)
class NoiseSearch(FlowSampler):
    def build(self, model: FlowModel) -> Sampler:
        sigmas = model.sigmas(self.cfg.steps)
        tf = model.transformer

        def run(noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            digest = hashlib.sha256(noise.detach().cpu().numpy().tobytes()).digest()
            gen = torch.Generator().manual_seed(self.cfg.search_seed * 1_000_003 + int.from_bytes(digest[:6], "big"))
            best, best_score = None, None
            for k in range(self.cfg.candidates):  # one candidate at a time: nfe counts every call
                z = noise if k == 0 else torch.randn(noise.shape, generator=gen).to(noise.device, noise.dtype)
                x = _euler(tf, sigmas, z, labels)
                probs = model.verifier(x.float().clamp(-1, 1)).softmax(-1)
                score = probs.gather(1, labels.view(-1, 1)).squeeze(1)
                if best is None:
                    best, best_score = x, score
                else:
                    better = score > best_score
                    best = torch.where(better.view(-1, 1, 1, 1), x, best)
                    best_score = torch.where(better, score, best_score)
            return best

        return Sampler(tf, run)

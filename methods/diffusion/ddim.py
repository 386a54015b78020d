"""DDIM (Song, Meng, Ermon 2021, arXiv 2010.02502): deterministic (eta = 0) non-Markovian sampler.

DDIM at 50 steps is the usual paper baseline for fast samplers. Each step (eq. 12) predicts x0
from the noise estimate and moves to the previous time step along the same noise direction.
``clip_sample=False``: clipping the x0 prediction misbehaves on the embedded models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusers import DDIMScheduler, SchedulerMixin

from harness.registry import register_method
from tasks.diffusion.sampler import SamplerConfig, SamplerMethod


@dataclass
class DDIMConfig(SamplerConfig):
    steps: int = 50


@register_method("ddim", DDIMConfig)
class DDIM(SamplerMethod):
    def scheduler(self, base_config: dict[str, Any]) -> SchedulerMixin:
        return DDIMScheduler.from_config(base_config, clip_sample=False, **self.cfg.overrides())

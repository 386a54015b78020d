"""DDPM ancestral sampling (Ho, Jain, Abbeel 2020, arXiv 2006.11239, Algorithm 2).

The slow reference every fast sampler is measured against: one stochastic step per training
time step (1000 by default), each adding fresh Gaussian noise (sigma_t^2 = beta_t). The per-step
noise comes from the task's seeded generator, so reruns are identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusers import DDPMScheduler, SchedulerMixin

from harness.registry import register_method
from tasks.diffusion.sampler import SamplerConfig, SamplerMethod


@dataclass
class DDPMConfig(SamplerConfig):
    steps: int = 1000


@register_method("ddpm", DDPMConfig)
class DDPM(SamplerMethod):
    def scheduler(self, base_config: dict[str, Any]) -> SchedulerMixin:
        return DDPMScheduler.from_config(base_config, **self.cfg.overrides())

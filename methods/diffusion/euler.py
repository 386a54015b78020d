"""Euler sampler on the probability-flow ODE in sigma (Karras et al. 2022, arXiv 2206.00364, Alg. 1
with churn 0): x <- x + (sigma_next - sigma) * eps, one NFE per step, first order.
"""

from __future__ import annotations

from typing import Any

from diffusers import EulerDiscreteScheduler, SchedulerMixin

from harness.registry import register_method
from tasks.diffusion.sampler import SamplerConfig, SamplerMethod


@register_method("euler", SamplerConfig)
class Euler(SamplerMethod):
    def scheduler(self, base_config: dict[str, Any]) -> SchedulerMixin:
        return EulerDiscreteScheduler.from_config(base_config, **self.cfg.overrides())

"""DEIS multistep (Zhang & Chen 2022, arXiv 2204.13902) as implemented by diffusers.

Caution: diffusers' ``DEISMultistepScheduler`` is the closed-form log-rho variant (the
polynomial extrapolation of the noise prediction in log rho), NOT the paper's tAB-DEIS (Adams-
Bashforth in t with numerically integrated coefficients, Table 1's best rows), and it uses the
model's time steps rather than the paper's quadratic ones. Results here are for that variant.
Order is swept because order 3 at 20 steps got worse than order 2 in a toy test.
"""

from __future__ import annotations

from typing import Any

from diffusers import DEISMultistepScheduler, SchedulerMixin

from harness.registry import register_method
from tasks.diffusion.sampler import MultistepConfig, SamplerMethod


@register_method("deis", MultistepConfig)
class DEIS(SamplerMethod):
    def scheduler(self, base_config: dict[str, Any]) -> SchedulerMixin:
        return DEISMultistepScheduler.from_config(base_config, solver_order=self.cfg.order, **self.cfg.overrides())

"""UniPC (Zhao et al. 2023, arXiv 2302.04867): unified predictor-corrector multistep sampler.

UniP predicts with a multistep exponential-integrator update; UniC corrects it using the model
output at the new point, which is reused by the next step, so the corrector costs no extra NFE
(sec. 3.2). diffusers' default B(h) = e^h - 1 ("bh2") variant, data prediction.
"""

from __future__ import annotations

from typing import Any

from diffusers import SchedulerMixin, UniPCMultistepScheduler

from harness.registry import register_method
from tasks.diffusion.sampler import MultistepConfig, SamplerMethod


@register_method("unipc", MultistepConfig)
class UniPC(SamplerMethod):
    def scheduler(self, base_config: dict[str, Any]) -> SchedulerMixin:
        return UniPCMultistepScheduler.from_config(base_config, solver_order=self.cfg.order, **self.cfg.overrides())

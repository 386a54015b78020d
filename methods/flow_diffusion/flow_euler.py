"""Flow Euler: x <- x + (sigma_next - sigma) v(x, sigma), one transformer call per step (first order).

diffusers' ``FlowMatchEulerDiscreteScheduler`` (rectified flow, Liu et al. 2022, arXiv 2209.03003;
the sampler of SD3, Esser et al. 2024, arXiv 2403.03206) on the model's own scheduler config: the
step-count front every cache must beat.
"""

from __future__ import annotations

from harness.registry import register_method
from tasks.flow_diffusion.protocol import FlowModel, FlowSampler, Sampler, StepsConfig, scheduler_loop


@register_method("flow_euler", StepsConfig)
class FlowEuler(FlowSampler):
    def build(self, model: FlowModel) -> Sampler:
        scheduler = model.scheduler()
        steps, tf = self.cfg.steps, model.transformer
        return Sampler(tf, lambda noise, labels: scheduler_loop(tf, scheduler, steps, noise, labels))

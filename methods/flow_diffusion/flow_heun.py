"""Flow Heun (Karras et al. 2022, arXiv 2206.00364, Alg. 1 without churn) on the flow ODE.

diffusers' ``FlowMatchHeunDiscreteScheduler``: each step is an Euler predictor and a trapezoidal
corrector (2 transformer calls), except the last step to sigma = 0, which is a plain Euler step,
so ``steps`` steps cost 2 steps - 1 calls.
"""

from __future__ import annotations

from diffusers import FlowMatchHeunDiscreteScheduler

from harness.registry import register_method
from tasks.flow_diffusion.protocol import FlowModel, FlowSampler, Sampler, StepsConfig, scheduler_loop


@register_method("flow_heun", StepsConfig)
class FlowHeun(FlowSampler):
    def build(self, model: FlowModel) -> Sampler:
        scheduler = FlowMatchHeunDiscreteScheduler.from_config(model.scheduler_config)
        steps, tf = self.cfg.steps, model.transformer
        return Sampler(tf, lambda noise, labels: scheduler_loop(tf, scheduler, steps, noise, labels))

"""DPM-Solver++ multistep (Lu et al. 2022, arXiv 2211.01095), orders 1-3.

Solves the diffusion ODE in the data-prediction (x0) parameterisation with exponential
integrators in log-SNR lambda; the multistep variant (Algorithm 2 / eq. 9-10) reuses previous
model outputs, so order k costs 1 NFE per step. Order 1 equals DDIM. Order 2 is the paper's
recommended setting for unconditional sampling; order 3 is swept because it can misbehave at
20 steps on small models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusers import DPMSolverMultistepScheduler, SchedulerMixin

from harness.registry import register_method
from tasks.diffusion.sampler import MultistepConfig, SamplerMethod


@dataclass
class DPMSolverConfig(MultistepConfig):
    steps: int = 20


@register_method("dpm_solver", DPMSolverConfig)
class DPMSolver(SamplerMethod):
    def scheduler(self, base_config: dict[str, Any]) -> SchedulerMixin:
        return DPMSolverMultistepScheduler.from_config(
            base_config, algorithm_type="dpmsolver++", solver_order=self.cfg.order, **self.cfg.overrides()
        )

"""FlowTurbo's pseudo corrector (Zhao et al. 2024, "FlowTurbo: Towards Real-time Flow-Based Image
Generation with Velocity Refiner", NeurIPS 2024, arXiv 2409.18128, Sec. 3.2), without the learned
velocity refiner (optional in the paper; not trained here).

On the flow sigma grid of ``heun_steps + pseudo_steps`` steps, with step size h_i = sigma_{i+1} - sigma_i:
- Heun step (2 evaluations):  v_i = v(x_i, s_i);  x' = x_i + h_i v_i;  v' = v(x', s_{i+1});
                             x_{i+1} = x_i + h_i (v_i + v') / 2.
- Pseudo-corrector step (1 evaluation): as Heun, but v_i is not evaluated: it reuses v' of the
  previous step, the velocity at the previous predictor point x' at the same time s_i (the paper's
  observation that the velocity changes little between x' and x_{i+1} on near-straight flows).
Cost: 2 heun_steps + pseudo_steps evaluations, against 2 (steps) - 1 for diffusers' Heun.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.plugin import PluginConfig
from harness.registry import register_method
from tasks.flow_diffusion.protocol import FlowModel, FlowSampler, Sampler


@dataclass
class FlowTurboConfig(PluginConfig):
    heun_steps: int = 1
    pseudo_steps: int = 4
    LABEL_ALWAYS = ("heun_steps", "pseudo_steps")

    def __post_init__(self) -> None:
        if self.heun_steps < 1:
            raise ValueError(f"method.heun_steps must be >= 1 (the first pseudo step needs a v' to reuse), "
                             f"got {self.heun_steps}")
        if self.pseudo_steps < 0:
            raise ValueError(f"method.pseudo_steps must be >= 0, got {self.pseudo_steps}")


@register_method("flowturbo", FlowTurboConfig)
class FlowTurbo(FlowSampler):
    def build(self, model: FlowModel) -> Sampler:
        steps = self.cfg.heun_steps + self.cfg.pseudo_steps
        sigmas = model.sigmas(steps)
        tf = model.transformer

        def run(noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            x, v_prev = noise, None
            for i in range(steps):
                s, s_next = sigmas[i], sigmas[i + 1]
                h = s_next - s
                # Heun step: evaluate v_i; pseudo-corrector step: reuse v' from the previous predictor.
                v = FlowModel.velocity(tf, x, s, labels) if i < self.cfg.heun_steps else v_prev
                x_pred = x + h * v
                v_pred = FlowModel.velocity(tf, x_pred, s_next, labels)
                x = x + h * (v + v_pred) / 2
                v_prev = v_pred
            return x

        return Sampler(tf, run)

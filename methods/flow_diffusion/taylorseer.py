"""TaylorSeer (Liu et al. 2025, arXiv 2503.06923; diffusers ``TaylorSeerCacheConfig``) on flow Euler.

Every ``interval`` steps (after ``warmup`` full steps) each transformer block runs; in between, each
block's output is predicted by a Taylor expansion in the step index from its last full outputs
(finite differences, order ``order``). ``order=0`` is naive reuse of the last output, as in FORA
(Selvaraju et al. 2024, arXiv 2407.01425).

Trap: diffusers' default module patterns are matched with ``re.fullmatch`` and hook nothing on a
DiT's blocks, so the blocks are named here (``transformer_blocks.N``); the task fails the point if
no block evaluation was skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.hooks import TaylorSeerCacheConfig

from harness.registry import register_method
from tasks.flow_diffusion.protocol import FlowModel, FlowSampler, Sampler, StepsConfig, cached_euler


@dataclass
class TaylorSeerConfig(StepsConfig):
    order: int = 1  # 0: naive reuse (FORA)
    interval: int = 2  # full evaluation every `interval` steps once caching starts
    warmup: int = 3  # full steps before caching starts (order + 1 needed for the differences)
    LABEL_ALWAYS = ("steps", "order", "interval")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.order not in (0, 1, 2):
            raise ValueError(f"method.order must be 0, 1 or 2, got {self.order}")
        if self.interval < 1:
            raise ValueError(f"method.interval must be >= 1, got {self.interval}")
        if self.warmup < self.order + 1:
            raise ValueError(f"method.warmup={self.warmup} must be >= order + 1 = {self.order + 1} "
                             "(finite differences)")


@register_method("taylorseer", TaylorSeerConfig)
class TaylorSeer(FlowSampler):
    skips_compute = True

    def build(self, model: FlowModel) -> Sampler:
        return cached_euler(model, self.cfg.steps, lambda _now: TaylorSeerCacheConfig(
            cache_interval=self.cfg.interval, disable_cache_before_step=self.cfg.warmup, max_order=self.cfg.order,
            taylor_factors_dtype=torch.float32, cache_identifiers=[r"transformer_blocks\.\d+"]))

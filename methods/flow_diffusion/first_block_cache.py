"""First Block Cache (ParaAttention; diffusers ``FirstBlockCacheConfig``) on flow Euler.

Each call runs the first transformer block; if the relative mean absolute change of its residual
since the last full call is below ``threshold``, the remaining blocks are skipped and their cached
residual is added instead (diffusers ``hooks/first_block_cache.py``). The first block always runs,
so the saving is at most (blocks - 1) / blocks per skipped call.
"""

from __future__ import annotations

from dataclasses import dataclass

from diffusers.hooks import FirstBlockCacheConfig

from harness.registry import register_method
from tasks.flow_diffusion.protocol import FlowModel, FlowSampler, Sampler, StepsConfig, cached_euler


@dataclass
class FBCacheConfig(StepsConfig):
    threshold: float = 0.1
    LABEL_ALWAYS = ("steps", "threshold")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.threshold <= 0:
            raise ValueError(f"method.threshold must be > 0, got {self.threshold}")


@register_method("first_block_cache", FBCacheConfig)
class FirstBlockCache(FlowSampler):
    skips_compute = True

    def build(self, model: FlowModel) -> Sampler:
        return cached_euler(model, self.cfg.steps, lambda _now: FirstBlockCacheConfig(threshold=self.cfg.threshold))

"""Pyramid Attention Broadcast (Zhao et al. 2024, arXiv 2408.12588; diffusers
``PyramidAttentionBroadcastConfig``) on flow Euler.

Inside the timestep window ``(t_low, t_high)`` (model timesteps, 0-1000) each block's self-attention
output is computed once every ``skip`` calls and broadcast (reused) in between; the feed-forward
always runs, so a skipped attention saves half a block in ``effective_nfe`` (less in FLOPs: at 16
tokens attention is the cheaper half).
"""

from __future__ import annotations

from dataclasses import dataclass

from diffusers.hooks import PyramidAttentionBroadcastConfig

from harness.registry import register_method
from tasks.flow_diffusion.protocol import FlowModel, FlowSampler, Sampler, StepsConfig, cached_euler


@dataclass
class PABConfig(StepsConfig):
    skip: int = 2
    t_low: int = 100
    t_high: int = 800
    LABEL_ALWAYS = ("steps", "skip")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.skip < 2:
            raise ValueError(f"method.skip must be >= 2 (1 reuses nothing), got {self.skip}")
        if not 0 <= self.t_low < self.t_high <= 1000:
            raise ValueError(f"method.t_low={self.t_low}, t_high={self.t_high}: need 0 <= t_low < t_high <= 1000")


@register_method("pab", PABConfig)
class PyramidAttentionBroadcast(FlowSampler):
    skips_compute = True

    def build(self, model: FlowModel) -> Sampler:
        return cached_euler(model, self.cfg.steps, lambda now: PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=self.cfg.skip,
            spatial_attention_timestep_skip_range=(self.cfg.t_low, self.cfg.t_high),
            current_timestep_callback=now))

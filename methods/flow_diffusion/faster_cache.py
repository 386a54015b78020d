"""FasterCache (Lv et al. 2024, arXiv 2410.19355; diffusers ``FasterCacheConfig``) on flow Euler, unguided.

FasterCache has two parts: reuse of attention outputs across steps with a weighted correction
(the spatial part used here: inside ``(t_low, t_high)``, attention is recomputed every ``skip``
calls), and CFG-Cache, which skips the unconditional branch of classifier-free guidance. Sampling
here is unguided class-conditional (guidance collapses diversity on digits), so there is no
unconditional branch to skip: ``is_guidance_distilled=True`` turns that part off. Traps: the
library defaults to 5-D video tensors (``tensor_format``: "BCHW" here) and its cond/uncond split
ignores ``class_labels`` unless configured (irrelevant without guidance).
"""

from __future__ import annotations

from dataclasses import dataclass

from diffusers.hooks import FasterCacheConfig

from harness.registry import register_method
from tasks.flow_diffusion.protocol import FlowModel, FlowSampler, Sampler, StepsConfig, cached_euler


@dataclass
class FasterCacheMethodConfig(StepsConfig):
    skip: int = 2
    t_low: int = -1
    t_high: int = 681  # the library's default window (late, low-noise steps)
    LABEL_ALWAYS = ("steps", "skip")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.skip < 2:
            raise ValueError(f"method.skip must be >= 2 (1 reuses nothing), got {self.skip}")
        if not -1 <= self.t_low < self.t_high <= 1001:
            raise ValueError(f"method.t_low={self.t_low}, t_high={self.t_high}: need -1 <= t_low < t_high <= 1001")


@register_method("faster_cache", FasterCacheMethodConfig)
class FasterCache(FlowSampler):
    skips_compute = True

    def build(self, model: FlowModel) -> Sampler:
        return cached_euler(model, self.cfg.steps, lambda now: FasterCacheConfig(
            spatial_attention_block_skip_range=self.cfg.skip,
            spatial_attention_timestep_skip_range=(self.cfg.t_low, self.cfg.t_high),
            tensor_format="BCHW", is_guidance_distilled=True, current_timestep_callback=now))

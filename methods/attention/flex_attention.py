"""FlexAttention (``torch.nn.attention.flex_attention``) with a block mask: dense, or block-sparse.

The kernel visits only the (query block, key block) tiles the block mask marks as non-empty and
applies the exact pattern inside partial tiles, so its cost follows the block density, not the
token density. Patterns (``pattern``; ``density`` = the fraction of keys each query attends to):
- ``full``: the task's problem (all pairs, or the causal triangle);
- ``local``: a sliding window of round(density * S) keys centred on the query (causal: the window
  ending at the query), the sparse pattern of Re-ttention's 3.1%-of-tokens claim (its exact mask
  is not verified here);
- ``block_local``: the same budget in whole blocks, round(density * S / block_size) key blocks around
  the query's block, so token and block density agree.
The block mask is built in ``prepare`` (untimed). The call is compiled (``torch.compile``,
``fullgraph=True`` so a graph break fails instead of silently running eagerly, ``dynamic=False``);
compiling happens in the first call, which the timer keeps apart as ``latency_cold``: for this
method it is the compile cost (first compile ~47 s on this CPU without inductor's on-disk cache,
seconds with it). ``compile=false`` runs eagerly (8-36x slower than dense SDPA on CPU), as a check.
Dynamo's caches are reset per point so every point compiles its own shapes and never hits the
recompile limit (past it, torch would quietly fall back to eager).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from harness.registry import register_method
from tasks.attention.protocol import AttentionInputs, AttentionMethod, AttentionMethodConfig, Kernel, MaskFn

PATTERNS = ("full", "local", "block_local")


@dataclass
class FlexConfig(AttentionMethodConfig):
    LABEL_ALWAYS = ("pattern",)
    pattern: str = "full"
    density: float = 1.0  # fraction of keys per query for the local patterns
    block_size: int = 128  # FlexAttention's default tile
    compile: bool = True

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"method.pattern={self.pattern!r}; valid: {', '.join(PATTERNS)}")
        if self.pattern == "full" and self.density != 1.0:
            raise ValueError(f"method.density={self.density} applies to the local patterns only; pattern full "
                             "attends to every key (density 1)")
        if self.pattern != "full" and not 0 < self.density < 1:
            raise ValueError(f"method.density must be in (0, 1) for pattern {self.pattern}, got {self.density}")
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            raise ValueError(f"method.block_size must be a power of two >= 16, got {self.block_size}")


def make_pattern(cfg: FlexConfig, seqlen: int, causal: bool) -> MaskFn | None:
    """The (query, key) -> attend? function of the pattern, the task's causal mask included; None = full."""
    if cfg.pattern == "full":
        return (lambda qi, ki: qi >= ki) if causal else None
    if cfg.pattern == "local":
        width = max(1, round(cfg.density * seqlen))  # keys per query
        if causal:
            return lambda qi, ki: (qi >= ki) & (qi - ki < width)
        half = (width - 1) // 2
        return lambda qi, ki: (qi - ki).abs() <= half
    bs = cfg.block_size
    width = max(1, round(cfg.density * seqlen / bs))  # key blocks per query block
    if causal:
        return lambda qi, ki: (qi >= ki) & (qi // bs - ki // bs < width)
    half = (width - 1) // 2
    return lambda qi, ki: (qi // bs - ki // bs).abs() <= half


@register_method("flex_attention", FlexConfig)
class FlexAttention(AttentionMethod):
    def prepare(self, inputs: AttentionInputs) -> Kernel:
        q, k, v, s = inputs.q, inputs.k, inputs.v, inputs.seqlen
        if s % self.cfg.block_size:
            raise ValueError(f"flex_attention: task.seqlen={s} must be a multiple of method.block_size="
                             f"{self.cfg.block_size}")
        pattern = make_pattern(self.cfg, s, inputs.causal)
        if pattern is None:
            block_mask, density = None, 1.0
        else:
            block_mask = create_block_mask(lambda b, h, qi, ki: pattern(qi, ki), None, None, s, s, device=q.device,
                                           BLOCK_SIZE=self.cfg.block_size)
            density = 1.0 - block_mask.sparsity() / 100.0
        if self.cfg.compile:
            torch.compiler.reset()
            fn = torch.compile(flex_attention, fullgraph=True, dynamic=False)
        else:
            fn = flex_attention
        scale = inputs.scale
        # The pattern goes to the task's reference only where it departs from the task's problem.
        return Kernel(lambda: fn(q, k, v, block_mask=block_mask, scale=scale),
                      pattern=pattern if self.cfg.pattern != "full" else None, block_density=density)

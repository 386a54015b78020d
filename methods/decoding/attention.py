"""Attention implementation: transformers' eager attention, or SDPA pinned to one backend.

``eager`` materialises the (query x key) score matrix, softmax, then multiplies by V: the
baseline of FlashAttention (Dao et al. 2022, arXiv 2205.14135, Algorithm 0). ``sdpa`` calls
torch.nn.functional.scaled_dot_product_attention; ``sdpa_backend`` pins its kernel through
``torch.nn.attention.sdpa_kernel``: ``math`` (the composite reference), ``flash`` (tiled online
softmax, FlashAttention-2, arXiv 2307.08691), ``efficient`` (memory-efficient, Rabe & Staats
2021) and ``cudnn``. On CPU only math and flash exist: the others fail with that message rather
than silently falling back. null leaves the choice to torch. All compute the same function; the
outputs may differ by rounding, so exact match is reported, not enforced.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ContextManager

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from harness.plugin import PluginConfig
from harness.registry import register_method
from tasks.decoding.protocol import DecodingMethod, load_causal_lm

if TYPE_CHECKING:
    from tasks.decoding.text_generation import TextGeneration

IMPLEMENTATIONS = ("sdpa", "eager")
BACKENDS = {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}
CPU_BACKENDS = ("math", "flash")


@dataclass
class AttentionConfig(PluginConfig):
    implementation: str = "sdpa"
    sdpa_backend: str | None = None  # math | flash | efficient | cudnn; null: torch decides

    def __post_init__(self) -> None:
        if self.implementation not in IMPLEMENTATIONS:
            raise ValueError(f"method.implementation={self.implementation!r}; valid: {', '.join(IMPLEMENTATIONS)}")
        if self.sdpa_backend is not None and self.sdpa_backend not in BACKENDS:
            raise ValueError(f"method.sdpa_backend={self.sdpa_backend!r}; valid: {', '.join(BACKENDS)} or null")
        if self.implementation == "eager" and self.sdpa_backend is not None:
            raise ValueError(f"method.sdpa_backend={self.sdpa_backend!r} needs method.implementation=sdpa; eager "
                             "attention does not call SDPA")


@register_method("attention", AttentionConfig)
class Attention(DecodingMethod):
    def model(self, task: TextGeneration) -> torch.nn.Module:
        backend = self.cfg.sdpa_backend
        if backend is not None and task.device.type == "cpu" and backend not in CPU_BACKENDS:
            raise ValueError(f"method.sdpa_backend={backend!r} has no CPU kernel; on cpu the SDPA backends are "
                             f"{', '.join(CPU_BACKENDS)}")
        impl = self.cfg.implementation
        # Reload rather than switch the shared model in place: other points keep their attention.
        return task.variant(f"attn_{impl}", lambda: load_causal_lm(task.source, task.device, task.dtype,
                                                                   attn_implementation=impl))

    def context(self, task: TextGeneration) -> ContextManager[Any]:
        backend = self.cfg.sdpa_backend
        return sdpa_kernel(BACKENDS[backend]) if backend is not None else nullcontext()

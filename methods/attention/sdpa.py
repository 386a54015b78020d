"""``torch.nn.functional.scaled_dot_product_attention`` pinned to one backend (``torch.nn.attention.sdpa_kernel``).

Backends: ``math`` (the decomposed reference, materialises the scores), ``flash`` (FlashAttention-2,
Dao 2023, arXiv 2307.08691: tiled online softmax, the scores never leave on-chip memory; on CPU
torch's own tiled kernel), ``efficient`` (xformers' memory-efficient attention, Rabe & Staats 2021),
``cudnn`` (cuDNN's fused attention). Which exist depends on the device, dtype and shape: on CPU
only math and flash; on CUDA flash and cudnn need fp16/bf16. A backend the device lacks fails the
point in ``prepare`` with torch's own reasons, never falling back to another backend.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from harness.registry import register_method
from tasks.attention.protocol import AttentionInputs, AttentionMethod, AttentionMethodConfig, Kernel

BACKENDS = {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}


@dataclass
class SdpaConfig(AttentionMethodConfig):
    LABEL_ALWAYS = ("backend",)
    backend: str = "flash"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"method.backend={self.backend!r}; valid: {', '.join(BACKENDS)}")


@register_method("sdpa", SdpaConfig)
class Sdpa(AttentionMethod):
    def prepare(self, inputs: AttentionInputs) -> Kernel:
        backend = BACKENDS[self.cfg.backend]
        q, k, v, causal = inputs.q, inputs.k, inputs.v, inputs.causal

        def call() -> torch.Tensor:
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        # One untimed call here, so that a backend the device lacks fails the point with torch's reasons
        # (torch raises "No available kernel" and gives the reasons as warnings).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                call()
            except RuntimeError as exc:
                why = "; ".join(str(w.message).strip() for w in caught) or \
                    "no reasons (CPU builds have math and flash only; on CUDA flash and cudnn need fp16/bf16)"
                raise RuntimeError(
                    f"sdpa backend {self.cfg.backend!r} is not available for {q.dtype} head_dim {q.shape[-1]} on "
                    f"{q.device} ({exc}); torch says: {why}") from None
        return Kernel(call)

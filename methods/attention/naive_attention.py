"""Attention that materialises the scores: the baseline of the FlashAttention papers.

As ``attention_pytorch`` in the FlashAttention repository's benchmarks (benchmarks/benchmark_flash_attention.py):
1. S = q k^T / sqrt(d) into a preallocated (batch * heads, S, S) buffer by ``baddbmm`` (beta=0);
2. when causal, add a mask of -10000 above the diagonal, built inside the call as there;
3. P = softmax(S) along the keys;
4. O = P v by ``bmm``.
The S x S scores and probabilities live in memory at once: this is the memory the fused kernels save.
The repository's dropout call is left out (p = 0 makes it a copy at most).
"""

from __future__ import annotations

import torch

from harness.registry import register_method
from tasks.attention.protocol import AttentionInputs, AttentionMethod, AttentionMethodConfig, Kernel


@register_method("naive_attention", AttentionMethodConfig)
class NaiveAttention(AttentionMethod):
    def prepare(self, inputs: AttentionInputs) -> Kernel:
        b, h, s, d = inputs.q.shape
        q = inputs.q.reshape(b * h, s, d)
        k_t = inputs.k.reshape(b * h, s, d).transpose(1, 2)
        v = inputs.v.reshape(b * h, s, d)
        scale, causal, dtype, device = inputs.scale, inputs.causal, inputs.q.dtype, inputs.q.device

        def call() -> torch.Tensor:
            scores = torch.empty(b * h, s, s, dtype=dtype, device=device)  # (1)
            scores = torch.baddbmm(scores, q, k_t, beta=0, alpha=scale)
            if causal:  # (2)
                scores = scores + torch.triu(torch.full((s, s), -10000.0, device=device), 1).to(dtype)
            probs = torch.softmax(scores, dim=-1)  # (3)
            return torch.bmm(probs, v).view(b, h, s, d)  # (4)

        return Kernel(call)

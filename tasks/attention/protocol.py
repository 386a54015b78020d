"""The attention workload's method protocol: what a method gets (queries, keys, values) and gives back
(a timed call, and the attention pattern it computes when that is not the task's own)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from harness.plugin import Method, PluginConfig

# A pattern as FlexAttention's ``mask_mod`` sees it, without batch and head: (query index, key index) ->
# True where the query attends to the key. Index tensors broadcast against each other.
MaskFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class AttentionInputs:
    """Queries, keys and values of shape (batch, heads, seqlen, head_dim), on the hardware's device and dtype.

    ``causal``: the task's problem is causal attention (query i attends to keys 0..i). Scores are
    scaled by 1/sqrt(head_dim), as in every method here and in the FlashAttention papers.
    """

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    causal: bool

    @property
    def scale(self) -> float:
        return 1.0 / math.sqrt(self.q.shape[-1])

    @property
    def seqlen(self) -> int:
        return self.q.shape[-2]


@dataclass
class Kernel:
    """A method bound to its inputs.

    ``call``: the timed work; returns the output (batch, heads, seqlen, head_dim).
    ``pattern``: for a method that attends to fewer pairs than the task's problem (block-sparse
    attention), which pairs it keeps, including the task's causal mask; None when it computes the
    task's problem itself. The task's float64 reference uses the same pattern, so the error measures
    the kernel, not the sparsity.
    ``block_density``: the fraction of (query block, key block) tiles the kernel computes, where
    it works in tiles (FlexAttention's block mask); None otherwise.
    """

    call: Callable[[], torch.Tensor]
    pattern: MaskFn | None = None
    block_density: float | None = None


class AttentionMethod(Method):
    """One attention implementation. ``prepare`` does the untimed setup (masks, compilation wrappers,
    layouts) and fails with a clear message when the device cannot run it."""

    def prepare(self, inputs: AttentionInputs) -> Kernel:
        raise NotImplementedError(f"{type(self).__name__} must implement prepare(inputs)")


@dataclass
class AttentionMethodConfig(PluginConfig):
    """Base of the attention methods' configs (the shape and causality belong to the task)."""

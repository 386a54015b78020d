"""Attention forward pass as a workload: the kernel-level claims of FlashAttention(-2) and Re-ttention.

The timed call is one attention forward over (batch, heads, seqlen, head_dim) queries, keys and values
drawn from N(0, 1) on the hardware's device and dtype; the inputs are made once per seed and shared
by every method. Quality: the maximum absolute error of the output against a float64 reference of
the same attention pattern (the method's own pattern for block-sparse methods), over all outputs.

FLOPs (the ``flops`` rows) are counted, not traced: FlopCounterMode counts what a decomposition
executes (all S^2 scores even when causal, 0 for CPU flash attention, nothing for a compiled
FlexAttention), which is not the work papers report. Per sequence (``batch_size`` = sequences per
call, so ``tflops`` = flops * batch_size / latency):
- a method computing the task's problem: 4 * S^2 * H * D, halved when causal (the FlashAttention
  papers' convention, FA2 sec. 4.1: two matmuls of 2 * S^2 * D FLOPs per head);
- a block-sparse method: 4 * S^2 * H * D * block density, the tiles its kernel computes (the
  convention of PyTorch's FlexAttention benchmarks). ``token_density`` (pairs attended) and
  ``block_density`` are reported next to each other, because a sparse kernel's cost follows the
  second: a local window of 3.1% of the tokens covers ~9% of the 128-blocks at S=4096.

Memory: the runner's ``peak_memory_increase`` on CPU is the rise of the process's resident set, which
cannot see memory malloc already holds: a fused kernel's 8 MB output reuses freed heap and reads as
0 bytes, so a ratio against it is undefined. ``working_memory`` is the same measurement on one more
call after glibc's ``malloc_trim(0)`` has returned the free pages to the system (every page the call
touches is then counted: 9.7 MB for CPU flash attention at S=4096, H=8, D=64, where its output is
8 MB); on CUDA it is the caching allocator's peak increase, as the runner's. Where ``malloc_trim``
does not exist (not glibc) the CPU figure is left out.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from typing import Any

import torch

from harness.counters import peak_memory
from harness.metrics import MetricInfo, register_metric
from harness.plugin import Observation, PluginConfig, Prepared, Task
from harness.registry import register_task
from tasks.attention.protocol import AttentionInputs, AttentionMethod, MaskFn

register_metric("attention_max_abs_error", MetricInfo(
    "", False, "max |output - float64 reference of the same attention pattern| (inputs N(0, 1))",
    "max over all batch x heads x seqlen x head_dim outputs"))
register_metric("working_memory", MetricInfo(
    "bytes", False, "peak memory increase of one call with the allocator's free pages returned first (CPU: "
    "resident set after malloc_trim; CUDA: allocator peak)", "one call", True))
register_metric("token_density", MetricInfo(
    "", None, "fraction of (query, key) pairs the method attends to (causal included)", "one value"))
register_metric("block_density", MetricInfo(
    "", None, "fraction of (query block, key block) tiles a block-sparse kernel computes", "one value"))

CONVENTION = "FLOP/sequence, counted as 4*S^2*H*D (halved when causal; x block density when block-sparse)"


@dataclass
class AttentionConfig(PluginConfig):
    SMOKE = {"seqlen": 256, "heads": 2}  # profile=smoke
    batch_size: int = 1  # sequences per timed call
    seqlen: int = 2048
    heads: int = 8
    head_dim: int = 64
    causal: bool = False

    def __post_init__(self) -> None:
        for key in ("batch_size", "seqlen", "heads", "head_dim"):
            if getattr(self, key) < 1:
                raise ValueError(f"task.{key} must be >= 1, got {getattr(self, key)}")


def flops_per_sequence(cfg: AttentionConfig, block_density: float | None, sparse: bool) -> float:
    """The FLOPs of one sequence's forward under the conventions in the module docstring."""
    dense = 4.0 * cfg.seqlen**2 * cfg.heads * cfg.head_dim
    if sparse:
        if block_density is None:
            raise ValueError("a block-sparse method must report its block density to count its FLOPs")
        return dense * block_density
    return dense / 2 if cfg.causal else dense


def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = _malloc_trim()


def working_memory(call: Any, device: torch.device) -> tuple[int, str] | None:
    """Peak memory increase of one ``call`` with the allocator's free memory released first; None where
    that is impossible (a CPU without glibc)."""
    if device.type == "cpu":
        if MALLOC_TRIM is None:
            return None
        MALLOC_TRIM(0)
    with torch.no_grad(), peak_memory(device) as mem:
        call()
    return (mem["increase"], f"bytes ({mem['kind']}{' after malloc_trim' if device.type == 'cpu' else ''})") \
        if mem["increase"] is not None else None


def allowed_pairs(seqlen: int, causal: bool, pattern: MaskFn | None, device: torch.device) -> torch.Tensor | None:
    """(seqlen, seqlen) bool of the pairs attended, or None for full attention."""
    if pattern is None and not causal:
        return None
    i = torch.arange(seqlen, device=device)
    if pattern is not None:
        return pattern(i[:, None], i[None, :])
    return i[:, None] >= i[None, :]


def reference(inputs: AttentionInputs, allowed: torch.Tensor | None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), masked) v in float64, one (batch, head) at a time to bound memory."""
    q, k, v = (t.double() for t in (inputs.q, inputs.k, inputs.v))
    out = torch.empty_like(q)
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            scores = (q[b, h] @ k[b, h].T) * inputs.scale
            if allowed is not None:
                scores.masked_fill_(~allowed, float("-inf"))
            out[b, h] = torch.softmax(scores, dim=-1) @ v[b, h]
    return out


@register_task("attention", AttentionConfig)
class Attention(Task):
    def __init__(self, cfg: AttentionConfig, model: dict[str, Any], device: torch.device, dtype: torch.dtype):
        # ``model`` does not apply: an attention kernel has no weights.
        self.cfg, self.device, self.dtype = cfg, device, dtype
        self._inputs: dict[int, AttentionInputs] = {}
        self._dense_reference: dict[int, torch.Tensor] = {}

    def inputs(self, seed: int) -> AttentionInputs:
        """The seed's inputs, made once (every method gets the same tensors): drawn in float32 on the CPU,
        then cast, so that a seed gives the same values on every device."""
        if seed not in self._inputs:
            c = self.cfg
            g = torch.Generator().manual_seed(seed)
            q, k, v = (torch.randn(c.batch_size, c.heads, c.seqlen, c.head_dim, generator=g).to(self.device, self.dtype)
                       for _ in range(3))
            self._inputs[seed] = AttentionInputs(q, k, v, c.causal)
        return self._inputs[seed]

    def prepare(self, method: Any, seed: int) -> Prepared:
        if not isinstance(method, AttentionMethod):
            raise TypeError(f"task attention needs an attention method, got {type(method).__name__}")
        x = self.inputs(seed)
        kernel = method.prepare(x)
        sparse = kernel.pattern is not None

        def evaluate() -> list[Observation]:
            with torch.no_grad():  # as the timed calls: a compiled kernel guards on grad mode and would recompile
                out = kernel.call()
            if out.shape != x.q.shape:
                raise ValueError(f"method {method.name} returned shape {tuple(out.shape)}, expected {tuple(x.q.shape)}")
            allowed = allowed_pairs(x.seqlen, x.causal, kernel.pattern, self.device)
            if sparse:
                ref = reference(x, allowed)
            else:  # the task's own problem: one reference per seed, shared by the methods
                if seed not in self._dense_reference:
                    self._dense_reference[seed] = reference(x, allowed)
                ref = self._dense_reference[seed]
            n = out.numel()
            obs = [Observation("attention_max_abs_error", float((out.double() - ref).abs().max()), n=n),
                   Observation("flops", flops_per_sequence(self.cfg, kernel.block_density, sparse), unit=CONVENTION)]
            density = 1.0 if allowed is None else float(allowed.double().mean())
            obs.append(Observation("token_density", density))
            if kernel.block_density is not None:
                obs.append(Observation("block_density", kernel.block_density))
            del out, ref, allowed  # not part of the next call's working memory
            mem = working_memory(kernel.call, self.device)
            if mem is not None:
                obs.append(Observation("working_memory", float(mem[0]), unit=mem[1]))
            return obs

        # No flops_call: FLOPs are counted by the convention above (see the module docstring for why not
        # FlopCounterMode); no stage module: one kernel call has no stages.
        return Prepared(call=kernel.call, batch_size=self.cfg.batch_size, evaluate=evaluate)

"""Round-to-nearest (RTN) weight-only quantization at ``bits`` bits, per output channel or per group.

Asymmetric min-max uniform quantization of every linear layer's weight (the baseline of GPTQ,
Frantar et al. 2022, arXiv 2210.17323, and SqueezeLLM, Kim et al. 2023, arXiv 2306.07629): for each
output row o and group g of ``group_size`` consecutive inputs (the whole row when group_size is 0),

    s = (max w - min w) / (2^b - 1),   z = round(-min w / s),
    q = clamp(round(w / s) + z, 0, 2^b - 1),   w_hat = s (q - z),

with s and z stored as float16. GPT-2's ``Conv1D`` projections are first rewritten as ``nn.Linear``;
the tied LM head / embedding stays float32 (``tasks.decoding.lowbit.quantizable_linears``).

Our own implementation, not torchao's: torchao is not a dependency of this project (it is not in
its environment), and counting memory per format needs the codes and tables in hand. Activations
stay float32; the layer rebuilds its float32 weight on every call (``LowBitLinear``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from harness.plugin import PluginConfig
from harness.registry import register_method
from tasks.decoding.lowbit import LowBitLinear, as_stored, conv1d_to_linear, quantizable_linears, replace_module
from tasks.decoding.protocol import DecodingMethod

if TYPE_CHECKING:
    from tasks.decoding.text_generation import TextGeneration


@dataclass
class RTNConfig(PluginConfig):
    bits: int = 4
    group_size: int = 0  # inputs sharing one scale and zero point; 0: one per output channel (whole row)
    LABEL_ALWAYS = ("bits",)

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 8:
            raise ValueError(f"method.bits must be in 2..8, got {self.bits}")
        if self.group_size < 0:
            raise ValueError(f"method.group_size must be >= 0 (0: per output channel), got {self.group_size}")


def rtn_quantize(w: torch.Tensor, bits: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes (out, in) and the per-(row, group) value table (out, groups, 2^bits) of min-max RTN."""
    out_f, in_f = w.shape
    gs = group_size or in_f
    if in_f % gs:
        raise ValueError(f"method.group_size={group_size} does not divide a layer's in_features={in_f}")
    wg = w.reshape(out_f, in_f // gs, gs)
    lo, hi = wg.amin(-1, keepdim=True), wg.amax(-1, keepdim=True)
    qmax = 2 ** bits - 1
    scale = as_stored(((hi - lo) / qmax).clamp_min(1e-8))
    zero = as_stored(torch.round(-lo / scale))
    codes = torch.clamp(torch.round(wg / scale) + zero, 0, qmax)
    table = scale * (torch.arange(qmax + 1, dtype=w.dtype) - zero)  # w_hat = s (q - z) for every q
    return codes.reshape(out_f, in_f).to(torch.uint8), table


@register_method("rtn", RTNConfig)
class RTN(DecodingMethod):
    def model(self, task: TextGeneration) -> nn.Module:
        if task.dtype != torch.float32:
            raise ValueError(f"method rtn quantizes a float32 model; hardware.dtype is {task.dtype}")
        cfg = self.cfg

        @torch.no_grad()
        def build() -> nn.Module:
            m = conv1d_to_linear(copy.deepcopy(task.model))
            for name, lin in quantizable_linears(m):
                w = lin.weight.detach().float().cpu()
                codes, table = rtn_quantize(w, cfg.bits, cfg.group_size)
                q = LowBitLinear(codes, table, cfg.bits, cfg.group_size or w.shape[1], lin.bias,
                                 table_entries_stored=2)  # scale + zero point
                replace_module(m, name, q.to(task.device))
            return m.eval()

        return task.variant(f"rtn/{cfg.bits}/{cfg.group_size}", build)

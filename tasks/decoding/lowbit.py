"""Low-bit weight formats shared by the decoding workload's weight-quantization methods.

``LowBitLinear`` holds a linear layer as a lookup table: integer codes of ``bits`` bits per weight
and, per output row and group of ``group_size`` inputs, a table of 2^bits values (a uniform grid
for round-to-nearest, a learned non-uniform codebook for SqueezeLLM), plus an optional sparse
set of weights kept exactly (SqueezeLLM's dense-and-sparse split). Its forward rebuilds the weight
from codes and tables on every call (weight-only quantization: activations stay float32), so the
measured latency includes the dequantization; a fused low-bit kernel is what would make it pay on
a memory-bound GPU, and there is none for CPU here.

Memory is counted for the format as it would be stored, not for the tensors used to simulate it:
codes at ``bits`` bits each; RTN's per-group scale and zero point as float16 (16 + 16 bits);
SqueezeLLM's per-row codebook as 2^bits float16 values; each sparse weight as a float16 value and
two int16 coordinates (COO, 48 bits); biases at their dtype. ``weight_bytes`` adds the layers left
in floating point at their dtype (tied weights once). Table values and kept weights are rounded to
float16 here too, so the quality measured is that of the counted format.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TABLE_BITS = 16  # float16 scales, zero points, codebook entries and sparse values
SPARSE_ENTRY_BITS = 16 + 16 + 16  # COO: float16 value + int16 row + int16 column


def conv1d_to_linear(model: nn.Module) -> nn.Module:
    """Replace every transformers Conv1D (in place) by the equivalent nn.Linear.

    GPT-2 implements its projections as ``Conv1D`` (y = x W + b with W of shape in x out); quantizers
    that look for ``nn.Linear`` miss them, so they become ``nn.Linear`` with the transposed weight.
    """
    from transformers.pytorch_utils import Conv1D

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                n_in, n_out = child.weight.shape
                lin = nn.Linear(n_in, n_out, bias=child.bias is not None, dtype=child.weight.dtype,
                                device=child.weight.device)
                with torch.no_grad():
                    lin.weight.copy_(child.weight.t())
                    if child.bias is not None:
                        lin.bias.copy_(child.bias)
                setattr(parent, name, lin)
    return model


def calibration_text() -> bytes:
    """Calibration bytes for methods that fit to data (SqueezeLLM's Fisher): the first 200 files of the
    zoo models' *training* split of the standard library, never the held-out text quality is scored on."""
    from tasks.zoo.bytes import stdlib_split

    return b"".join(f.read_bytes() for f in stdlib_split()[0][:200])


def as_stored(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded to the float16 values the counted format stores, back in ``x``'s dtype."""
    return x.to(torch.float16).to(x.dtype)


class LowBitLinear(nn.Module):
    """y = x W^T + b with W[o, i] = table[o, i // group_size, codes[o, i]], then the sparse weights
    written over their positions."""

    def __init__(self, codes: torch.Tensor, table: torch.Tensor, bits: int, group_size: int,
                 bias: torch.Tensor | None, table_entries_stored: int,
                 sparse_index: torch.Tensor | None = None, sparse_value: torch.Tensor | None = None):
        super().__init__()
        out_f, in_f = codes.shape
        if in_f % group_size:
            raise ValueError(f"group_size={group_size} does not divide in_features={in_f}")
        if int(codes.max()) >= 2 ** bits or int(codes.min()) < 0:
            raise ValueError(f"codes must lie in [0, 2^{bits}) for bits={bits}")
        if table.shape != (out_f, in_f // group_size, 2 ** bits):
            raise ValueError(f"table shape {tuple(table.shape)}; expected {(out_f, in_f // group_size, 2 ** bits)}")
        self.bits, self.group_size, self.in_features, self.out_features = bits, group_size, in_f, out_f
        # Entries per (row, group) the format stores: RTN stores scale and zero point (2), not 2^bits values.
        self.table_entries_stored = table_entries_stored
        self.register_buffer("codes", codes.to(torch.uint8))
        self.register_buffer("table", table)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)
        if sparse_index is None:
            sparse_index, sparse_value = torch.zeros(0, 2, dtype=torch.long), torch.zeros(0, dtype=table.dtype)
        self.register_buffer("sparse_index", sparse_index)
        self.register_buffer("sparse_value", sparse_value)

    def dense_weight(self) -> torch.Tensor:
        g = self.in_features // self.group_size
        codes = self.codes.long().view(self.out_features, g, self.group_size)
        w = torch.gather(self.table, 2, codes).view(self.out_features, self.in_features)
        if len(self.sparse_value):
            w = w.index_put((self.sparse_index[:, 0], self.sparse_index[:, 1]), self.sparse_value)
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dense_weight(), self.bias)

    def storage_bits(self) -> int:
        n_tables = self.out_features * (self.in_features // self.group_size)
        bits = self.out_features * self.in_features * self.bits + n_tables * self.table_entries_stored * TABLE_BITS
        bits += len(self.sparse_value) * SPARSE_ENTRY_BITS
        if self.bias is not None:
            bits += self.bias.numel() * self.bias.element_size() * 8
        return bits

    def extra_repr(self) -> str:
        return (f"in={self.in_features}, out={self.out_features}, bits={self.bits}, group_size={self.group_size}, "
                f"sparse={len(self.sparse_value)}")


def quantizable_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The model's nn.Linear layers except the output embedding (tied to the input embedding in GPT-2,
    and kept in floating point by both RTN and SqueezeLLM baselines)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and m is not head]


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's weights as stored (see the module docstring); buffers that are not weights
    (attention masks) are not counted. torch.ao dynamic int8 layers count one byte per weight plus a
    float32 scale and an int64 zero point per tensor."""
    bits, seen = 0, set()
    for m in model.modules():
        if isinstance(m, LowBitLinear):
            bits += m.storage_bits()
            if m.bias is not None:
                seen.add(m.bias.data_ptr())
        elif hasattr(m, "_packed_params") and callable(getattr(m, "weight", None)):
            w, b = m.weight(), m.bias()
            bits += w.numel() * 8 + 32 + 64 + (0 if b is None else b.numel() * b.element_size() * 8)
    for p in model.parameters():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            bits += p.numel() * p.element_size() * 8
    return math.ceil(bits / 8)

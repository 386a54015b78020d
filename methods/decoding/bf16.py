"""bfloat16 weights and activations: half the bytes per parameter of float32, 8 exponent bits.

The model is cast to bfloat16 (Kalamkar et al. 2019, arXiv 1905.12322: same range as float32,
7-bit mantissa); logits come out in bfloat16 too, so greedy decisions can flip where the top two
logits are close: lossy, reported as bits-per-byte change, token agreement and BLEU. CUDA needs a
GPU that supports bfloat16 (``torch.cuda.is_bf16_supported``), otherwise the point fails with that
message. On CPU it runs wherever torch has bfloat16 kernels; whether it is faster depends on the
CPU's bf16 instructions (AVX512-BF16 / AMX): it is measured, not assumed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from harness.plugin import PluginConfig
from harness.registry import register_method
from tasks.decoding.protocol import DecodingMethod

if TYPE_CHECKING:
    from tasks.decoding.text_generation import TextGeneration


@dataclass
class BF16Config(PluginConfig):
    pass


@register_method("bf16", BF16Config)
class BF16(DecodingMethod):
    def model(self, task: TextGeneration) -> nn.Module:
        if task.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"method bf16: {torch.cuda.get_device_name(task.device)} does not support bfloat16")
        return task.variant("bf16", lambda: copy.deepcopy(task.model).to(torch.bfloat16).eval())

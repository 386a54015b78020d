"""Dynamic int8 quantization of the linear layers (torch.ao.quantization.quantize_dynamic).

Weights are quantized once to int8 with one scale per weight tensor (the default dynamic
qconfig); activations are quantized on the fly per call from their observed range, the matmul
runs in int8 with int32 accumulation (fbgemm), and the result is dequantized (Jacob et al. 2018,
arXiv 1712.05877, eq. 1-7). Lossy: the task reports the bits-per-byte change,
token agreement and BLEU against greedy decoding.

GPT-2 implements its projections as ``transformers.pytorch_utils.Conv1D`` (y = x W + b with W of
shape in x out), which quantize_dynamic does not recognise; they are first rewritten as
``nn.Linear`` with the transposed weight (the same function), so every projection is quantized,
plus the LM head. CPU only (fbgemm / qnnpack kernels); FlopCounterMode does not count the
quantized matmuls, so this method's FLOP figures cover only what remains in floating point.
torch 2.13 marks torch.ao eager quantization deprecated in favour of torchao (not a dependency
here); its migration notice is silenced, the kernels are unchanged.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from harness.plugin import PluginConfig
from harness.registry import register_method
from tasks.decoding.lowbit import conv1d_to_linear
from tasks.decoding.protocol import DecodingMethod

if TYPE_CHECKING:
    from tasks.decoding.text_generation import TextGeneration


@dataclass
class Int8Config(PluginConfig):
    pass


@register_method("int8", Int8Config)
class Int8(DecodingMethod):
    def model(self, task: TextGeneration) -> nn.Module:
        if task.device.type != "cpu":
            raise ValueError(f"method int8 (torch dynamic quantization) runs on CPU only; hardware device is "
                             f"{task.device}")
        if task.dtype != torch.float32:
            raise ValueError(f"method int8 quantizes a float32 model; hardware.dtype is {task.dtype}")

        def build() -> nn.Module:
            fp = conv1d_to_linear(copy.deepcopy(task.model))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return torch.ao.quantization.quantize_dynamic(fp, {nn.Linear}, dtype=torch.qint8).eval()

        return task.variant("int8", build)

"""Ancestral sampling with temperature and nucleus (top-p) truncation (Holtzman et al. 2020, arXiv 1904.09751).

Logits are divided by ``temperature``; then only the smallest set of tokens whose probability
mass reaches ``top_p`` is kept (Sec. 3.1, eq. 2-3) and the next token is drawn from it,
renormalised. The task seeds torch before every call, so each repeat draws the same tokens.
Lossy by design: its quality columns say how far it lands from greedy decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.plugin import PluginConfig
from harness.registry import register_method
from tasks.decoding.protocol import DecodingMethod

if TYPE_CHECKING:
    from tasks.decoding.text_generation import TextGeneration


@dataclass
class SamplingConfig(PluginConfig):
    temperature: float = 1.0
    top_p: float = 1.0  # 1.0: no truncation

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"method.temperature must be > 0 (use method=greedy for argmax), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"method.top_p must be in (0, 1], got {self.top_p}")


@register_method("sampling", SamplingConfig)
class Sampling(DecodingMethod):
    def generate_kwargs(self, task: TextGeneration) -> dict[str, Any]:
        return {"do_sample": True, "temperature": self.cfg.temperature, "top_p": self.cfg.top_p, "top_k": 0}

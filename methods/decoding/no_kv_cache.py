"""Greedy decoding without a KV cache (``use_cache=False``): the reference the cache is measured against.

Every step runs the model over the whole sequence so far (prompt + generated), so step t costs
a forward over prompt_len + t tokens instead of one. Same argmax decisions as ``greedy`` up to
floating-point rounding of the longer matmuls; its exact match is reported, not enforced.
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
class NoKVCacheConfig(PluginConfig):
    pass


@register_method("no_kv_cache", NoKVCacheConfig)
class NoKVCache(DecodingMethod):
    def generate_kwargs(self, task: TextGeneration) -> dict[str, Any]:
        return {"use_cache": False}

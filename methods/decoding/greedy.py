"""Greedy decoding with a KV cache: the baseline every decoding method is measured against.

Each step feeds only the newest token and reuses the cached keys and values of all earlier
positions, so a step costs O(context) attention instead of recomputing the whole sequence. The
task's reference output (what lossless methods must reproduce) is this method at batch 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.plugin import PluginConfig
from harness.registry import register_method
from tasks.decoding.protocol import DecodingMethod


@dataclass
class GreedyConfig(PluginConfig):
    pass


@register_method("greedy", GreedyConfig)
class Greedy(DecodingMethod):
    pass

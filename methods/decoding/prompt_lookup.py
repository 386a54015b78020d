"""Prompt lookup decoding (Saxena 2023, github.com/apoorvumang/prompt-lookup-decoding): draft-free speculation.

Speculative decoding (Leviathan et al. 2023) where the draft is copied from the context: find the
most recent earlier occurrence of the last n tokens (n from ``max_matching_ngram_size`` down to
1) and propose the ``prompt_lookup_num_tokens`` tokens that followed it. The target verifies them
in one forward call and keeps the greedy-matching prefix plus one token of its own, so the output
is exactly greedy decoding's (checked on every prompt). Pays off on repetitive text such as
source code; costs one wider target call when nothing matches. transformers: batch size 1 only.
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
class PromptLookupConfig(PluginConfig):
    prompt_lookup_num_tokens: int = 10  # tokens proposed per lookup
    max_matching_ngram_size: int = 2  # longest n-gram matched against the context

    def __post_init__(self) -> None:
        if self.prompt_lookup_num_tokens < 1:
            raise ValueError(f"method.prompt_lookup_num_tokens must be >= 1, got {self.prompt_lookup_num_tokens}")
        if self.max_matching_ngram_size < 1:
            raise ValueError(f"method.max_matching_ngram_size must be >= 1, got {self.max_matching_ngram_size}")


@register_method("prompt_lookup", PromptLookupConfig)
class PromptLookup(DecodingMethod):
    lossless = True
    batch_one_only = True

    def generate_kwargs(self, task: TextGeneration) -> dict[str, Any]:
        return {"prompt_lookup_num_tokens": self.cfg.prompt_lookup_num_tokens,
                "max_matching_ngram_size": self.cfg.max_matching_ngram_size}

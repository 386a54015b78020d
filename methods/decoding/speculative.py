"""Speculative decoding with a draft model (Leviathan et al. 2023, arXiv 2211.17192), greedy.

Through transformers assisted generation (``assistant_model``). One round:
1. the draft proposes up to k tokens autoregressively (k = ``num_assistant_tokens``);
2. the target scores prompt + draft in ONE forward call (Sec. 3, Algorithm 1);
3. greedy verification keeps the longest prefix of the draft that equals the target's argmax and
   appends the target's own next token, so every round yields accepted + 1 tokens and the output
   is exactly the target's greedy output (the lossless claim; the task checks it on every prompt).
Expected tokens per round (eq. 1): (1 - a^(k+1)) / (1 - a) for acceptance rate a; walltime
improvement (Theorem 3.8) that over k c + 1, c = draft / target per-token cost.

Knobs: transformers reads them from the DRAFT's ``generation_config`` only (set there before every
call); passed to ``generate`` they are ignored. ``constant`` drafts k every round (the paper's
setting); ``heuristic`` (transformers' default, k = 20 start) grows k by 2 after a fully accepted
round and shrinks it by 1 otherwise; the confidence threshold stops a draft early when the
draft's top probability falls below it (0 turns it off). Batch size 1 only in transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.plugin import PluginConfig
from harness.registry import register_method
from tasks.decoding.protocol import DecodingMethod

if TYPE_CHECKING:
    from tasks.decoding.text_generation import TextGeneration

SCHEDULES = ("constant", "heuristic", "heuristic_transient")


@dataclass
class SpeculativeConfig(PluginConfig):
    num_assistant_tokens: int = 5  # k, drafted tokens per round
    num_assistant_tokens_schedule: str = "constant"
    assistant_confidence_threshold: float = 0.0  # 0: off, the fixed-k algorithm of the paper

    def __post_init__(self) -> None:
        if self.num_assistant_tokens < 1:
            raise ValueError(f"method.num_assistant_tokens must be >= 1, got {self.num_assistant_tokens}")
        if self.num_assistant_tokens_schedule not in SCHEDULES:
            raise ValueError(f"method.num_assistant_tokens_schedule={self.num_assistant_tokens_schedule!r}; "
                             f"valid: {', '.join(SCHEDULES)}")
        if not 0 <= self.assistant_confidence_threshold < 1:
            raise ValueError(f"method.assistant_confidence_threshold must be in [0, 1), got "
                             f"{self.assistant_confidence_threshold}")


@register_method("speculative", SpeculativeConfig)
class Speculative(DecodingMethod):
    lossless = True
    uses_draft = True
    batch_one_only = True

    def generate_kwargs(self, task: TextGeneration) -> dict[str, Any]:
        draft = task.draft
        gc = draft.generation_config  # the only place transformers reads these knobs from
        gc.num_assistant_tokens = self.cfg.num_assistant_tokens
        gc.num_assistant_tokens_schedule = self.cfg.num_assistant_tokens_schedule
        gc.assistant_confidence_threshold = self.cfg.assistant_confidence_threshold
        return {"assistant_model": draft}

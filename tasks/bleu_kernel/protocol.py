"""The BLEU-kernel workload's method protocol, the corpus it hands methods, and NLTK's reference loop."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from harness.plugin import Method, PluginConfig


@dataclass(frozen=True)
class TokenCorpus:
    """Candidates (batch, length) and references (batch, max_refs, length), right-padded with ``pad_id``;
    an all-pad reference row means "no reference". ``candidate_lists``/``reference_lists`` hold the
    same sentences as Python lists (what NLTK takes)."""

    candidates: torch.Tensor
    references: torch.Tensor
    pad_id: int
    max_n: int
    smoothing: str

    @property
    def candidate_lists(self) -> list[list[int]]:
        return [row[row != self.pad_id].tolist() for row in self.candidates.cpu()]

    @property
    def reference_lists(self) -> list[list[list[int]]]:
        return [[r[r != self.pad_id].tolist() for r in refs if bool((r != self.pad_id).any())]
                for refs in self.references.cpu()]

    @property
    def weights(self) -> tuple[float, ...]:
        return (1.0 / self.max_n,) * self.max_n


def nltk_sentence_bleu(candidates: Sequence[Sequence[int]], references: Sequence[Sequence[Sequence[int]]],
                       weights: tuple[float, ...], smoothing: str) -> list[float]:
    """NLTK ``sentence_bleu`` per sentence, in a Python loop: the reference implementation."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    fn = getattr(SmoothingFunction(), smoothing)
    with warnings.catch_warnings():  # method0 warns on every zero precision
        warnings.simplefilter("ignore")
        return [float(sentence_bleu(r, c, weights, smoothing_function=fn)) for c, r in zip(candidates, references)]


class BleuMethod(Method):
    """A per-sentence BLEU implementation. ``prepare`` converts the corpus (untimed) and returns the
    timed call, which returns one score per sentence (a sequence or a tensor)."""

    def prepare(self, corpus: TokenCorpus, device: torch.device) -> Callable[[], Sequence[float] | torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement prepare(corpus, device)")


@dataclass
class BleuMethodConfig(PluginConfig):
    """The BLEU methods have no knobs: weights, smoothing and n-gram order belong to the task."""

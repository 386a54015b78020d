"""NLTK ``sentence_bleu`` in a CPU loop over sentences: the baseline of the TensorBLEU claim.

Papineni et al. (2002) BLEU per sentence on token-ID lists (IDs are hashable tokens), with the
task's weights and NLTK ``SmoothingFunction`` method. The paper times exactly this loop.
"""

from __future__ import annotations

from typing import Callable

import torch

from harness.registry import register_method
from tasks.bleu_kernel.protocol import BleuMethod, BleuMethodConfig, TokenCorpus, nltk_sentence_bleu


@register_method("nltk", BleuMethodConfig)
class NltkBleu(BleuMethod):
    def prepare(self, corpus: TokenCorpus, device: torch.device) -> Callable[[], list[float]]:
        cands, refs = corpus.candidate_lists, corpus.reference_lists  # list conversion is not timed
        return lambda: nltk_sentence_bleu(cands, refs, corpus.weights, corpus.smoothing)

"""sacrebleu sentence BLEU on token IDs joined as strings (``tokenize='none'`` splits on spaces).

sacrebleu is the reference for reported corpus BLEU; per sentence it is a second CPU baseline.
Smoothing maps to sacrebleu's equivalents of the NLTK methods (Chen & Cherry 2014 numbering):
method0 -> 'none', method1 -> 'floor' 0.1, method2 -> 'add-k' 1 (n >= 2 only, as in NLTK),
method3 -> 'exp'; NLTK's method4 has no sacrebleu counterpart. ``effective_order=True`` (the
setting sacrebleu recommends per sentence) drops orders longer than the candidate, where NLTK
keeps a smoothed 1-count denominator, so short candidates can differ from NLTK; the task reports
the difference as ``bleu_max_abs_error``. Scores are divided by 100 to match NLTK's 0-1 scale.
"""

from __future__ import annotations

from typing import Callable

import torch

from harness.registry import register_method
from tasks.bleu_kernel.protocol import BleuMethod, BleuMethodConfig, TokenCorpus

SMOOTH = {"method0": ("none", None), "method1": ("floor", 0.1), "method2": ("add-k", 1), "method3": ("exp", None)}


@register_method("sacrebleu", BleuMethodConfig)
class SacreBleu(BleuMethod):
    def prepare(self, corpus: TokenCorpus, device: torch.device) -> Callable[[], list[float]]:
        from sacrebleu.metrics import BLEU

        if corpus.smoothing not in SMOOTH:
            raise ValueError(f"method sacrebleu: task.smoothing={corpus.smoothing!r} has no sacrebleu equivalent; "
                             f"valid: {', '.join(SMOOTH)}")
        if corpus.max_n > 4 or len(set(corpus.weights)) > 1:
            raise ValueError("method sacrebleu supports uniform weights and max_n <= 4 only "
                             f"(max_n={corpus.max_n})")
        method, value = SMOOTH[corpus.smoothing]
        bleu = BLEU(tokenize="none", smooth_method=method, smooth_value=value, max_ngram_order=corpus.max_n,
                    effective_order=True)
        cands = [" ".join(map(str, c)) for c in corpus.candidate_lists]  # string conversion is not timed
        refs = [[" ".join(map(str, r)) for r in rs] for rs in corpus.reference_lists]
        return lambda: [bleu.sentence_score(c, r).score / 100 for c, r in zip(cands, refs)]

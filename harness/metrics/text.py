"""Text quality metrics with clear contracts: sacrebleu BLEU and chrF for reported numbers, accuracy,
exact match, perplexity and bits per byte.

Reported BLEU is sacrebleu's corpus BLEU (Post 2018: fixed tokenization, signature), never a
per-sentence average: torchmetrics' BLEU was 6-16x slower here for the same number. For per-sentence
rewards on token IDs use ``harness.metrics.token_bleu``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def _reference_streams(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> list[list[str]]:
    """Per-hypothesis reference lists -> sacrebleu's reference streams (one stream per reference slot)."""
    if isinstance(hypotheses, str) or len(hypotheses) != len(references):
        raise ValueError(f"want one list of references per hypothesis: {len(hypotheses)} hypotheses, "
                         f"{len(references)} reference lists")
    counts = {len(r) for r in references}
    if len(counts) != 1 or 0 in counts:
        raise ValueError("every hypothesis needs the same number (>= 1) of references for sacrebleu; "
                         f"got {sorted(counts)}")
    return [list(stream) for stream in zip(*references)]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]], tokenize: str = "13a") -> float:
    """sacrebleu corpus BLEU, 0-100 (Papineni et al. 2002 eq. 1-2 over corpus-level counts).

    ``references[i]`` lists the references of ``hypotheses[i]``; every hypothesis needs the same
    number. ``tokenize``: sacrebleu tokenizer ('13a' = WMT mteval, 'none' = split on spaces).
    """
    from sacrebleu.metrics import BLEU

    streams = _reference_streams(hypotheses, references)
    return float(BLEU(tokenize=tokenize).corpus_score(list(hypotheses), streams).score)


def chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """sacrebleu chrF, 0-100 (Popovic 2015): character 1-6-gram F-beta with beta 2, whitespace removed."""
    from sacrebleu.metrics import CHRF

    streams = _reference_streams(hypotheses, references)
    return float(CHRF().corpus_score(list(hypotheses), streams).score)


def accuracy(predictions: Sequence | torch.Tensor, labels: Sequence | torch.Tensor) -> float:
    """Fraction of ``predictions[i] == labels[i]`` (class ids, or any comparable values)."""
    pred = predictions.tolist() if isinstance(predictions, torch.Tensor) else list(predictions)
    lab = labels.tolist() if isinstance(labels, torch.Tensor) else list(labels)
    if len(pred) != len(lab) or not pred:
        raise ValueError(f"want equally many (>= 1) predictions and labels, got {len(pred)} and {len(lab)}")
    return sum(p == t for p, t in zip(pred, lab)) / len(pred)


def exact_match(predictions: Sequence[str], references: Sequence[str], strip: bool = True) -> float:
    """Fraction of output strings equal to their reference, after ``str.strip()`` unless ``strip=False``."""
    norm = (lambda s: s.strip()) if strip else (lambda s: s)  # noqa: E731
    return accuracy([norm(p) for p in predictions], [norm(r) for r in references])


def perplexity(total_nll_nats: float, n_tokens: int) -> float:
    """exp(total negative log-likelihood in nats / number of predicted tokens): token-weighted, so a
    corpus' perplexity is not the mean of per-sentence perplexities."""
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be >= 1, got {n_tokens}")
    if total_nll_nats < 0:
        raise ValueError(f"total_nll_nats must be >= 0 (a sum of -log p), got {total_nll_nats}")
    return math.exp(total_nll_nats / n_tokens)


def bits_per_byte(total_nll_nats: float, n_bytes: int) -> float:
    """Total NLL converted to bits (/ ln 2) per UTF-8 byte of the text it predicted.

    Comparable across tokenizers, unlike perplexity: the byte count is the text's, whatever the
    model's tokens. For a byte-level model, n_bytes = n_tokens and bpb = log2(perplexity).
    """
    if n_bytes < 1:
        raise ValueError(f"n_bytes must be >= 1, got {n_bytes}")
    if total_nll_nats < 0:
        raise ValueError(f"total_nll_nats must be >= 0 (a sum of -log p), got {total_nll_nats}")
    return total_nll_nats / (n_bytes * math.log(2))

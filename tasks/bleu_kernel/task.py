"""Per-sentence BLEU on token IDs: the workload of the TensorBLEU claim (arXiv 2510.05485).

The timed call scores ``batch_size`` candidates of up to ``length`` tokens against their
references, one BLEU per sentence, as an RL loop computing rewards does. Each method gets the
corpus in its own input format, converted outside the timed call (token-ID tensors on the device
for tensor methods, Python lists for NLTK, space-joined ID strings for sacrebleu): the timing
covers the BLEU computation only, as in the paper, which favours the CPU baselines (their list
conversion from device tensors is not counted).

Quality: every method's scores are compared with NLTK ``sentence_bleu`` (same weights and
smoothing) on the same corpus: ``bleu_max_abs_error`` and the mean score, n = batch_size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from harness.metrics import MetricInfo, register_metric
from harness.metrics.bleu import SMOOTHING
from harness.plugin import Observation, PluginConfig, Prepared, Task
from harness.registry import register_task
from tasks.bleu_kernel.protocol import BleuMethod, TokenCorpus, nltk_sentence_bleu

register_metric("sentence_bleu_mean", MetricInfo("BLEU (0-1)", True, "per-sentence BLEU of the method",
                                                  "mean over sentences"))
register_metric("bleu_max_abs_error", MetricInfo("BLEU (0-1)", False, "max |per-sentence BLEU - NLTK sentence_bleu|",
                                                 "max over sentences"))


@dataclass
class BleuKernelConfig(PluginConfig):
    SMOKE = {"batch_size": 4, "length": 16}  # profile=smoke
    batch_size: int = 128  # sentences per timed call (the paper's table: 16-512)
    length: int = 1024  # tokens per sentence at most; lengths are drawn in [length * min_length_frac, length]
    min_length_frac: float = 0.75
    vocab_size: int = 32000
    max_refs: int = 4  # each sentence has 1..max_refs references (uniform)
    noise: float = 0.3  # per-token probability that a copy of the hidden source sentence differs from it
    smoothing: str = "method1"  # NLTK SmoothingFunction method; method1 is TensorBLEU's "floor" (eps 0.1)
    max_n: int = 4
    pad_id: int = 0  # real tokens are drawn from [1, vocab_size)

    def __post_init__(self) -> None:
        for key in ("batch_size", "length", "max_refs", "max_n"):
            if getattr(self, key) < 1:
                raise ValueError(f"task.{key} must be >= 1, got {getattr(self, key)}")
        if self.vocab_size < 2:
            raise ValueError(f"task.vocab_size must be >= 2 (one pad id and one token), got {self.vocab_size}")
        if not 0 < self.min_length_frac <= 1:
            raise ValueError(f"task.min_length_frac must be in (0, 1], got {self.min_length_frac}")
        if not 0 <= self.noise <= 1:
            raise ValueError(f"task.noise must be in [0, 1], got {self.noise}")
        if self.smoothing not in SMOOTHING:
            raise ValueError(f"task.smoothing={self.smoothing!r}; valid: {', '.join(SMOOTHING)}")
        if self.pad_id != 0:
            raise ValueError(f"task.pad_id={self.pad_id}: only 0 is supported (tokens are drawn from [1, vocab_size))")


def make_corpus(cfg: BleuKernelConfig, seed: int) -> TokenCorpus:
    """Candidates and references as independent noisy copies of one hidden source sentence each.

    With noise 0.3 a copy keeps ~70% of the source's tokens, so a candidate shares ~half its
    unigrams with a reference and BLEU (method1) is ~0.2-0.3, not ~0 as for independent random IDs.
    """
    g = torch.Generator().manual_seed(seed)
    b, r, n = cfg.batch_size, cfg.max_refs, cfg.length
    source = torch.randint(1, cfg.vocab_size, (b, 1, n), generator=g)
    copies = source.expand(b, 1 + r, n).clone()
    flip = torch.rand(copies.shape, generator=g) < cfg.noise
    copies[flip] = torch.randint(1, cfg.vocab_size, (int(flip.sum()),), generator=g)
    low = max(1, int(round(n * cfg.min_length_frac)))
    lengths = torch.randint(low, n + 1, (b, 1 + r), generator=g)
    n_refs = torch.randint(1, r + 1, (b,), generator=g)
    lengths[:, 1:] *= (torch.arange(r) < n_refs[:, None]).long()  # missing references: length 0 = all pad
    copies[torch.arange(n) >= lengths[..., None]] = cfg.pad_id
    return TokenCorpus(copies[:, 0].contiguous(), copies[:, 1:].contiguous(), cfg.pad_id, cfg.max_n, cfg.smoothing)


@register_task("bleu_kernel", BleuKernelConfig)
class BleuKernel(Task):
    method_protocol = BleuMethod

    def __init__(self, cfg: BleuKernelConfig, model: dict[str, Any], device: torch.device, dtype: torch.dtype):
        # ``model`` and ``dtype`` do not apply: token IDs are integers and scores float64, as in NLTK.
        self.cfg, self.device = cfg, device
        self._reference: dict[int, tuple[TokenCorpus, torch.Tensor]] = {}

    def corpus(self, seed: int) -> tuple[TokenCorpus, torch.Tensor]:
        """The seed's corpus and NLTK's scores on it, made once per seed (all methods share them)."""
        if seed not in self._reference:
            corpus = make_corpus(self.cfg, seed)
            ref = nltk_sentence_bleu(corpus.candidate_lists, corpus.reference_lists, corpus.weights,
                                     corpus.smoothing)
            self._reference[seed] = (corpus, torch.tensor(ref, dtype=torch.float64))
        return self._reference[seed]

    def prepare(self, method: Any, seed: int) -> Prepared:
        if not isinstance(method, BleuMethod):
            raise TypeError(f"task bleu_kernel needs a BLEU method, got {type(method).__name__}")
        corpus, nltk_scores = self.corpus(seed)
        call = method.prepare(corpus, self.device)

        def evaluate() -> list[Observation]:
            scores = torch.as_tensor(call(), dtype=torch.float64).cpu()
            n = len(nltk_scores)
            if scores.shape != (n,):
                raise ValueError(f"method {method.name} returned {tuple(scores.shape)} scores for {n} sentences")
            return [Observation("bleu_max_abs_error", float((scores - nltk_scores).abs().max()), n=n),
                    Observation("sentence_bleu_mean", float(scores.mean()), n=n)]

        # No flops_call and no stage module: FlopCounterMode counts no FLOPs in integer n-gram counting
        # or a Python loop, and there are no model evaluations to count.
        return Prepared(call=call, batch_size=self.cfg.batch_size, evaluate=evaluate)

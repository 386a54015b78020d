"""Our TensorBLEU (arXiv 2510.05485): per-sentence BLEU on token-ID tensors on the hardware's device.

``harness.metrics.token_bleu`` does the work (exact int64 n-gram keys, per-row sort, clipping by
searchsorted; see its module docstring); this file only binds it to the task's corpus. On CUDA the
tensors stay on the GPU, as in the paper's RL setting; on CPU it runs with the pinned threads.
"""

from __future__ import annotations

from typing import Callable

import torch

from harness.metrics import token_bleu
from harness.registry import register_method
from tasks.bleu_kernel.protocol import BleuMethod, BleuMethodConfig, TokenCorpus


@register_method("token_bleu", BleuMethodConfig)
class TokenBleu(BleuMethod):
    def prepare(self, corpus: TokenCorpus, device: torch.device) -> Callable[[], torch.Tensor]:
        cands, refs = corpus.candidates.to(device), corpus.references.to(device)  # transfer is not timed
        return lambda: token_bleu(cands, refs, max_n=corpus.max_n, weights=corpus.weights,
                                  smoothing=corpus.smoothing, pad_id=corpus.pad_id)

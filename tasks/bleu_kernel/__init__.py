"""BLEU-kernel workload: per-sentence token-ID BLEU implementations (TensorBLEU).

Methods in ``methods/bleu_kernel/``.
"""

from tasks.bleu_kernel import task  # noqa: F401  (importing registers the task)

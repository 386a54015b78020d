"""Attention-kernel workload: one attention forward pass, materialised (naive) vs fused (SDPA backends) vs
block-sparse (FlexAttention); the FlashAttention(-2) and Re-ttention kernel claims. Methods in
``methods/attention/``."""

from tasks.attention import task  # noqa: F401  (importing registers the task)

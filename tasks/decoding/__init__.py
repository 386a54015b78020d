"""Decoding workload: text generation with a transformers causal LM (speculative decoding, prompt lookup,
quantization, attention backends) and repeated sampling on arithmetic; methods in ``methods/decoding/``."""

from tasks.decoding import arithmetic, text_generation  # noqa: F401  (importing registers the tasks)

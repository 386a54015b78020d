"""Decoding workload: text generation with a transformers causal LM (speculative decoding, prompt lookup,
quantization, attention backends), repeated sampling on arithmetic with an exact or a weak verifier, and
multi-draft verification of the byte models' next-token distributions; methods in ``methods/decoding/``."""

from tasks.decoding import arithmetic, multidraft, text_generation, verifier  # noqa: F401  (importing registers the tasks)

"""The decoding workload's method protocol and the model loader its methods share.

A decoding method chooses which model runs, under which context, with which ``generate``
arguments (three verbs; the defaults are plain greedy decoding of the task's model).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, ContextManager, Iterator

import torch

from harness.plugin import Method
from tasks.zoo import resolve

if TYPE_CHECKING:
    from tasks.decoding.text_generation import TextGeneration


class DecodingMethod(Method):
    """A decoding method: which model runs, under which context, with which ``generate`` arguments.

    Three verbs; the defaults are plain greedy decoding of the task's model.
    """

    lossless: bool = False  # claims plain greedy decoding's exact output; a changed output fails the point
    uses_draft: bool = False  # runs the task's draft model (speculative decoding): acceptance is counted
    batch_one_only: bool = False  # transformers assisted generation (draft model or prompt lookup): batch 1 only

    def model(self, task: TextGeneration) -> torch.nn.Module:
        """The model to run (a quantized or converted copy for some methods). Called once per point."""
        return task.model

    def generate_kwargs(self, task: TextGeneration) -> dict[str, Any]:
        """Arguments for ``generate`` on top of the task's; called before every call."""
        return {}

    def context(self, task: TextGeneration) -> ContextManager[Any]:
        """Entered around every call (e.g. an SDPA backend)."""
        return contextlib.nullcontext()


def load_causal_lm(source: str, device: torch.device, dtype: torch.dtype, **kwargs: Any) -> torch.nn.Module:
    """Any transformers causal LM, by hub id or folder (``zoo:NAME`` for the embedded ones)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # no progress bars or deprecation chatter inside timed runs
    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(resolve(source), dtype=dtype, **kwargs).to(device).eval()
    gc = model.generation_config
    if gc.pad_token_id is None:
        gc.pad_token_id = gc.eos_token_id if isinstance(gc.eos_token_id, int) else 0
    # Fixed-length generation: every method does the same work (benchmarks' "ignore EOS").
    gc.eos_token_id = None
    return model


@contextlib.contextmanager
def count_calls(*modules: torch.nn.Module | None) -> Iterator[list[int]]:
    """Forward calls of each module inside the block (a counter, not a clock)."""
    counts = [0] * len(modules)
    handles = []
    for i, m in enumerate(modules):
        if m is not None:
            handles.append(m.register_forward_pre_hook(lambda *_a, i=i: counts.__setitem__(i, counts[i] + 1)))
    try:
        yield counts
    finally:
        for h in handles:
            h.remove()

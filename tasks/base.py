"""The narrow interface between the runner, tasks and methods (DESIGN section 2).

A task builds a workload once per process and, for a method and seed, returns a ``Prepared``:
the timed call, the module whose calls mark stages, and the quality evaluation. The runner only
sees these; it never imports a method or a task by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch


@dataclass(frozen=True)
class Observation:
    """One value a task measured; the runner turns it into a result row."""

    metric: str
    value: float
    sample: int | None = None
    stage: str | None = None
    n: int | None = None
    unit: str | None = None  # defaults to the metric registry's unit


@dataclass
class Prepared:
    call: Callable[[], Any]  # the work being claimed faster, on ``batch_size`` items
    batch_size: int
    flops_call: Callable[[], Any]  # the same work on one item, for FlopCounterMode
    stage_module: torch.nn.Module | None  # each call of it starts a stage (a denoising step)
    stage: str  # name of those stages in the results, e.g. "denoise_step"
    evaluate: Callable[[], list[Observation]]  # quality, on enough samples to mean something
    # Extra calls the runner times like ``call`` (each its own timing.measure), recorded as
    # ``latency`` with ``stage=<name>``: e.g. the prefill alone, for time to first token.
    timed_stages: dict[str, Callable[[], Any]] = field(default_factory=dict)


class Task:
    """A workload: ``__init__`` loads models and data (cached by the runner), ``prepare`` binds a method."""

    name: str
    Config: type

    def prepare(self, method: Any, seed: int) -> Prepared:
        raise NotImplementedError(f"{type(self).__name__} must implement prepare(method, seed)")

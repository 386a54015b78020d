"""The narrow interface between the runner, tasks and methods (docs/design.md, "Flow of one point").

A task builds a workload once per process and, for a method and seed, returns a ``Prepared``:
the timed call, the module whose calls mark stages, and the quality evaluation. The runner only
sees these; it never imports a method or a task by name. A workload (``tasks/<workload>/``)
defines its own method protocol as a subclass of ``Method``; methods (``methods/<workload>/``)
subclass that protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch


@dataclass
class PluginConfig:
    """Base of every method and task config: ``name`` selects the registered class.

    ``LABEL_ALWAYS``: fields shown in a method's variant label even at their default
    (``ddim/steps=50``). ``SMOKE``: a task's field values under ``profile=smoke`` (a run of about a
    minute; fields set on the command line win).
    """

    name: str = ""
    LABEL_ALWAYS: ClassVar[tuple[str, ...]] = ()
    SMOKE: ClassVar[dict[str, Any]] = {}


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
    evaluate: Callable[[], list[Observation]]  # quality, on enough samples to mean something
    # The same work on one item, for FlopCounterMode; None where FLOPs do not describe the work
    # (a pure-Python loop counts 0 FLOPs, which would read as "free").
    flops_call: Callable[[], Any] | None = None
    # Each call of this module starts a stage (a denoising step): per-stage times, and ``nfe`` (its
    # calls per item). None: the work has no such stages and no ``nfe`` is recorded.
    stage_module: torch.nn.Module | None = None
    stage: str = "step"  # name of those stages in the results, e.g. "denoise_step"
    # Extra calls the runner times like ``call`` (each its own timing.measure), recorded as
    # ``latency`` with ``stage=<name>``: e.g. the prefill alone, for time to first token.
    timed_stages: dict[str, Callable[[], Any]] = field(default_factory=dict)


class Method:
    """Base of every method: holds its validated config. Workloads add their verbs in a subclass."""

    name: str
    Config: type

    def __init__(self, cfg: Any):
        self.cfg = cfg


class Task:
    """A workload: ``__init__`` loads models and data (cached by the runner), ``prepare`` binds a method.

    Two class-level checks run before any point of a sweep (``harness.plan``), so that a bad input
    fails at once instead of as an error row after minutes of other points: ``fits`` (can this
    method run here?) and ``check`` (are the model files and user modules the config names there?).
    """

    name: str
    Config: type
    # The workload's method protocol: methods of other workloads do not fit (``fits``).
    method_protocol: ClassVar[type] = Method

    @classmethod
    def fits(cls, method: type) -> str | None:
        """Why ``method`` (a registered method class) cannot run on this task, or None if it can."""
        if not issubclass(method, cls.method_protocol):
            return f"it is not a {cls.method_protocol.__name__}"
        return None

    @classmethod
    def check(cls, cfg: Any, model: dict[str, Any]) -> None:
        """Raise ``ValueError`` naming the field if the config cannot work; cheap (no model loading).

        Here: every model field the config left mandatory (``???``) is set. Tasks extend it (model
        folders exist, user modules import).
        """
        missing = [k for k, v in model.items() if v == "???"]
        if missing:
            raise ValueError(f"model.{missing[0]} is not set; model={model.get('name')} needs it: set "
                             f"model.{missing[0]}=... (see conf/model/{model.get('name')}.yaml)")

    def prepare(self, method: Any, seed: int) -> Prepared:
        raise NotImplementedError(f"{type(self).__name__} must implement prepare(method, seed)")

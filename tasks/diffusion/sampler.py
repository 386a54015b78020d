"""The diffusion workload's method protocol: a sampler chooses the scheduler (solver and time steps).

Methods in ``methods/diffusion/`` subclass ``SamplerMethod`` and build a diffusers scheduler from
the model's own scheduler config; the task runs the sampling loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusers import SchedulerMixin

from harness.plugin import Method, PluginConfig


class SamplerMethod(Method):
    """A diffusion sampler: a method that only chooses the scheduler (solver and time steps)."""

    def scheduler(self, base_config: dict[str, Any]) -> SchedulerMixin:
        raise NotImplementedError(f"{type(self).__name__} must build its scheduler")

    @property
    def steps(self) -> int:
        return self.cfg.steps


SPACINGS = ("leading", "trailing", "linspace")


@dataclass
class SamplerConfig(PluginConfig):
    steps: int = 10
    LABEL_ALWAYS = ("steps",)  # every label names its step count, default or not
    timestep_spacing: str | None = None  # None: the model's scheduler config decides

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"method.steps must be >= 1, got {self.steps}")
        if self.timestep_spacing is not None and self.timestep_spacing not in SPACINGS:
            raise ValueError(f"method.timestep_spacing={self.timestep_spacing!r}; valid: {', '.join(SPACINGS)} or null")

    def overrides(self) -> dict[str, Any]:
        """Scheduler-config keys this config sets on top of the model's scheduler config."""
        return {} if self.timestep_spacing is None else {"timestep_spacing": self.timestep_spacing}


@dataclass
class MultistepConfig(SamplerConfig):
    order: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.order not in (1, 2, 3):
            raise ValueError(f"method.order must be 1, 2 or 3, got {self.order}")

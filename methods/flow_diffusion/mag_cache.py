"""MagCache (Ma et al. 2025, arXiv 2506.09045; diffusers ``MagCacheConfig``) on flow Euler, calibrated here.

MagCache skips a call when the accumulated error predicted from the magnitude ratio of successive
residuals (output minus input of the block stack) stays below ``threshold``, at most ``max_skip``
calls in a row, never in the first ``retention`` fraction of steps. The ratios are model- and
schedule-specific: ``build`` calibrates them on the task's calibration batch (not the evaluation
noise) with ``calibrate=True``, which the library reports only with ``print()``: the output is
captured and parsed, and calibration fails loudly if the ratios cannot be read.
"""

from __future__ import annotations

import ast
import contextlib
import io
from dataclasses import dataclass

from diffusers.hooks import MagCacheConfig as DiffusersMagCacheConfig

from harness.registry import register_method
from tasks.flow_diffusion.protocol import FlowModel, FlowSampler, Sampler, StepsConfig, cached_euler

_MARKER = "[MagCache] Calibration Complete"


@dataclass
class MagCacheConfig(StepsConfig):
    threshold: float = 0.06
    max_skip: int = 3
    retention: float = 0.2
    LABEL_ALWAYS = ("steps", "threshold")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.threshold <= 0:
            raise ValueError(f"method.threshold must be > 0, got {self.threshold}")
        if self.max_skip < 1:
            raise ValueError(f"method.max_skip must be >= 1, got {self.max_skip}")
        if not 0 <= self.retention < 1:
            raise ValueError(f"method.retention must be in [0, 1), got {self.retention}")


def calibrate(model: FlowModel, steps: int) -> list[float]:
    """MagCache's per-step magnitude ratios on the calibration batch (one full Euler run)."""
    sampler = cached_euler(model, steps, lambda _now: DiffusersMagCacheConfig(calibrate=True,
                                                                              num_inference_steps=steps))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        sampler(model.calibration_noise, model.calibration_labels)
    lines = out.getvalue().splitlines()
    try:
        at = next(i for i, line in enumerate(lines) if _MARKER in line)
        ratios = ast.literal_eval(next(line for line in lines[at + 1:] if line.strip()))
    except (StopIteration, ValueError, SyntaxError):
        raise RuntimeError(f"MagCache calibration printed no ratios after {_MARKER!r}; got: {out.getvalue()[:300]!r}") \
            from None
    if len(ratios) != steps:
        raise RuntimeError(f"MagCache calibration gave {len(ratios)} ratios for {steps} steps")
    return [float(r) for r in ratios]


@register_method("mag_cache", MagCacheConfig)
class MagCache(FlowSampler):
    skips_compute = True

    def build(self, model: FlowModel) -> Sampler:
        ratios = calibrate(model, self.cfg.steps)
        return cached_euler(model, self.cfg.steps, lambda _now: DiffusersMagCacheConfig(
            threshold=self.cfg.threshold, max_skip_steps=self.cfg.max_skip, retention_ratio=self.cfg.retention,
            num_inference_steps=self.cfg.steps, mag_ratios=ratios))

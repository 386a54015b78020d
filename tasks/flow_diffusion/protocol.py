"""The flow-diffusion workload's method protocol: a sampler integrates a flow DiT's velocity from noise to images.

A method (``methods/flow_diffusion/<name>.py``) subclasses ``FlowSampler`` and implements ``build``:
given the workload's ``FlowModel`` it returns a ``Sampler``, a callable ``(noise, labels) -> images``
that names the transformer it calls (a cache method hooks its own copy, so that the shared model
stays clean for the next point). Calibration (MagCache ratios, ERTACache's residual profile) runs in
``build`` on the model's calibration batch, never on the evaluation noise.

Conventions (rectified flow, diffusers' ``FlowMatchEulerDiscreteScheduler``): x_sigma = (1 - sigma) x0 +
sigma eps, the model predicts v = eps - x0 at timestep 1000 sigma, and sampling integrates
dx/dsigma = v from sigma = 1 to 0 on the scheduler's sigma grid.
"""

from __future__ import annotations

import copy
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator

import torch
from diffusers import DiTTransformer2DModel, FlowMatchEulerDiscreteScheduler
from diffusers.models.cache_utils import CacheMixin

from harness.plugin import Method, PluginConfig


class CachedDiT(CacheMixin, DiTTransformer2DModel):
    """diffusers' DiT with ``CacheMixin`` (``enable_cache``/``cache_context``), which the class itself lacks.

    Loads the same weights and config as ``DiTTransformer2DModel``; only the cache verbs are added.
    """


def timesteps_for(sigma: float | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """The model's timestep input for noise level ``sigma`` (diffusers' flow convention: 1000 sigma)."""
    t = torch.as_tensor(sigma, dtype=torch.float32, device=device) * 1000.0
    return t.expand(batch) if t.ndim == 0 else t


@dataclass
class FlowModel:
    """What a sampler gets: the shared (never hooked) transformer, the sigma grid, calibration data."""

    transformer: DiTTransformer2DModel
    scheduler_config: dict[str, Any]
    calibration_noise: torch.Tensor  # from a fixed seed of its own, disjoint from every evaluation seed
    calibration_labels: torch.Tensor
    verifier: Callable[[torch.Tensor], torch.Tensor]  # images -> class logits (the zoo digits classifier)

    @property
    def num_blocks(self) -> int:
        return len(self.transformer.transformer_blocks)

    def copy(self) -> CachedDiT:
        """A private copy with the cache verbs, for methods that install hooks (0.4M parameters: cheap)."""
        clone = copy.deepcopy(self.transformer)
        clone.__class__ = CachedDiT
        return clone

    def scheduler(self) -> FlowMatchEulerDiscreteScheduler:
        return FlowMatchEulerDiscreteScheduler.from_config(self.scheduler_config)

    def sigmas(self, steps: int) -> torch.Tensor:
        """The ``steps + 1`` noise levels (1 -> 0) of diffusers' flow Euler schedule: the shared time grid."""
        sched = self.scheduler()
        sched.set_timesteps(steps)
        return sched.sigmas.to(torch.float32).cpu()

    @staticmethod
    def velocity(transformer: torch.nn.Module, x: torch.Tensor, sigma: float | torch.Tensor,
                 labels: torch.Tensor) -> torch.Tensor:
        return transformer(x, timestep=timesteps_for(sigma, len(x), x.device), class_labels=labels).sample


class Sampler:
    """``(noise, labels) -> images``; ``transformer`` is the module it calls (costs are counted on it)."""

    def __init__(self, transformer: torch.nn.Module, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        self.transformer = transformer
        self._fn = fn

    @torch.no_grad()
    def __call__(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self._fn(noise, labels)


class FlowSampler(Method):
    """A flow-DiT sampler. ``skips_compute``: the method claims to skip block computation (a cache);
    the task fails the point if it did not (a hook that silently hooks nothing)."""

    skips_compute: ClassVar[bool] = False

    def build(self, model: FlowModel) -> Sampler:
        raise NotImplementedError(f"{type(self).__name__} must build its sampler")


@dataclass
class StepsConfig(PluginConfig):
    steps: int = 20
    LABEL_ALWAYS = ("steps",)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"method.steps must be >= 1, got {self.steps}")


def scheduler_loop(transformer: torch.nn.Module, scheduler: Any, steps: int, noise: torch.Tensor,
                   labels: torch.Tensor, before_call: Callable[[float], None] | None = None) -> torch.Tensor:
    """The generic diffusers loop on a flow-matching scheduler (Euler, Heun): the scheduler decides each step.
    ``before_call(t)`` runs before each transformer call with its timestep (for hooks that ask for it)."""
    scheduler.set_timesteps(steps, device=noise.device)
    x = noise
    for t in scheduler.timesteps:
        if before_call is not None:
            before_call(float(t))
        v = transformer(x, timestep=t.expand(len(x)), class_labels=labels).sample
        x = scheduler.step(v, t, x).prev_sample
    return x


def cached_euler(model: FlowModel, steps: int, make_config: Callable[[Callable[[], float]], Any]) -> Sampler:
    """Flow Euler on a private copy of the transformer with a diffusers cache hook installed.

    ``make_config(current_timestep)`` builds the hook's config; ``current_timestep()`` returns the
    timestep (0-1000) of the call being made, for hooks that gate on it (PAB, FasterCache). Each
    sampling run starts from a reset cache (``_reset_stateful_cache``) inside ``cache_context("cond")``:
    without the reset, state from the previous run (another batch size) leaks into the next.
    """
    transformer = model.copy()
    now = {"t": 1000.0}
    transformer.enable_cache(make_config(lambda: now["t"]))
    scheduler = model.scheduler()

    def run(noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        transformer._reset_stateful_cache()
        with transformer.cache_context("cond"):
            return scheduler_loop(transformer, scheduler, steps, noise, labels,
                                  before_call=lambda t: now.__setitem__("t", t))

    return Sampler(transformer, run)


# Modules whose calls mark the real work of one block: the first projection of its attention and the
# output projection of its feed-forward. A cache that skips a block (or only its attention) skips
# these calls; a hook on the block or the attention module itself still sees its own call, so
# counting calls of those would miss the skip.
_ATTN_WORK = re.compile(r"transformer_blocks\.\d+\.attn1\.to_q")
_FF_WORK = re.compile(r"transformer_blocks\.\d+\.ff\.net\.2")


@contextmanager
def count_block_work(transformer: torch.nn.Module) -> Iterator[dict[str, int]]:
    """Count items passing through each block's attention and feed-forward (calls x batch).

    ``effective_nfe`` = (attention items + feed-forward items) / (2 x blocks x samples): full
    transformer evaluations per sample; a block skipped entirely counts 0, attention alone 1/2.
    """
    counts = {"attn": 0, "ff": 0}
    handles = []

    def hook(kind: str) -> Callable[..., None]:
        def fn(module: torch.nn.Module, args: tuple, output: Any) -> None:
            counts[kind] += int(args[0].shape[0])
        return fn

    for name, module in transformer.named_modules():
        if _ATTN_WORK.fullmatch(name):
            handles.append(module.register_forward_hook(hook("attn")))
        elif _FF_WORK.fullmatch(name):
            handles.append(module.register_forward_hook(hook("ff")))
    if not handles:
        raise ValueError(f"{type(transformer).__name__} has no modules matching {_ATTN_WORK.pattern} or "
                         f"{_FF_WORK.pattern}: effective NFE cannot be counted on it")
    try:
        yield counts
    finally:
        for h in handles:
            h.remove()

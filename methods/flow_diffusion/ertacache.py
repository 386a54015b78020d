"""ERTACache (Peng et al. 2025, "ERTACache: Error Rectification and Timesteps Adjustment for Efficient
Diffusion", arXiv 2508.21091; no library implementation) on flow Euler, implemented from the paper's
description.

The paper decomposes the error of reusing a cached block output into a *feature shift* error (the
cached residual is not the residual the model would give now) and a *step amplification* error (a
wrong velocity multiplied by a fixed step size), and rectifies both with three components. As
implemented here (the cached quantity is the residual of the whole block stack, R = h_L - h_0, as in
TeaCache/First Block Cache; the patch embedding and output head always run):

1. Offline residual profiling -> reuse schedule. On a calibration batch (never the evaluation
   noise), the full model runs along the Euler trajectory and records R_i at every step i. The
   relative L1 change d_i = |R_i - R_{i-1}|_1 / |R_{i-1}|_1 is accumulated since the last full step;
   step i reuses the cache while the accumulation stays below delta (else it computes and resets):
       reuse_i  <=>  sum_{k=j+1..i} d_k < delta,   j = last computed step.
   delta is found by bisection so that exactly ``full_evals`` steps compute (step 0 always does).
   The schedule is fixed offline: deterministic for a calibration seed, no online decision.
2. Closed-form residual linearization (feature-shift rectification). For a reused step i with
   source step j, the shift Delta_i = R_i - R_j is modelled per hidden channel c as linear in the
   cached residual,  Delta_i[c] ~ a_i[c] R_j[c] + b_i[c],  fitted by least squares over calibration
   samples and tokens (closed form: a = Cov(R_j, Delta) / (Var(R_j) + lambda),
   b = E[Delta] - a E[R_j]); at inference R^_i = R_j + a_i * R_j + b_i.
3. Trajectory-aware timestep adjustment (step-amplification rectification). On a reused step the
   Euler step length is scaled by phi_i, the least-squares coefficient that best maps the cached
   velocity's step onto the true one along the calibration trajectory:
       x_{i+1} = x_i + phi_i (sigma_{i+1} - sigma_i) v^_i,   phi_i = <v^_i, v_i> / <v^_i, v^_i>,
   with v_i the full model's velocity at the same point. Both fits (2, 3) are made along the
   trajectory the cached sampler itself follows on the calibration batch (full and corrected
   evaluations side by side), so they account for the drift earlier reuses cause.

``correction`` and ``adjust_timestep`` switch 2 and 3 off for ablations; with both off this is
residual reuse on the profiled schedule. Reused steps skip every transformer block (their
``effective_nfe`` is 0; the head runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from harness.registry import register_method
from tasks.flow_diffusion.protocol import FlowModel, FlowSampler, Sampler, StepsConfig


@dataclass
class ERTACacheConfig(StepsConfig):
    full_evals: int = 10  # steps that run the blocks (the rest reuse); 10 of 20 = 2x fewer evaluations
    correction: bool = True  # component 2: closed-form residual linearization
    adjust_timestep: bool = True  # component 3: trajectory-aware step scaling
    ridge: float = 1e-4  # lambda in the closed-form fit, relative to Var(R_j)
    LABEL_ALWAYS = ("steps", "full_evals")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.full_evals <= self.steps:
            raise ValueError(f"method.full_evals={self.full_evals}; valid: 1..method.steps ({self.steps})")
        if self.ridge < 0:
            raise ValueError(f"method.ridge must be >= 0, got {self.ridge}")


@dataclass
class Schedule:
    """What offline profiling decided: per step, compute or reuse (and from which step), and the fits."""

    compute: list[bool]
    source: list[int]  # step whose residual a reused step starts from (itself when computed)
    delta: float
    a: dict[int, torch.Tensor] = field(default_factory=dict)  # per reused step: (hidden,) slope
    b: dict[int, torch.Tensor] = field(default_factory=dict)  # per reused step: (hidden,) offset
    phi: dict[int, float] = field(default_factory=dict)  # per reused step: step-length scale


class _Gate:
    """Runs the blocks, or skips all of them and adds a given residual (on a private copy of the model)."""

    def __init__(self, transformer: torch.nn.Module):
        self.reuse = False
        self.residual_in: torch.Tensor | None = None  # R^ to add when reusing
        self.h0: torch.Tensor | None = None
        self.residual: torch.Tensor | None = None  # R of the last computed call
        blocks = transformer.transformer_blocks
        last = len(blocks) - 1
        for k, block in enumerate(blocks):
            block.forward = self._gated(k, last, block.forward)  # instance attribute: shadows the class method

    def _gated(self, k: int, last: int, forward: Any) -> Any:
        def fn(hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            if self.reuse:  # every block is the identity, the last adds the residual: h_L = h_0 + R^
                return hidden_states + self.residual_in if k == last else hidden_states
            if k == 0:
                self.h0 = hidden_states
            out = forward(hidden_states, *args, **kwargs)
            if k == last:
                self.residual = out - self.h0
            return out
        return fn


def profile_schedule(d: list[float], steps: int, full_evals: int) -> tuple[list[bool], float]:
    """Component 1: the accumulated-change rule at the delta that computes exactly ``full_evals`` steps."""
    def rule(delta: float) -> list[bool]:
        compute, acc = [True], 0.0
        for i in range(1, steps):
            acc += d[i]
            if acc < delta:
                compute.append(False)
            else:
                compute.append(True)
                acc = 0.0
        return compute

    lo, hi = 0.0, sum(d) + 1.0  # delta=0: every step computes; delta > total change: only step 0
    best = rule(lo)
    for _ in range(100):
        mid = (lo + hi) / 2
        c = rule(mid)
        if sum(c) > full_evals:
            lo = mid
        else:
            hi, best = mid, c
        if sum(best) == full_evals:
            break
    if sum(best) != full_evals:
        raise RuntimeError(f"ERTACache: no threshold gives exactly {full_evals} full steps of {steps} (profiled "
                           f"changes {[round(x, 4) for x in d]}); choose another method.full_evals")
    return best, hi


@register_method("ertacache", ERTACacheConfig)
class ERTACache(FlowSampler):
    skips_compute = True

    @torch.no_grad()
    def calibrate(self, model: FlowModel, transformer: torch.nn.Module, gate: _Gate) -> Schedule:
        cfg = self.cfg
        sigmas = model.sigmas(cfg.steps)
        x0, y = model.calibration_noise, model.calibration_labels
        # Component 1: residual profile along the full-compute trajectory.
        x, residuals = x0, []
        for i in range(cfg.steps):
            v = FlowModel.velocity(transformer, x, sigmas[i], y)
            residuals.append(gate.residual)
            x = x + (sigmas[i + 1] - sigmas[i]) * v
        d = [0.0] + [((residuals[i] - residuals[i - 1]).abs().mean() / residuals[i - 1].abs().mean()).item()
                     for i in range(1, cfg.steps)]
        compute, delta = profile_schedule(d, cfg.steps, cfg.full_evals)
        source, last = [], 0
        for i, c in enumerate(compute):
            last = i if c else last
            source.append(last)
        sched = Schedule(compute, source, delta)
        # Components 2 and 3: fit along the cached sampler's own calibration trajectory.
        x, cached = x0, None
        for i in range(cfg.steps):
            gate.reuse = False
            v_true = FlowModel.velocity(transformer, x, sigmas[i], y)
            r_true = gate.residual
            if compute[i]:
                cached, v_step = r_true, v_true
            else:
                a, b = self._fit(cached, r_true - cached) if cfg.correction else (None, None)
                if a is not None:
                    sched.a[i], sched.b[i] = a, b
                r_hat = self._corrected(cached, sched, i)
                gate.reuse, gate.residual_in = True, r_hat
                v_hat = FlowModel.velocity(transformer, x, sigmas[i], y)
                gate.reuse = False
                phi = 1.0
                if cfg.adjust_timestep:
                    phi = ((v_hat * v_true).sum() / (v_hat * v_hat).sum().clamp_min(1e-12)).item()
                sched.phi[i] = phi
                v_step = phi * v_hat
            x = x + (sigmas[i + 1] - sigmas[i]) * v_step
        return sched

    def _fit(self, r_src: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Component 2, closed form per hidden channel over samples and tokens (ridge-regularised OLS)."""
        xs, ys = r_src.reshape(-1, r_src.shape[-1]), delta.reshape(-1, delta.shape[-1])
        xm, ym = xs.mean(0), ys.mean(0)
        var = (xs - xm).pow(2).mean(0)
        a = ((xs - xm) * (ys - ym)).mean(0) / (var + self.cfg.ridge * var.mean() + 1e-12)
        return a, ym - a * xm

    @staticmethod
    def _corrected(cached: torch.Tensor, sched: Schedule, i: int) -> torch.Tensor:
        if i in sched.a:
            return cached + sched.a[i] * cached + sched.b[i]
        return cached

    def build(self, model: FlowModel) -> Sampler:
        transformer = model.copy()
        gate = _Gate(transformer)
        self.schedule = sched = self.calibrate(model, transformer, gate)
        sigmas = model.sigmas(self.cfg.steps)

        def run(noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            x, cached = noise, None
            for i in range(self.cfg.steps):
                if sched.compute[i]:
                    gate.reuse = False
                    v = FlowModel.velocity(transformer, x, sigmas[i], labels)
                    cached = gate.residual
                    step = sigmas[i + 1] - sigmas[i]
                else:
                    gate.reuse, gate.residual_in = True, self._corrected(cached, sched, i)
                    v = FlowModel.velocity(transformer, x, sigmas[i], labels)
                    gate.reuse = False
                    step = sched.phi[i] * (sigmas[i + 1] - sigmas[i])
                x = x + step * v
            return x

        return Sampler(transformer, run)

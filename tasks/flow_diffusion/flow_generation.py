"""Class-conditional image generation with a flow-matching DiT: the workload of samplers and feature caches.

Paired design: at a seed, every method starts from the same noise and the same class labels (the
real digits' labels, shuffled by the seed), so FID, trajectory error and judge accuracy differ only
by the method. Costs that mean something for caching: ``nfe`` (transformer calls per sample, by the
runner), ``effective_nfe`` (full transformer-block evaluations per sample: what a cache saves),
FLOPs (counted under the MATH SDPA backend by the runner) and latency. Quality: FID on the digits
classifier's features (as ``image_generation``), trajectory error (RMSE of each final image against
a ``reference_steps`` Euler solve from the same noise and label), and the accuracy of an
independently trained judge classifier on the conditioning labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from harness.metrics import MetricInfo, register_metric
from harness.metrics.fid import FrechetDistance, classifier_scores, real_features
from harness.plugin import Observation, PluginConfig, Prepared, Task
from harness.progress import track
from harness.registry import register_task
from tasks.flow_diffusion.protocol import FlowModel, FlowSampler, count_block_work
from tasks.zoo import check_source, resolve
from tasks.zoo.digits import DigitsClassifier, digits_tensor

CALIBRATION_SEED = 2**31 - 1  # calibration noise/labels: a seed no experiment uses for evaluation

for _name, _meta in {
    "effective_nfe": MetricInfo("evals/sample", False, "full transformer evaluations per sample: items through "
                                "each block's attention and feed-forward / (2 x blocks x samples)", "count", True),
    "traj_error": MetricInfo("", False, "RMSE of each final image against a long Euler solve (task.reference_steps) "
                             "from the same noise and label", "mean over samples"),
    "traj_error_bootstrap": MetricInfo("", False, "traj_error of one bootstrap resample of the samples",
                                       "one resample with replacement"),
    "judge_accuracy": MetricInfo("", True, "fraction of samples the independent judge classifier (zoo:digits_judge) "
                                 "assigns to their conditioning label", "mean over samples"),
    "judge_accuracy_bootstrap": MetricInfo("", True, "judge_accuracy of one bootstrap resample",
                                           "one resample with replacement"),
    "verifier_accuracy": MetricInfo("", True, "fraction of samples the task's classifier (the noise-search verifier) "
                                    "assigns to their conditioning label", "mean over samples"),
}.items():
    register_metric(_name, _meta)


@dataclass
class FlowGenerationConfig(PluginConfig):
    SMOKE = {"n_samples": 64, "batch_size": 4, "eval_batch": 64, "fid_bootstrap": 20, "reference_steps": 50,
             "calibration_samples": 16}  # profile=smoke
    dataset: str = "digits"
    n_samples: int = 1797  # quality sample size; 1797 = every real digit, labels = their labels shuffled
    batch_size: int = 64  # images per timed call
    eval_batch: int = 600  # chunk size when generating the quality samples
    classifier: str = "zoo:digits_classifier"  # FID features, verifier_accuracy, noise search's verifier
    judge: str = "zoo:digits_judge"  # independent classifier for judge_accuracy
    fid_bootstrap: int = 200  # resamples for the FID / traj_error / judge_accuracy CIs (same indices)
    reference_steps: int = 200  # Euler steps of the reference solve for traj_error
    calibration_samples: int = 64  # batch that calibrating methods (MagCache, ERTACache) profile on

    def __post_init__(self) -> None:
        if self.dataset != "digits":
            raise ValueError(f"task.dataset={self.dataset!r}; valid: digits")
        for key in ("n_samples", "batch_size", "eval_batch", "reference_steps", "calibration_samples"):
            if getattr(self, key) < 1:
                raise ValueError(f"task.{key} must be >= 1, got {getattr(self, key)}")
        if self.n_samples < 2:
            raise ValueError(f"task.n_samples must be >= 2 for FID, got {self.n_samples}")
        if self.batch_size > self.n_samples:
            raise ValueError(f"task.batch_size={self.batch_size} exceeds task.n_samples={self.n_samples}")
        if self.fid_bootstrap and self.fid_bootstrap < 20:
            raise ValueError(f"task.fid_bootstrap must be 0 (off) or >= 20, got {self.fid_bootstrap}")


def _load(source: str, device: torch.device, dtype: torch.dtype) -> tuple[torch.nn.Module, dict]:
    from diffusers import DiTTransformer2DModel, FlowMatchEulerDiscreteScheduler
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    folder = resolve(source)
    transformer = DiTTransformer2DModel.from_pretrained(folder, subfolder="transformer")
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(folder, subfolder="scheduler")
    return transformer.to(device=device, dtype=dtype).eval(), dict(scheduler.config)


@register_task("flow_generation", FlowGenerationConfig)
class FlowGeneration(Task):
    method_protocol = FlowSampler

    @classmethod
    def check(cls, cfg: FlowGenerationConfig, model: dict[str, Any]) -> None:
        super().check(cfg, model)
        check_source(model.get("source"), "model.source", "flow DiT (transformer/ and scheduler/)",
                     marker="transformer/config.json")
        check_source(cfg.classifier, "task.classifier", "digits classifier", marker="config.json")
        check_source(cfg.judge, "task.judge", "digits classifier", marker="config.json")

    def __init__(self, cfg: FlowGenerationConfig, model: dict[str, Any], device: torch.device, dtype: torch.dtype):
        self.cfg, self.device, self.dtype = cfg, device, dtype
        self.transformer, self.scheduler_config = _load(model["source"], device, dtype)
        tc = self.transformer.config
        self.shape = (tc.in_channels, tc.sample_size, tc.sample_size)
        self.real, self.real_labels = digits_tensor()
        if self.real.shape[1:] != self.shape:
            raise ValueError(f"model {model['source']!r} makes {self.shape} images, digits are "
                             f"{tuple(self.real.shape[1:])}")
        self.classifier = DigitsClassifier.from_pretrained(resolve(cfg.classifier)).to(device)
        self.judge = DigitsClassifier.from_pretrained(resolve(cfg.judge)).to(device)
        feats = real_features(cfg.dataset, f"digits_classifier:{cfg.classifier}@{device}",
                              lambda: self._features(self.real))
        self.fid = FrechetDistance(feats)
        noise, labels = self.inputs(CALIBRATION_SEED, cfg.calibration_samples)
        self.model = FlowModel(self.transformer, self.scheduler_config, noise, labels, self.classifier)
        self._reference = lru_cache(maxsize=4)(self._reference_uncached)

    @torch.no_grad()
    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.classifier.features(c.to(self.device, torch.float32)).cpu()
                          for c in images.split(self.cfg.eval_batch)])

    def inputs(self, seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise and class labels that depend only on ``seed`` and ``n``: shared by every method (paired)."""
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn((n, *self.shape), generator=gen)
        reps = -(-n // len(self.real_labels))
        labels = torch.cat([self.real_labels[torch.randperm(len(self.real_labels), generator=gen)]
                            for _ in range(reps)])[:n]
        return noise.to(self.device, self.dtype), labels.to(self.device)

    @torch.no_grad()
    def _reference_uncached(self, seed: int, n: int) -> torch.Tensor:
        """The long Euler solve from the evaluation noise: the trajectory every method is measured against."""
        noise, labels = self.inputs(seed, n)
        sigmas = self.model.sigmas(self.cfg.reference_steps)
        out = []
        for xc, yc in track(list(zip(noise.split(self.cfg.eval_batch), labels.split(self.cfg.eval_batch))),
                            desc=f"reference solve ({self.cfg.reference_steps} Euler steps)"):
            x = xc
            for s, s_next in zip(sigmas[:-1], sigmas[1:]):
                x = x + (s_next - s) * FlowModel.velocity(self.transformer, x, s, yc)
            out.append(x.float().cpu())
        return torch.cat(out)

    def _bootstrap_indices(self, seed: int, n: int) -> torch.Tensor:
        # Same indices for every method at this seed and n: the differences are paired (harness.contrast).
        gen = torch.Generator().manual_seed(seed + 4_000_037)
        return torch.randint(0, n, (self.cfg.fid_bootstrap, n), generator=gen)

    def prepare(self, method: Any, seed: int) -> Prepared:
        if not isinstance(method, FlowSampler):
            raise TypeError(f"task flow_generation needs a flow sampler method, got {type(method).__name__}")
        sampler = method.build(self.model)
        noise, labels = self.inputs(seed, self.cfg.n_samples)
        tn, tl = noise[: self.cfg.batch_size], labels[: self.cfg.batch_size]

        def evaluate() -> list[Observation]:
            with count_block_work(sampler.transformer) as counts:
                sampler(tn, tl)
            blocks = self.model.num_blocks
            effective = (counts["attn"] + counts["ff"]) / (2 * blocks * len(tn))
            calls = _count_calls(sampler, tn, tl)
            if method.skips_compute and effective >= calls - 1e-9:
                raise RuntimeError(
                    f"method {method.name} is a cache but skipped nothing: effective NFE {effective:g} = transformer "
                    f"calls {calls} (its hooks matched no module, or its thresholds never allow reuse)")
            images = torch.cat([
                sampler(xc, yc).float().cpu()
                for xc, yc in track(list(zip(noise.split(self.cfg.eval_batch), labels.split(self.cfg.eval_batch))),
                                    desc="sample batches")
            ])
            n = len(images)
            ref = self._reference(seed, n)
            err = (images - ref).flatten(1).pow(2).mean(1).sqrt()  # per-sample RMSE against the reference
            clamped = images.clamp(-1, 1)
            feats = self._features(clamped)
            chunks = clamped.split(self.cfg.eval_batch)
            with torch.no_grad():
                logits = torch.cat([self.classifier(c.to(self.device)).cpu() for c in chunks])
                judge = torch.cat([self.judge(c.to(self.device)).cpu() for c in chunks])
            y = labels.cpu()
            judged = (judge.argmax(1) == y).float()
            obs = [Observation("effective_nfe", effective), Observation("fid", self.fid(feats), n=n),
                   Observation("traj_error", err.mean().item(), n=n),
                   Observation("judge_accuracy", judged.mean().item(), n=n),
                   Observation("verifier_accuracy", (logits.argmax(1) == y).float().mean().item(), n=n)]
            if self.cfg.fid_bootstrap:
                idx = self._bootstrap_indices(seed, n)
                obs += [Observation("fid_bootstrap", v, sample=i, n=n)
                        for i, v in enumerate(self.fid.bootstrap(feats, self.cfg.fid_bootstrap, seed))]
                obs += [Observation("traj_error_bootstrap", v.item(), sample=i, n=n)
                        for i, v in enumerate(err[idx].mean(1))]
                obs += [Observation("judge_accuracy_bootstrap", v.item(), sample=i, n=n)
                        for i, v in enumerate(judged[idx].mean(1))]
            obs += [Observation(k, v, n=n) for k, v in classifier_scores(logits).items()]
            return obs

        return Prepared(
            call=lambda: sampler(tn, tl),
            batch_size=len(tn),
            flops_call=lambda: sampler(tn[:1], tl[:1]),
            stage_module=sampler.transformer,
            stage="transformer_call",
            evaluate=evaluate,
        )


def _count_calls(sampler: Any, noise: torch.Tensor, labels: torch.Tensor) -> int:
    """Transformer calls in one sampler call (the runner's ``nfe``; recounted here for the cache check)."""
    calls = [0]
    handle = sampler.transformer.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        sampler(noise, labels)
    finally:
        handle.remove()
    return calls[0]

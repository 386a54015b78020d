"""Unconditional image generation with a diffusers UNet: the sampler workload.

The timed call generates ``batch_size`` images from fixed noise; quality is measured on
``n_samples`` images generated from noise that depends only on the seed, so every method at a
given seed starts from the same noise (a paired design: across seeds FID moved by sd ~4 at
n=1797 on digits, paired differences by < 1.5).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import torch
from diffusers import SchedulerMixin

from harness.metrics.fid import (
    FrechetDistance,
    InceptionFeatures,
    KernelDistance,
    classifier_scores,
    extractor_factory,
    load_extractor,
    real_features,
)
from harness.plugin import Observation, PluginConfig, Prepared, Task
from harness.progress import track
from harness.registry import register_task
from tasks.diffusion.sampler import SamplerMethod
from tasks.zoo import check_source, resolve
from tasks.zoo.digits import DigitsClassifier, digits_tensor

DATASETS = ("digits",)
FEATURES = ("digits_classifier", "inception")


@dataclass
class ImageGenerationConfig(PluginConfig):
    SMOKE = {"n_samples": 32, "batch_size": 4, "eval_batch": 32, "fid_bootstrap": 20}  # profile=smoke
    dataset: str = "digits"
    n_samples: int = 1797  # quality sample size; 1797 = every real digit
    batch_size: int = 64  # images per timed call
    eval_batch: int = 600  # chunk size when generating the quality samples (memory bound)
    # FID/KID feature extractor: digits_classifier | inception | python:MODULE:FACTORY (a user callable,
    # see harness.metrics.fid.load_extractor)
    features: str = "digits_classifier"
    classifier: str = "zoo:digits_classifier"  # IS-like scores and digits FID features
    inception_weights: str | None = None  # local pt_inception-2015-12-05 weights for features=inception
    fid_bootstrap: int = 200  # resamples of the generated set for the FID CI
    # KID averaged over this many random subsets (0: no KID). torch-fidelity uses 100; here 10 subsets of
    # 1000 cost 0.57 s per point on 1 core (float64, 128-d features; bench/metric_costs.py), 100 about 6 s.
    kid_subsets: int = 10
    kid_subset_size: int | None = None  # samples per KID subset; None: min(1000, n_samples, real samples)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"task.dataset={self.dataset!r}; valid: {', '.join(DATASETS)}")
        if self.features not in FEATURES and not self.features.startswith("python:"):
            raise ValueError(f"task.features={self.features!r}; valid: {', '.join(FEATURES)}, or python:MODULE:FACTORY")
        for key in ("n_samples", "batch_size", "eval_batch"):
            if getattr(self, key) < 1:
                raise ValueError(f"task.{key} must be >= 1, got {getattr(self, key)}")
        if self.n_samples < 2:
            raise ValueError(f"task.n_samples must be >= 2 for FID, got {self.n_samples}")
        if self.fid_bootstrap and self.fid_bootstrap < 20:
            raise ValueError(f"task.fid_bootstrap must be 0 (off) or >= 20, got {self.fid_bootstrap}")
        if self.kid_subsets < 0:
            raise ValueError(f"task.kid_subsets must be >= 0 (0: off), got {self.kid_subsets}")
        if self.kid_subset_size is not None and not 2 <= self.kid_subset_size <= self.n_samples:
            raise ValueError(f"task.kid_subset_size={self.kid_subset_size}; valid: 2..task.n_samples "
                             f"({self.n_samples}) or null (min(1000, n_samples))")


@lru_cache(maxsize=None)
def _step_takes_generator(cls: type) -> bool:
    return "generator" in inspect.signature(cls.step).parameters


@torch.no_grad()
def denoise(unet: torch.nn.Module, scheduler: SchedulerMixin, steps: int, noise: torch.Tensor,
            generator: torch.Generator | None) -> torch.Tensor:
    """The generic diffusers sampling loop; the scheduler decides what each step does."""
    scheduler.set_timesteps(steps, device=noise.device)
    extra = {"generator": generator} if _step_takes_generator(type(scheduler)) else {}
    x = noise * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        eps = unet(scheduler.scale_model_input(x, t), t).sample
        x = scheduler.step(eps, t, x, **extra).prev_sample
    return x


def _load_unet(source: str, device: torch.device, dtype: torch.dtype) -> tuple[torch.nn.Module, dict]:
    """A diffusers pipeline folder or hub id (``from_pretrained``), as any user's model loads."""
    from diffusers import DiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # no progress bars or accelerate hints inside timed runs
    diffusers_logging.disable_progress_bar()
    pipe = DiffusionPipeline.from_pretrained(resolve(source), low_cpu_mem_usage=False)
    unet = getattr(pipe, "unet", None)
    if unet is None:
        raise ValueError(f"model {source!r} has no 'unet' component; components: {list(pipe.components)}")
    return unet.to(device=device, dtype=dtype).eval(), dict(pipe.scheduler.config)


@register_task("image_generation", ImageGenerationConfig)
class ImageGeneration(Task):
    method_protocol = SamplerMethod

    @classmethod
    def check(cls, cfg: ImageGenerationConfig, model: dict[str, Any]) -> None:
        super().check(cfg, model)
        check_source(model.get("source"), "model.source", "diffusers pipeline", marker="model_index.json")
        check_source(cfg.classifier, "task.classifier", "digits classifier", marker="config.json")
        if cfg.features.startswith("python:"):
            extractor_factory(cfg.features)

    def __init__(self, cfg: ImageGenerationConfig, model: dict[str, Any], device: torch.device, dtype: torch.dtype):
        self.cfg, self.device, self.dtype = cfg, device, dtype
        self.unet, self.scheduler_config = _load_unet(model["source"], device, dtype)
        cfg_unet = self.unet.config
        self.shape = (cfg_unet.in_channels, cfg_unet.sample_size, cfg_unet.sample_size)
        real, _ = digits_tensor()
        if real.shape[1:] != self.shape:
            raise ValueError(f"model {model['source']!r} makes {self.shape} images, dataset {cfg.dataset!r} has "
                             f"{tuple(real.shape[1:])}")
        self.classifier = DigitsClassifier.from_pretrained(resolve(cfg.classifier)).to(device)
        self.extractor: Callable[[torch.Tensor], torch.Tensor]
        if cfg.features == "inception":
            self.extractor, extractor_id = InceptionFeatures(cfg.inception_weights).to(device), \
                f"inception:{cfg.inception_weights}"
        elif cfg.features.startswith("python:"):
            self.extractor, extractor_id = load_extractor(cfg.features), cfg.features
            if isinstance(self.extractor, torch.nn.Module):
                self.extractor = self.extractor.to(device).eval()
        else:
            self.extractor, extractor_id = self.classifier.features, f"digits_classifier:{cfg.classifier}"
        feats = real_features(cfg.dataset, f"{extractor_id}@{device}", lambda: self._features(real))
        self.fid = FrechetDistance(feats)
        self.kid = None
        if cfg.kid_subsets:
            size = cfg.kid_subset_size or min(1000, cfg.n_samples, len(feats))
            self.kid = KernelDistance(feats, cfg.kid_subsets, size)

    @torch.no_grad()
    def _features(self, images: torch.Tensor) -> torch.Tensor:
        chunks = images.split(self.cfg.eval_batch)
        return torch.cat([self.extractor(c.to(self.device, torch.float32)).cpu() for c in chunks])

    def noise(self, seed: int, n: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.randn((n, *self.shape), generator=gen).to(self.device, self.dtype)

    def _generator(self, seed: int) -> torch.Generator:
        # Separate stream for ancestral samplers' per-step noise, also shared by every method.
        return torch.Generator(self.device).manual_seed(seed + 1_000_003)

    def prepare(self, method: Any, seed: int) -> Prepared:
        if not isinstance(method, SamplerMethod):
            raise TypeError(f"task image_generation needs a sampler method, got {type(method).__name__}")
        trained = self.scheduler_config["num_train_timesteps"]
        if method.steps > trained:
            raise ValueError(f"method.steps={method.steps} exceeds the model's num_train_timesteps={trained}")
        scheduler = method.scheduler(self.scheduler_config)
        timed_noise = self.noise(seed, self.cfg.batch_size)

        def sample(noise: torch.Tensor, seed_: int) -> torch.Tensor:
            return denoise(self.unet, scheduler, method.steps, noise, self._generator(seed_))

        def evaluate() -> list[Observation]:
            noise = self.noise(seed, self.cfg.n_samples)
            gen = self._generator(seed)
            images = torch.cat([
                denoise(self.unet, scheduler, method.steps, chunk, gen).float().clamp(-1, 1).cpu()
                for chunk in track(noise.split(self.cfg.eval_batch), desc="FID sample batches")
            ])
            n = len(images)
            feats = self._features(images)
            obs = [Observation("fid", self.fid(feats), n=n)]
            if self.kid is not None:
                kid, kid_std = self.kid(feats, seed)
                obs += [Observation("kid", kid, n=n), Observation("kid_std", kid_std, n=n)]
            if self.cfg.fid_bootstrap:
                reps = self.fid.bootstrap(feats, self.cfg.fid_bootstrap, seed)
                obs += [Observation("fid_bootstrap", v, sample=i, n=n) for i, v in enumerate(reps)]
            with torch.no_grad():
                chunks = images.split(self.cfg.eval_batch)
                logits = torch.cat([self.classifier(c.to(self.device)).cpu() for c in chunks])
            obs += [Observation(k, v, n=n) for k, v in classifier_scores(logits).items()]
            return obs

        return Prepared(
            call=lambda: sample(timed_noise, seed),
            batch_size=self.cfg.batch_size,
            flops_call=lambda: sample(timed_noise[:1], seed),
            stage_module=self.unet,
            stage="denoise_step",
            evaluate=evaluate,
        )

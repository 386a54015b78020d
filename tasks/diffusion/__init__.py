"""Diffusion workload: image generation with a diffusers denoiser; methods are samplers (``methods/diffusion/``)."""

from tasks.diffusion import image_generation, sampler  # noqa: F401  (importing registers the task)

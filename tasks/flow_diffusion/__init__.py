"""Flow-diffusion workload: class-conditional generation with a flow-matching DiT; methods are samplers and
feature caches (``methods/flow_diffusion/``)."""

from tasks.flow_diffusion import flow_generation, protocol  # noqa: F401  (importing registers the task)

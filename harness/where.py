"""Where a point ran, beyond ``harness.env``: the launcher, the job and the GPU's co-tenants.

Recorded on every row (docs/results.md, "where it ran"), so a slow point can be traced to its node,
job and device, and a timing taken while another process used the same GPU can be told apart.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import torch

# Row columns filled from the environment of the process that measured the point.
_ENV_COLUMNS = {"cuda_visible_devices": "CUDA_VISIBLE_DEVICES", "slurm_job_id": "SLURM_JOB_ID",
                "slurm_array_job_id": "SLURM_ARRAY_JOB_ID", "slurm_array_task_id": "SLURM_ARRAY_TASK_ID"}
COLUMNS = ("launcher", *_ENV_COLUMNS, "ray_node_id", "ray_task_id")


def where_ran(launcher: str) -> dict[str, Any]:
    """The launcher's name, the Slurm ids and CUDA_VISIBLE_DEVICES of this process, and the Ray node
    and task ids when this process is a Ray worker (null where they do not apply)."""
    out: dict[str, Any] = {"launcher": launcher} | {col: os.environ.get(var) for col, var in _ENV_COLUMNS.items()}
    out["ray_node_id"] = out["ray_task_id"] = None
    ray = sys.modules.get("ray")  # never import Ray just to ask: only a Ray worker has it loaded
    if ray is not None and ray.is_initialized():
        ctx = ray.get_runtime_context()
        out["ray_node_id"], out["ray_task_id"] = ctx.get_node_id(), ctx.get_task_id()
    return out


def gpu_other_processes(device: torch.device) -> int | None:
    """How many processes other than this one hold ``device``, from NVML (``pip install nvidia-ml-py``,
    the ``gpu`` extra); None on CPU or without NVML.

    Another process's kernels share the GPU's SMs and memory bandwidth with the timed ones, so its
    presence is part of what the timing means. In a container whose PID namespace hides host PIDs,
    NVML reports host PIDs and this process may count itself: compare counts within one setup.
    """
    if device.type != "cuda":
        return None
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        uuid = str(torch.cuda.get_device_properties(device).uuid)
        handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
        procs = pynvml.nvmlDeviceGetComputeRunningProcesses(handle) + \
            pynvml.nvmlDeviceGetGraphicsRunningProcesses(handle)
    except pynvml.NVMLError:
        return None
    return len({p.pid for p in procs} - {os.getpid()})

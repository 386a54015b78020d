"""Where a run happened: device, drivers, CPU, threads, library versions, git sha, hostname."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import socket
import subprocess
from functools import lru_cache
from pathlib import Path

import torch

# efficiency-harness itself: an installed copy has no git sha to record, only its version
LIBRARIES = ("efficiency-harness", "diffusers", "transformers", "torchmetrics", "numpy", "scipy", "pandas", "pyarrow",
             "hydra-core")


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def _git_sha() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        if not (root / ".git").exists():  # an installed package: site-packages may sit inside another repository
            return None
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=1)
def _driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(device: torch.device) -> dict[str, object]:
    """Facts recorded on every result row; ``device_name`` is the CPU model for CPU runs."""
    cuda = device.type == "cuda"
    return {
        "device_name": torch.cuda.get_device_name(device) if cuda else _cpu_model(),
        "device_count": torch.cuda.device_count() if cuda else 1,
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "driver": _driver() if cuda else None,
        "cpu": _cpu_model(),
        "threads": torch.get_num_threads(),
        "git_sha": _git_sha(),
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "libraries": json.dumps({name: _version(name) for name in LIBRARIES}, sort_keys=True),
    }

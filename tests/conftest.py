from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

# The suite's own torch work runs on one thread, here and in the harness processes the tests start
# (they inherit the environment): two OpenMP threads on cores that another job holds wait on each
# other, and made the suite 6x slower on this 2-core machine (bench/threads.py). Experiments still
# set hardware.threads themselves (part of what ran); the CPU default is 1. Set before torch loads
# its OpenMP runtime, which reads the variable once.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Torch on one thread for a module, whatever an in-process sweep before it set: batch-1 decoding
    and small training runs are faster so, and two OpenMP threads on a shared 2-core box stall each
    other (20-50x slower measured here). Modules opt in with ``pytestmark``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_unet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny diffusers pipeline saved from a config: the 'local path / hub model' route."""
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16),
        norm_num_groups=4, attention_head_dim=8,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    )
    folder = tmp_path_factory.mktemp("tiny_unet")
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(clip_sample=False)).save_pretrained(str(folder))
    return folder


# Four points of the default experiment (ABBA-paired with DDIM-50, as the full run), shrunk by the smoke
# profile: real rows for the page, export and claims tests. The points are the experiment's own, so their
# ids are those `harness claims --set profile=smoke` plans, and it reuses them.
SMOKE_POINTS = ("points=[{name: ddim, steps: 50}, {name: ddim, steps: 10}, {name: dpm_solver, steps: 10}, "
                "{name: unipc, steps: 5}]")


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(working folder, results folder) of a smoke run of the default experiment, run from the working folder."""
    from tests.helpers import SMOKE, run_cli

    work = tmp_path_factory.mktemp("smoke_sweep")
    run_cli(SMOKE, SMOKE_POINTS, "report=false", cwd=work)
    return work, work / "results" / "samplers_digits-smoke"

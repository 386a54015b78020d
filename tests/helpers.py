from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from harness.cli import CONF_DIR
from harness.registry import load_plugins

ROOT = Path(__file__).resolve().parent.parent
# Small but real: every point still times, counts, generates and scores.
TINY = ["task.n_samples=32", "task.batch_size=4", "task.eval_batch=32", "task.fid_bootstrap=0",
        "timing.warmup_min_calls=1", "timing.warmup_min_s=0", "timing.min_repeats=2", "timing.min_time_s=0",
        "timing.max_time_s=0.5"]


def compose_cfg(overrides: list[str]) -> DictConfig:
    """The config `python -m harness OVERRIDES` would run, with Hydra's runtime info set."""
    load_plugins()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.results_dir = str(cfg.results_dir)  # resolve while Hydra's runtime info is set
    return cfg


def run_cli(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"harness {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


# The text-generation counterpart of TINY: two short prompts, a few new tokens, a short bits-per-byte text.
TINY_TEXT = ["task.n_prompts=2", "task.prompt_len=16", "task.max_new_tokens=8", "task.eval_bytes=1024",
             "timing.warmup_min_calls=1", "timing.warmup_min_s=0", "timing.min_repeats=2", "timing.min_time_s=0",
             "timing.max_time_s=0.3"]
TINY_ARITH = ["task.n_problems=8", "task.n_samples=8", "task.batch_size=4", *TINY_TEXT[4:]]
# Per task: the tiny overrides and a quality metric every point of an experiment must write.
TINY_BY_TASK = {"image_generation": (TINY, "fid"), "text_generation": (TINY_TEXT, "exact_match"),
                "arithmetic": (TINY_ARITH, "coverage")}

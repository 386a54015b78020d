"""Every group option composes; bad values fail at once with the valid choices; experiments smoke-run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import open_dict

from harness.cli import CONF_DIR, plan, sweep
from harness.registry import METHODS, TASKS, load_plugins
from harness.results import load
from tests.helpers import TINY_BY_TASK, compose_cfg

load_plugins()
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
YAML_GROUPS = {g: sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml")) for g in ("model", "hardware", "metric")}
NEEDS = {("model", "local_unet"): ["model.source=/some/where"],
         ("task", "bleu_kernel"): ["experiment=bleu_kernel"],  # the digits metric options don't apply to it
         ("model", "local_lm"): ["model.source=/some/where"],
         # the default metric group configures FID, which text tasks do not have: drop it
         ("task", "text_generation"): ["~metric"], ("task", "arithmetic"): ["~metric"]}


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in YAML_GROUPS.items() for o in opts]
                         + [("method", m) for m in METHODS] + [("task", t) for t in TASKS]
                         + [("experiment", e) for e in EXPERIMENTS])
def test_every_option_composes(group: str, option: str) -> None:
    cfg = compose_cfg([f"{group}={option}", *NEEDS.get((group, option), [])])
    if group == "hardware" and cfg.hardware.device.startswith("cuda") and not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="torch.cuda.is_available"):
            plan(cfg)
        return
    points = plan(cfg, method_overridden=group == "method")
    assert points and all(len(p.point_id) == 16 for p in points)
    assert len({p.point_id for p in points}) == len(points)


def test_default_is_the_embedded_experiment() -> None:
    cfg = compose_cfg([])
    assert cfg.hydra.runtime.choices.experiment == "samplers_digits"
    assert cfg.baseline == "ddim/steps=50"
    variants = [p.variant for p in plan(cfg)]
    assert "ddim/steps=50" in variants and "dpm_solver/steps=10" in variants and len(variants) == 12


def test_command_line_method_replaces_points() -> None:
    points = plan(compose_cfg(["method=dpm_solver", "method.steps=7", "method.order=3"]), method_overridden=True)
    assert [p.variant for p in points] == ["dpm_solver/order=3,steps=7"]


@pytest.mark.parametrize("override,match", [
    (["method=nope"], "Available options in 'method'"),
    (["method.steps=abc"], "steps"),
    (["method.stepz=3"], "stepz"),
    (["hardware=tpu"], "Available options in 'hardware'"),
])
def test_unknown_options_fail_at_compose(override: list[str], match: str) -> None:
    with pytest.raises(ConfigCompositionException) as err:
        compose_cfg(override)
    assert match in str(err.value) + str(err.value.__cause__)


@pytest.mark.parametrize("override,match", [
    (["method=dpm_solver", "method.order=7"], "order must be 1, 2 or 3"),
    (["method=ddim", "method.steps=0"], "steps must be >= 1"),
    (["method=ddim", "method.timestep_spacing=odd"], "valid: leading, trailing, linspace"),
    (["task.features=clip"], "valid: digits_classifier, inception"),
    (["hardware.dtype=float8"], "valid: float32, float16, bfloat16"),
    (["points=[{name: ddim, steps: -1}]"], "steps must be >= 1"),
    (["points=[{name: foo, steps: 1}]"], "registered: "),
])
def test_bad_values_fail_before_anything_runs(override: list[str], match: str) -> None:
    cfg = compose_cfg(override)
    with pytest.raises(Exception, match=match):
        plan(cfg, method_overridden=override[0].startswith("method"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_smoke_runs(experiment: str, tmp_path: Path) -> None:
    tiny, quality = TINY_BY_TASK[compose_cfg([f"experiment={experiment}"]).task.name]
    cfg = compose_cfg([f"experiment={experiment}", *tiny, "report=false"])
    with open_dict(cfg):
        cfg.results_dir = str(tmp_path)
    sweep(cfg)
    rows = load(tmp_path)
    assert (rows.status == "ok").all(), rows[rows.status != "ok"].error.unique()
    assert rows.point_id.nunique() == len(cfg.points)
    assert {"latency", "latency_cold", "nfe", "flops", "peak_memory", quality} <= set(rows.metric)

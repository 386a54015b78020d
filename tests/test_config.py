"""Every group option composes; bad values fail at once with the valid choices; experiments smoke-run."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch
import yaml
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf, open_dict

from harness.analysis import is_quality
from harness.cli import sweep
from harness.plan import CONF_DIR, Hardware, plan
from harness.registry import METHODS, TASKS, load_plugins
from harness.results import load
from harness.timing import TimingPolicy
from tests.helpers import SMOKE, compose_cfg

load_plugins()
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
OWN_MODEL = {"local_unet": "zoo:digits_ddpm", "local_lm": "zoo:bytes_target"}  # folders of the right kind
YAML_GROUPS = {g: sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml")) for g in ("model", "hardware", "profile")}


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in YAML_GROUPS.items() for o in opts]
                         + [("method", m) for m in METHODS] + [("task", t) for t in TASKS]
                         + [("experiment", e) for e in EXPERIMENTS])
def test_every_option_composes(group: str, option: str) -> None:
    cfg = compose_cfg([f"{group}={option}"])
    if group in ("model", "method", "task"):
        # Models, methods and tasks belong to workloads: each plans with the experiments it fits
        # ("bring your own model" options given a folder of the right kind), and fails up front,
        # naming what does not fit, with the others.
        own = [f"model.source={OWN_MODEL[option]}"] if group == "model" and option in OWN_MODEL else []
        planned = []
        for exp in EXPERIMENTS:
            try:
                planned.append(plan(compose_cfg([f"experiment={exp}", f"{group}={option}", *own])))
            except (ValueError, ConfigCompositionException) as exc:
                # an experiment that sets a field of its own task (lowbit_bytes: task.eval_bytes) does
                # not compose with a task without that field, and Hydra names the key and the task
                assert any(k in str(exc) for k in ("model.source", "model.draft", "model.tokenizer",
                                                   "cannot run on task", "not in '")), exc
        assert planned, f"{group}={option} fits no experiment"
        assert all(p and len({q.point_id for q in p}) == len(p) for p in planned)
        return
    if group == "hardware" and cfg.hardware.device.startswith("cuda") and not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch.cuda.is_available"):
            plan(cfg)
        return
    points = plan(cfg)
    assert points and len({p.point_id for p in points}) == len(points)


def test_point_id_names_what_ran_and_only_that() -> None:
    point = plan(compose_cfg([]))[0]
    assert point.point_id == replace(point).point_id == plan(compose_cfg([]))[0].point_id
    for changed in (replace(point, seed=1), replace(point, timing=point.timing | {"max_time_s": 1.0}),
                    replace(point, task=point.task | {"n_samples": 100}),
                    replace(point, hardware=point.hardware | {"threads": point.hardware["threads"] + 1})):
        assert changed.point_id != point.point_id
    # a corrected spec sheet is the same measurement
    spec = replace(point, hardware=point.hardware | {"peak_tflops": 1.0, "mem_bandwidth_gbs": 2.0})
    assert spec.point_id == point.point_id


def test_timing_defaults_live_in_the_dataclass_only() -> None:
    assert OmegaConf.to_object(compose_cfg([]).timing) == TimingPolicy()
    root = yaml.safe_load((CONF_DIR / "config.yaml").read_text())
    assert "timing" not in root and {"timing": "default"} in root["defaults"]
    for hw in (CONF_DIR / "hardware").glob("*.yaml"):  # hardware values live in their YAML only
        assert set(yaml.safe_load(hw.read_text())) == {f.name for f in fields(Hardware)}, hw


def test_smoke_profile_shrinks_any_experiment_and_the_command_line_wins() -> None:
    full = plan(compose_cfg(["experiment=decoding_bytes"]))[0]
    smoke_cfg = compose_cfg(["experiment=decoding_bytes", "profile=smoke", "task.max_new_tokens=12"])
    smoke = plan(smoke_cfg)[0]
    assert smoke.task["n_prompts"] == 2 < full.task["n_prompts"] and smoke.task["max_new_tokens"] == 12
    assert smoke.timing["max_time_s"] == 0.5 < full.timing["max_time_s"]
    assert smoke_cfg.results_dir == "results/decoding_bytes-smoke"
    assert compose_cfg(["experiment=decoding_bytes"]).results_dir == "results/decoding_bytes"


def test_default_is_the_embedded_experiment() -> None:
    cfg = compose_cfg([])
    assert cfg.hydra.runtime.choices.experiment == "samplers_digits"
    assert cfg.baseline == "ddim/steps=50"
    variants = [p.variant for p in plan(cfg)]
    assert "ddim/steps=50" in variants and "dpm_solver/steps=10" in variants and len(variants) == 12


def test_command_line_method_replaces_points() -> None:
    points = plan(compose_cfg(["method=dpm_solver", "method.steps=7", "method.order=3"]))
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
        plan(cfg)


def _fewest_steps_per_config(points: list[dict], baseline: str) -> list[dict]:
    """The baseline, and for each method config apart from ``steps`` its point with the fewest steps,
    at most 20 (the CI suite's budget: the step count changes how long a point runs, not which code it
    runs; DDPM's only point has 1000, most of this test's time before the cap)."""
    keep: dict[str, dict] = {}
    for p in points:
        key = str(sorted((k, v) for k, v in p.items() if k != "steps"))
        if key not in keep or p.get("steps", 0) < keep[key].get("steps", 0):
            keep[key] = p
    base = [p for p in points if f"{p['name']}/steps={p.get('steps')}" == baseline]
    return base + [p | {"steps": min(p["steps"], 20)} if "steps" in p else p
                   for p in keep.values() if p not in base]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_smoke_runs(experiment: str, tmp_path: Path) -> None:
    cfg = compose_cfg([f"experiment={experiment}", SMOKE, "report=false"])
    with open_dict(cfg):
        cfg.results_dir = str(tmp_path)
        if len(cfg.points) > 12:  # samplers_digits_long: every point plans; one per config apart from steps runs
            assert plan(cfg)
            cfg.points = _fewest_steps_per_config(OmegaConf.to_container(cfg.points), cfg.baseline)
    sweep(cfg)
    rows = load(tmp_path)
    assert (rows.status == "ok").all(), rows[rows.status != "ok"].error.unique()
    assert rows.point_id.nunique() == len(cfg.points)
    for _, point in rows.groupby("point_id"):  # every point: timed, measured, and scored on some quality
        assert {"latency", "latency_cold", "peak_memory"} <= set(point.metric)
        quality = [m for m, h in zip(point.metric, point.higher_is_better) if is_quality(m, h)]
        assert quality and point[point.metric.isin(quality)].value.notna().all()

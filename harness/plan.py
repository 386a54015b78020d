"""From Hydra config to the list of points to run: composition, validation, ABBA pairing.

Everything is validated here, before any point runs: a bad value fails at once, naming the field
and the valid choices. ``harness.cli`` (sweeps) and ``harness.claims`` both plan through here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from harness.launch import config as _launcher_group  # noqa: F401  (stores the launcher group's schemas)
from harness.registry import build_config, load_plugins, lookup
from harness.timing import TimingPolicy

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# The timing policy's defaults live in its dataclass only; conf/config.yaml selects this node.
# (Typed, so timing.max_time_s=abc fails at compose; writable, so experiments and profiles can set fields.)
_timing_node = OmegaConf.structured(TimingPolicy)
OmegaConf.set_readonly(_timing_node, False)
ConfigStore.instance().store(group="timing", name="default", node=_timing_node)


@dataclass(frozen=True)
class Hardware:
    """Where a point runs. The values live in ``conf/hardware/*.yaml`` only (no defaults here)."""

    name: str
    device: str
    dtype: str
    threads: int
    # Spec-sheet facts, not settings: they turn measured FLOPs into a fraction of peak
    # (``harness.analysis``) and are kept out of ``point_id`` (a corrected spec sheet is the same run).
    peak_tflops: float | None = None  # dense peak at ``dtype``
    mem_bandwidth_gbs: float | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"hardware.dtype={self.dtype!r}; valid: {', '.join(DTYPES)}")
        if self.threads < 1:
            raise ValueError(f"hardware.threads must be >= 1, got {self.threads}")
        if torch.device(self.device).type not in ("cpu", "cuda"):
            raise ValueError(f"hardware.device={self.device!r}; valid: cpu, cuda, cuda:N")

    def check_here(self) -> None:
        """The device exists in this process. Checked where points run: a Slurm login node or a Ray driver
        plans GPU points without having a GPU (``plan`` checks only for launchers that run points here)."""
        if torch.device(self.device).type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"hardware {self.name!r} asks for {self.device} but torch.cuda.is_available() is "
                               "False (CPU-only torch or no GPU); use hardware=cpu")


SPEC_SHEET = ("peak_tflops", "mem_bandwidth_gbs")


@dataclass(frozen=True)
class Point:
    """What ran: everything that changes the measurement, hashed into ``point_id``."""

    task: dict[str, Any]
    model: dict[str, Any]
    method: dict[str, Any]
    hardware: dict[str, Any]
    seed: int
    timing: dict[str, Any]  # a stricter policy is a different measurement, so it is part of the id
    # The baseline method timed in ABBA blocks with this one (``interleave: true``), else None.
    paired_with: dict[str, Any] | None = None

    @property
    def point_id(self) -> str:
        ident = asdict(self)
        if ident["paired_with"] is None:  # keep the ids of unpaired points as they were
            del ident["paired_with"]
        ident["hardware"] = {k: v for k, v in ident["hardware"].items() if k not in SPEC_SHEET}
        blob = json.dumps(ident, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def variant(self) -> str:
        return variant_label(self.method)


def variant_label(method: dict[str, Any]) -> str:
    """``dpm_solver/steps=10``: every parameter that differs from the method's defaults, plus the
    fields its config always shows (``LABEL_ALWAYS``)."""
    cls = lookup("method", method["name"])
    defaults = asdict(cls.Config(name=cls.name))
    always = cls.Config.LABEL_ALWAYS
    shown = {k: v for k, v in method.items() if k != "name" and (k in always or v != defaults.get(k))}
    return method["name"] + ("/" + ",".join(f"{k}={v}" for k, v in sorted(shown.items())) if shown else "")


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """The config ``python -m harness OVERRIDES`` would run, composed outside ``hydra.main``
    (for ``claims`` and tests), with Hydra's runtime info set so interpolations resolve."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    load_plugins()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.results_dir = str(cfg.results_dir)  # resolve while Hydra's runtime info is set
    return cfg


def _command_line() -> tuple[list[str], str | None]:
    """The overrides given on the command line (or to ``compose_config``) and the profile chosen."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    keys = [o.split("=", 1)[0].lstrip("+~") for o in hc.overrides.task]
    return keys, hc.runtime.choices.get("profile")


def _task_config(cfg: DictConfig, given: list[str], profile: str | None) -> Any:
    task = OmegaConf.to_object(cfg.task)
    if profile != "smoke":
        return task
    # A run of about a minute: the task's own smoke sizes, except fields set on the command line.
    shrink = {k: v for k, v in type(task).SMOKE.items() if f"task.{k}" not in given}
    return replace(task, **shrink)


def plan(cfg: DictConfig) -> list[Point]:
    """Validate the whole sweep before running any of it: a bad value fails at once.

    The experiment's ``points`` are the sweep unless the command line names the method
    (``method=``/``method.X=``), which runs ``cfg.method`` alone.
    """
    given, profile = _command_line()
    hardware = Hardware(**OmegaConf.to_container(cfg.hardware, resolve=True))
    if cfg.launcher.name in ("inline", "process"):  # slurm and ray jobs check on their own node
        hardware.check_here()
    task = _task_config(cfg, given, profile)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    if any(k == "method" or k.startswith("method.") for k in given) or not cfg.points:
        if cfg.points:
            print(f"note: method given on the command line; the experiment's {len(cfg.points)} points are not run")
        methods = [OmegaConf.to_object(cfg.method)]
    else:
        methods = [build_config("method", OmegaConf.to_container(p, resolve=True)) for p in cfg.points]
    policy = asdict(OmegaConf.to_object(cfg.timing))
    points = [Point(asdict(task), model, asdict(m), asdict(hardware), int(cfg.seed), policy) for m in methods]
    if not cfg.get("interleave"):
        return points
    # ABBA: every non-baseline point times the baseline in alternation with itself (docs/analysis.md).
    # The baseline's config comes from the points run, or from the experiment's list when a
    # method= override replaced it, or from its label.
    pool = [p.method for p in points] + [asdict(build_config("method", OmegaConf.to_container(p, resolve=True)))
                                         for p in cfg.points]
    base = [m for m in pool if variant_label(m) == cfg.baseline] or _from_label(cfg.baseline)
    if not base:
        raise ValueError(f"interleave=true needs the baseline {cfg.baseline!r} among the points or the experiment's "
                         f"points; found: {', '.join(sorted({variant_label(m) for m in pool}))}")
    return [p if p.method == base[0] else replace(p, paired_with=base[0]) for p in points]


def _from_label(label: str | None) -> list[dict[str, Any]]:
    """A method config from its variant label (``ddim/steps=3``), or [] if the label is not one."""
    if not label:
        return []
    name, _, params = label.partition("/")
    try:
        values = dict(kv.split("=", 1) for kv in params.split(",")) if params else {}
        method = asdict(build_config("method", {"name": name, **values}))
    except Exception:  # noqa: BLE001  (not a label of a registered method: the caller reports it)
        return []
    return [method] if variant_label(method) == label else []


"""From Hydra config to the list of points to run: composition, validation, ABBA pairing.

Everything is validated here, before any point runs: a bad value fails at once, naming the field
and the valid choices. ``harness.cli`` (sweeps) and ``harness.claims`` both plan through here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from harness import CONF_DIR
from harness.launch import config as _launcher_group  # noqa: F401  (stores the launcher group's schemas)
from harness.registry import build_config, load_plugins, lookup
from harness.results import meta_dir
from harness.timing import TimingPolicy

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# The timing policy's defaults live in its dataclass only; conf/config.yaml selects this node.
# (Typed, so timing.max_time_s=abc fails at compose; writable, so experiments and profiles can set fields.)
_timing_node = OmegaConf.structured(TimingPolicy)
OmegaConf.set_readonly(_timing_node, False)
ConfigStore.instance().store(group="timing", name="default", node=_timing_node)
# ``${meta_dir:${results_dir}}``: where a run's files other than results go (Hydra's multirun.yaml),
# next to the results folder so that dataset readers see only result files (harness.results).
OmegaConf.register_new_resolver("meta_dir", lambda folder: str(meta_dir(folder)), replace=True)


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
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"hardware.threads={self.threads!r}: expected a whole number >= 1 (torch CPU threads)")
        try:
            kind = torch.device(self.device).type
        except (RuntimeError, TypeError):
            kind = None
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"hardware.device={self.device!r}; valid: cpu, cuda, cuda:N")

    def check_here(self) -> None:
        """The device exists in this process. Checked where points run: a Slurm login node or a Ray driver
        plans GPU points without having a GPU (``plan`` checks only for launchers that run points here)."""
        if torch.device(self.device).type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"hardware {self.name!r} asks for {self.device} but torch.cuda.is_available() is "
                             "False (CPU-only torch or no GPU); use hardware=cpu")


SPEC_SHEET = ("peak_tflops", "mem_bandwidth_gbs")
KERNEL_MODES = ("l2_flush", "cuda_graph")  # TimingPolicy fields


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
        # The kernel timing modes came later: switched off, they keep the ids of earlier points as they were.
        ident["timing"] = {k: v for k, v in ident["timing"].items() if not (k in KERNEL_MODES and v is False)}
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
    _check_additions(cfg)
    seed = check_seed(cfg.seed)
    for key in ("interleave", "report"):
        if not isinstance(cfg.get(key, False), bool):
            raise ValueError(f"{key}={cfg.get(key)!r}: expected true or false")
    hardware = Hardware(**OmegaConf.to_container(cfg.hardware, resolve=True))
    if cfg.launcher.name in ("inline", "process"):  # slurm and ray jobs check on their own node
        hardware.check_here()
    task = _task_config(cfg, given, profile)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    from_experiment = not (any(k == "method" or k.startswith("method.") for k in given) or not cfg.points)
    if not from_experiment:
        if cfg.points:
            print(f"note: method given on the command line; the experiment's {len(cfg.points)} points are not run")
        methods = [OmegaConf.to_object(cfg.method)]
    else:
        methods = [build_config("method", OmegaConf.to_container(p, resolve=True)) for p in cfg.points]
    _check_task(task, model, methods)
    timing = OmegaConf.to_object(cfg.timing)
    timing.check_device(hardware.device)  # e.g. timing.cuda_graph=true on CPU fails here, before any point runs
    policy = asdict(timing)
    points = [Point(asdict(task), model, asdict(m), asdict(hardware), seed, policy) for m in methods]
    if cfg.baseline is not None and not cfg.get("interleave"):
        _check_baseline(cfg.baseline, [p.method for p in points], from_experiment)
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


SEED_MAX = 2**32 - 1  # numpy's legacy seed range (np.random.seed), which the runner seeds


def check_seed(value: Any) -> int:
    """The seed as an int, or ``ValueError``: ``seed=1.5`` must not run as seed 1, nor ``seed=-1`` fail later."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise ValueError(f"seed={value!r}: expected a whole number from 0 to {SEED_MAX}")
    return value


def _check_additions(cfg: DictConfig) -> None:
    """``+key=value`` adds a key nothing reads (every key the harness reads exists already): refuse it."""
    from hydra.core.hydra_config import HydraConfig

    # Selecting a config group with + (a group without a default) adds what that group's code reads.
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "claims"}
    added = [o for o in HydraConfig.get().overrides.task if o.startswith("+") and not o.lstrip("+").startswith("hydra")
             and o.lstrip("+").split("=", 1)[0] not in groups]
    if added:
        keys = {o.lstrip("+").split("=", 1)[0].split(".")[0].split("/")[0] for o in added}
        known = sorted(k for k in cfg if k != "hydra" and k not in keys)
        raise ValueError(f"{added[0]}: adds a key the harness does not read (a typo?); set existing keys without "
                         f"'+', e.g. seed=1 or method.steps=10; top-level keys: {', '.join(known)}")


def _check_task(task: Any, model: dict[str, Any], methods: list[Any]) -> None:
    """Every method fits the task's workload, and the task's model files and modules are there."""
    from harness.registry import METHODS

    task_cls = lookup("task", task.name)
    for m in methods:
        why = task_cls.fits(lookup("method", m.name))
        if why is not None:
            fit = sorted(n for n, c in METHODS.items() if task_cls.fits(c) is None)
            raise ValueError(f"method={m.name!r} cannot run on task {task.name!r}: {why}; methods for this task: "
                             f"{', '.join(fit) or '(none)'}")
    task_cls.check(task, model)


def _check_baseline(label: Any, methods: list[dict[str, Any]], from_experiment: bool) -> None:
    """The baseline names a variant: one of the experiment's points, or, where the command line
    replaced them (``method=``, a ``-m`` job of one point), any label of a registered method."""
    labels = [variant_label(m) for m in methods]
    if label in labels or (not from_experiment and isinstance(label, str) and _from_label(label)):
        return
    what = "is not one of the experiment's points" if from_experiment and isinstance(label, str) and \
        _from_label(label) else "is not the label of a variant"
    raise ValueError(f"baseline={label!r} {what}; labels look like ddim/steps=50 (method, then each parameter that "
                     f"differs from its defaults); this run's points: {', '.join(labels)}")


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


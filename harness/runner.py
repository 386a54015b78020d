"""One sweep point, start to end (docs/design.md, "Flow of one point"). Short and linear on purpose."""

from __future__ import annotations

import json
import random
import traceback
import uuid
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch

from harness import counters, machine, results, timing
from harness.env import environment
from harness.metrics import info
from harness.plan import DTYPES, Hardware, Point
from harness.plugin import Observation, Task
from harness.registry import lookup
from harness.where import COLUMNS as WHERE_COLUMNS
from harness.where import gpu_other_processes

_WORKLOADS: dict[str, Task] = {}


def _workload(point: Point, hw: Hardware) -> tuple[Task, bool]:
    """Models and data load once per process; points that share them reuse them. True if fresh."""
    key = json.dumps([point.task, point.model, point.hardware], sort_keys=True)
    fresh = key not in _WORKLOADS
    if fresh:
        cls = lookup("task", point.task["name"])
        cfg = cls.Config(**point.task)
        _WORKLOADS[key] = cls(cfg, point.model, torch.device(hw.device), DTYPES[hw.dtype])
    return _WORKLOADS[key], fresh


def _reset(seed: int, hw: Hardware) -> None:
    # Hydra's basic launcher runs every point in one process: reset what leaks between points.
    torch.set_num_threads(hw.threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def measure_point(point: Point) -> tuple[list[Observation], str]:
    """Time the method's call, count its costs, then evaluate its quality.

    Returns the observations and a JSON note of the timing policy and why the timer stopped.
    """
    hw = Hardware(**point.hardware)
    hw.check_here()
    policy = timing.TimingPolicy(**point.timing)
    _reset(point.seed, hw)
    task, fresh = _workload(point, hw)
    method_cls = lookup("method", point.method["name"])
    method = method_cls(method_cls.Config(**point.method))
    prepared = task.prepare(method, point.seed)
    device = torch.device(hw.device)
    paired, energy = None, None
    # Other processes on the GPU share its SMs and bandwidth: count them as the timing starts and ends.
    co_tenants = [gpu_other_processes(device)]
    with torch.no_grad():
        if point.paired_with is None:
            m = timing.measure(prepared.call, policy, device)
        else:  # baseline and method alternate in ABBA blocks; the baseline's times go in this point's rows
            base_cls = lookup("method", point.paired_with["name"])
            base = task.prepare(base_cls(base_cls.Config(**point.paired_with)), point.seed)
            paired, m = timing.measure_interleaved(base.call, prepared.call, policy, device)
        if device.type == "cuda":  # NVML's energy counter over about a second of calls (None without nvml)
            per_call = float(np.median(m.samples_s))
            energy = machine.energy_per_call(prepared.call, hw.device, machine.calls_for(1.0, per_call))
    co_tenants.append(gpu_other_processes(device))
    # Memory and per-stage times from one more call, apart from the timed ones (hooks cost time).
    with torch.no_grad(), counters.peak_memory(device) as mem, \
            timing.time_module_calls(prepared.stage_module, device) as steps:
        prepared.call()
    obs = [Observation("latency", s, sample=i, stage="end_to_end") for i, s in enumerate(m.samples_s)]
    obs += [Observation("latency_cold", m.cold_s, stage="end_to_end")]
    if paired is not None:
        obs += [Observation("latency", s, sample=i, stage="abba_baseline") for i, s in enumerate(paired.samples_s)]
    if energy is not None:
        obs.append(Observation("energy", energy, stage="end_to_end"))
    obs += [Observation("latency", s, sample=i, stage=prepared.stage) for i, s in enumerate(steps)]
    for stage, fn in prepared.timed_stages.items():  # extra timed calls a task asks for (e.g. prefill)
        with torch.no_grad():
            sm = timing.measure(fn, policy, device)
        obs += [Observation("latency", s, sample=i, stage=stage) for i, s in enumerate(sm.samples_s)]
    # Generic costs only where they apply: evaluations where the work has a stage module, FLOPs where
    # the task gives a one-item call to count.
    if prepared.stage_module is not None:
        obs.append(Observation("nfe", len(steps)))
    if prepared.flops_call is not None:
        obs.append(Observation("flops", counters.count_flops(prepared.flops_call)))
    obs.append(Observation("peak_memory", mem["bytes"], unit=f"bytes ({mem['kind']})"))
    if mem["increase"] is not None:
        obs.append(Observation("peak_memory_increase", mem["increase"], unit=f"bytes ({mem['kind']})"))
    _reset(point.seed, hw)
    obs += prepared.evaluate()
    # Only the first point on a fresh workload has a truly cold first call (weights untouched).
    note = m.as_dict() | {"batch_size": prepared.batch_size, "workload_loaded_for_this_point": fresh,
                          "gpu_other_processes": max((c for c in co_tenants if c is not None), default=None)}
    return obs, json.dumps(note, sort_keys=True)


def run_point(point: Point, *, run_id: str, experiment: str, results_dir: str, baseline: str | None,
              where: dict[str, Any] | None = None) -> tuple[str, str | None]:
    """Measure one point and write its file; a failure becomes an ``error`` row. Returns (status, error).

    ``where``: the launcher and job columns (``harness.where.where_ran``) of the process measuring it.
    """
    status, error, timing_note = "ok", None, None
    load = machine.measure_load()  # before timing: what other processes use (recorded, never acted on)
    before = machine.snapshot(str(point.hardware["device"]))
    if machine.busy_warning(load, int(point.hardware["threads"])):
        print(f"  note: busy machine before this point: {load.busy_cores:.1f} of {load.cpus} CPU(s) in use by other "
              f"processes, hardware.threads={point.hardware['threads']} (recorded in busy_cores, free_cores)",
              flush=True)
    try:
        obs, timing_note = measure_point(point)
    except Exception as exc:  # a failed point is a result, and the sweep goes on
        status, error = "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-6)}"
        obs = [Observation("error", float("nan"))]
    env = environment_of(point)  # after the point: ``threads`` is what the timing ran with
    state = {"machine": machine.state_json(before, machine.snapshot(str(point.hardware["device"])))}
    write_rows(point, obs, status=status, error=error, timing_note=timing_note, env=env, where=where, run_id=run_id,
               experiment=experiment, results_dir=results_dir, baseline=baseline, load=load.as_columns() | state)
    return status, error


def write_failure(point: Point, error: str, *, env: dict[str, Any] | None, where: dict[str, Any] | None,
                  run_id: str, experiment: str, results_dir: str, baseline: str | None) -> None:
    """The error row of a point whose worker died (signal, timeout, memory limit), written by the launcher
    that watched it. ``env``: what the worker reported before it died (``harness.env.environment``);
    without it the device columns stay null rather than touching a GPU from the launcher's process."""
    write_rows(point, [Observation("error", float("nan"))], status="error", error=error, timing_note=None,
               env=env if env is not None else environment_of(point, touch_device=False),
               where=where, run_id=run_id, experiment=experiment, results_dir=results_dir, baseline=baseline)


def environment_of(point: Point, touch_device: bool = True) -> dict[str, Any]:
    """``harness.env.environment`` for the point's device; its device columns null where the device cannot
    be asked here (no GPU on this node) or must not be (a launcher's process, which should hold no GPU)."""
    device = torch.device(Hardware(**point.hardware).device)
    if device.type == "cpu" or (touch_device and torch.cuda.is_available()):
        return environment(device)
    return environment(torch.device("cpu")) | {"device_name": None, "device_count": None}


def write_rows(point: Point, obs: list[Observation], *, status: str, error: str | None, timing_note: str | None,
               env: dict[str, Any], where: dict[str, Any] | None, run_id: str, experiment: str, results_dir: str,
               baseline: str | None, load: dict[str, Any] | None = None) -> None:
    hw = Hardware(**point.hardware)
    note = json.loads(timing_note) if timing_note else {}
    ident = {
        "run_id": run_id, "point_id": point.point_id, "created_at": datetime.now(timezone.utc),
        "schema_version": results.SCHEMA_VERSION, "experiment": experiment, "status": status, "error": error,
        "task": point.task["name"], "model": point.model.get("name"), "method": point.method["name"],
        "variant": point.variant, "params": results.params_json(point.method),
        "config": json.dumps(asdict(point), sort_keys=True, default=str), "seed": point.seed,
        "batch_size": point.task.get("batch_size"), "baseline": baseline, "hardware": hw.name,
        "device": hw.device, "timing": timing_note, "gpu_other_processes": note.get("gpu_other_processes"),
    } | env | {c: (where or {}).get(c) for c in WHERE_COLUMNS} | (load or {})
    rows = []
    for o in obs:
        meta = info(o.metric)
        rows.append(ident | {"metric": o.metric, "value": o.value, "unit": o.unit or meta.unit,
                             "higher_is_better": meta.higher_is_better, "sample": o.sample,
                             "stage": o.stage, "n": o.n})
    results.write_point(results_dir, point.point_id, rows)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]

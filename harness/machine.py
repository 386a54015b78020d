"""Machine state around each measured point, so that a verdict can be explained afterwards.

Recorded before and after every point (one JSON column, ``machine``, docs/results.md):

- CPU: 1/5/15-minute load averages, the CPUs this process may run on (affinity), the cpufreq
  governor(s) where ``/sys`` shows them;
- GPU, through NVML (``pip install -e '.[nvml]'``, nvidia-ml-py): SM and memory clocks (MHz), the
  enforced power limit (W), temperature (C), the active clock-throttle reasons, and the total-energy
  counter (J), which also gives ``energy`` per call next to latency (``energy_per_call``).

Nothing here fails a run: a fact that cannot be read is left out (null), and NVML is only imported
for CUDA points. ``busy_runs`` reads the column back for ``compare``: a run is not quiet when the
other processes' load (load average minus this point's threads) did not fit into the cores it left
free.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import pandas as pd

QUIET_SLACK = 0.5  # cores of others' load tolerated beyond the free ones


def _governors() -> list[str] | None:
    found = {p.read_text().strip() for p in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor")
             if p.is_file()}
    return sorted(found) or None


def _nvml() -> Any:
    """The pynvml module, initialised, or None (not installed, no driver)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    return pynvml


def _handle(nvml: Any, index: int) -> Any:
    """The NVML handle of CUDA device ``index``: by UUID (CUDA_VISIBLE_DEVICES renumbers devices),
    else by index."""
    import torch

    try:
        uuid = str(torch.cuda.get_device_properties(index).uuid)
        return nvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except (AttributeError, RuntimeError, nvml.NVMLError):
        return nvml.nvmlDeviceGetHandleByIndex(index)


def _try(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001  (an unsupported query on this GPU: leave the fact out)
        return None


def gpu_state(index: int) -> dict[str, Any] | None:
    nvml = _nvml()
    if nvml is None:
        return None
    h = _handle(nvml, index)
    throttle = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    reasons = _try(lambda: throttle(h))
    names = {v: k for k, v in vars(nvml).items() if k.startswith("nvmlClocksThrottleReason") and isinstance(v, int)
             and v and v & (v - 1) == 0}
    power = _try(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(h))
    energy = _try(lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(h))
    return {
        "sm_clock_mhz": _try(lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM)),
        "mem_clock_mhz": _try(lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_MEM)),
        "power_limit_w": None if power is None else power / 1000,
        "temperature_c": _try(lambda: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
        "throttle_reasons": None if reasons is None else
        sorted(n.removeprefix("nvmlClocksThrottleReason") for v, n in names.items() if reasons & v),
        "energy_j": None if energy is None else energy / 1000,
    }


def snapshot(device: str = "cpu") -> dict[str, Any]:
    """Load, affinity and governor now; the GPU's clocks, power, temperature, throttling and energy
    counter for a CUDA ``device``."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    state: dict[str, Any] = {"load": load, "cpus": os.cpu_count(), "affinity": affinity, "governor": _governors()}
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index
        state["gpu"] = gpu_state(torch.cuda.current_device() if index is None else index)
    return state


def state_json(before: dict[str, Any], after: dict[str, Any]) -> str:
    return json.dumps({"before": before, "after": after}, sort_keys=True)


def energy_per_call(fn: Callable[[], Any], device: str, calls: int) -> float | None:
    """Joules per call from NVML's total-energy counter over ``calls`` calls (choose enough for about
    a second: the counter is in millijoules and updates every few tens of ms). None without NVML."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        return None
    nvml = _nvml()
    if nvml is None:
        return None
    h = _handle(nvml, torch.cuda.current_device() if dev.index is None else dev.index)
    if _try(lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(h)) is None:
        return None  # GPUs before Volta have no energy counter
    with torch.cuda.device(dev):
        torch.cuda.synchronize()
        e0 = nvml.nvmlDeviceGetTotalEnergyConsumption(h)
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        e1 = nvml.nvmlDeviceGetTotalEnergyConsumption(h)
    return (e1 - e0) / 1000 / calls


def calls_for(seconds: float, per_call_s: float, at_least: int = 10) -> int:
    """How many calls of ``per_call_s`` fill ``seconds`` (for ``energy_per_call``)."""
    return max(at_least, math.ceil(seconds / max(per_call_s, 1e-9)))


def others_load(state: dict[str, Any], threads: int) -> float | None:
    load = (state or {}).get("load")
    return None if not load else max(0.0, load[0] - threads)


def quiet(state: dict[str, Any], threads: int) -> bool | None:
    """Others' 1-minute load fits into the cores this point left free (within ``QUIET_SLACK``)."""
    other = others_load(state, threads)
    if other is None:
        return None
    cpus = len(state.get("affinity") or []) or state.get("cpus") or 1
    return other <= max(0, cpus - threads) + QUIET_SLACK


def busy_runs(rows: pd.DataFrame, side: str) -> list[str]:
    """Runs of a result set in which some point was measured while the machine was not quiet."""
    if "machine" not in rows or rows["machine"].isna().all():
        return []
    out = []
    pts = rows.drop_duplicates("file" if "file" in rows else ["run_id", "point_id"])
    for run, grp in pts.groupby("run_id", sort=False):
        loads = []
        for _, r in grp.iterrows():
            if not isinstance(r.machine, str):
                continue
            m = json.loads(r.machine)
            threads = int(r.threads) if pd.notna(r.get("threads")) else 1
            for when in ("before", "after"):
                st = m.get(when) or {}
                if quiet(st, threads) is False:
                    loads.append((st["load"][0], len(st.get("affinity") or []) or st.get("cpus"), threads))
        if loads:
            worst = max(loads)
            out.append(f"{side} run {run} ({len(loads)} reading(s); 1-min load up to {worst[0]:g} on {worst[1]} "
                       f"cores, {worst[2]} threads per point)")
    return out

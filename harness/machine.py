"""How busy the machine is just before timing: load, busy and free cores, and the warning on a busy machine.

Why it matters (docs/design.md, "Threads on a busy machine"): torch's CPU kernels run on OpenMP
threads that meet at a barrier after every parallel region. When another process holds the cores,
each barrier waits for a descheduled thread to get its next time slice, so a 2-thread call slowed
down 4-16x here while two other processes were busy, where a 1-thread call slowed down 1.4-2.8x
(``bench/threads.py``, docs/design.md item 13). The harness never changes the thread count because
of load (two runs would stop being comparable); it measures the load, records it on every row, and
says at the top of a run what to set.

The machine's state around each point, so that a verdict can be explained afterwards, is recorded
too (``snapshot``, before and after every point, one JSON column ``machine``, docs/results.md):
load averages, the CPUs this process may run on, the cpufreq governor(s) where ``/sys`` shows them,
and on CUDA through NVML (``pip install -e '.[gpu]'``, nvidia-ml-py): SM and memory clocks, the
enforced power limit, temperature, the active clock-throttle reasons and the total-energy counter,
which also gives ``energy`` per call next to latency (``energy_per_call``). Nothing here fails a
run: a fact that cannot be read is null, and NVML is only imported for CUDA points.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

# Linux /proc/stat counters that are time some process used the CPU (steal: the hypervisor gave
# it to another guest, which is as unavailable to us as a busy core).
_BUSY = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal
_ALL = range(8)  # ... plus idle (3) and iowait (4); guest time is already inside user


@dataclass(frozen=True)
class Load:
    """The machine as a point found it: the CPUs this process may use, how many of them other
    processes kept busy over a short window, and the kernel's 1-minute load average."""

    cpus: int  # CPUs in this process's affinity mask
    busy_cores: float  # CPU-seconds per second used on those CPUs during the window, 0..cpus
    load_1m: float | None  # /proc/loadavg (None where the OS has none)
    window_s: float

    @property
    def free_cores(self) -> float:
        return max(0.0, self.cpus - self.busy_cores)

    def as_columns(self) -> dict[str, float | int | str | None]:
        """The result columns (harness.results.SCHEMA): ``cpus``, ``busy_cores``, ``free_cores``, ``load_1m``,
        and ``omp_wait_policy`` (the environment's ``OMP_WAIT_POLICY``: PASSIVE made 2-thread calls 2.4-3.7x
        slower on a quiet machine here, so it is part of what ran)."""
        return {"cpus": self.cpus, "busy_cores": round(self.busy_cores, 3), "free_cores": round(self.free_cores, 3),
                "load_1m": self.load_1m, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def _cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def _stat(cpus: list[int]) -> tuple[float, float] | None:
    """(busy, total) jiffies summed over ``cpus`` from /proc/stat, or None where it cannot be read."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{i}" for i in cpus}
    busy = total = 0.0
    for line in lines:
        name, *vals = line.split()
        if name in wanted:
            nums = [float(v) for v in vals[:8]] + [0.0] * (8 - len(vals[:8]))
            busy += sum(nums[i] for i in _BUSY)
            total += sum(nums[i] for i in _ALL)
    return (busy, total) if total else None


def measure_load(window_s: float = 0.5) -> Load:
    """Sample the CPU counters over ``window_s`` while this process sleeps: what others use.

    Call it before timing, not during (the timed work would count as load). Without /proc, the
    1-minute load average stands in for the busy cores.
    """
    cpus = _cpus()
    try:
        load_1m: float | None = os.getloadavg()[0]
    except (AttributeError, OSError):
        load_1m = None
    before = _stat(cpus)
    time.sleep(window_s)
    after = _stat(cpus)
    if before is None or after is None or after[1] <= before[1]:
        busy = min(float(len(cpus)), load_1m or 0.0)
    else:
        busy = len(cpus) * (after[0] - before[0]) / (after[1] - before[1])
    return Load(len(cpus), min(max(busy, 0.0), float(len(cpus))), load_1m, window_s)


def busy_warning(load: Load, threads: int, device: str = "cpu") -> str | None:
    """The warning printed at the top of a run when ``threads`` will not find free cores, else None.

    A GPU run is warned too: its host threads launch the kernels, and a stalled launch thread shows
    up in the GPU timings. Free cores are rounded to the nearest half core (the sample is short).
    """
    free = round(load.free_cores * 2) / 2
    if threads <= free:
        return None
    fix = ("wait until the other work ends (see `top`), or run with hardware.threads=1 (a different setting: "
           "its latencies are not comparable with the other thread count's)" if threads > 1 else
           "wait until the other work ends (see `top`): even one thread shares its core now, so latencies will be "
           "slow and noisy")
    return (f"WARNING: busy machine: other processes used {load.busy_cores:.1f} of {load.cpus} CPU(s) just now "
            f"(load average {'-' if load.load_1m is None else f'{load.load_1m:.2f}'}), so hardware.threads={threads} "
            f"will not find {threads} free core(s) ({device}). OpenMP threads on busy cores wait on each other: "
            f"with 2 other busy processes on 2 cores, calls ran 4-16x slower with 2 threads, 1.4-2.8x with 1 "
            f"(docs/design.md, item 13). "
            f"Fix: {fix}. The load is recorded on every row (cpus, busy_cores, free_cores, load_1m).")


# ---- State before and after a point (the `machine` column), energy per call ----

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


def _busy(free_cores: float, threads: int) -> bool:
    """As ``busy_warning``: fewer free cores (to the nearest half) than the point's threads."""
    return threads > round(free_cores * 2) / 2


def quiet(state: dict[str, Any], threads: int) -> bool | None:
    """From a ``snapshot``: others' 1-minute load (load average minus this point's threads) fits into
    the cores the point left free, within ``QUIET_SLACK``. None where there is no load average."""
    load = (state or {}).get("load")
    if not load:
        return None
    cpus = len(state.get("affinity") or []) or state.get("cpus") or 1
    return max(0.0, load[0] - threads) <= max(0, cpus - threads) + QUIET_SLACK


def busy_runs(rows: pd.DataFrame, side: str) -> list[str]:
    """Runs of a result set in which some point was measured while the machine was not quiet: fewer
    free cores than threads just before timing (``free_cores``), else, for rows without the load
    columns, a load average in the ``machine`` state that did not fit (``quiet``)."""
    pts = rows.drop_duplicates("file" if "file" in rows else ["run_id", "point_id"])
    out = []
    for run, grp in pts.groupby("run_id", sort=False):
        seen = []
        for _, r in grp.iterrows():
            threads = int(r.threads) if pd.notna(r.get("threads")) else 1
            free = r.get("free_cores")
            if free is not None and pd.notna(free):
                if _busy(float(free), threads):
                    seen.append(f"{float(free):.1f} free core(s) for {threads} thread(s)")
                continue
            if not isinstance(r.get("machine"), str):
                continue
            for when, st in json.loads(r.machine).items():
                if quiet(st, threads) is False:
                    seen.append(f"1-min load {st['load'][0]:g} {when}, {threads} thread(s) on "
                                f"{len(st.get('affinity') or []) or st.get('cpus')} core(s)")
        if seen:
            out.append(f"{side} run {run} ({len(seen)} reading(s), e.g. {seen[0]})")
    return out

"""How busy the machine is just before timing: load, busy and free cores, and the warning on a busy machine.

Why it matters (docs/design.md, "Threads on a busy machine"): torch's CPU kernels run on OpenMP
threads that meet at a barrier after every parallel region. When another process holds the cores,
each barrier waits for a descheduled thread to get its next time slice, so a 2-thread call slowed
down 4-16x here while two other processes were busy, where a 1-thread call slowed down 1.4-2.8x
(``bench/threads.py``, docs/design.md item 13). The harness never changes the thread count because
of load (two runs would stop being comparable); it measures the load, records it on every row, and
says at the top of a run what to set.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

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

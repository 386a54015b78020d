"""Checks after planning and before measuring: what would otherwise surface only after minutes of work.

- The results folder is writable (not found only after a point was fully measured).
- Temp files that a killed write left behind are removed; result files of planned points that
  cannot be read (a write cut short by a full disk) are moved to ``<results>.meta/set_aside/`` and measured
  again, instead of crashing every rerun.
- The machine's load: when the threads asked for will not find free cores, a warning with the fix
  comes first in the output (``harness.machine``). The thread count itself is never changed.
"""

from __future__ import annotations

from harness import machine, results
from harness.plan import Point


def preflight(points: list[Point], results_dir: str) -> machine.Load | None:
    """Run the checks for ``points`` about to run into ``results_dir``; returns the load measured
    (None when every point is finished and nothing will be timed). Raises ``ResultsError`` when
    the folder cannot be written."""
    results.check_writable(results_dir)
    for tmp in results.clean_temp_files(results_dir):
        print(f"removed {tmp}: a temp file left by a write that was killed", flush=True)
    for src, dest, why in results.set_aside_unreadable(results_dir, [p.point_id for p in points]):
        print(f"WARNING: {src}: {why}; moved to {dest}, and its point will be measured again", flush=True)
    todo = [p for p in points if not results.is_finished(results_dir, p.point_id)]
    if not todo:
        return None
    load = machine.measure_load()
    threads = max(int(p.hardware["threads"]) for p in todo)
    warning = machine.busy_warning(load, threads, str(todo[0].hardware["device"]))
    if warning:
        print(warning + "\n", flush=True)
    return load

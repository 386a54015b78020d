"""``launch``: run a sweep's points with the configured launcher, show progress, count the outcome.

``inline`` runs them in this process, ``process`` in a supervised worker process per chunk
(``harness.launch.supervise``), ``slurm``/``ray`` as jobs or tasks (``harness.launch.cluster``).
"""

from __future__ import annotations

from typing import Any

from harness import progress
from harness.launch.base import Launch, LaunchError, launcher_label, limits
from harness.launch.cluster import RayLaunch, SlurmLaunch
from harness.launch.config import LauncherConfig
from harness.launch.supervise import supervise
from harness.launch.worker import run_chunk
from harness.plan import Point
from harness.where import where_ran


class InlineLaunch(Launch):
    def _run(self, display: progress.SweepProgress) -> None:
        where = where_ran(launcher_label(self.cfg))
        current: list[str | None] = [None]

        def emit(ev: dict[str, Any]) -> None:
            current[0] = ev["point"] if ev["event"] == "start" else None if ev["event"] == "end" else current[0]
            display.event(ev)

        progress.set_sink(lambda ev: display.event(ev | {"point": current[0]}))
        try:
            for chunk in self.chunks:
                run_chunk(chunk, emit, where)
        finally:
            progress.set_sink(None)


class ProcessLaunch(Launch):
    def _run(self, display: progress.SweepProgress) -> None:
        where = where_ran(launcher_label(self.cfg))
        for chunk in self.chunks:  # one at a time: two timed workers on one machine disturb each other
            supervise(chunk, limits(self.cfg), display.event, where)


# Multirun jobs whose points were submitted to a cluster; the multirun's end waits for all of them.
PENDING: list[Launch] = []


def launch(points: list[Point], cfg: LauncherConfig, *, results_dir: str, experiment: str,
           baseline: str | None) -> Launch:
    """Hand ``points`` to the launcher ``cfg`` names. Cluster launchers submit at once; ``wait`` follows."""
    kw = dict(results_dir=results_dir, experiment=experiment, baseline=baseline)
    if cfg.name in ("slurm", "ray"):
        return (SlurmLaunch if cfg.name == "slurm" else RayLaunch)(points, cfg, **kw)
    if not cfg.wait:
        raise LaunchError(f"launcher.wait=false (--no-wait) needs jobs that outlive this process: launcher=slurm; "
                          f"launcher={cfg.name} runs its points in this process or its children. For a run in "
                          "the background here: nohup harness ... &")
    return {"inline": InlineLaunch, "process": ProcessLaunch}[cfg.name](points, cfg, **kw)

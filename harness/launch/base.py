"""What every launcher shares: chunks, labels, the ``Launch`` handle and its summary.

Finished points (an ok result file in the folder) are skipped before anything is started; the others
are grouped into chunks (``launcher.chunk``). Whatever the launcher, the result files are the truth:
the summary is read from them, not from job states (Slurm can report a failed job as COMPLETED).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from harness import progress
from harness.launch.config import IsolatedConfig, LauncherConfig
from harness.launch.supervise import Limits
from harness.launch.worker import Chunk, final
from harness.plan import Point
from harness.results import is_finished
from harness.runner import new_run_id


class LaunchError(RuntimeError):
    """A launcher cannot run these points here (a missing extra, an impossible request)."""


@dataclass(frozen=True)
class Summary:
    ok: int
    failed: int
    missing: int  # no result: a job that ended early, or a launch that was not waited for
    skipped: int  # finished earlier

    @property
    def bad(self) -> int:
        return self.failed + self.missing


def label(point: Point, i: int, n: int) -> str:
    return f"[{i}/{n}] {point.variant} seed={point.seed}"


def chunks_of(points: list[Point], how: str, **fields: Any) -> list[Chunk]:
    """``how="workload"``: one chunk per (task, model, hardware), in order of first appearance, so a
    worker loads each model once; ``"point"``: one chunk per point."""
    groups: dict[str, list[Point]] = {}
    for i, p in enumerate(points):
        key = str(i) if how == "point" else json.dumps([p.task, p.model, p.hardware], sort_keys=True)
        groups.setdefault(key, []).append(p)
    return [Chunk(index=i, points=tuple(g), **fields) for i, g in enumerate(groups.values())]


def launcher_label(cfg: LauncherConfig) -> str:
    cluster = getattr(cfg, "cluster", None)
    return cfg.name if cluster in (None, "slurm") else f"{cfg.name}/{cluster}"


def limits(cfg: LauncherConfig) -> Limits:
    return Limits(cfg.timeout_s, cfg.mem_limit_gb) if isinstance(cfg, IsolatedConfig) else Limits()


class Launch:
    """A sweep handed to a launcher. ``wait`` runs it (or waits for its jobs) with a progress display and
    returns the summary. ``background``: the work runs elsewhere once submitted (jobs, tasks), so a
    multirun can submit every job's points before waiting for any."""

    background = False

    def __init__(self, points: list[Point], cfg: LauncherConfig, *, results_dir: str, experiment: str,
                 baseline: str | None):
        self.cfg, self.results_dir = cfg, results_dir
        n = len(points)
        self.labels = {p.point_id: label(p, i, n) for i, p in enumerate(points, 1)}
        self.total = n
        todo = []
        for p in points:
            if is_finished(results_dir, p.point_id):
                print(f"{self.labels[p.point_id]}: finished earlier, skipped ({p.point_id})", flush=True)
            else:
                todo.append(p)
        self.skipped = n - len(todo)
        self.chunks = chunks_of(todo, cfg.chunk, results_dir=results_dir, experiment=experiment, baseline=baseline,
                                run_id=new_run_id(), launcher=launcher_label(cfg), since=time.time())

    def _display(self) -> progress.SweepProgress:
        return progress.SweepProgress(self.labels, self.total, self.skipped)

    def _run(self, display: progress.SweepProgress) -> None:
        raise NotImplementedError

    def wait(self) -> Summary:
        display = self._display()
        try:
            self._run(display)
        finally:
            display.close()
        return self.summary()

    def detach(self) -> None:
        raise LaunchError(f"launcher.wait=false needs jobs that outlive this process (launcher=slurm); "
                          f"launcher={self.cfg.name} runs its points here")

    def summary(self) -> Summary:
        states = [final(c, p.point_id) for c in self.chunks for p in c.points]
        s = Summary(ok=states.count("ok"), failed=states.count("error"), missing=states.count(None),
                    skipped=self.skipped)
        if s.missing:
            print(f"{s.missing} point(s) have no result (their job ended before reaching them); rerun the same "
                  "command to run them: finished points are skipped", flush=True)
        return s

"""What runs a chunk of points wherever a launcher put it: in the launcher's process, a worker process,
a Slurm job or a Ray task. ``python -m harness.launch.worker CHUNK_FILE`` is the worker process.

Per point: take its lock (``harness.launch.lock``), skip it if a result landed meanwhile, else measure
it and write its file (``harness.runner.run_point``), then let go. A point locked by another process
(a second launcher on the same folder) is left for later; after the chunk's other points, the worker
waits for each such lock and measures the point only if its holder died without a result. So two
launchers never measure a point at the same time, and none is lost.
"""

from __future__ import annotations

import faulthandler
import json
import os
import pickle
import signal
import socket
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pyarrow.parquet as pq

from harness import progress
from harness.launch.lock import PointLock
from harness.plan import Point
from harness.results import point_file
from harness.runner import environment_of, run_point

Emit = Callable[[dict[str, Any]], None]
EVENT_FD = "HARNESS_EVENT_FD"  # the worker process writes its events (JSON lines) to this descriptor


@dataclass(frozen=True)
class Chunk:
    """Points that run in one worker (they share a workload, so its model loads once), and what their
    rows need. ``token`` names this chunk of this launch in the points' lock files."""

    index: int
    points: tuple[Point, ...]
    results_dir: str
    experiment: str
    baseline: str | None
    run_id: str
    launcher: str
    since: float  # time.time() when the launch began: error rows written after it belong to this sweep

    @property
    def token(self) -> str:
        return f"{self.run_id}/{self.index}"

    def without(self, point_ids: set[str]) -> Chunk:
        return replace(self, points=tuple(p for p in self.points if p.point_id not in point_ids))


def point_state(results_dir: str, point_id: str) -> tuple[str | None, float | None]:
    """("ok" | "error" | None, when the file was written) of a point's result file."""
    path = point_file(results_dir, point_id)
    if not path.exists():
        return None, None
    t = pq.read_table(path, columns=["status", "created_at"])
    status = t.column("status").to_pylist()
    created = [c for c in t.column("created_at").to_pylist() if c is not None]
    when = max(created).timestamp() if created else path.stat().st_mtime
    return ("ok" if status and all(s == "ok" for s in status) else "error"), when


def final(chunk: Chunk, point_id: str) -> str | None:
    """"ok" or "error" once the point has a result from this sweep (or an ok one from before), else None."""
    status, when = point_state(chunk.results_dir, point_id)
    if status == "ok" or (status == "error" and when is not None and when >= chunk.since):
        return status
    return None


def holder_info(chunk: Chunk, where: dict[str, Any]) -> dict[str, Any]:
    job = {k: v for k, v in where.items() if k != "launcher" and v is not None}
    return {"token": chunk.token, "host": socket.gethostname(), "pid": os.getpid(), "launcher": chunk.launcher,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"), **job}


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    return f"{holder.get('launcher', '?')} pid {holder.get('pid')} on {holder.get('host')}"


def _attempt(point: Point, chunk: Chunk, emit: Emit, where: dict[str, Any], blocking: bool) -> bool:
    """Run the point unless someone else has it or it is done; False if it is held by another process."""
    pid = point.point_id
    lock = PointLock(chunk.results_dir, pid)
    if not lock.acquire(blocking=False):
        if not blocking:
            emit({"event": "held", "point": pid, "holder": _describe(lock.holder())})
            return False
        lock.acquire(blocking=True)
    try:
        state = final(chunk, pid)
        if state is not None:
            why = "finished earlier, skipped" if state == "ok" else "failed in this sweep under another launcher"
            emit({"event": "skip", "point": pid, "why": f"{why} ({pid})"})
            return True
        lock.claim(holder_info(chunk, where))
        emit({"event": "start", "point": pid, "env": environment_of(point)})
        status, error = run_point(point, run_id=chunk.run_id, experiment=chunk.experiment,
                                  results_dir=chunk.results_dir, baseline=chunk.baseline, where=where)
        emit({"event": "end", "point": pid, "status": status, "error": error})
        return True
    finally:
        lock.release()


def run_chunk(chunk: Chunk, emit: Emit, where: dict[str, Any]) -> None:
    """Every point of the chunk, in order; points held by another process after the others."""
    held = [p for p in chunk.points if not _attempt(p, chunk, emit, where, blocking=False)]
    for point in held:
        _attempt(point, chunk, emit, where, blocking=True)


def _die_with_parent(parent: int) -> bool:
    """Tie this worker's life to its supervisor's, so a killed launcher leaves no orphan timing points next
    to its rerun. Linux: the kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG; set here rather
    than in a pre-exec hook, which is unsafe in a threaded parent). Elsewhere a thread polls the parent.
    False if the parent is already gone (it died before this line)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    else:
        import threading

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(70)

        threading.Thread(target=watch, daemon=True).start()
    return os.getppid() == parent  # checked after the hook: no gap in which a death goes unseen


def main(path: str) -> int:
    """The worker process: run the pickled (chunk, where), reporting events to the supervisor."""
    faulthandler.enable()  # a segfault prints the Python stacks, which the supervisor keeps for the row
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the supervisor asks for stacks on a timeout
    if not _die_with_parent(int(os.environ.get("HARNESS_SUPERVISOR_PID", os.getppid()))):
        return 70
    chunk, where = pickle.loads(Path(path).read_bytes())
    out = os.fdopen(int(os.environ[EVENT_FD]), "w", buffering=1)

    def emit(ev: dict[str, Any]) -> None:
        out.write(json.dumps(ev, default=str) + "\n")
        out.flush()

    current: list[str | None] = [None]

    def emit_tracking(ev: dict[str, Any]) -> None:
        current[0] = ev["point"] if ev["event"] == "start" else None if ev["event"] == "end" else current[0]
        emit(ev)

    progress.set_sink(lambda ev: emit(ev | {"point": current[0]}))
    run_chunk(chunk, emit_tracking, where)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

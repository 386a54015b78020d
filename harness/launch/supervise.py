"""Run a chunk in a worker process and turn whatever kills it into an error row; the sweep goes on.

The supervisor (the launcher's process, or a Slurm job or Ray task) starts
``python -m harness.launch.worker``, reads its events, forwards its output, and watches it:

- a point that raises: the worker writes the error row itself (exception and traceback);
- the worker dies of a signal (a segfault, the OOM killer's SIGKILL) or exits early: the point it was
  running gets a row naming the signal or exit code, the peak memory seen and the worker's last output
  (faulthandler prints the Python stacks of a crash);
- a point runs past ``timeout_s``: its stacks are dumped (SIGUSR1 -> faulthandler), then the worker is
  killed and the row says so;
- the worker's resident memory passes ``mem_limit_gb``: it is killed and the row says so.

After a death, a fresh worker runs the chunk's points that had not run yet (their model loads again).
"""

from __future__ import annotations

import json
import os
import pickle
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.launch.lock import PointLock
from harness.launch.worker import EVENT_FD, Chunk, Emit
from harness.runner import write_failure

POLL_S = 0.1  # how often the supervisor samples the worker's memory and clocks
STACK_DUMP_WAIT_S = 2.0  # after SIGUSR1, how long the worker gets to print its stacks
DRAIN_S = 2.0  # after the worker ended, how long its pipes may stay open
TAIL_LINES = 25
LINE_CHARS = 300  # the worker's last output lines kept for an error row
GB = 1024**3


@dataclass(frozen=True)
class Limits:
    timeout_s: float | None = None
    mem_limit_gb: float | None = None


def _rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


@dataclass
class _Watch:
    """What the supervisor saw of one worker process."""

    finished: set[str]
    current: str | None = None
    current_since: float = 0.0
    env: dict[str, Any] | None = None
    peak_rss: int = 0
    cause: str | None = None  # set when the supervisor killed the worker


def _cause(w: _Watch, returncode: int, tail: deque[str]) -> str:
    peak = f"peak memory seen {w.peak_rss / GB:.2f} GB"
    if w.cause is not None:
        head = w.cause
    elif returncode < 0:
        sig = -returncode
        head = f"WorkerKilled: the worker running this point was killed by signal {sig} ({_signal_name(sig)})"
        if sig == signal.SIGKILL:
            head += "; the kernel's OOM killer sends SIGKILL when memory runs out"
    else:
        head = f"WorkerExited: the worker running this point exited with code {returncode}"
    last = "\n".join(tail)
    return f"{head}; {peak}" + (f"\nlast output of the worker:\n{last}" if last else "")


def run_worker(chunk: Chunk, limits: Limits, emit: Emit, where: dict[str, Any]) -> tuple[_Watch, int, deque[str]]:
    """One worker process over ``chunk``; returns what was seen, its exit code and its last output."""
    w = _Watch(finished=set())
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    fd, path = tempfile.mkstemp(prefix="harness-chunk-", suffix=".pkl")
    with os.fdopen(fd, "wb") as f:
        pickle.dump((chunk, where), f)
    read_ev, write_ev = os.pipe()
    env = dict(os.environ, **{EVENT_FD: str(write_ev), "HARNESS_SUPERVISOR_PID": str(os.getpid()),
                              "PYTHONUNBUFFERED": "1"})
    try:
        proc = subprocess.Popen([sys.executable, "-m", "harness.launch.worker", path], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, pass_fds=(write_ev,), env=env)
    finally:
        os.close(write_ev)
    sel = selectors.DefaultSelector()
    buffers = {read_ev: b"", proc.stdout.fileno(): b""}
    for fileno in buffers:
        os.set_blocking(fileno, False)
        sel.register(fileno, selectors.EVENT_READ)
    dumped_at: float | None = None
    status: int | None = None
    exited_at = 0.0

    def lines(fileno: int, data: bytes) -> list[str]:
        buffers[fileno] += data
        *complete, buffers[fileno] = buffers[fileno].split(b"\n")
        return [c.decode(errors="replace") for c in complete]

    def handle(fileno: int, line: str) -> None:
        if fileno != read_ev:
            if len(line) > LINE_CHARS:  # faulthandler's list of extension modules is one 3000-character line
                line = line[:LINE_CHARS] + " ..."
            tail.append(line)
            emit({"event": "output", "line": line})
            return
        ev = json.loads(line)
        if ev["event"] == "start":
            w.current, w.current_since, w.env = ev["point"], time.monotonic(), ev.get("env")
        elif ev["event"] in ("end", "skip"):
            w.finished.add(ev["point"])
            w.current = None
        emit(ev)

    try:
        while True:
            for key, _ in sel.select(timeout=POLL_S):
                data = os.read(key.fd, 1 << 16)
                if not data:
                    sel.unregister(key.fd)
                    if buffers[key.fd]:
                        handle(key.fd, buffers[key.fd].decode(errors="replace"))
                    continue
                for line in lines(key.fd, data):
                    handle(key.fd, line)
            if status is None:
                pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    status, exited_at = os.waitstatus_to_exitcode(st), time.monotonic()
                    w.peak_rss = max(w.peak_rss, ru.ru_maxrss * 1024)
            if status is not None:  # drain what the worker wrote before it ended (a process it started
                if not sel.get_map() or time.monotonic() - exited_at > DRAIN_S:  # may hold the pipes open)
                    break
                continue
            rss = _rss_bytes(proc.pid) or 0
            w.peak_rss = max(w.peak_rss, rss)
            if w.cause is None and limits.mem_limit_gb is not None and rss > limits.mem_limit_gb * GB:
                w.cause = (f"MemoryLimit: the worker's resident memory reached {rss / GB:.2f} GB, past "
                           f"launcher.mem_limit_gb={limits.mem_limit_gb:g}; killed")
                proc.kill()
            if w.cause is None and limits.timeout_s is not None and w.current is not None \
                    and time.monotonic() - w.current_since > limits.timeout_s:
                w.cause = (f"Timeout: the point ran past launcher.timeout_s={limits.timeout_s:g} "
                           f"(killed after {time.monotonic() - w.current_since:.1f} s); its stacks at that moment "
                           "are in the worker's last output below")
                dumped_at = time.monotonic()
                proc.send_signal(signal.SIGUSR1)
            if dumped_at is not None and time.monotonic() - dumped_at > STACK_DUMP_WAIT_S:
                proc.kill()
                dumped_at = float("inf")
    finally:
        sel.close()
        os.close(read_ev)
        proc.stdout.close()
        if status is None:
            proc.kill()
            _, st, ru = os.wait4(proc.pid, 0)
            status = os.waitstatus_to_exitcode(st)
        proc.returncode = status
        os.unlink(path)
    return w, status, tail


def supervise(chunk: Chunk, limits: Limits, emit: Emit, where: dict[str, Any]) -> None:
    """Every point of ``chunk`` in worker processes, a fresh one after each death."""
    while chunk.points:
        w, code, tail = run_worker(chunk, limits, emit, where)
        if code == 0 and w.cause is None:
            return
        cause = _cause(w, code, tail)
        if w.current is None:
            # Died outside any point (at start-up: an import error, a bad plug-in). A fresh worker would
            # die the same way: every point left gets the cause.
            failed = [p for p in chunk.points if p.point_id not in w.finished]
            cause = cause.replace("running this point", "that was to run this point", 1)
        else:
            failed = [p for p in chunk.points if p.point_id == w.current]
        for point in failed:
            record_failure(chunk, point, cause, w.env if point.point_id == w.current else None, where, emit)
        chunk = chunk.without(w.finished | {p.point_id for p in failed})


def record_failure(chunk: Chunk, point: Any, cause: str, env: dict[str, Any] | None, where: dict[str, Any],
                   emit: Emit) -> bool:
    """Write the error row of a point whose worker died, under its lock (False if another process took the
    point meanwhile: then that process writes its result)."""
    lock = PointLock(chunk.results_dir, point.point_id)
    if not lock.acquire(blocking=False):
        return False
    try:
        write_failure(point, cause, env=env, where=where, run_id=chunk.run_id, experiment=chunk.experiment,
                      results_dir=chunk.results_dir, baseline=chunk.baseline)
    finally:
        lock.release()
    emit({"event": "end", "point": point.point_id, "status": "error", "error": cause})
    return True

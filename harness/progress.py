"""Progress of a sweep, and of long single points.

A sweep shows a bar (points done, failed, running; ETA from the points finished in this run) when its
output is a terminal, and one line per point otherwise (CI, logs), so a log stays readable. Every
launcher feeds the same events: ``skip``, ``held``, ``start``, ``end``, ``progress`` (inside a long
point) and ``output`` (a worker's printed line).

A long single point (generating thousands of samples for FID, training a zoo model) wraps its loop in
``track``: under a launcher its progress travels to the sweep's display (from a worker process as an
event); on its own it is a tqdm bar on a terminal and silent elsewhere.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterable, Iterator, TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")
Event = dict[str, Any]

# Where ``track`` reports: set by a launcher worker (events to its supervisor) or by an in-process sweep.
_sink: Callable[[Event], None] | None = None
INNER_EVERY_S = 0.5  # at most this often an inner-progress event
LOG_EVERY_S = 30.0  # without a terminal, at most this often a line about a long point


def set_sink(sink: Callable[[Event], None] | None) -> None:
    global _sink
    _sink = sink


def track(items: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
    """Yield ``items``, reporting how many are done (``desc``: what they are, e.g. "FID samples")."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if _sink is None:
        yield from tqdm(items, total=total, desc=desc, leave=False, disable=not sys.stderr.isatty())
        return
    last = 0.0
    for i, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if now - last >= INNER_EVERY_S or i == total:
            _sink({"event": "progress", "desc": desc, "done": i, "total": total})
            last = now


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


class SweepProgress:
    """The display of one launch: ``labels`` maps point ids to "[i/n] variant seed=s"."""

    def __init__(self, labels: dict[str, str], total: int, skipped: int, stream: TextIO | None = None):
        self.labels, self.stream = labels, stream or sys.stdout
        self.tty = self.stream.isatty()
        self.running: dict[str, float] = {}
        self.done = self.failed = 0
        self.started = time.monotonic()
        self._inner: dict[str, str] = {}
        self._logged: dict[str, float] = {}
        self._held: set[str] = set()
        self._skipped_late: set[str] = set()  # skipped by a worker: another launcher finished them
        # ETA from finished points only: points skipped as finished earlier start the bar (initial).
        self.bar = tqdm(total=total, initial=skipped, file=self.stream, disable=not self.tty, smoothing=0,
                        unit="pt", dynamic_ncols=True, bar_format="{l_bar}{bar}| {n}/{total} [{elapsed}<{remaining}]"
                        " {postfix}")

    def write(self, line: str) -> None:
        if self.tty:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def _eta(self) -> str:
        finished = self.done
        left = len(self.labels) - finished - len(self._skipped_late)
        if not finished or left <= 0:
            return ""
        rate = finished / (time.monotonic() - self.started)
        return f"; ETA {_duration(left / rate)}"

    def _status(self) -> None:
        run = next(iter(self.running), None)
        inner = f" {self._inner[run]}" if run in self._inner else ""
        self.bar.set_postfix_str(f"failed {self.failed}, running {len(self.running)}"
                                 + (f": {self.labels.get(run, run)}{inner}" if run else ""), refresh=True)

    def event(self, ev: Event) -> None:
        kind, pid = ev["event"], ev.get("point")
        label = self.labels.get(pid, pid)
        if kind == "output":
            self.write(ev["line"])
        elif kind == "skip":
            self._skipped_late.add(pid)
            self.running.pop(pid, None)
            self.write(f"{label}: {ev['why']}")
            self.bar.update(1)
        elif kind == "held":
            if pid not in self._held:  # say it once per point
                self._held.add(pid)
                self.write(f"{label}: being measured by {ev['holder']}; waiting for it")
        elif kind == "start":
            self.running[pid] = time.monotonic()
            if not self.tty:
                done = f" ({self.done} done, {self.failed} failed{self._eta()})" if self.done else ""
                self.write(f"{label}: running{done}")
        elif kind == "end":
            self.running.pop(pid, None)
            self._inner.pop(pid, None)
            self.done += 1
            if ev["status"] != "ok":
                self.failed += 1
                self.write(f"{label}: FAILED, recorded, going on: {str(ev['error']).splitlines()[0]}")
            self.bar.update(1)
        elif kind == "progress":
            total = f"/{ev['total']}" if ev.get("total") else ""
            self._inner[pid] = f"{ev['desc']} {ev['done']}{total}"
            now = time.monotonic()
            if not self.tty and now - self._logged.get(pid, self.running.get(pid, now)) >= LOG_EVERY_S:
                self._logged[pid] = now
                self.write(f"{label}: {self._inner[pid]}")
        if self.tty:
            self._status()

    def close(self) -> None:
        self.bar.close()

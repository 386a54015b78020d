"""One lock per point, so that no point is measured by two processes at the same time.

``fcntl.flock`` on ``<results_dir>.meta/launch/locks/<point_id>.lock`` (next to the results folder, so
that dataset readers see result files only). The kernel drops a lock when its
holder dies (kill -9, a segfault, the OOM killer), so a dead process never holds a point; on NFS,
Linux maps flock to POSIX byte-range locks kept by the server with a lease, so a dead node's locks
expire too. While a point runs, its lock file names the holder (host, pid, launcher, job); it is
emptied when the point's result is written. A non-empty file that nobody holds was left by a holder
that died mid-point: that is how a launcher tells which point a dead job was running.

Lock files are never deleted: deleting one races with a process that opened it but has not locked it
yet (it would then hold a lock on a file nobody else can see while a third process locks a new one).
The folder starts with a dot, so parquet readers (pandas, pyarrow, DuckDB globs of ``*.parquet``)
never look inside it.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

LOCK_DIR = Path("launch") / "locks"  # under harness.results.meta_dir


def lock_file(results_dir: str | Path, point_id: str) -> Path:
    from harness.results import meta_dir

    return meta_dir(results_dir) / LOCK_DIR / f"{point_id}.lock"


class PointLock:
    """``acquire`` (non-blocking or blocking), ``claim`` (say who runs it), ``release`` (empty and unlock)."""

    def __init__(self, results_dir: str | Path, point_id: str):
        self.path = lock_file(results_dir, point_id)
        self._fd: int | None = None

    def acquire(self, blocking: bool = False) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def claim(self, holder: dict[str, Any]) -> None:
        self._write(json.dumps(holder, sort_keys=True))

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self._write("")
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _write(self, text: str) -> None:
        assert self._fd is not None, "acquire the lock first"
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text.encode(), 0)
        os.fsync(self._fd)

    def holder(self) -> dict[str, Any] | None:
        """Who claimed the point (read without locking): None when nobody is running it, or nobody
        has since its last holder finished."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            return json.loads(text) if text.strip() else None
        except json.JSONDecodeError:  # read while a holder was writing it
            return None

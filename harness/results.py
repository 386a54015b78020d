"""Tidy result rows: one parquet file per sweep point, one explicit schema, a loader for many folders.

The schema is documented in ``docs/results.md`` so a pandas or DuckDB user needs none of our code.
Every file is written with ``SCHEMA`` (all columns nullable, declared up front): parquet readers
otherwise take the schema of whichever file sorts first and silently drop columns added later.
``load`` unions the columns of every file for the same reason.

A results folder holds only result files, so that pandas, pyarrow, DuckDB and polars read it as one
dataset. Everything else a run writes goes next to it, into ``<results folder>.meta/`` (``plots/``,
``hydra/`` with Hydra's multirun.yaml, ``set_aside/`` for unreadable files): polars reads every file
under a folder, whatever its name, so even ``_``-prefixed sub-folders (which pyarrow skips) break it.
Temp files of a write in progress start with ``.``, which every reader skips.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 4  # 2: where it ran (launcher, job and GPU co-tenant columns); 3: the machine's load before timing;
# 4: machine (its state before and after the point, JSON)

SCHEMA = pa.schema([
    # identity
    ("run_id", pa.string()), ("point_id", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
    ("schema_version", pa.int32()), ("experiment", pa.string()), ("status", pa.string()),
    ("error", pa.string()),
    # what ran
    ("task", pa.string()), ("model", pa.string()), ("method", pa.string()), ("variant", pa.string()),
    ("params", pa.string()), ("config", pa.string()), ("seed", pa.int64()), ("batch_size", pa.int64()),
    ("baseline", pa.string()),
    # where
    ("hardware", pa.string()), ("device", pa.string()), ("device_name", pa.string()),
    ("device_count", pa.int64()), ("torch", pa.string()), ("cuda", pa.string()), ("driver", pa.string()),
    ("cpu", pa.string()), ("threads", pa.int64()), ("git_sha", pa.string()), ("hostname", pa.string()),
    ("python", pa.string()), ("libraries", pa.string()),
    # where it ran (harness.where): the launcher, its job, the GPU's other processes while timing
    ("launcher", pa.string()), ("cuda_visible_devices", pa.string()), ("slurm_job_id", pa.string()),
    ("slurm_array_job_id", pa.string()), ("slurm_array_task_id", pa.string()), ("ray_node_id", pa.string()),
    ("ray_task_id", pa.string()), ("gpu_other_processes", pa.int64()),
    # how busy the machine was just before the point was timed (harness.machine)
    ("cpus", pa.int64()), ("busy_cores", pa.float64()), ("free_cores", pa.float64()), ("load_1m", pa.float64()),
    ("omp_wait_policy", pa.string()),
    # the machine's state before and after the point (load averages, affinity, governor; GPU clocks, power limit,
    # temperature, throttle reasons, energy counter): harness.machine.snapshot, JSON
    ("machine", pa.string()),
    # what was seen
    ("metric", pa.string()), ("value", pa.float64()), ("unit", pa.string()), ("higher_is_better", pa.bool_()),
    ("sample", pa.int64()), ("stage", pa.string()), ("n", pa.int64()), ("timing", pa.string()),
])
COLUMNS = SCHEMA.names


# Columns every harness result file has had since schema version 1: a parquet file without them
# is not ours (another tool's export, a stray file), and analysis refuses it by name.
REQUIRED = ("point_id", "status", "metric", "value")
# What a run writes besides result rows, in ``<results folder>.meta/`` (``meta_dir``).
ASIDE = ("plots", "hydra", "set_aside")


class ResultsError(ValueError):
    """A results path that cannot be read as harness results (names the path and what was expected)."""


def meta_dir(results_dir: str | Path) -> Path:
    """``results/samplers_digits`` -> ``results/samplers_digits.meta``: next to the folder, not in it."""
    folder = Path(results_dir)
    if folder.name in ("", ".", ".."):  # "." or "..": name it by the folder it is
        folder = folder.resolve()
    if not folder.name:
        raise ValueError(f"results_dir={str(results_dir)!r}: expected a folder below the file system's root")
    return folder.with_name(folder.name + ".meta")


def aside_dir(results_dir: str | Path, kind: str) -> Path:
    """Where ``kind`` (plots, hydra, set_aside) goes for a results folder, out of dataset readers' way."""
    if kind not in ASIDE:
        raise ValueError(f"aside kind {kind!r}; valid: {', '.join(ASIDE)}")
    return meta_dir(results_dir) / kind


def point_file(results_dir: str | Path, point_id: str) -> Path:
    return Path(results_dir) / f"{point_id}.parquet"


def is_finished(results_dir: str | Path, point_id: str) -> bool:
    """A point is finished when its file exists and recorded no error (errors are retried)."""
    path = point_file(results_dir, point_id)
    if not path.exists() or _unreadable(path) is not None:  # an unreadable file is measured again
        return False
    status = pq.read_table(path, columns=["status"]).column("status").to_pylist()
    return bool(status) and all(s == "ok" for s in status)


def write_point(results_dir: str | Path, point_id: str, rows: Iterable[dict[str, Any]]) -> Path:
    """Write one point's rows atomically (temp file + rename) with the explicit schema.

    A key outside ``SCHEMA`` is an error, not a silently dropped column. The file gets the
    permissions the user's umask gives a new file (``tempfile.mkstemp`` would make it 0600, which a
    colleague on a shared filesystem cannot read). The temp file's name carries the host and process
    id, so ``clean_temp_files`` can tell one left by a killed run from a write in progress.
    """
    rows = list(rows)
    unknown = sorted({k for r in rows for k in r} - set(COLUMNS))
    if unknown:
        raise KeyError(f"result columns {unknown} are not in harness.results.SCHEMA; add them there")
    table = pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows], schema=SCHEMA)
    table = table.replace_schema_metadata({"harness_schema_version": str(SCHEMA_VERSION)})
    folder = Path(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    final = point_file(folder, point_id)
    tmp = folder / f".{point_id}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # mode 0666 & ~umask
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return final


def check_writable(results_dir: str | Path) -> None:
    """Fail before anything is measured if results cannot be written to ``results_dir``."""
    folder = Path(results_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        probe.unlink()
    except OSError as exc:
        raise ResultsError(f"results_dir={str(folder)!r}: cannot write there ({exc.strerror or exc}); expected a "
                           "folder this user can create files in: set results_dir=/a/writable/folder") from None


def clean_temp_files(results_dir: str | Path, stale_after_s: float = 3600.0) -> list[Path]:
    """Remove temp files that a killed write left behind: those of a process on this host that is
    gone, or any older than ``stale_after_s`` (another host's, on a shared filesystem)."""
    removed, host, now = [], socket.gethostname(), time.time()
    for tmp in Path(results_dir).glob(".*.tmp"):
        parts = tmp.name.split(".")  # "", point_id, host..., pid, random, "tmp"
        try:
            pid, same_host = int(parts[-3]), ".".join(parts[2:-3]) == host
        except (ValueError, IndexError):
            pid, same_host = None, False
        try:
            gone = same_host and pid is not None and not _alive(pid)
            if gone or now - tmp.stat().st_mtime > stale_after_s:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def set_aside_unreadable(results_dir: str | Path, point_ids: Iterable[str]) -> list[tuple[Path, Path, str]]:
    """Move the files of ``point_ids`` that cannot be read (a write cut short by a full disk, a
    crash) into ``<results folder>.meta/set_aside/``, so that their points are measured again.
    Returns (from, to, why)."""
    moved = []
    for pid in point_ids:
        path = point_file(results_dir, pid)
        if not path.exists():
            continue
        why = _unreadable(path)
        if why is None:
            continue
        dest = aside_dir(results_dir, "set_aside") / f"{path.name}.{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
        moved.append((path, dest, why))
    return moved


def _read(path: Path) -> pa.Table:
    """The table of one result file; ``ResultsError`` naming the file if it is not one."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ResultsError(f"{path}: not a readable parquet file ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:160]}); expected a result file of this harness") from None
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        names = table.column_names
        raise ResultsError(f"{path}: not a result file of this harness: no {', '.join(missing)} column(s) (it has "
                           f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''}); expected the columns of "
                           "docs/results.md")
    return table


def _unreadable(path: Path) -> str | None:
    """Why ``path`` is not a readable harness result file, or None if it is one."""
    try:
        _read(path)
    except ResultsError as exc:
        return str(exc).split(": ", 1)[1]
    return None


def _skipped(path: Path, top: Path) -> bool:
    """Dataset readers' convention (pyarrow, Spark, Hive): names starting with _ or . are not data."""
    return any(part.startswith(("_", ".")) for part in path.relative_to(top).parts)


def _files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*.parquet") if not _skipped(f, p))
        elif p.is_file() and p.suffix == ".parquet":
            files.append(p)
        elif p.exists():
            raise ResultsError(f"results path {str(p)!r} is not a .parquet file; expected a results folder or a "
                               ".parquet result file")
        else:
            raise ResultsError(f"results path {str(p)!r} does not exist; expected a results folder (e.g. "
                               "results/samplers_digits) or a .parquet result file")
    return files


def load(*paths: str | Path) -> pd.DataFrame:
    """All rows under the given result folders or files, columns unioned across files.

    Adds one column that is not stored: ``file``, the parquet file each row came from (one file
    is one measured point, so the same config measured in two folders stays two points).
    A file that is not a readable harness result file is an error naming it, never skipped.
    """
    files = _files(paths)
    if not files:
        raise ResultsError(f"no .parquet result files under {', '.join(repr(str(p)) for p in paths)}; expected a "
                           "folder a harness run wrote (e.g. results/samplers_digits)")
    tables = []
    for f in files:
        t = _read(f)
        tables.append(t.append_column("file", pa.array([str(f)] * t.num_rows, pa.string())))
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def params_json(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)

"""Tidy result rows: one parquet file per sweep point, one explicit schema, a loader for many folders.

The schema is documented in ``docs/results.md`` so a pandas or DuckDB user needs none of our code.
Every file is written with ``SCHEMA`` (all columns nullable, declared up front): parquet readers
otherwise take the schema of whichever file sorts first and silently drop columns added later.
``load`` unions the columns of every file for the same reason.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 2  # 2: where it ran (launcher, job and GPU co-tenant columns)

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
    # what was seen
    ("metric", pa.string()), ("value", pa.float64()), ("unit", pa.string()), ("higher_is_better", pa.bool_()),
    ("sample", pa.int64()), ("stage", pa.string()), ("n", pa.int64()), ("timing", pa.string()),
])
COLUMNS = SCHEMA.names


def point_file(results_dir: str | Path, point_id: str) -> Path:
    return Path(results_dir) / f"{point_id}.parquet"


def is_finished(results_dir: str | Path, point_id: str) -> bool:
    """A point is finished when its file exists and recorded no error (errors are retried)."""
    path = point_file(results_dir, point_id)
    if not path.exists():
        return False
    status = pq.read_table(path, columns=["status"]).column("status").to_pylist()
    return bool(status) and all(s == "ok" for s in status)


def write_point(results_dir: str | Path, point_id: str, rows: Iterable[dict[str, Any]]) -> Path:
    """Write one point's rows atomically (temp file + rename) with the explicit schema.

    A key outside ``SCHEMA`` is an error, not a silently dropped column.
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
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{point_id}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return final


def _files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*.parquet") if not f.name.startswith("."))
        elif p.suffix == ".parquet" and p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p} is neither a results folder nor a .parquet file")
    return files


def load(*paths: str | Path) -> pd.DataFrame:
    """All rows under the given result folders or files, columns unioned across files.

    Adds one column that is not stored: ``file``, the parquet file each row came from (one file
    is one measured point, so the same config measured in two folders stays two points).
    """
    files = _files(paths)
    if not files:
        raise FileNotFoundError(f"no .parquet result files under {', '.join(map(str, paths))}")
    tables = []
    for f in files:
        t = pq.read_table(f)
        tables.append(t.append_column("file", pa.array([str(f)] * t.num_rows, pa.string())))
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def params_json(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)

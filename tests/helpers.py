from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from harness.plan import compose_config as compose_cfg  # noqa: F401  (tests import it from here)

ROOT = Path(__file__).resolve().parent.parent
# Small but real: every point still times, counts, generates and scores (conf/profile/smoke.yaml).
SMOKE = "profile=smoke"


def run_cli(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"harness {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def synthetic_point(variant: str, latencies: list[float] | np.ndarray, quality: float | None = None,
                    replicates: list[float] | np.ndarray | None = None, *, run_id: str = "r",
                    created_at: datetime | None = None, device_name: str = "cpu0", seed: int = 0,
                    extra_metrics: dict[str, float] | None = None, abba: tuple[str, list[float]] | None = None,
                    **columns: Any) -> list[dict]:
    """Result rows of one point as the runner writes them, with known values: for statistics tests.

    ``abba=(baseline_variant, samples)``: the point timed that baseline in ABBA blocks with itself."""
    method = variant.split("/")[0]
    config = {"task": {"name": "t"}, "model": {"name": "m"}, "method": {"name": method, "label": variant},
              "seed": seed}
    if abba is not None:
        config["paired_with"] = {"name": abba[0].split("/")[0], "label": abba[0]}
    ident = variant if seed == 0 else f"{variant}|seed={seed}"  # one file per point and seed
    base = {"run_id": run_id, "point_id": hashlib.sha256(ident.encode()).hexdigest()[:16],
            "created_at": created_at or datetime(2026, 1, 1, tzinfo=timezone.utc), "status": "ok", "task": "t",
            "model": "m", "method": method, "variant": variant, "seed": seed, "batch_size": 8, "hardware": "cpu",
            "device": "cpu", "device_name": device_name, "threads": 1, "baseline": None,
            "config": json.dumps(config, sort_keys=True), **columns}
    rows = [base | {"metric": "latency", "stage": "end_to_end", "sample": i, "value": float(v), "unit": "s",
                    "higher_is_better": False} for i, v in enumerate(latencies)]
    if quality is not None:
        rows.append(base | {"metric": "fid", "value": float(quality), "n": 100, "higher_is_better": False})
    rows += [base | {"metric": "fid_bootstrap", "value": float(v), "sample": i, "n": 100, "higher_is_better": False}
             for i, v in enumerate(replicates if replicates is not None else [])]
    rows += [base | {"metric": k, "value": float(v), "higher_is_better": None}
             for k, v in (extra_metrics or {}).items()]
    if abba is not None:
        rows += [base | {"metric": "latency", "stage": "abba_baseline", "sample": i, "value": float(v), "unit": "s",
                         "higher_is_better": False} for i, v in enumerate(abba[1])]
    return rows


def write_set(folder: Path, *point_rows: list[dict]) -> Path:
    """Write each point's rows as the runner would: one parquet file per point."""
    from harness.results import write_point

    for rows in point_rows:
        write_point(folder, rows[0]["point_id"], rows)
    return folder

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from harness import results
from harness.pareto import pareto_mask
from harness.report import render_markdown, summarize


def _rows(point_id: str, variant: str, latencies: list[float], fid: float, **extra) -> list[dict]:
    base = {"run_id": "r", "point_id": point_id, "created_at": datetime.now(timezone.utc), "status": "ok",
            "task": "t", "model": "m", "method": variant.split("/")[0], "variant": variant, "seed": 0,
            "batch_size": 8, "hardware": "cpu", "device_name": "cpu0", "baseline": "a/steps=50", **extra}
    rows = [base | {"metric": "latency", "stage": "end_to_end", "sample": i, "value": v, "unit": "s"}
            for i, v in enumerate(latencies)]
    rows.append(base | {"metric": "fid", "value": fid, "n": 100})
    rows.append(base | {"metric": "nfe", "value": 50.0})
    return rows


def test_round_trip(tmp_path) -> None:
    rows = _rows("p1", "a/steps=50", [1.0, 1.1, 0.9], 10.0)
    results.write_point(tmp_path, "p1", rows)
    df = results.load(tmp_path)
    assert len(df) == len(rows)
    assert list(df.columns) == [*results.COLUMNS, "file"]  # `file` is added by the loader, not stored
    assert df[df.metric == "latency"].value.tolist() == [1.0, 1.1, 0.9]
    assert df.created_at.dt.tz is not None
    assert not list(tmp_path.glob(".*.tmp")), "temp files must not be left behind"
    assert results.is_finished(tmp_path, "p1")
    # the same file reads with plain pyarrow/pandas, no harness code
    assert len(pd.read_parquet(tmp_path / "p1.parquet")) == len(rows)


def test_unknown_column_is_an_error(tmp_path) -> None:
    with pytest.raises(KeyError, match="not_a_column"):
        results.write_point(tmp_path, "p", [{"metric": "x", "not_a_column": 1}])


def test_error_points_are_not_finished(tmp_path) -> None:
    results.write_point(tmp_path, "bad", [{"point_id": "bad", "status": "error", "metric": "error"}])
    assert not results.is_finished(tmp_path, "bad")
    assert not results.is_finished(tmp_path, "missing")


def test_new_column_in_later_run_is_not_dropped(tmp_path, monkeypatch) -> None:
    results.write_point(tmp_path / "old", "p1", _rows("p1", "a/steps=50", [1.0, 1.0], 1.0))
    monkeypatch.setattr(results, "SCHEMA", results.SCHEMA.append(pa.field("energy_j", pa.float64())))
    monkeypatch.setattr(results, "COLUMNS", results.SCHEMA.names)
    results.write_point(tmp_path / "new", "p2", [r | {"energy_j": 5.0} for r in _rows("p2", "b/steps=5", [1.0], 2.0)])
    # "new" sorts after "old": a reader that took the first file's schema would drop energy_j
    df = results.load(tmp_path)
    assert "energy_j" in df.columns
    assert df[df.point_id == "p2"].energy_j.eq(5.0).all()
    assert df[df.point_id == "p1"].energy_j.isna().all()


def test_pareto_mask_hand_checked() -> None:
    cost = [1, 2, 3, 4, 2, np.nan]
    fid = [50, 20, 25, 10, 30, 1]
    assert pareto_mask(cost, fid, higher_is_better=False).tolist() == [True, True, False, True, False, False]
    assert pareto_mask([1, 1], [5, 7], higher_is_better=True).tolist() == [False, True]


def test_summary_speedup_and_front(tmp_path) -> None:
    rng = np.random.default_rng(0)
    base = list(rng.lognormal(np.log(2.0), 0.02, 30))
    fast = list(rng.lognormal(np.log(0.5), 0.02, 30))
    slow_worse = list(rng.lognormal(np.log(1.0), 0.02, 30))  # dearer than b and worse than a: dominated
    rows = _rows("p1", "a/steps=50", base, 10.0) + _rows("p2", "b/steps=5", fast, 12.0) + \
        _rows("p3", "c/steps=20", slow_worse, 13.0)
    s = summarize(pd.DataFrame(rows)).set_index("variant")
    assert s.loc["b/steps=5", "speedup_low"] < 4.0 < s.loc["b/steps=5", "speedup_high"]
    assert abs(s.loc["a/steps=50", "speedup"] - 1.0) < 1e-9
    # cheaper-but-worse and dearer-but-better are both on the front; the dominated point is not
    assert s.on_front.to_dict() == {"a/steps=50": True, "b/steps=5": True, "c/steps=20": False}
    md = render_markdown(s.reset_index())
    assert "a/steps=50 (baseline)" in md and md.count("\n") == 4


def test_same_point_in_two_folders_stays_two_points(tmp_path) -> None:
    for folder, scale in (("a", 1.0), ("b", 2.0)):
        rows = _rows("p1", "a/steps=50", [scale] * 5, 10.0) + _rows("p2", "b/steps=5", [scale / 4] * 5, 12.0)
        for pid in ("p1", "p2"):
            results.write_point(tmp_path / folder, pid, [r for r in rows if r["point_id"] == pid])
    s = summarize(results.load(tmp_path / "a", tmp_path / "b"))
    assert len(s) == 4
    assert s[s.variant == "a/steps=50"].latency.sort_values().tolist() == [1.0, 2.0]
    assert np.allclose(s[s.variant == "b/steps=5"].speedup, 4.0)  # each against its own folder's baseline


def test_ambiguous_baseline_is_an_error() -> None:
    rows = _rows("p1", "a/steps=50", [1.0] * 5, 10.0) + [
        r | {"run_id": "other"} for r in _rows("p1", "a/steps=50", [1.1] * 5, 10.0)]
    with pytest.raises(ValueError, match="measured 2 times"):
        summarize(pd.DataFrame(rows))


def test_summary_of_only_failed_points_renders() -> None:
    rows = [{"run_id": "r", "point_id": "x", "status": "error", "error": "ValueError: boom", "metric": "error",
             "variant": "a/steps=1", "method": "a", "task": "t", "model": "m", "hardware": "cpu", "seed": 0}]
    assert "FAILED: ValueError: boom" in render_markdown(summarize(pd.DataFrame(rows, columns=results.COLUMNS)))

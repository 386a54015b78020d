"""Per-point estimates from result rows: the data layer under report, pareto, compare, budget, claims.

Everything here takes the rows ``harness.results.load`` returns and gives back plain DataFrames
(no printing, no plotting), so a notebook user can start from ``estimates(load(...))``.

Metric names: a row's ``metric``, or ``metric@stage`` for a stage other than ``end_to_end``
(``latency`` is the whole call, ``latency@denoise_step`` one step). Derived here, not stored:
``latency_per_item`` = latency / the items of one timed call (to compare or budget across batch
sizes). Items per call are the timing note's ``batch_size``, which is the task's ``batch_size``
except where one timed call is several batches (text generation times a pass over its prompts).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.stats import Estimate, median_ci, recentred_bootstrap_ci

# Columns that must be equal for two points to be compared (with the config minus the method).
GROUP = ["task", "model", "hardware", "device_name", "seed", "batch_size"]
IDENTITY = ["point_id", "run_id", "file", "experiment", "variant", "method", "params", "status", "error",
            "baseline", "task", "model", "hardware", "device", "device_name", "seed", "batch_size",
            "created_at", "git_sha"]
# Short names users type for metrics as they appear in the rows.
ALIASES = {"time": "latency", "e2e": "latency", "memory": "peak_memory", "mem": "peak_memory",
           "flop": "flops", "steps": "nfe", "per_item": "latency_per_item"}
_NO_CI = "single value, no CI"
DERIVED_IDENTITY = ["key", "setting", "seedless", "match", "method_config", "paired_with"]


def _config(first: pd.Series) -> dict[str, Any]:
    return json.loads(first["config"]) if isinstance(first.get("config"), str) else {}


def setting_of(first: pd.Series, across_seeds: bool = False) -> str:
    """What must be equal for two points to be compared: the full point config except the method
    (task incl. metric settings, model, hardware incl. threads and dtype, seed, timing policy), the
    device, and the folder the results came from. ``across_seeds``: the same without the seed, so
    that seeds of one setting can be taken as replicates."""
    cfg = _config(first)
    cfg.pop("method", None)
    cfg.pop("paired_with", None)
    group = [k for k in GROUP if not (across_seeds and k == "seed")]
    if across_seeds:
        cfg.pop("seed", None)
    folder = str(Path(first["file"]).parent) if isinstance(first.get("file"), str) else ""
    key = json.dumps([cfg, first.get("device_name"), folder, [first.get(k) for k in group]], sort_keys=True,
                     default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def match_key(first: pd.Series) -> str:
    """What ran, for matching points across result sets (commits, GPUs, dates): task, model,
    method and seed configs; not the hardware, the timing policy, the run or the folder."""
    cfg = _config(first)
    what = {k: cfg.get(k) for k in ("task", "model", "method", "seed")} if cfg else \
        {k: first.get(k) for k in ("task", "model", "method", "params", "seed", "batch_size")}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _per_point(rows: pd.DataFrame):  # noqa: ANN202  (an iterator of (first row, rows) pairs)
    by = "file" if "file" in rows else ["run_id", "point_id"]
    for _, df in rows.groupby(by, sort=False):
        yield df.iloc[0], df


def _canonical(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _ident(first: pd.Series) -> dict[str, Any]:
    """Identity of one measured point; ``key`` is unique per measurement (file, or run and point).
    ``method_config`` and ``paired_with`` (canonical JSON) tell which baseline an ABBA point timed."""
    key = first.get("file") if isinstance(first.get("file"), str) else f"{first.get('run_id')}/{first.get('point_id')}"
    cfg = _config(first)
    return {k: first.get(k) for k in IDENTITY} | {
        "key": key, "setting": setting_of(first), "seedless": setting_of(first, across_seeds=True),
        "match": match_key(first),
        "method_config": _canonical(cfg.get("method")), "paired_with": _canonical(cfg.get("paired_with"))}


def points(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per measured point: identity columns, ``setting``, ``match`` and ``setting_label``
    (the settings' differing config values, e.g. ``task.batch_size=32,task.length=256``)."""
    out, flat = [], []
    for first, _ in _per_point(rows):
        out.append(_ident(first))
        cfg = _config(first)
        cfg.pop("method", None)
        cfg.pop("paired_with", None)
        flat.append(_flatten(cfg) | {"device_name": first.get("device_name")})
    table = pd.DataFrame(out, columns=[*IDENTITY, *DERIVED_IDENTITY])
    varying = [k for k in dict.fromkeys(k for f in flat for k in f)
               if len({json.dumps(f.get(k), default=str) for f in flat}) > 1]
    table["setting_label"] = [",".join(f"{k}={f.get(k)}" for k in varying) for f in flat]
    return table


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def metric_name(metric: str, stage: Any) -> str:
    return metric if not isinstance(stage, str) or stage == "end_to_end" else f"{metric}@{stage}"


def estimate(values: np.ndarray, replicates: np.ndarray | None, confidence: float) -> Estimate:
    """One metric of one point: bootstrap replicates give the CI when stored; repeated samples
    (latency repeats) give the median with its order-statistic CI; a single value has no CI."""
    if replicates is not None and len(replicates) >= 20 and len(values) == 1:
        return recentred_bootstrap_ci(float(values[0]), replicates, confidence)
    if len(values) >= 2:
        return median_ci(values, confidence)
    return Estimate(float(values[0]), float("nan"), float("nan"), _NO_CI)


def estimates(rows: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Long table, one row per (ok point, metric): value, low, high, estimator, n_samples, the raw
    ``samples`` and bootstrap ``replicates`` (arrays, for paired statistics), unit, direction."""
    out = []
    missing = {c: None for c in ("stage", "sample", "n", "unit", "higher_is_better") if c not in rows}
    rows = rows.assign(**missing) if missing else rows  # hand-made frames may lack optional columns
    for first, df in _per_point(rows):
        if first.get("status") != "ok":
            continue
        ident, batch = _ident(first), items_per_call(first)
        df = df.assign(mname=[metric_name(m, s) for m, s in zip(df.metric, df.stage)])
        for name, grp in df.groupby("mname", sort=False):
            if name.endswith("_bootstrap") or name == "error":
                continue
            vals = grp.sort_values("sample", na_position="first").value.dropna().to_numpy(dtype=float)
            if not len(vals):
                continue
            reps = df[df.mname == f"{name}_bootstrap"].value.dropna().to_numpy(dtype=float)
            est = estimate(vals, reps if len(reps) else None, confidence)
            rec = ident | {
                "metric": name, "value": est.value, "low": est.low, "high": est.high, "estimator": est.estimator,
                "n_samples": len(vals), "n": grp.n.dropna().iloc[0] if grp.n.notna().any() else np.nan,
                "unit": grp.unit.iloc[0], "higher_is_better": grp.higher_is_better.iloc[0],
                "samples": vals, "replicates": reps if len(reps) else None,
            }
            out.append(rec)
            if name == "latency" and batch:
                # Derived, for budgets across batch sizes: the call's time shared by its items.
                out.append(rec | {"metric": "latency_per_item", "value": est.value / batch, "low": est.low / batch,
                                  "high": est.high / batch, "unit": "s/item", "samples": vals / batch})
        out += _throughput(first, batch, [r for r in out if r["key"] == ident["key"]])
    cols = [*IDENTITY, *DERIVED_IDENTITY, "metric", "value", "low", "high", "estimator", "n_samples", "n", "unit",
            "higher_is_better", "samples", "replicates"]
    return pd.DataFrame(out, columns=cols)


def items_per_call(first: pd.Series) -> float | None:
    """Items one timed call works on: the timing note's ``batch_size`` (what the task's ``Prepared``
    said), else the row's; None where neither is a positive number."""
    note = first.get("timing")
    batch = json.loads(note).get("batch_size") if isinstance(note, str) and note else None
    batch = first.get("batch_size") if batch is None else batch
    ok = isinstance(batch, (int, float, np.integer, np.floating)) and batch > 0
    return float(batch) if ok else None


def _throughput(first: pd.Series, batch: float | None, recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Derived ``tflops`` (counted FLOPs of a call / its latency) and, where the hardware config
    states its spec-sheet peak, ``fraction_of_peak``; both carry the latency's CI (FLOPs are exact)."""
    by = {r["metric"]: r for r in recs}
    lat, flops = by.get("latency"), by.get("flops")
    if lat is None or flops is None or not batch:
        return []
    work = flops["value"] * batch / 1e12  # TFLOP per call; FLOPs are counted on one item
    if work <= 0:
        return []
    base = lat | {"samples": work / lat["samples"], "replicates": None, "higher_is_better": True}
    out = [base | {"metric": "tflops", "unit": "TFLOP/s", "value": work / lat["value"], "low": work / lat["high"],
                   "high": work / lat["low"]}]
    peak = (_config(first).get("hardware") or {}).get("peak_tflops")
    if peak:
        t = out[0]
        out.append(t | {"metric": "fraction_of_peak", "unit": "", "value": t["value"] / peak, "low": t["low"] / peak,
                        "high": t["high"] / peak, "samples": t["samples"] / peak})
    return out


def resolve_metric(name: str, available: list[str] | pd.Series) -> str:
    """A metric name or alias as the user typed it -> the name in the rows; errors list the choices."""
    avail = sorted(set(available))
    full = ALIASES.get(name, name)
    if full not in avail:
        raise ValueError(f"metric {name!r} is not in these results; available: {', '.join(avail)}"
                         + (f" (aliases: {', '.join(f'{k}={v}' for k, v in ALIASES.items())})" if ALIASES else ""))
    return full


def is_quality(metric: str, higher_is_better: Any = None) -> bool:
    """A quality metric has a direction and is not a cost (``MetricInfo.cost``). Metrics outside
    the registry count as quality when their rows carry a direction."""
    from harness.metrics import METRICS
    from harness.registry import load_plugins

    if metric.split("@")[0] not in METRICS:
        load_plugins()  # workloads declare their own metrics
    meta = METRICS.get(metric.split("@")[0])
    if meta is not None:
        return meta.higher_is_better is not None and not meta.cost
    return higher_is_better is not None and not pd.isna(higher_is_better)


def quality_metrics(est: pd.DataFrame) -> list[str]:
    """The quality metrics measured in ``est``, in the order they first appear."""
    firsts = est.drop_duplicates("metric")
    return [m for m, h in zip(firsts.metric, firsts.higher_is_better) if "@" not in m and is_quality(m, h)]


def direction(est: pd.DataFrame, metric: str) -> bool:
    """True if higher is better for ``metric``; costs (no quality direction) are lower-is-better."""
    hib = est.loc[est.metric == metric, "higher_is_better"].dropna()
    return bool(hib.iloc[0]) if len(hib) else False


def bounds(value: float, low: float, high: float) -> tuple[float, float]:
    """The CI, or the value itself on both sides when there is none."""
    return (value if np.isnan(low) else low), (value if np.isnan(high) else high)


def wide(est: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per point with ``{m}``, ``{m}_low``, ``{m}_high`` for each of ``metrics``."""
    out = est.drop_duplicates("key")[[*IDENTITY, *DERIVED_IDENTITY]].reset_index(drop=True)
    for m in metrics:
        sub = est[est.metric == m].set_index("key")
        for col, src in ((m, "value"), (f"{m}_low", "low"), (f"{m}_high", "high")):
            out[col] = out["key"].map(sub[src]) if len(sub) else np.nan
    return out


def pareto_table(est: pd.DataFrame, cost: str, quality: str,
                 ref: tuple[float, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fronts of (cost, quality) per setting, with CIs.

    Returns (per point: values, CIs, ``on_front``, ``near_front`` = off the front but its
    optimistic CI corner is not dominated by it; per setting: hypervolume and its reference point).
    Default reference point: the setting's nadir (its worst cost and worst quality), so a front's
    hypervolume says how far it pulls away from the worst point measured; pass ``ref`` to compare
    hypervolumes across settings or runs, which needs one fixed reference.
    """
    from harness.pareto import hypervolume, near_front_mask, pareto_mask

    hib = direction(est, quality)
    table = wide(est, [cost, quality]).dropna(subset=[cost, quality])
    table["on_front"] = False
    table["near_front"] = False
    volumes = []
    for setting, grp in table.groupby("setting", sort=False):
        on = pareto_mask(grp[cost], grp[quality], hib)
        c_lo = np.where(grp[f"{cost}_low"].isna(), grp[cost], grp[f"{cost}_low"])
        q_side = f"{quality}_high" if hib else f"{quality}_low"
        q_best = np.where(grp[q_side].isna(), grp[quality], grp[q_side])
        near = near_front_mask(c_lo, q_best, grp[cost][on], grp[quality][on], hib) & ~on
        table.loc[grp.index, "on_front"] = on
        table.loc[grp.index, "near_front"] = near
        rc, rq = ref if ref is not None else (grp[cost].max(), grp[quality].min() if hib else grp[quality].max())
        first = grp.iloc[0]
        volumes.append({"setting": setting, "task": first.task, "model": first.model, "hardware": first.hardware,
                        "device_name": first.device_name, "cost": cost, "quality": quality, "ref_cost": rc,
                        "ref_quality": rq, "reference": "given" if ref is not None else "nadir of the setting",
                        "hypervolume": hypervolume(grp[cost], grp[quality], hib, rc, rq),
                        "front": int(on.sum()), "points": len(grp)})
    return table, pd.DataFrame(volumes)

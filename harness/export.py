"""Export result rows to the trackers teams already use: ``harness export RESULTS --to TARGET``.

One target now, MLflow (the optional extra ``mlflow``): one MLflow run per measured point, with
- params: the point's config, flattened (``method.steps``, ``task.n_samples``, ``hardware.threads``...),
- metrics: every estimate of ``harness.analysis.estimates`` (median latency, FID, NFE, ...) with its
  CI as ``<metric>_ci_low`` / ``<metric>_ci_high`` and its sample count as ``<metric>_n``, and the
  report's contrasts against the baseline (``speedup``, ``<quality>_delta``, each with its CI): the
  numbers ``harness report`` prints,
- tags: the environment (device, driver, torch, commit, threads, libraries, ...) and each estimator's name,
- the point's parquet file as an artifact, so every raw repeat and bootstrap replicate travels along.

Exporting is idempotent: a point already exported (same ``point_id`` and the same measurement,
``run_id``) is skipped, so a second export of a folder adds nothing, and a rerun of a point (new
``run_id``, say on another GPU) becomes a new MLflow run instead of being lost.

A new target is one function ``(rows, **options) -> list[Exported]`` in ``TARGETS``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from harness.analysis import estimates, points
from harness.report import summarize

ENV_TAGS = ("hardware", "device", "device_name", "device_count", "driver", "cuda", "torch", "python", "cpu",
            "threads", "launcher", "hostname", "git_sha", "libraries")
TAG_POINT, TAG_RUN = "harness.point_id", "harness.run_id"


class ExportError(RuntimeError):
    """The target cannot be reached or is not installed."""


@dataclass(frozen=True)
class Exported:
    variant: str
    point_id: str
    action: str  # "created" or "skipped (already exported)"
    target_id: str  # e.g. the MLflow run id


def metric_key(name: str) -> str:
    """A metric name as trackers accept it: ``latency@denoise_step`` -> ``latency.denoise_step``."""
    return re.sub(r"[^\w.\-/ ]", ".", name)


def point_metrics(rows: pd.DataFrame, confidence: float = 0.95) -> tuple[dict[str, dict[str, float]],
                                                                         dict[str, dict[str, str]]]:
    """Per point (``key``): every estimate with its CI, and the report's speedup and quality change
    against the baseline with theirs (NaN CI ends, from single values, are left out); and the name
    of the estimator behind each."""
    values: dict[str, dict[str, float]] = {}
    names: dict[str, dict[str, str]] = {}

    def put(key: str, name: str, value: Any, low: Any, high: Any, estimator: Any) -> None:
        for suffix, v in (("", value), ("_ci_low", low), ("_ci_high", high)):
            if not _nan(v):
                values.setdefault(key, {})[name + suffix] = float(v)
        if isinstance(estimator, str):
            names.setdefault(key, {})[name] = estimator

    for _, e in estimates(rows, confidence).iterrows():
        put(e.key, metric_key(e.metric), e.value, e.low, e.high, e.estimator)
        if not _nan(e.n):  # how many samples a quality value stands on
            values[e.key][f"{metric_key(e.metric)}_n"] = float(e.n)
    summary = summarize(rows, confidence=confidence)
    for _, s in summary.iterrows():
        put(s.key, "speedup", s.speedup, s.speedup_low, s.speedup_high, s.speedup_estimator)
        if isinstance(s.get("quality"), str):
            put(s.key, f"{metric_key(s.quality)}_delta", s.delta, s.delta_low, s.delta_high, s.delta_estimator)
    return values, names


def _nan(v: Any) -> bool:
    try:
        return v is None or math.isnan(float(v))
    except (TypeError, ValueError):
        return True


def point_params(first: pd.Series) -> dict[str, str]:
    """The point's config flattened to ``section.field`` strings (what ran), plus its label."""
    cfg = json.loads(first["config"]) if isinstance(first.get("config"), str) else {}

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out |= flat(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = json.dumps(v) if isinstance(v, (list, bool)) or v is None else str(v)
        return out

    base = {"variant": first.get("variant"), "method": first.get("method"), "task": first.get("task"),
            "model": first.get("model"), "batch_size": first.get("batch_size"), "seed": first.get("seed")}
    return {k: str(v) for k, v in base.items() if not _nan_or_none(v)} | flat(cfg)


def _nan_or_none(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def point_tags(first: pd.Series, estimators: dict[str, str]) -> dict[str, str]:
    tags = {f"env.{c}": str(first[c]) for c in ENV_TAGS if c in first and not _nan_or_none(first[c])}
    tags |= {f"estimator.{metric_key(k)}": v for k, v in estimators.items()}
    tags |= {TAG_POINT: str(first.point_id), TAG_RUN: str(first.run_id), "harness.experiment": str(first.experiment),
             "harness.status": str(first.status), "harness.baseline": str(first.get("baseline")),
             "mlflow.runName": str(first.variant)}
    if first.get("status") != "ok" and isinstance(first.get("error"), str):
        tags["harness.error"] = first["error"][:4000]
    return tags


def to_mlflow(rows: pd.DataFrame, tracking_uri: str | None = None, experiment: str | None = None,
              artifact_location: str | None = None) -> list[Exported]:
    """One MLflow run per point (see the module docstring). ``experiment`` defaults to the rows'
    own ``experiment`` column; ``tracking_uri`` to MLflow's own default (``MLFLOW_TRACKING_URI``);
    ``artifact_location`` (for experiments created here) to MLflow's, which for a sqlite store is
    ``./mlruns`` under the current folder."""
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ExportError("MLflow is not installed: pip install 'efficiency-harness[mlflow]' (or pip install "
                          "mlflow-skinny)") from None
    client = MlflowClient(tracking_uri=tracking_uri)
    metrics, estimators = point_metrics(rows)
    experiments: dict[str, str] = {}
    out = []
    for _, pt in points(rows).iterrows():
        first = rows[(rows.file == pt.key) if "file" in rows else
                     (rows.run_id == pt.run_id) & (rows.point_id == pt.point_id)].iloc[0]
        name = experiment or str(first.get("experiment") or "harness")
        if name not in experiments:
            exp = client.get_experiment_by_name(name)
            experiments[name] = exp.experiment_id if exp is not None else client.create_experiment(
                name, artifact_location=artifact_location)
        exp_id = experiments[name]
        found = client.search_runs([exp_id], filter_string=f"tags.`{TAG_POINT}` = '{first.point_id}' and "
                                                           f"tags.`{TAG_RUN}` = '{first.run_id}'", max_results=1)
        if found:
            out.append(Exported(str(first.variant), str(first.point_id), "skipped (already exported)",
                                found[0].info.run_id))
            continue
        when = int(pd.Timestamp(first.created_at).timestamp() * 1000) if not pd.isna(first.created_at) else None
        run = client.create_run(exp_id, start_time=when, run_name=str(first.variant))
        rid = run.info.run_id
        tags = [RunTag(k, v) for k, v in point_tags(first, estimators.get(pt.key, {})).items()]
        params = [Param(k, v[:6000]) for k, v in point_params(first).items()]
        ms = [Metric(k, v, when or 0, 0) for k, v in metrics.get(pt.key, {}).items()]
        for i in range(0, max(len(ms), len(params), len(tags), 1), 100):  # MLflow's batch limits: 100 params/tags
            client.log_batch(rid, metrics=ms[i:i + 100], params=params[i:i + 100], tags=tags[i:i + 100])
        if "file" in first and isinstance(first.file, str):
            client.log_artifact(rid, first.file)
        client.set_terminated(rid, status="FINISHED" if first.status == "ok" else "FAILED")
        out.append(Exported(str(first.variant), str(first.point_id), "created", rid))
    return out


TARGETS: dict[str, Callable[..., list[Exported]]] = {"mlflow": to_mlflow}

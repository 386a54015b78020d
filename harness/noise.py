"""Noise profiles: how much a point's estimate moves between runs on one machine (``harness aa``).

Repeats inside one process share its state (clock, co-tenants, allocator, thread placement), so the
spread of repeats says little about the spread between runs; on this 2-core VM two runs minutes
apart moved a point's median by up to 82%. Kalibera & Jones ("Rigorous benchmarking in reasonable
time", ISMM 2013) estimate the variance at each level of repetition and spend repetitions where it
is. A profile holds both levels per point and metric, from R fresh-process runs of an experiment:

- ``within_sd``: sd of the log repeat times inside a run (median over the runs);
- ``between_sd``: sd over runs of the log of each run's median (what a run-level CI is built on);
- ``excess``: between-run variance over what the repeats alone predict for a median
  (pi/2 * within_sd^2 / repeats): near 1, more repeats help; far above, only more runs do;
- ``unstable``: ``between_sd`` above the profile's threshold, i.e. two runs of this point on this
  machine routinely differ by more than a typical margin (TorchBench gates benchmarks on such an
  A/A check before they may gate anything).

``compare`` reads profiles for a side that has one run: the between-run spread of that point on
that machine (same hostname, device and ``point_id``) stands in for the spread the side cannot show.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from harness.stats import Spread, detectable_change

FORMAT = "harness noise profile 1"
FILE_NAME = "noise_profile.json"
MAX_BETWEEN_SD = 0.10  # default stability threshold: runs typically 10% apart
RUNS_SHOWN = (2, 3, 5, 10)
DERIVED = ("latency_per_item", "tflops", "fraction_of_peak")  # computed from latency by harness.analysis


@dataclass(frozen=True)
class Profile:
    path: str
    data: dict[str, Any]

    def spread(self, hostname: Any, device_name: Any, point_id: Any, metric: str) -> tuple[Spread, dict] | None:
        """The between-run spread of ``metric`` of ``point_id`` on that machine, or None."""
        for p in self.data["points"]:
            if (p["hostname"], p["device_name"], p["point_id"], p["metric"]) == (hostname, device_name, point_id,
                                                                                  metric):
                if p["runs"] < 2 or p["between_sd"] is None:
                    return None
                return Spread(p["between_sd"], p["runs"] - 1, f"noise profile {self.path} ({p['runs']} runs)"), p
        return None


def build(rows: pd.DataFrame, max_between_sd: float = MAX_BETWEEN_SD) -> dict[str, Any]:
    """A profile from the rows of R runs of the same points (each run its own folder or run id)."""
    from harness.analysis import estimates

    est = estimates(rows)
    est = est[(est.n_samples >= 2) & ~est.metric.isin(DERIVED)]  # repeated-sample metrics (latency and its stages)
    if est.empty:
        raise ValueError("no repeated-sample metric (latency) in these rows: nothing to profile")
    est = est.assign(hostname=est.key.map(hostnames(rows)))
    out = []
    for (_, _, pid, metric), grp in est.groupby(["hostname", "device_name", "point_id", "metric"], sort=False,
                                                dropna=False):
        grp = grp.sort_values("created_at")
        logs = np.log(grp.value.to_numpy(dtype=float))
        within = float(np.median([np.log(s).std(ddof=1) for s in grp.samples]))
        repeats = float(np.median([len(s) for s in grp.samples]))
        between = float(logs.std(ddof=1)) if len(logs) >= 2 else None
        predicted = math.pi / 2 * within**2 / repeats  # variance of a median of `repeats` normal samples
        first = grp.iloc[0]
        host = first.hostname if isinstance(first.hostname, str) else None
        out.append({
            "point_id": pid, "match": first.match, "variant": first.variant, "task": first.task,
            "metric": metric, "hostname": host, "device_name": first.device_name, "runs": len(grp),
            "run_estimates": [float(v) for v in grp.value], "run_ids": [str(r) for r in grp.run_id],
            "within_sd": within, "repeats": repeats, "between_sd": between,
            "excess": (between**2 / predicted) if between is not None and predicted > 0 else None,
            "unstable": bool(between is not None and between > max_between_sd),
        })
    first = rows.iloc[0]
    return {"format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "hostname": first.get("hostname"), "device_name": first.get("device_name"), "cpu": first.get("cpu"),
            "max_between_sd": max_between_sd, "runs": int(rows.run_id.nunique()), "points": out}


def hostnames(rows: pd.DataFrame) -> dict[str, Any]:
    """The hostname each measured point (``estimates``' ``key``: its file) ran on."""
    if "hostname" not in rows or "file" not in rows:
        return {}
    firsts = rows.drop_duplicates("file")
    return {f: h if isinstance(h, str) else None for f, h in zip(firsts.file, firsts.hostname)}


def save(profile: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profile, indent=1, sort_keys=True, default=str) + "\n")
    return path


def load_profiles(paths: Iterable[str | Path]) -> list[Profile]:
    """Profiles from files, or every ``noise_profile.json`` under folders; a file of another format is
    an error that names it."""
    out = []
    for p in map(Path, paths):
        files = sorted(p.rglob(FILE_NAME)) if p.is_dir() else [p]
        for f in files:
            if not f.exists():
                raise FileNotFoundError(f"noise profile {f} does not exist (write one with `harness aa`)")
            data = json.loads(f.read_text())
            if data.get("format") != FORMAT:
                raise ValueError(f"{f} is not a noise profile (format {data.get('format')!r}, expected {FORMAT!r})")
            out.append(Profile(str(f), data))
    return out


def find_spread(profiles: list[Profile], hostname: Any, device_name: Any, point_id: Any,
                metric: str) -> tuple[Spread, dict] | None:
    """The newest profile's entry for that point on that machine (profiles are tried newest first)."""
    for prof in sorted(profiles, key=lambda p: p.data.get("created_at", ""), reverse=True):
        hit = prof.spread(hostname, device_name, point_id, metric)
        if hit is not None:
            return hit
    return None


def what_runs_buy(between_sd: float, margin: float = 0.05, runs: Iterable[int] = RUNS_SHOWN) -> dict[int, float]:
    """Detectable regression (80% power, 95% CI, at ``margin``) with R runs on each side, for a point
    whose runs spread by ``between_sd``: se = sd * sqrt(2 / R), Welch df = 2R - 2 for equal spreads."""
    return {r: detectable_change(between_sd * math.sqrt(2 / r), 2 * r - 2, margin) for r in runs}


def render(profile: dict[str, Any], margin: float = 0.05) -> str:
    """The profile's end-to-end metrics as a table, with the detectable regression R runs per side buy."""
    from harness import fmt

    shown = [p for p in profile["points"] if "@" not in p["metric"]]
    cells = []
    for p in shown:
        buy = what_runs_buy(p["between_sd"], margin) if p["between_sd"] is not None else {}
        cells.append([p["variant"], p["metric"], str(p["runs"]), f"{p['repeats']:g}", f"{p['within_sd']:.3f}",
                      "-" if p["between_sd"] is None else f"{p['between_sd']:.3f}",
                      "-" if p["excess"] is None else f"{p['excess']:.1f}",
                      *[f"{buy[r]:.0%}" if r in buy else "-" for r in RUNS_SHOWN],
                      "UNSTABLE" if p["unstable"] else "ok"])
    head = ["variant", "metric", "runs", "repeats", "within sd", "between sd", "excess",
            *[f"R={r}" for r in RUNS_SHOWN], "stability"]
    unstable = sum(p["unstable"] for p in shown)
    return "\n".join([
        f"noise profile: {profile['runs']} runs on {profile['hostname']} ({profile['device_name']}); sd of log "
        "latency within a run (repeats) and between runs (run medians); excess = between-run variance / what the "
        f"repeats predict; R=k: the smallest slowdown `compare` calls a regression at a {margin:.0%} margin with 80% "
        "probability, with k runs on each side",
        fmt.table(head, cells, indent="  "),
        f"{unstable} of {len(shown)} point(s) unstable on this machine (between-run sd > {profile['max_between_sd']:g})"
        + (f"; {len(profile['points']) - len(shown)} stage metrics profiled too" if len(profile["points"]) > len(shown)
           else "")])

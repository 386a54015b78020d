"""Did it regress? Two result sets (commits, GPUs, dates) matched by what ran, with verdicts.

Each side is one or more runs. Points match on ``harness.analysis.match_key`` (task, model, method
and seed configs), never on run ids; several measurements of one point in a side are its runs.
The run is the unit (``harness.contrast.contrast_runs``): one estimate per run, the CI of B/A
from the spread between runs, so that the verdict holds for the next run and not just for one
process. A side with one run takes that spread from a noise profile of its machine
(``harness aa``); without one the verdict is inconclusive and says how to measure it. Each metric's
ratio B/A and 95% CI is judged against a margin:

- regression: the whole CI is worse than the margin (B/A > 1 + margin for lower-is-better);
- improvement: the whole CI is better than the margin (B/A < 1 / (1 + margin));
- no change: the whole CI lies within [1 / (1 + margin), 1 + margin];
- inconclusive: the CI straddles a margin boundary, or there is no CI;
- changed: a deterministic metric (NFE, FLOPs, token counts) differs: a different method,
  whatever its latency.

Many points and metrics are judged at once, so regression and improvement verdicts must also pass
Benjamini-Hochberg at a false discovery rate of 5% over every contrast with a CI; the rest are
inconclusive, and the output says how many. Every verdict carries the detectable change: the
smallest slowdown these runs would call a regression with 80% probability.

Exit codes of ``harness compare``: 0 no regression (every verdict is no change or improvement),
1 at least one regression or changed deterministic metric, 2 no regression but some inconclusive,
3 error (unreadable or malformed input, unmatched points unless allowed, ``--strict`` on a busy
machine).
"""

from __future__ import annotations

import glob
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import fmt
from harness.analysis import ALIASES, estimates, points, quality_metrics
from harness.contrast import EXACT_DIFFERENT, EXACT_SAME, contrast_runs
from harness.machine import busy_runs
from harness.metrics import METRICS
from harness.noise import Profile, find_spread, hostnames
from harness.stats import (
    Estimate,
    Spread,
    benjamini_hochberg,
    change_points,
    detectable_change,
    log_ratio_t_ci,
    margin_p_values,
    run_ratio_ci,
)

REGRESSION, IMPROVEMENT, NO_CHANGE, INCONCLUSIVE, CHANGED = ("regression", "improvement", "no change",
                                                             "inconclusive", "changed")
EXIT_OK, EXIT_REGRESSION, EXIT_INCONCLUSIVE, EXIT_ERROR = 0, 1, 2, 3
ENV_FIELDS = ["hardware", "device_name", "device_count", "driver", "cuda", "torch", "python", "cpu", "threads",
              "hostname", "git_sha"]
FDR = 0.05
POWER = 0.8
UNKNOWN_VARIANCE = "between-run variance unknown"


class CompareError(ValueError):
    """Input that cannot be compared (exit code 3)."""


def verdict(low: float, high: float, margin: float, higher_is_better: bool) -> str:
    """Three-way verdict (plus inconclusive) of a ratio B/A's CI against a relative margin."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return INCONCLUSIVE
    if higher_is_better:  # judge the "badness" ratio A/B, so that > 1 is always worse
        low, high = 1 / high, 1 / low
    up, down = 1 + margin, 1 / (1 + margin)
    if low > up:
        return REGRESSION
    if high < down:
        return IMPROVEMENT
    if low >= down and high <= up:
        return NO_CHANGE
    return INCONCLUSIVE


def deterministic(metric: str) -> bool:
    meta = METRICS.get(metric.split("@")[0])
    return bool(meta is not None and meta.deterministic)


@dataclass
class Comparison:
    per_point: pd.DataFrame  # one row per matched point and metric
    per_task: pd.DataFrame  # geometric mean of ratios over the points of each task and metric
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    env: list[tuple[str, str, str]] = field(default_factory=list)
    runs: tuple[int, int] = (0, 0)  # runs per side (most of any point)
    paired: bool = False
    fdr_tested: int = 0  # contrasts in the false-discovery-rate family
    fdr_downgraded: int = 0  # regression/improvement verdicts that did not survive it
    busy: list[str] = field(default_factory=list)  # runs measured while the machine was not quiet

    @property
    def exit_code(self) -> int:
        verdicts = set(self.per_point.verdict) if len(self.per_point) else set()
        if REGRESSION in verdicts or CHANGED in verdicts:
            return EXIT_REGRESSION
        return EXIT_INCONCLUSIVE if INCONCLUSIVE in verdicts else EXIT_OK


def load_side(spec: str, runs_root: str | Path = "results") -> pd.DataFrame:
    """The rows of one side: comma-separated result folders or files, quoted globs of them
    (``'results/aa/run*'``), or run ids (or their unique prefixes) found under ``runs_root``."""
    from harness.results import load

    paths: list[str] = []
    run_ids: list[str] = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        if any(ch in item for ch in "*?["):
            hits = sorted(glob.glob(item))
            if not hits:
                raise FileNotFoundError(f"{item!r} matches no result folder or file")
            paths += hits
        elif Path(item).exists():
            paths.append(item)
        elif "/" in item:  # a path, never a run id
            raise FileNotFoundError(f"{item!r} does not exist (a side is results folders or .parquet files, "
                                    "quoted globs of them, or run ids)")
        else:
            run_ids.append(item)
    frames = [load(*paths)] if paths else []
    if run_ids:
        if not Path(runs_root).is_dir():
            raise FileNotFoundError(f"{', '.join(run_ids)}: does not exist as a result folder or file, and "
                                    f"there is no {runs_root}/ to look up run ids in")
        every = load(runs_root)
        for rid in run_ids:
            ids = sorted({r for r in every.run_id.dropna().unique() if str(r).startswith(rid)})
            if not ids:
                raise FileNotFoundError(f"{rid!r} does not exist as a result folder or file, and no run id under "
                                        f"{runs_root}/ starts with it")
            if len(ids) > 1:
                raise FileNotFoundError(f"{rid!r} is not a result folder or file, and {len(ids)} run ids under "
                                        f"{runs_root}/ start with it: {', '.join(ids[:5])}")
            frames.append(every[every.run_id == ids[0]])
    if not frames:
        raise FileNotFoundError(f"side {spec!r} names no results")
    rows = pd.concat(frames, ignore_index=True)
    return rows.drop_duplicates(subset=[c for c in ("file", "metric", "stage", "sample") if c in rows])


def _runs(pts: pd.DataFrame, side: str) -> dict[str, pd.DataFrame]:
    """The runs of each point of one side (one measured file each), oldest first. Runs of one point
    must share its full config: repeats of a smoke run and of a full run are not runs of one thing."""
    out = {}
    for match, grp in pts.groupby("match", sort=False):
        if grp.point_id.nunique() > 1:
            first = grp.iloc[0]
            raise CompareError(f"result set {side} holds {first.variant} ({first.task}/{first.model}, seed "
                               f"{first.seed}) under {grp.point_id.nunique()} different configs (point ids "
                               f"{', '.join(sorted(grp.point_id.astype(str)))}: another timing policy, hardware or "
                               "task size); compare runs of one config per side")
        out[match] = grp.sort_values("created_at")
    return out


def _env(rows_a: pd.DataFrame, rows_b: pd.DataFrame) -> list[tuple[str, str, str]]:
    def vals(rows: pd.DataFrame, col: str) -> str:
        return " | ".join(sorted({str(v) for v in rows[col].dropna()})) if col in rows else "-"

    def libs(rows: pd.DataFrame) -> dict[str, str]:
        found = rows["libraries"].dropna() if "libraries" in rows else []
        return json.loads(found.iloc[0]) if len(found) else {}

    out = [(c, vals(rows_a, c), vals(rows_b, c)) for c in ENV_FIELDS if vals(rows_a, c) != vals(rows_b, c)]
    la, lb = libs(rows_a), libs(rows_b)
    out += [(n, str(la.get(n, "-")), str(lb.get(n, "-"))) for n in sorted(set(la) | set(lb)) if la.get(n) != lb.get(n)]
    return out


def _metrics(metrics: list[str] | None, est_a: pd.DataFrame, est_b: pd.DataFrame) -> list[str]:
    known = set(est_a.metric) | set(est_b.metric)
    if metrics:
        metrics = [ALIASES.get(m, m) for m in metrics]
        bad = [m for m in metrics if m not in known]
        if bad:
            raise CompareError(f"metric(s) {bad} not in the results; available: {', '.join(sorted(known))}")
        return metrics
    # latency, every quality metric, and every deterministic co-metric both sides measured
    exact = [m for m in dict.fromkeys(est_a.metric) if deterministic(m) and m in set(est_b.metric)]
    return list(dict.fromkeys(["latency", *quality_metrics(est_a), *exact]))


def _log_se(e: Estimate, confidence: float) -> tuple[float, float]:
    """Standard error and df of log(ratio): the run-level estimate's own, else from the CI's width."""
    se, df = getattr(e, "se", math.nan), getattr(e, "df", math.inf)
    if np.isfinite(se):
        return se, df
    if np.isfinite(e.low) and np.isfinite(e.high) and e.low > 0:
        return math.log(e.high / e.low) / 2 / _z(confidence), math.inf
    return math.nan, math.nan


def _z(confidence: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf((1 + confidence) / 2))


def _judge(e: Estimate, hib: bool, margin: float, confidence: float, exact: bool) -> dict[str, Any]:
    if exact:
        if e.estimator == EXACT_SAME:
            return {"verdict": NO_CHANGE, "note": "exact"}
        if e.estimator == EXACT_DIFFERENT:
            return {"verdict": CHANGED, "note": "deterministic metric changed: a different method"}
        return {"verdict": INCONCLUSIVE, "note": e.estimator}
    v = verdict(e.low, e.high, margin, hib)
    se, df = _log_se(e, confidence)
    # No width, no spread information (identical single values): no detectable change to state.
    det = detectable_change(se, df, margin, confidence, POWER) if e.low != e.high else math.nan
    out: dict[str, Any] = {"verdict": v, "se": se, "df": df, "note": "", "detectable": det}
    if not np.isfinite(e.low):
        out["note"] = e.estimator if UNKNOWN_VARIANCE in e.estimator else f"no CI: {e.estimator}"
        return out
    lo, hi = (1 / e.high, 1 / e.low) if hib else (e.low, e.high)
    val = 1 / e.value if hib else e.value
    out["p_regression"], out["p_improvement"] = margin_p_values(val, lo, hi, margin, confidence, df)
    half = math.log(e.high / e.low) / 2
    if v == INCONCLUSIVE and half > math.log1p(margin):
        out["note"] = f"margin {margin:.0%} is below what these runs resolve (CI +-{math.expm1(half):.0%})"
    return out


def compare(rows_a: pd.DataFrame, rows_b: pd.DataFrame, metrics: list[str] | None = None, margin: float = 0.05,
            confidence: float = 0.95, profiles: list[Profile] | None = None, paired: bool = False,
            fdr: float = FDR) -> Comparison:
    """Match the points of A and B and judge each metric with runs as the unit; see the module docstring.

    ``paired``: run i of A and run i of B of each point ran next to each other (interleaved rounds of
    ``harness ab``); the CI then comes from the per-round ratios.
    """
    if not 0 <= margin < 1:
        raise CompareError(f"margin must be in [0, 1), got {margin}")
    profiles = profiles or []
    runs_a, runs_b = _runs(points(rows_a), "A"), _runs(points(rows_b), "B")
    est_a, est_b = estimates(rows_a, confidence), estimates(rows_b, confidence)
    host_a, host_b = hostnames(rows_a), hostnames(rows_b)
    common = [m for m in runs_a if m in runs_b]
    if not common:
        va = sorted({v for r in runs_a.values() for v in r.variant})
        vb = sorted({v for r in runs_b.values() for v in r.variant})
        raise CompareError("no point of A matches a point of B (same task, model, method and seed configs); "
                           f"A has {', '.join(va)}; B has {', '.join(vb)}")
    metrics = _metrics(metrics, est_a, est_b)
    rows: list[dict[str, Any]] = []
    # per (task, metric): per side, per run, per point: log of the run's estimate, for the suite summary
    suite: dict[tuple[str, str, bool], dict[str, dict[tuple[Any, str], dict[str, float]]]] = {}
    for key in common:
        ra, rb = runs_a[key], runs_b[key]
        first = ra.iloc[0]
        ok_a, ok_b = ra[ra.status == "ok"], rb[rb.status == "ok"]
        ident = {"task": first.task, "model": first.model, "variant": first.variant, "seed": first.seed,
                 "runs_a": len(ok_a), "runs_b": len(ok_b), "match": key}
        if ok_a.empty or ok_b.empty:
            v = REGRESSION if len(ok_a) else (IMPROVEMENT if len(ok_b) else INCONCLUSIVE)
            note = {REGRESSION: "failed in B", IMPROVEMENT: "failed in A", INCONCLUSIVE: "failed in both"}[v]
            rows.append(ident | {"metric": "status", "verdict": v, "note": note})
            continue
        failed = [f"{len(r) - len(o)} of {len(r)} runs failed in {s}" for s, r, o in (("A", ra, ok_a), ("B", rb, ok_b))
                  if len(o) < len(r)]
        if paired and len(ok_a) != len(ok_b):
            raise CompareError(f"paired comparison of {first.variant}: {len(ok_a)} ok runs in A, {len(ok_b)} in B")
        for m in metrics:
            a_runs = [r for _, r in est_a[est_a.key.isin(ok_a.key) & (est_a.metric == m)].iterrows()]
            b_runs = [r for _, r in est_b[est_b.key.isin(ok_b.key) & (est_b.metric == m)].iterrows()]
            if not a_runs or not b_runs:
                continue
            a0 = a_runs[0]
            hib = bool(a0.higher_is_better) if isinstance(a0.higher_is_better, (bool, np.bool_)) else False
            spreads, unstable = [], []
            for runs, hosts in ((a_runs, host_a), (b_runs, host_b)):
                hit = None
                if len(runs) == 1 and runs[0].n_samples >= 2 and profiles:
                    hit = find_spread(profiles, hosts.get(runs[0].key), runs[0].device_name, runs[0].point_id, m)
                spreads.append(hit[0] if hit else None)
                unstable.append(bool(hit and hit[1].get("unstable")))
            exact = deterministic(m)
            e = contrast_runs(a_runs, b_runs, confidence, spreads[0], spreads[1], paired=paired, exact=exact)
            rec = ident | {"metric": m, "a": float(np.exp(np.mean(np.log([r.value for r in a_runs]))))
                           if all(r.value > 0 for r in a_runs) else a0.value,
                           "b": float(np.exp(np.mean(np.log([r.value for r in b_runs]))))
                           if all(r.value > 0 for r in b_runs) else b_runs[0].value,
                           "higher_is_better": hib, "ratio": e.value, "low": e.low, "high": e.high,
                           "estimator": e.estimator, "exact": exact}
            rec |= _judge(e, hib, margin, confidence, exact)
            extra = failed + (["unstable on this machine (noise profile)"] if any(unstable) else [])
            rec["note"] = "; ".join([n for n in (rec["note"], *extra) if n])
            rows.append(rec)
            if not exact and any(r.n_samples >= 2 for r in a_runs + b_runs):
                entry = suite.setdefault((first.task, m, hib), {"A": {}, "B": {}, "where": {"A": {}, "B": {}}})
                for side, runs, hosts in (("A", a_runs, host_a), ("B", b_runs, host_b)):
                    for r in runs:  # keyed by run (its folder); ordered by its first point (pairs rounds in order)
                        when = pd.Timestamp(r.created_at)
                        run = str(Path(r.key).parent) if isinstance(r.key, str) and r.key.endswith(".parquet") \
                            else r.run_id
                        slot = entry[side].setdefault(run, {"when": when, "logs": {}})
                        slot["when"] = min(slot["when"], when)
                        slot["logs"][key] = math.log(r.value)
                    entry["where"][side][key] = (hosts.get(runs[0].key), runs[0].device_name, runs[0].point_id)
    per_point = pd.DataFrame(rows)
    tested, downgraded = _fdr(per_point, fdr)
    per_task = _per_task(per_point, suite, margin, confidence, paired, profiles)
    only_a = sorted(runs_a[k].variant.iloc[0] for k in runs_a if k not in runs_b)
    only_b = sorted(runs_b[k].variant.iloc[0] for k in runs_b if k not in runs_a)
    n_runs = (max(len(r) for r in runs_a.values()), max(len(r) for r in runs_b.values()))
    return Comparison(per_point, pd.DataFrame(per_task), only_a, only_b, _env(rows_a, rows_b), n_runs, paired,
                      tested, downgraded, busy_runs(rows_a, "A") + busy_runs(rows_b, "B"))


def _suite_spread(profiles: list[Profile], where: dict[str, tuple], keys: set[str], metric: str) -> Spread | None:
    """Between-run spread of a run's geometric mean over ``keys``, from a profile whose runs measured
    every one of those points (its runs are aligned by run id)."""
    for prof in profiles:
        per_key = [prof.spread(*where[k], metric) for k in keys]
        if not per_key or any(h is None for h in per_key):
            continue
        ids = [tuple(h[1]["run_ids"]) for h in per_key]
        if len(set(ids)) != 1:
            continue
        logs = np.mean([np.log(h[1]["run_estimates"]) for h in per_key], axis=0)
        return Spread(float(np.std(logs, ddof=1)), len(logs) - 1, f"noise profile {prof.path}")
    return None


def _per_task(per_point: pd.DataFrame, suite: dict, margin: float, confidence: float,
              paired: bool, profiles: list[Profile]) -> pd.DataFrame:
    """Per task and metric, the geometric mean of the ratios over its points.

    Repeated-sample metrics (latency) keep the run as the unit: each run's (each folder's) geometric
    mean over the points that every run measured is one value, and the CI comes from the spread of
    those between runs (``stats.run_ratio_ci``); without points common to every run, no summary.
    The points of one run share its drift, so a t-interval across points would describe one pair of
    processes, not the next run. Other metrics: a t-interval on the per-point log ratios.
    """
    out = []
    done = {(task, m) for task, m, _ in suite}  # latency-like: runs as units or no summary, never points as units
    for (task, m, hib), sides in suite.items():
        runs = [r["logs"] for s in ("A", "B") for r in sides[s].values()]
        common = set.intersection(*(set(r) for r in runs)) if runs else set()
        if not common:
            continue
        logs = {s: [np.mean([r["logs"][k] for k in common]) for r in sorted(sides[s].values(), key=lambda r: r["when"])]
                for s in ("A", "B")}
        if paired and len(logs["A"]) != len(logs["B"]):
            continue
        spread = {s: _suite_spread(profiles, sides["where"][s], common, m) if len(logs[s]) == 1 else None
                  for s in ("A", "B")}
        e = run_ratio_ci(logs["A"], logs["B"], confidence, spread["A"], spread["B"], paired=paired)
        out.append({"task": task, "metric": m, "points": len(common), "gmean_ratio": e.value, "low": e.low,
                    "high": e.high, "estimator": e.estimator, "verdict": verdict(e.low, e.high, margin, hib)})
    if len(per_point) and "ratio" in per_point:
        judged = per_point[(per_point.metric != "status") & ~per_point.exact.astype(bool)].dropna(subset=["ratio"])
        for (task, m), grp in judged.groupby(["task", "metric"], sort=False):
            if (task, m) in done or (grp.ratio <= 0).any():
                continue
            est = log_ratio_t_ci(np.log(grp.ratio.to_numpy(dtype=float)), confidence)
            lo, hi = (est.low, est.high) if not math.isnan(est.low) else (grp.low.iloc[0], grp.high.iloc[0])
            out.append({"task": task, "metric": m, "points": len(grp), "gmean_ratio": est.value, "low": lo,
                        "high": hi, "estimator": est.estimator,
                        "verdict": verdict(lo, hi, margin, bool(grp.higher_is_better.iloc[0]))})
    return pd.DataFrame(out)


def _fdr(per_point: pd.DataFrame, q: float) -> tuple[int, int]:
    """Benjamini-Hochberg over every contrast with a CI: a regression or improvement verdict stands
    only if its test (CI beyond the margin, two-sided) is among the discoveries. Returns (tested,
    downgraded)."""
    if per_point.empty or "p_regression" not in per_point:
        return 0, 0
    p = np.minimum(1.0, 2 * np.fmin(per_point.p_regression.to_numpy(dtype=float),
                                    per_point.p_improvement.to_numpy(dtype=float)))
    per_point["p_change"] = p
    keep = benjamini_hochberg(p, q)
    per_point["fdr_discovery"] = keep
    drop = per_point.verdict.isin([REGRESSION, IMPROVEMENT]) & ~keep & np.isfinite(p)
    for i in per_point.index[drop]:
        was = per_point.at[i, "verdict"]
        per_point.at[i, "verdict"] = INCONCLUSIVE
        per_point.at[i, "note"] = "; ".join(n for n in (f"{was} at its own 95% CI, not a discovery at FDR {q:.0%}",
                                                        per_point.at[i, "note"]) if n)
    return int(np.isfinite(p).sum()), int(drop.sum())


def history(rows: pd.DataFrame, metric: str = "latency", margin: float = 0.05, confidence: float = 0.95,
            min_segment: int = 2, fdr: float = FDR) -> pd.DataFrame:
    """Each point's ``metric`` over the runs that measured it (dates, commits, GPUs), in time order,
    with its persistent changes.

    Per point, the per-run estimates (log of each run's median) are searched for change points
    (``stats.change_points``: a shift that ``min_segment`` later runs confirm, a one-off slow run is
    none); each change is judged like ``compare`` judges two sets of runs, the runs before it against
    the runs after it (Welch over runs), against ``margin``, and the change points of all points are
    held to a false discovery rate. Deterministic metrics change whenever their value does.
    ``change`` is the verdict at the first run after each change; ``first_change`` marks the first.
    A last run outside the prediction interval of the runs before it is flagged ``unconfirmed``.
    """
    from harness.analysis import resolve_metric

    est = estimates(rows, confidence)
    metric = resolve_metric(metric, est.metric)
    sel = est[est.metric == metric].copy()
    sel["created_at"] = pd.to_datetime(sel.created_at, utc=True)
    exact = deterministic(metric)
    out, tests = [], []
    for _, grp in sel.groupby("match", sort=False):
        grp = grp.sort_values("created_at").reset_index(drop=True)
        recs = [{k: r[k] for k in ("task", "model", "variant", "seed", "run_id", "created_at", "git_sha",
                                   "device_name", "hardware", "value", "low", "high", "match")}
                | {"change": "", "ratio": math.nan, "ratio_low": math.nan, "ratio_high": math.nan,
                   "p_change": math.nan, "first_change": False, "unconfirmed": False}
                for _, r in grp.iterrows()]
        vals = grp.value.to_numpy(dtype=float)
        hib = bool(grp.higher_is_better.iloc[0]) if isinstance(grp.higher_is_better.iloc[0], (bool, np.bool_)) \
            else False
        if exact:
            for i in range(1, len(vals)):
                if vals[i] != vals[i - 1]:
                    recs[i] |= {"change": CHANGED, "ratio": vals[i] / vals[i - 1] if vals[i - 1] else math.inf}
        elif (vals > 0).all() and len(vals) >= 2:
            logs = np.log(vals)
            cps = change_points(logs, min_segment)
            bounds = [0, *[k for k, _ in cps], len(vals)]
            for (k, p), lo, hi in zip(cps, bounds[:-2], bounds[2:]):
                e = contrast_runs([r for _, r in grp.iloc[lo:k].iterrows()], [r for _, r in grp.iloc[k:hi].iterrows()],
                                  confidence)
                recs[k] |= {"change": verdict(e.low, e.high, margin, hib), "ratio": e.value, "ratio_low": e.low,
                            "ratio_high": e.high, "p_change": p}
                tests.append((len(out) + k, p))
            last = bounds[-2]
            seg = logs[last:-1]
            if len(seg) >= 2 and len(vals) - last >= 2:
                from scipy import stats

                half = stats.t.ppf((1 + confidence) / 2, len(seg) - 1) * seg.std(ddof=1) * math.sqrt(1 + 1 / len(seg))
                recs[-1]["unconfirmed"] = bool(abs(logs[-1] - seg.mean()) > half)
        out += recs
    h = pd.DataFrame(out)
    if tests:  # change points of all points together: false discovery rate held at `fdr`
        keep = benjamini_hochberg([p for _, p in tests], fdr)
        for (i, _), k in zip(tests, keep):
            if not k or h.at[i, "change"] not in (REGRESSION, IMPROVEMENT):
                h.at[i, "change"] = ""
    if len(h):
        h["first_change"] = False
        for _, grp in h.groupby("match", sort=False):
            hit = grp.index[grp.change.isin([REGRESSION, IMPROVEMENT, CHANGED])]
            if len(hit):
                h.at[hit[0], "first_change"] = True
    return h


def render_history(h: pd.DataFrame, metric: str, margin: float = 0.05) -> str:
    lines = [f"{metric} per point over runs: persistent changes (confirmed by the runs after them; runs before vs "
             f"after, Welch over runs, margin {margin:.0%}; false discovery rate 5% over all points); << = change"]
    for _, grp in h.groupby("match", sort=False):
        first = grp.iloc[0]
        changes = int(grp.change.isin([REGRESSION, IMPROVEMENT, CHANGED]).sum())
        lines.append(f"{first.variant} ({first.task}/{first.model}, seed {first.seed}): {len(grp)} runs, "
                     f"{changes or 'no'} change{'s' if changes != 1 else ''}")
        for _, r in grp.iterrows():
            when = r.created_at.strftime("%Y-%m-%d %H:%M")
            mark = ""
            if r.change:
                mark = f"  << {r.change}: after/before x{fmt.ci(r.ratio, r.ratio_low, r.ratio_high)}"
            elif r.unconfirmed:
                mark = "  ? outside the prediction interval of the runs before it: rerun to confirm"
            lines.append(f"  {when}  {str(r.git_sha)[:8]:<8}  {str(r.device_name)[:22]:<22}  "
                         f"{fmt.ci(r.value, r.low, r.high):<28}{mark}".rstrip())
    return "\n".join(lines)


def render(c: Comparison, margin: float, aa_hint: str = "harness aa experiment=NAME [overrides] --runs 5") -> str:
    unit = "paired rounds (run i of A next to run i of B)" if c.paired else "runs as units"
    lines = [f"per point: B/A over {c.runs[0]} run(s) of A and {c.runs[1]} of B, {unit}, 95% CI; verdict against a "
             f"margin of {margin:.0%} (higher-is-better metrics judged on A/B); detectable = the smallest slowdown "
             f"these runs call a regression with {POWER:.0%} probability"]
    cells = []
    for _, r in c.per_point.iterrows():
        if r.metric == "status":
            cells.append([r.variant, "status", r.verdict, "", "", "", "", "", r.note])
            continue
        det = r.get("detectable")
        det_s = "" if r.exact or det is None or not np.isfinite(det) else f"{det:.0%}"
        cells.append([r.variant, r.metric, r.verdict, fmt.ci(r.ratio, r.low, r.high), f"{r.runs_a}/{r.runs_b}", det_s,
                      fmt.num(r.a), fmt.num(r.b), r.note or ""])
    lines.append(fmt.table(["variant", "metric", "verdict", "B/A [95% CI]", "runs", "detectable", "A", "B", "note"],
                           cells, indent="  "))
    if c.fdr_tested:
        lines.append(f"false discovery rate held at {FDR:.0%} over {c.fdr_tested} contrasts with a CI "
                     f"(Benjamini-Hochberg): {c.fdr_downgraded} regression/improvement verdict(s) did not pass")
    unknown = c.per_point[c.per_point.get("note", pd.Series(dtype=str)).astype(str).str.contains(UNKNOWN_VARIANCE)] \
        if len(c.per_point) else c.per_point
    if len(unknown):
        lines.append(f"{len(unknown)} verdict(s) inconclusive because a side has one run and no noise profile: give "
                     f"each side >= 2 runs, or measure this machine's between-run spread once with `{aa_hint}` "
                     "and pass --noise")
    if len(c.per_task):
        lines.append("per task: geometric mean of the ratios over points (latency: each run's geometric mean over "
                     "points is one value, CI over runs; other metrics: t-interval across points)")
        for _, r in c.per_task.iterrows():
            lines.append(f"  {r.task}/{r.metric}: {fmt.ci(r.gmean_ratio, r.low, r.high)} over {r.points} point(s): "
                         f"{r.verdict}" + ("" if np.isfinite(r.low) else f" ({r.estimator})"))
    for side, names in (("A", c.only_a), ("B", c.only_b)):
        if names:
            lines.append(f"only in {side} (unmatched): {', '.join(names)}")
    if c.busy:
        lines.append("warning: the machine was not quiet during " + "; ".join(c.busy))
    if c.env:
        lines.append("environment differences (A -> B):")
        lines += [f"  {k}: {a} -> {b}" for k, a, b in c.env]
    else:
        lines.append("environment: no differences in device, driver, libraries, threads, host or commit")
    return "\n".join(lines)

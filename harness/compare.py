"""Did it regress? Two result sets (commits, GPUs, dates) matched by what ran, with verdicts.

Points match on ``harness.analysis.match_key`` (task, model, method and seed configs), never on
run ids. Each metric is compared as a ratio B/A with a 95% CI and judged against a margin:

- regression: the whole CI is worse than the margin (B/A > 1 + margin for lower-is-better);
- improvement: the whole CI is better than the margin (B/A < 1 / (1 + margin));
- no change: the whole CI lies within [1 / (1 + margin), 1 + margin];
- inconclusive: the CI straddles a margin boundary (more repeats would decide).

Exit codes of ``harness compare``: 0 no regression (every verdict is no change or improvement),
1 at least one regression, 2 no regression but some inconclusive, 3 error (unreadable or
malformed input, a point measured twice in one set, unmatched points unless allowed).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness import fmt
from harness.analysis import ALIASES, estimates, points, quality_metrics
from harness.contrast import contrast
from harness.stats import log_ratio_t_ci

REGRESSION, IMPROVEMENT, NO_CHANGE, INCONCLUSIVE = "regression", "improvement", "no change", "inconclusive"
EXIT_OK, EXIT_REGRESSION, EXIT_INCONCLUSIVE, EXIT_ERROR = 0, 1, 2, 3
ENV_FIELDS = ["hardware", "device_name", "device_count", "driver", "cuda", "torch", "python", "cpu", "threads",
              "hostname", "git_sha"]


class CompareError(ValueError):
    """Input that cannot be compared (exit code 3)."""


def verdict(low: float, high: float, margin: float, higher_is_better: bool) -> str:
    """Three-way verdict (plus inconclusive) of a ratio B/A's CI against a relative margin."""
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


@dataclass
class Comparison:
    per_point: pd.DataFrame  # one row per matched point and metric
    per_task: pd.DataFrame  # geometric mean of ratios over the points of each task and metric
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    env: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        verdicts = set(self.per_point.verdict) if len(self.per_point) else set()
        if REGRESSION in verdicts:
            return EXIT_REGRESSION
        return EXIT_INCONCLUSIVE if INCONCLUSIVE in verdicts else EXIT_OK


def _one_per_match(pts: pd.DataFrame, side: str) -> pd.DataFrame:
    dup = pts[pts.duplicated("match", keep=False)]
    if len(dup):
        first = dup.iloc[0]
        raise CompareError(f"result set {side} holds {int((pts.match == first.match).sum())} measurements of "
                           f"{first.variant} ({first.task}/{first.model}, seed {first.seed}); compare one result set "
                           "to one (use `harness history` for many runs)")
    return pts.set_index("match")


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


def compare(rows_a: pd.DataFrame, rows_b: pd.DataFrame, metrics: list[str] | None = None, margin: float = 0.05,
            confidence: float = 0.95) -> Comparison:
    """Match the points of A and B and judge each metric; see the module docstring."""
    if not 0 <= margin < 1:
        raise CompareError(f"margin must be in [0, 1), got {margin}")
    pa_, pb_ = _one_per_match(points(rows_a), "A"), _one_per_match(points(rows_b), "B")
    est_a, est_b = estimates(rows_a, confidence), estimates(rows_b, confidence)
    common = [m for m in pa_.index if m in pb_.index]
    if not common:
        raise CompareError("no point of A matches a point of B (same task, model, method and seed configs); "
                           f"A has {', '.join(sorted(pa_.variant))}; B has {', '.join(sorted(pb_.variant))}")
    if metrics:
        metrics = [ALIASES.get(m, m) for m in metrics]
        known = set(est_a.metric) | set(est_b.metric)
        bad = [m for m in metrics if m not in known]
        if bad:
            raise CompareError(f"metric(s) {bad} not in the results; available: {', '.join(sorted(known))}")
    else:  # latency, and every quality metric
        metrics = ["latency", *quality_metrics(est_a)]
    rows = []
    for key in common:
        a_pt, b_pt = pa_.loc[key], pb_.loc[key]
        ident = {"task": a_pt.task, "model": a_pt.model, "variant": a_pt.variant, "seed": a_pt.seed,
                 "run_a": a_pt.run_id, "run_b": b_pt.run_id}
        if a_pt.status != "ok" or b_pt.status != "ok":
            v = REGRESSION if a_pt.status == "ok" else (IMPROVEMENT if b_pt.status == "ok" else INCONCLUSIVE)
            note = {REGRESSION: "failed in B", IMPROVEMENT: "failed in A", INCONCLUSIVE: "failed in both"}[v]
            rows.append(ident | {"metric": "status", "verdict": v, "note": note})
            continue
        ea = est_a[est_a.match == key].set_index("metric")
        eb = est_b[est_b.match == key].set_index("metric")
        for m in metrics:
            if m not in ea.index or m not in eb.index:
                continue
            a, b = ea.loc[m], eb.loc[m]
            hib = bool(a.higher_is_better) if isinstance(a.higher_is_better, (bool, np.bool_)) else False
            rec = ident | {"metric": m, "a": a.value, "b": b.value, "higher_is_better": hib}
            est = contrast(a, b, "ratio", confidence)  # B / A
            if math.isnan(est.value):
                rows.append(rec | {"ratio": math.nan, "verdict": INCONCLUSIVE, "note": est.estimator})
                continue
            rows.append(rec | {"ratio": est.value, "low": est.low, "high": est.high, "estimator": est.estimator,
                               "verdict": verdict(est.low, est.high, margin, hib), "note": ""})
    per_point = pd.DataFrame(rows)
    per_task = []
    if len(per_point) and "ratio" in per_point:
        for (task, m), grp in per_point.dropna(subset=["ratio"]).groupby(["task", "metric"], sort=False):
            est = log_ratio_t_ci(np.log(grp.ratio.to_numpy(dtype=float)), confidence)
            lo, hi = (est.low, est.high) if not math.isnan(est.low) else (grp.low.iloc[0], grp.high.iloc[0])
            per_task.append({"task": task, "metric": m, "points": len(grp), "gmean_ratio": est.value, "low": lo,
                             "high": hi, "estimator": est.estimator,
                             "verdict": verdict(lo, hi, margin, bool(grp.higher_is_better.iloc[0]))})
    return Comparison(per_point, pd.DataFrame(per_task),
                      only_a=sorted(pa_.loc[[k for k in pa_.index if k not in pb_.index]].variant),
                      only_b=sorted(pb_.loc[[k for k in pb_.index if k not in pa_.index]].variant),
                      env=_env(rows_a, rows_b))


def history(rows: pd.DataFrame, metric: str = "latency", margin: float = 0.05,
            confidence: float = 0.95) -> pd.DataFrame:
    """Each point's ``metric`` over the runs that measured it (dates, commits, GPUs), in time order.

    Per run: value and CI, the ratio to the point's previous run with its verdict, and
    ``first_change``: True on the first run whose verdict against the run before it is a
    regression or an improvement (where a change first appears).
    """
    from harness.analysis import resolve_metric

    est = estimates(rows, confidence)
    metric = resolve_metric(metric, est.metric)
    sel = est[est.metric == metric].copy()
    sel["created_at"] = pd.to_datetime(sel.created_at, utc=True)
    out = []
    for _, grp in sel.groupby("match", sort=False):
        prev, seen = None, False
        for _, cur in grp.sort_values("created_at").iterrows():
            rec = {k: cur[k] for k in ("task", "model", "variant", "seed", "run_id", "created_at", "git_sha",
                                       "device_name", "hardware", "value", "low", "high", "match")}
            rec |= {"ratio_to_previous": math.nan, "low_ratio": math.nan, "high_ratio": math.nan, "verdict": "",
                    "first_change": False}
            if prev is not None:
                hib = bool(cur.higher_is_better) if isinstance(cur.higher_is_better, (bool, np.bool_)) else False
                r = contrast(prev, cur, "ratio", confidence)
                v = verdict(r.low, r.high, margin, hib)
                rec |= {"ratio_to_previous": r.value, "low_ratio": r.low, "high_ratio": r.high, "verdict": v,
                        "first_change": v in (REGRESSION, IMPROVEMENT) and not seen}
                seen = seen or rec["first_change"]
            out.append(rec)
            prev = cur
    return pd.DataFrame(out)


def render_history(h: pd.DataFrame, metric: str) -> str:
    lines = [f"{metric} per point over runs (ratio and verdict against the point's previous run; "
             "<< = first change)"]
    for _, grp in h.groupby("match", sort=False):
        first = grp.iloc[0]
        lines.append(f"{first.variant} ({first.task}/{first.model}, seed {first.seed})")
        for _, r in grp.iterrows():
            when = r.created_at.strftime("%Y-%m-%d %H:%M")
            ratio_s = "" if math.isnan(r.ratio_to_previous) else \
                f"x{fmt.ci(r.ratio_to_previous, r.low_ratio, r.high_ratio)} {r.verdict}"
            lines.append(f"  {when}  {str(r.git_sha)[:8]:<8}  {r.device_name:<22}  {fmt.ci(r.value, r.low, r.high):<28}"
                         f"  {ratio_s}{'  <<' if r.first_change else ''}".rstrip())
    return "\n".join(lines)


def render(c: Comparison, margin: float) -> str:
    lines = ["per point: ratio B/A (95% CI); verdict against a margin of "
             f"{margin:.0%} (higher-is-better metrics judged on A/B)"]
    w = max([len(v) for v in c.per_point.variant] + [7])
    for _, r in c.per_point.iterrows():
        if r.metric == "status":
            lines.append(f"  {r.variant:<{w}}  {'status':<12}  {r.verdict:<12}  {r.note}")
            continue
        ratio = fmt.ci(r.get("ratio"), r.get("low"), r.get("high"))
        lines.append(f"  {r.variant:<{w}}  {r.metric:<16}  {r.verdict:<12}  {ratio:<24}"
                     f"  A {fmt.num(r.a)}  B {fmt.num(r.b)}  {r.get('note') or ''}".rstrip())
    if len(c.per_task):
        lines.append("per task: geometric mean of the ratios over points (t-interval across points)")
        for _, r in c.per_task.iterrows():
            lines.append(f"  {r.task}/{r.metric}: {fmt.ci(r.gmean_ratio, r.low, r.high)} over {r.points} point(s): "
                         f"{r.verdict}")
    for side, names in (("A", c.only_a), ("B", c.only_b)):
        if names:
            lines.append(f"only in {side} (unmatched): {', '.join(names)}")
    if c.env:
        lines.append("environment differences (A -> B):")
        lines += [f"  {k}: {a} -> {b}" for k, a, b in c.env]
    else:
        lines.append("environment: no differences in device, driver, libraries, threads, host or commit")
    return "\n".join(lines)

"""Which method wins at my compute budget? Best quality per method within a cost budget.

A point is within the budget when its cost estimate (the median for latency) is at most the
budget; a point whose cost CI reaches past the budget is flagged, not dropped. A method the data do
not separate from the winner is a tie: the paired difference's CI contains 0 (points that share
samples, as the image task's methods do per seed), or else their quality CIs overlap.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness import fmt
from harness.analysis import bounds, direction, resolve_metric, wide
from harness.contrast import contrast


def best_within(est: pd.DataFrame, cost: str, quality: str, max_cost: float) -> pd.DataFrame:
    """Per setting and method: the best-quality point whose cost is <= ``max_cost``.

    Columns: setting, method, variant (None when no point fits), cost and quality with CIs,
    ``cost_ci_over`` (the cost CI reaches past the budget), ``rank`` (1 = best quality),
    ``tie`` (not separated from the best, see ``_tie``), ``cheapest`` (the method's lowest cost, for methods
    that do not fit).
    """
    if not (isinstance(max_cost, (int, float)) and math.isfinite(max_cost) and max_cost > 0):
        raise ValueError(f"budget {max_cost!r}: expected a cost > 0 (in the cost metric's unit)")
    cost = resolve_metric(cost, est.metric)
    quality = resolve_metric(quality, est.metric)
    hib = direction(est, quality)
    table = wide(est, [cost, quality]).dropna(subset=[cost, quality])
    qrows = est[est.metric == quality].set_index("key", drop=False)
    out = []
    for (setting, method), grp in table.groupby(["setting", "method"], sort=False):
        fit = grp[grp[cost] <= max_cost]
        rec = {"setting": setting, "task": grp.task.iloc[0], "model": grp.model.iloc[0],
               "hardware": grp.hardware.iloc[0], "method": method, "budget": max_cost, "cheapest": grp[cost].min()}
        if fit.empty:
            out.append(rec | {"variant": None})
            continue
        best = fit.loc[fit[quality].idxmax() if hib else fit[quality].idxmin()]
        out.append(rec | {"variant": best.variant, "key": best.key, "cost": best[cost], "cost_low": best[f"{cost}_low"],
                          "cost_high": best[f"{cost}_high"], "quality": best[quality],
                          "quality_low": best[f"{quality}_low"], "quality_high": best[f"{quality}_high"],
                          "cost_ci_over": bool(best[f"{cost}_high"] > max_cost)})
    res = pd.DataFrame(out)
    for col in ("cost", "cost_low", "cost_high", "quality", "quality_low", "quality_high"):
        if col not in res:
            res[col] = np.nan
    res["cost_ci_over"] = res.get("cost_ci_over", pd.Series(False, index=res.index)).fillna(False).astype(bool)
    res["rank"] = np.nan
    res["tie"] = False
    for _, grp in res.dropna(subset=["quality"]).groupby("setting", sort=False):
        ranks = grp.quality.rank(ascending=not hib, method="min")
        res.loc[grp.index, "rank"] = ranks
        top = grp.loc[ranks.idxmin()]
        for i, r in grp.iterrows():
            res.loc[i, "tie"] = bool(i != top.name and _tie(top, r, qrows))
    res.attrs |= {"cost": cost, "quality": quality, "higher_is_better": hib}
    return res.sort_values(["setting", "rank"], na_position="last").reset_index(drop=True)


def _tie(top: pd.Series, other: pd.Series, qrows: pd.DataFrame) -> bool:
    """Not separated by the data: the CI of the quality difference (``harness.contrast``) contains 0,
    or, where the difference has no CI, the two points' quality CIs overlap."""
    d = contrast(qrows.loc[top.key], qrows.loc[other.key], "difference")
    if not (math.isnan(d.low) or math.isnan(d.high)):
        return d.low <= 0 <= d.high
    t_lo, t_hi = bounds(top.quality, top.quality_low, top.quality_high)
    lo, hi = bounds(other.quality, other.quality_low, other.quality_high)
    return lo <= t_hi and hi >= t_lo


def curves(est: pd.DataFrame, cost: str, quality: str, budgets: list[float] | np.ndarray) -> pd.DataFrame:
    """``best_within`` at each budget, stacked: quality-vs-budget curves per method."""
    frames = [best_within(est, cost, quality, float(b)) for b in budgets]
    out = pd.concat(frames, ignore_index=True)
    out.attrs = frames[0].attrs
    return out


def parse_range(text: str) -> np.ndarray:
    """``LO:HI[:N]`` -> N budgets spaced geometrically from LO to HI (default N = 12)."""
    parts = text.split(":")
    try:
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2]) if len(parts) > 2 else 12
    except (ValueError, IndexError):
        raise ValueError(f"--range {text!r}: expected LO:HI or LO:HI:N, e.g. 0.1:2:12") from None
    if len(parts) > 3 or not 0 < lo < hi or n < 2:
        raise ValueError(f"--range {text!r}: need 0 < LO < HI and N >= 2")
    return np.geomspace(lo, hi, n)


def render(res: pd.DataFrame) -> str:
    cost, quality = res.attrs["cost"], res.attrs["quality"]
    better = "higher" if res.attrs["higher_is_better"] else "lower"
    lines = []
    for setting, grp in res.groupby("setting", sort=False):
        first = grp.iloc[0]
        lines.append(f"{first.task} / {first.model} on {first.hardware}: best {quality} ({better} is better) with "
                     f"{cost} <= {fmt.num(first.budget)}")
        for _, r in grp.iterrows():
            if pd.isna(r.variant):
                lines.append(f"  -   {r.method:<14} nothing within budget (cheapest point: {fmt.num(r.cheapest)})")
                continue
            flags = (["tie with #1 (CIs overlap)"] if r.tie else []) + (["cost CI reaches past the budget"]
                                                                       if r.cost_ci_over else [])
            lines.append(f"  {int(r['rank']):<3} {r.method:<14} {r.variant:<26} {quality} "
                         f"{fmt.ci(r.quality, r.quality_low, r.quality_high):<24} {cost} "
                         f"{fmt.ci(r.cost, r.cost_low, r.cost_high):<26} {'; '.join(flags)}".rstrip())
    return "\n".join(lines)


def render_curves(res: pd.DataFrame) -> str:
    """Budget x method grid of the best quality (``-`` where nothing fits, ``=`` marks a tie with the best)."""
    quality = res.attrs["quality"]
    lines = []
    for setting, grp in res.groupby("setting", sort=False):
        methods = list(dict.fromkeys(grp.method))
        lines.append(f"best {quality} per method at each {res.attrs['cost']} budget "
                     f"({grp.task.iloc[0]} / {grp.model.iloc[0]} on {grp.hardware.iloc[0]}; * = best, = tie: paired "
                     "difference CI contains 0, else CIs overlap)")
        lines.append("  " + f"{'budget':>10}  " + "  ".join(f"{m:>12}" for m in methods))
        for b, row in grp.groupby("budget", sort=True):
            cells = []
            for m in methods:
                r = row[row.method == m].iloc[0]
                mark = "*" if r["rank"] == 1 else ("=" if r.tie else " ")
                cells.append(f"{'-' if pd.isna(r.variant) else fmt.num(r.quality) + mark:>12}")
            lines.append("  " + f"{fmt.num(b):>10}  " + "  ".join(cells))
    return "\n".join(lines)

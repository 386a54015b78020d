"""Rendering only: plots from tables that ``harness.report`` and ``harness.analysis`` compute."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _err(grp: pd.DataFrame, col: str) -> np.ndarray | None:
    if f"{col}_low" not in grp or grp[f"{col}_low"].isna().all():
        return None
    lo = (grp[col] - grp[f"{col}_low"]).fillna(0)
    hi = (grp[f"{col}_high"] - grp[col]).fillna(0)
    return np.abs(np.vstack([lo, hi]))


def save_figure(fig: plt.Figure, stem: str | Path) -> list[Path]:
    """Write ``fig`` as STEM.png and STEM.svg (folders made) and close it; the files written."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    files = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for f in files:
        fig.savefig(f, dpi=130)
    plt.close(fig)
    return files


def pareto_plot(table: pd.DataFrame, stem: str | Path, cost: str = "latency", quality: str = "fid",
                higher_is_better: bool = False) -> list[Path]:
    """Quality vs cost with CI whiskers on both axes; the front as a step line per setting; points
    whose CIs reach the front drawn hollow. Writes PNG and SVG."""
    ok = table[table.status == "ok"].dropna(subset=[cost, quality]) if quality in table and cost in table else table[:0]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for k, (method, grp) in enumerate(ok.groupby("method")):
        color = f"C{k % 10}"
        ax.errorbar(grp[cost], grp[quality], xerr=_err(grp, cost), yerr=_err(grp, quality), fmt="none",
                    ecolor=color, capsize=3, lw=1)
        near = grp.get("near_front", pd.Series(False, index=grp.index)).astype(bool)
        ax.scatter(grp[cost][~near], grp[quality][~near], color=color, label=method, zorder=3)
        ax.scatter(grp[cost][near], grp[quality][near], facecolors="white", edgecolors=color, zorder=3)
        for _, r in grp.iterrows():
            ax.annotate(r.variant.split("/", 1)[-1], (r[cost], r[quality]), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
    settings = list(dict.fromkeys(ok.setting))
    for k, setting in enumerate(settings):  # one front per comparable setting, never joined across them
        front = ok[(ok.setting == setting) & ok.on_front].sort_values(cost)
        label = "Pareto front" + (f" ({setting})" if len(settings) > 1 else "")
        ax.step(front[cost], front[quality], where="post", color=f"C{7 + k % 3}" if k else "k", lw=1, alpha=0.6,
                label=label)
    if len(ok) and (ok[cost] > 0).all():
        ax.set_xscale("log")
    if len(ok) and (ok[quality] > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel(f"{cost} (95% CI; hollow = CI reaches the front)")
    ax.set_ylabel(f"{quality} ({'higher' if higher_is_better else 'lower'} is better, 95% CI)")
    if len(ok):
        first = ok.iloc[0]
        ax.set_title(f"{first.task} / {first.model} on {first.hardware}, batch {first.batch_size}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, stem)


def history_plot(h: pd.DataFrame, stem: str | Path, metric: str) -> list[Path]:
    """Each point's value relative to its first run, over runs in time order, with CI whiskers;
    a ring marks the first run where a change appears."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    runs = h.sort_values("created_at").drop_duplicates("run_id")
    x_of = {r: i for i, r in enumerate(runs.run_id)}
    for k, (_, grp) in enumerate(h.groupby("match", sort=False)):
        ref = grp.value.iloc[0]
        x = grp.run_id.map(x_of)
        lo = (grp.value - grp.low.fillna(grp.value)) / ref
        hi = (grp.high.fillna(grp.value) - grp.value) / ref
        ax.errorbar(x, grp.value / ref, yerr=np.abs(np.vstack([lo, hi])), marker="o", capsize=3, lw=1,
                    color=f"C{k % 10}", label=grp.variant.iloc[0])
        ch = grp[grp.first_change]
        ax.scatter(ch.run_id.map(x_of), ch.value / ref, s=180, facecolors="none", edgecolors="red", zorder=4)
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([f"{r.created_at:%m-%d %H:%M}\n{str(r.git_sha)[:7]}\n{r.device_name}"[:40]
                        for r in runs.itertuples()], fontsize=6)
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set_ylabel(f"{metric} relative to the point's first run (95% CI)")
    ax.set_title(f"{metric} history; red ring = first change")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, stem)


def budget_plot(res: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Best quality within each budget, per method: a step curve (CI band) per method and setting."""
    fig, ax = plt.subplots(figsize=(7.5, 5))
    settings = list(dict.fromkeys(res.setting))
    for k, ((setting, method), grp) in enumerate(res.dropna(subset=["quality"]).groupby(["setting", "method"],
                                                                                            sort=False)):
        grp = grp.sort_values("budget")
        label = method + (f" ({setting})" if len(settings) > 1 else "")
        ax.step(grp.budget, grp.quality, where="post", color=f"C{k % 10}", label=label)
        if grp.quality_low.notna().any():
            ax.fill_between(grp.budget, grp.quality_low, grp.quality_high, step="post", color=f"C{k % 10}", alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel(f"budget: {res.attrs['cost']} at most (log scale)")
    better = "higher" if res.attrs["higher_is_better"] else "lower"
    ax.set_ylabel(f"best {res.attrs['quality']} within budget ({better} is better; band = 95% CI)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, stem)

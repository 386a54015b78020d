"""Rendering only: Pareto plots from a summary table (``harness.report.summarize``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def pareto_plot(summary: pd.DataFrame, stem: str | Path, cost: str = "latency_s", quality: str = "fid") -> list[Path]:
    """Quality vs cost with CI whiskers on both axes; the front as a step line. Writes PNG and SVG."""
    ok = summary[(summary.status == "ok")].dropna(subset=[cost, quality]) if quality in summary else summary[:0]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for method, grp in ok.groupby("method"):
        xerr = np.abs(np.vstack([grp[cost] - grp[f"{cost[:-2]}_low"], grp[f"{cost[:-2]}_high"] - grp[cost]]))
        yerr = None
        if f"{quality}_low" in grp:
            yerr = np.abs(np.vstack([grp[quality] - grp[f"{quality}_low"], grp[f"{quality}_high"] - grp[quality]]))
        ax.errorbar(grp[cost], grp[quality], xerr=xerr, yerr=yerr, fmt="o", capsize=3, label=method)
        for _, r in grp.iterrows():
            ax.annotate(r.variant.split("/", 1)[-1], (r[cost], r[quality]), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
    settings = list(dict.fromkeys(ok.setting))
    for k, setting in enumerate(settings):  # one front per comparable setting, never joined across them
        front = ok[(ok.setting == setting) & ok.on_front].sort_values(cost)
        label = "Pareto front" + (f" ({setting})" if len(settings) > 1 else "")
        ax.step(front[cost], front[quality], where="post", color=f"C{7 + k % 3}" if k else "k", lw=1, alpha=0.6,
                label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency per call, s (median, 95% CI; log scale)")
    ax.set_ylabel(f"{quality.upper()} (lower is better, 95% CI; log scale)")
    if len(ok):
        first = ok.iloc[0]
        ax.set_title(f"{first.task} / {first.model} on {first.hardware}, batch {first.batch_size}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    files = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for f in files:
        fig.savefig(f, dpi=130)
    plt.close(fig)
    return files

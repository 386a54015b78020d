"""Summaries from result rows alone: the table the run prints and ``harness report`` renders.

Data here, rendering in ``harness.plot`` and ``render_*`` below, so a notebook user can take
``summarize(load(...))`` and draw what they like.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness.pareto import pareto_mask
from harness.stats import recentred_bootstrap_ci, median_ci, speedup_ci

GROUP = ["task", "model", "hardware", "device_name", "seed", "batch_size"]


def _one(df: pd.DataFrame, metric: str, stage: str | None = None) -> pd.Series:
    sel = df[(df.metric == metric) & (df["stage"].isna() if stage is None else df["stage"] == stage)]
    return sel.value.dropna()


def summarize(rows: pd.DataFrame, baseline: str | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """One row per point: latency median (CI), speedup over the baseline (CI), FID (CI), costs.

    ``baseline`` is a variant label; by default the ``baseline`` column the run recorded.
    Speedups compare points of the same task, model, hardware, device, seed and batch size.
    """
    out = []
    for pid, df in rows.groupby("point_id", sort=False):
        first = df.iloc[0]
        rec = {k: first[k] for k in ["point_id", "variant", "method", "status", *GROUP]}
        rec["error"] = first.get("error")
        rec["baseline"] = baseline or first.get("baseline")
        lat = _one(df, "latency", "end_to_end")
        if len(lat):
            est = median_ci(lat.to_numpy(), confidence)
            rec |= {"latency_s": est.value, "latency_low": est.low, "latency_high": est.high, "repeats": len(lat)}
        fid = _one(df, "fid")
        if len(fid):
            rec |= {"fid": fid.iloc[0], "n": int(df[df.metric == "fid"].n.iloc[0])}
            reps = _one(df, "fid_bootstrap")
            if len(reps) >= 20:
                ci = recentred_bootstrap_ci(fid.iloc[0], reps.to_numpy(), confidence)
                rec |= {"fid_low": ci.low, "fid_high": ci.high}
        for metric in ("nfe", "flops", "peak_memory", "inception_score", "label_entropy", "mean_confidence"):
            v = _one(df, metric)
            if len(v):
                rec[metric] = v.iloc[0]
        rec["_lat"] = lat.to_numpy()
        out.append(rec)
    table = pd.DataFrame(out)
    if table.empty:
        return table
    for col in ("speedup", "speedup_low", "speedup_high"):
        table[col] = np.nan
    for _, grp in table.groupby(GROUP, dropna=False, sort=False):
        for i, rec in grp.iterrows():
            base = grp[(grp.variant == rec.baseline) & (grp.status == "ok")]
            if rec.status != "ok" or base.empty or len(rec._lat) < 2:
                continue
            est = speedup_ci(base.iloc[0]._lat, rec._lat, confidence)
            table.loc[i, ["speedup", "speedup_low", "speedup_high"]] = [est.value, est.low, est.high]
    table["on_front"] = False
    ok = table.status == "ok"
    if "fid" in table and ok.any():
        for _, grp in table[ok].groupby(GROUP, dropna=False, sort=False):
            table.loc[grp.index, "on_front"] = pareto_mask(grp.latency_s, grp.fid, higher_is_better=False)
    return table.drop(columns="_lat")


def _fmt(v: float, lo: float | None = None, hi: float | None = None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    s = f"{v:.{digits}g}"
    if lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)):
        s += f" [{lo:.{digits}g}, {hi:.{digits}g}]"
    return s


def table_cells(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and string cells of the summary, sorted by NFE within each group."""
    header = ["variant", "NFE", "latency s (median [95% CI])", "speedup x (gmean ratio [95% CI])",
              "FID [95% CI]", "IS-like", "n", "front"]
    body = []
    for _, r in summary.sort_values(["task", "model", "hardware", "seed", "method", "nfe"], na_position="last").iterrows():
        if r.status != "ok":
            body.append([r.variant, "-", "FAILED: " + str(r.error).splitlines()[0][:60], "-", "-", "-", "-", ""])
            continue
        g = lambda k: r.get(k, np.nan)  # noqa: E731
        body.append([
            r.variant + (" (baseline)" if r.variant == r.baseline else ""),
            _fmt(g("nfe"), digits=4),
            _fmt(g("latency_s"), g("latency_low"), g("latency_high")),
            _fmt(g("speedup"), g("speedup_low"), g("speedup_high")),
            _fmt(g("fid"), g("fid_low"), g("fid_high")),
            _fmt(g("inception_score")),
            _fmt(g("n"), digits=6),
            "*" if r.on_front else "",
        ])
    return header, body


def render_text(summary: pd.DataFrame) -> str:
    header, body = table_cells(summary)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])


def render_markdown(summary: pd.DataFrame) -> str:
    header, body = table_cells(summary)
    rows = [header, ["---"] * len(header), *body]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows)


def context_lines(rows: pd.DataFrame) -> list[str]:
    """Where and how it was measured: the facts a reader needs next to the numbers."""
    first = rows.iloc[0]
    lines = [f"hardware {first.hardware} ({first.device_name}), threads {first.threads}, torch {first.torch}, "
             f"git {first.git_sha}",
             f"latency = one call generating batch_size={first.batch_size} images; speedup = ratio of geometric "
             "means vs the baseline; FID CI = bootstrap over generated samples, re-centred on the estimate; * = on the Pareto front "
             "(FID vs latency)"]
    return lines


def report(paths: list[str | Path], baseline: str | None = None, out_dir: str | Path | None = None,
           markdown: bool = False) -> str:
    """Load rows, print-ready text, and write the Pareto plot (PNG + SVG) next to the results."""
    from harness.plot import pareto_plot
    from harness.results import load

    rows = load(*paths)
    summary = summarize(rows, baseline)
    out = Path(out_dir or paths[0])
    files = pareto_plot(summary, out / "pareto_fid_latency")
    text = render_markdown(summary) if markdown else render_text(summary)
    return "\n".join([text, "", *context_lines(rows), "plot: " + ", ".join(map(str, files))])

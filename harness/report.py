"""Summaries from result rows alone: the table the run prints and ``harness report`` renders.

Data here, rendering in ``harness.plot`` and ``render_*`` below, so a notebook user can take
``summarize(load(...))`` and draw what they like.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness.pareto import pareto_mask
from harness.stats import recentred_bootstrap_ci, median_ci, speedup_ci

GROUP = ["task", "model", "hardware", "device_name", "seed", "batch_size"]


def _setting(first: pd.Series) -> str:
    """What must be equal for two points to be compared: the full point config except the method
    (task incl. metric settings, model, hardware incl. threads and dtype, seed), the device, and
    the folder the results came from."""
    cfg = json.loads(first["config"]) if isinstance(first.get("config"), str) else {}
    cfg.pop("method", None)
    folder = str(Path(first["file"]).parent) if isinstance(first.get("file"), str) else ""
    key = json.dumps([cfg, first.get("device_name"), folder, [first.get(k) for k in GROUP]], sort_keys=True,
                     default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _one(df: pd.DataFrame, metric: str, stage: str | None = None) -> pd.Series:
    sel = df[(df.metric == metric) & (df["stage"].isna() if stage is None else df["stage"] == stage)]
    return sel.value.dropna()


def summarize(rows: pd.DataFrame, baseline: str | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """One row per point: latency median (CI), speedup over the baseline (CI), FID (CI), costs.

    ``baseline`` is a variant label; by default the ``baseline`` column the run recorded.
    Speedups and Pareto fronts only compare points of the same setting (``_setting``).
    """
    out = []
    by = "file" if "file" in rows else ["run_id", "point_id"]
    for _, df in rows.groupby(by, sort=False):
        first = df.iloc[0]
        rec = {k: first.get(k) for k in ["point_id", "run_id", "variant", "method", "status", *GROUP]}
        rec["setting"] = _setting(first)
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
    for _, grp in table.groupby("setting", sort=False):
        for i, rec in grp.iterrows():
            base = grp[(grp.variant == rec.baseline) & (grp.status == "ok")]
            if len(base) > 1:
                raise ValueError(f"baseline {rec.baseline!r} was measured {len(base)} times in one setting "
                                 f"(runs {', '.join(base.run_id.astype(str))}); report one result folder at a time")
            if rec.status != "ok" or base.empty or len(rec._lat) < 2:
                continue
            est = speedup_ci(base.iloc[0]._lat, rec._lat, confidence)
            table.loc[i, ["speedup", "speedup_low", "speedup_high"]] = [est.value, est.low, est.high]
    table["on_front"] = False
    ok = table.status == "ok"
    if "fid" in table and ok.any():
        for _, grp in table[ok].groupby("setting", sort=False):
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
    keys = [k for k in ["setting", "method", "nfe"] if k in summary]
    for _, r in summary.sort_values(keys, na_position="last").iterrows():
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
    def distinct(col: str) -> str:
        vals = sorted({str(v) for v in rows[col].dropna()}) if col in rows else []
        return " | ".join(vals) if vals else "-"

    return [
        f"hardware {distinct('hardware')} ({distinct('device_name')}), threads {distinct('threads')}, "
        f"torch {distinct('torch')}, git {distinct('git_sha')}, seeds {distinct('seed')}",
        f"latency = one call generating batch_size={distinct('batch_size')} images; speedup = ratio of geometric "
        "means vs the baseline, bootstrap CI over repeats (within-run noise only: baseline and method ran "
        "minutes apart, not interleaved)",
        "FID CI = bootstrap over generated samples, re-centred on the estimate; * = on the Pareto front "
        "(FID vs latency) of its setting",
    ]


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

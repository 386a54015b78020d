"""Summaries from result rows alone: the table the run prints and ``harness report`` renders.

Data here, rendering in ``harness.plot`` and ``render_*`` below, so a notebook user can take
``summarize(load(...))`` and draw what they like.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness.analysis import estimates, pareto_table, points, quality_metrics
from harness.stats import Estimate, paired_difference_ci, paired_speedup_ci, speedup_ci

QUALITY_EXTRAS = ("nfe", "flops", "peak_memory", "inception_score", "label_entropy", "mean_confidence")


def default_quality(est: pd.DataFrame) -> str | None:
    """FID when measured, else the first quality metric (``harness.analysis.quality_metrics``)."""
    quality = quality_metrics(est)
    return "fid" if "fid" in quality else (quality[0] if quality else None)


def _speedup(base: pd.Series, rec: pd.Series, confidence: float) -> Estimate | None:
    """Paired (ABBA) when the point timed the baseline interleaved with itself, else two-sample."""
    own = rec.get("_lat")
    if rec.get("_abba") is not None:
        return paired_speedup_ci(rec["_abba"], own, confidence)
    if base.get("_lat") is None or own is None or len(own) < 2 or len(base["_lat"]) < 2:
        return None
    return speedup_ci(base["_lat"], own, confidence)


def _delta(base: pd.Series, rec: pd.Series, quality: str, confidence: float) -> Estimate | None:
    """Quality change vs the baseline: paired when both stored replicates over the same samples."""
    a, b = base.get(quality), rec.get(quality)
    if a is None or b is None or np.isnan(a) or np.isnan(b):
        return None
    ra, rb = base.get("_reps"), rec.get("_reps")
    if ra is not None and rb is not None and len(ra) == len(rb) and base.get("n") == rec.get("n"):
        return paired_difference_ci(a, b, ra, rb, confidence)
    return Estimate(b - a, np.nan, np.nan, "difference, no CI (no paired replicates)")


def summarize(rows: pd.DataFrame, baseline: str | None = None, confidence: float = 0.95,
              quality: str | None = None) -> pd.DataFrame:
    """One row per point: latency median (CI), speedup over the baseline (CI, estimator named),
    quality (CI) and its change vs the baseline (paired CI where possible), costs, Pareto marks.

    ``baseline`` is a variant label; by default the ``baseline`` column the run recorded.
    ``quality`` defaults to ``default_quality``. Comparisons stay within a setting
    (``harness.analysis.setting_of``).
    """
    est = estimates(rows, confidence)
    table = points(rows)
    if table.empty:
        return table
    table["baseline"] = baseline or table.baseline
    quality = quality or default_quality(est)
    table["quality"] = quality
    by_key = {k: g.set_index("metric") for k, g in est.groupby("key", sort=False)}
    recs = []
    for _, rec in table.iterrows():
        g = by_key.get(rec.key)
        extra: dict = {"_lat": None, "_abba": None, "_reps": None}
        if g is not None:
            if "latency" in g.index:
                lat = g.loc["latency"]
                extra |= {"latency": lat.value, "latency_low": lat.low, "latency_high": lat.high,
                          "repeats": lat.n_samples, "_lat": lat.samples}
            if "latency@abba_baseline" in g.index:
                extra["_abba"] = g.loc["latency@abba_baseline"].samples
            if quality in g.index:
                q = g.loc[quality]
                extra |= {quality: q.value, f"{quality}_low": q.low, f"{quality}_high": q.high, "n": q.n,
                          "_reps": q.replicates}
            extra |= {m: g.loc[m].value for m in QUALITY_EXTRAS if m in g.index and m != quality}
        recs.append(extra)
    table = pd.concat([table, pd.DataFrame(recs, index=table.index)], axis=1)
    for col in ("speedup", "speedup_low", "speedup_high", "baseline_latency_s", "delta", "delta_low", "delta_high"):
        table[col] = np.nan
    table["speedup_estimator"] = None
    table["delta_estimator"] = None
    for _, grp in table.groupby("setting", sort=False):
        for i, rec in grp.iterrows():
            base = grp[(grp.variant == rec.baseline) & (grp.status == "ok")]
            if len(base) > 1:
                raise ValueError(f"baseline {rec.baseline!r} was measured {len(base)} times in one setting "
                                 f"(runs {', '.join(base.run_id.astype(str))}); report one result folder at a time")
            if rec.status != "ok" or base.empty:
                continue
            b = base.iloc[0]
            table.loc[i, "baseline_latency_s"] = b.get("latency", np.nan)
            sp = _speedup(b, rec, confidence)
            if sp is not None:
                table.loc[i, ["speedup", "speedup_low", "speedup_high"]] = [sp.value, sp.low, sp.high]
                table.loc[i, "speedup_estimator"] = sp.estimator
            d = _delta(b, rec, quality, confidence) if quality else None
            if d is not None:
                table.loc[i, ["delta", "delta_low", "delta_high"]] = [d.value, d.low, d.high]
                table.loc[i, "delta_estimator"] = d.estimator
    table["on_front"] = False
    table["near_front"] = False
    if quality and "latency" in set(est.metric):
        front, _ = pareto_table(est, "latency", quality)
        marks = front.set_index("key")
        table["on_front"] = table.key.map(marks.on_front).fillna(False).astype(bool)
        table["near_front"] = table.key.map(marks.near_front).fillna(False).astype(bool)
    return table.drop(columns=["_lat", "_abba", "_reps"])


def _fmt(v: float, lo: float | None = None, hi: float | None = None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    s = f"{v:.{digits}g}"
    if lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)):
        s += f" [{lo:.{digits}g}, {hi:.{digits}g}]"
    return s


def _label(quality: str | None) -> str:
    return (quality or "quality").upper() if quality in ("fid", "kid", "bleu") else (quality or "quality")


def table_cells(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and string cells of the summary, sorted by NFE within each setting."""
    quality = summary["quality"].iloc[0] if "quality" in summary and len(summary) else None
    q = _label(quality)
    header = ["variant", "NFE", "latency s (median [95% CI])", "speedup x [95% CI]", f"d{q} vs baseline [95% CI]",
              f"{q} [95% CI]", "n", "front"]
    body = []
    keys = [k for k in ["setting_label", "setting", "method", "nfe"] if k in summary]
    several = "setting_label" in summary and summary.setting_label.nunique() > 1
    if several:
        header.insert(0, "setting")
    for _, r in summary.sort_values(keys, na_position="last").iterrows():
        cells = _cells(r, quality) if r.status == "ok" else [
            r.variant, "-", "FAILED: " + str(r.error).splitlines()[0][:60], "-", "-", "-", "-", ""]
        body.append([r.setting_label, *cells] if several else cells)
    return header, body


def _cells(r: pd.Series, quality: str | None) -> list[str]:
    g = lambda k: r.get(k, np.nan)  # noqa: E731
    return [
        r.variant + (" (baseline)" if r.variant == r.baseline else ""),
        _fmt(g("nfe"), digits=4),
        _fmt(g("latency"), g("latency_low"), g("latency_high")),
        _fmt(g("speedup"), g("speedup_low"), g("speedup_high")),
        "" if r.variant == r.baseline else _fmt(g("delta"), g("delta_low"), g("delta_high")),
        _fmt(g(quality), g(f"{quality}_low"), g(f"{quality}_high")) if quality else "-",
        _fmt(g("n"), digits=6),
        "*" if r.on_front else ("~" if r.near_front else ""),
    ]


def render_text(summary: pd.DataFrame) -> str:
    header, body = table_cells(summary)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])


def render_markdown(summary: pd.DataFrame) -> str:
    header, body = table_cells(summary)
    rows = [header, ["---"] * len(header), *body]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows)


def context_lines(rows: pd.DataFrame, summary: pd.DataFrame | None = None) -> list[str]:
    """Where and how it was measured, and which estimators made the numbers."""
    def distinct(frame: pd.DataFrame, col: str) -> str:
        vals = sorted({str(v) for v in frame[col].dropna()}) if col in frame else []
        return " | ".join(vals) if vals else "-"

    lines = [
        f"hardware {distinct(rows, 'hardware')} ({distinct(rows, 'device_name')}), threads {distinct(rows, 'threads')}, "
        f"torch {distinct(rows, 'torch')}, git {distinct(rows, 'git_sha')}, seeds {distinct(rows, 'seed')}",
        f"latency = one call on batch_size={distinct(rows, 'batch_size')} items, median of the repeats",
    ]
    if summary is not None and len(summary):
        base = summary.dropna(subset=["baseline_latency_s"]).drop_duplicates("setting")
        for _, b in base.iterrows():
            lines.append(f"baseline {b.baseline}: {_fmt(b.baseline_latency_s)} s per call"
                         + (f" ({b.setting_label or b.setting})" if summary.setting.nunique() > 1 else ""))
        for est in summary[summary.variant != summary.baseline].speedup_estimator.dropna().unique():
            note = "" if est.startswith("ABBA") else (
                " (within-run noise only: baseline and method ran minutes apart; interleave=true pairs them)")
            lines.append(f"speedup = {est}{note}")
        for est in summary.delta_estimator.dropna().unique():
            lines.append(f"d{_label(summary['quality'].iloc[0])} = method minus baseline, {est}")
    lines.append("* = on the Pareto front (quality vs latency) of its setting; ~ = off it, but its CIs reach it")
    return lines


def report(paths: list[str | Path], baseline: str | None = None, out_dir: str | Path | None = None,
           markdown: bool = False, quality: str | None = None) -> str:
    """Load rows, print-ready text, and write the Pareto plot (PNG + SVG) next to the results."""
    from harness.plot import pareto_plot
    from harness.results import load

    rows = load(*paths)
    summary = summarize(rows, baseline, quality=quality)
    out = Path(out_dir or paths[0])
    q = summary["quality"].iloc[0] if "quality" in summary and len(summary) else None
    files = pareto_plot(summary, out / f"pareto_{q or 'quality'}_latency", quality=q) if q else []
    text = render_markdown(summary) if markdown else render_text(summary)
    return "\n".join([text, "", *context_lines(rows, summary), "plot: " + (", ".join(map(str, files)) or "none")])

"""Summaries from result rows alone: the table the run prints and ``harness report`` renders.

Data here, rendering in ``harness.plot`` and ``render_*`` below, so a notebook user can take
``summarize(load(...))`` and draw what they like.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness import fmt
from harness.analysis import estimates, items_per_call, pareto_table, points, quality_metrics, resolve_metric
from harness.contrast import contrast

QUALITY_EXTRAS = ("nfe", "flops", "peak_memory", "inception_score", "label_entropy", "mean_confidence")


def default_quality(est: pd.DataFrame) -> str | None:
    """FID when measured, else the first quality metric (``harness.analysis.quality_metrics``)."""
    quality = quality_metrics(est)
    return "fid" if "fid" in quality else (quality[0] if quality else None)


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
    if baseline is not None and baseline not in set(table.variant):
        raise ValueError(f"--baseline {baseline!r} is not a variant in these results; variants: "
                         f"{', '.join(sorted(set(table.variant)))}")
    if quality is not None:
        quality = resolve_metric(quality, est.metric)
        if quality not in quality_metrics(est):
            raise ValueError(f"--quality {quality!r} is not a quality metric (it has no better direction, or is a "
                             f"cost); quality metrics here: {', '.join(quality_metrics(est)) or '(none)'}")
    table["baseline"] = baseline or table.baseline
    quality = quality or default_quality(est)
    table["quality"] = quality
    by_key = {k: g.set_index("metric") for k, g in est.groupby("key", sort=False)}
    recs = []
    for _, rec in table.iterrows():
        g = by_key.get(rec.key)
        extra: dict = {}
        if g is not None:
            if "latency" in g.index:
                lat = g.loc["latency"]
                extra |= {"latency": lat.value, "latency_low": lat.low, "latency_high": lat.high,
                          "repeats": lat.n_samples}
            if quality in g.index:
                q = g.loc[quality]
                extra |= {quality: q.value, f"{quality}_low": q.low, f"{quality}_high": q.high, "n": q.n}
            extra |= {m: g.loc[m].value for m in QUALITY_EXTRAS if m in g.index and m != quality}
        recs.append(extra)
    table = pd.concat([table, pd.DataFrame(recs, index=table.index)], axis=1)
    for col in ("speedup", "speedup_low", "speedup_high", "baseline_latency_s", "delta", "delta_low", "delta_high"):
        table[col] = np.nan
    table["speedup_estimator"] = None
    table["delta_estimator"] = None
    rows_of = {(k, m): r for (k, m), r in est.set_index(["key", "metric"], drop=False).iterrows()} if len(est) else {}
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
            for metric, kind, col in (("latency", "speedup", "speedup"), (quality, "difference", "delta")):
                rb, ro = rows_of.get((b.key, metric)), rows_of.get((rec.key, metric))
                if metric is None or rb is None or ro is None:
                    continue
                e = contrast(rb, ro, kind, confidence, est)
                table.loc[i, [col, f"{col}_low", f"{col}_high"]] = [e.value, e.low, e.high]
                table.loc[i, f"{col}_estimator"] = e.estimator
    table["on_front"] = False
    table["near_front"] = False
    if quality and "latency" in set(est.metric):
        front, _ = pareto_table(est, "latency", quality)
        marks = front.set_index("key")
        table["on_front"] = table.key.map(marks.on_front).fillna(False).astype(bool)
        table["near_front"] = table.key.map(marks.near_front).fillna(False).astype(bool)
    return table


def across_seeds(summary: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Seeds as replicates: per variant of a setting measured at several seeds, the geometric mean of
    the per-seed speedups and the mean of the per-seed quality deltas and qualities, each with a
    t-interval across seeds (one seed's interval does not describe the next seed's value:
    docs/analysis.md). Empty when no setting has two seeds."""
    from harness.stats import log_ratio_t_ci, mean_t_ci

    ok = summary[summary.status == "ok"]
    out = []
    for (_, variant), grp in ok.groupby(["seedless", "variant"], sort=False):
        if grp.seed.nunique() < 2:
            continue
        rec = {"variant": variant, "baseline": grp.baseline.iloc[0], "seeds": grp.seed.nunique(),
               "setting_label": grp.setting_label.iloc[0], "quality": grp["quality"].iloc[0]}
        sp = grp.speedup.dropna()
        if len(sp) >= 2 and (sp > 0).all():
            e = log_ratio_t_ci(np.log(sp.to_numpy(dtype=float)), confidence)
            rec |= {"speedup": e.value, "speedup_low": e.low, "speedup_high": e.high}
        for col in ("delta", rec["quality"]):
            vals = grp[col].dropna() if col in grp else []
            if len(vals) >= 2:
                e = mean_t_ci(vals.to_numpy(dtype=float), confidence)
                rec |= {col: e.value, f"{col}_low": e.low, f"{col}_high": e.high}
        out.append(rec)
    return pd.DataFrame(out)


def render_across_seeds(seeds: pd.DataFrame, markdown: bool = False) -> str:
    q = seeds["quality"].iloc[0]
    header = ["variant", "seeds", "speedup x (gmean [t CI])", f"d{_label(q)} (mean [t CI])",
              f"{_label(q)} (mean [t CI])"]
    g = lambda r, k: r.get(k, np.nan)  # noqa: E731
    body = [[r.variant + (" (baseline)" if r.variant == r.baseline else ""), str(r.seeds),
             fmt.ci(g(r, "speedup"), g(r, "speedup_low"), g(r, "speedup_high")),
             "" if r.variant == r.baseline else fmt.ci(g(r, "delta"), g(r, "delta_low"), g(r, "delta_high")),
             fmt.ci(g(r, q), g(r, f"{q}_low"), g(r, f"{q}_high"))] for _, r in seeds.iterrows()]
    return fmt.table(header, body, markdown=markdown)


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
        fmt.num(g("nfe")),
        fmt.ci(g("latency"), g("latency_low"), g("latency_high")),
        fmt.ci(g("speedup"), g("speedup_low"), g("speedup_high")),
        "" if r.variant == r.baseline else fmt.ci(g("delta"), g("delta_low"), g("delta_high")),
        fmt.ci(g(quality), g(f"{quality}_low"), g(f"{quality}_high")) if quality else "-",
        fmt.num(g("n"), digits=6),
        "*" if r.on_front else ("~" if r.near_front else ""),
    ]


def render_text(summary: pd.DataFrame) -> str:
    return fmt.table(*table_cells(summary))


def render_markdown(summary: pd.DataFrame) -> str:
    return fmt.table(*table_cells(summary), markdown=True)


def _items(rows: pd.DataFrame, batch: str) -> str:
    """``batch_size=B items``, or, where a timed call is several model calls (text generation's pass
    over its prompts), ``N items (batch_size=B per model call)``."""
    notes = rows.drop_duplicates("point_id") if "point_id" in rows else rows
    items = {str(int(n)) for n in (items_per_call(r) for _, r in notes.iterrows()) if n}
    if not items or items == set(batch.split(" | ")):
        return f"batch_size={batch} items"
    return f"{' | '.join(sorted(items))} items (batch_size={batch} per model call)"


def context_lines(rows: pd.DataFrame, summary: pd.DataFrame | None = None) -> list[str]:
    """Where and how it was measured, and which estimators made the numbers."""
    def distinct(frame: pd.DataFrame, col: str) -> str:
        vals = sorted({str(v) for v in frame[col].dropna()}) if col in frame else []
        return " | ".join(vals) if vals else "-"

    lines = [
        f"hardware {distinct(rows, 'hardware')} ({distinct(rows, 'device_name')}), "
        f"threads {distinct(rows, 'threads')}, "
        f"torch {distinct(rows, 'torch')}, git {distinct(rows, 'git_sha')}, seeds {distinct(rows, 'seed')}",
        f"latency = one call on {_items(rows, distinct(rows, 'batch_size'))}, median of the repeats",
    ]
    if summary is not None and len(summary):
        base = summary.dropna(subset=["baseline_latency_s"]).drop_duplicates("setting")
        for _, b in base.iterrows():
            lines.append(f"baseline {b.baseline}: {fmt.num(b.baseline_latency_s)} s per call"
                         + (f" ({b.setting_label or b.setting})" if summary.setting.nunique() > 1 else ""))
        for est in summary[summary.variant != summary.baseline].speedup_estimator.dropna().unique():
            note = "" if est.startswith("ABBA") else (
                " (within-run noise only: baseline and method ran minutes apart; interleave=true pairs them)")
            lines.append(f"speedup = {est}{note}")
        for est in summary.delta_estimator.dropna().unique():
            lines.append(f"d{_label(summary['quality'].iloc[0])} = method minus baseline, {est}")
            if "bootstrap" in est and summary.seed.nunique() < 2:
                # Measured on the digits samplers: across seeds dFID moved about 2x the bootstrap's spread
                # (docs/analysis.md, "Seeds as replicates").
                lines.append("  (resamples one seed's samples: it does not cover seed-to-seed variation, which was "
                             "about 2x larger here; run seed=0,1,2 for an interval across seeds)")
    lines.append("* = on the Pareto front (quality vs latency) of its setting; ~ = off it, but its CIs reach it")
    return lines


def report(paths: list[str | Path], baseline: str | None = None, out_dir: str | Path | None = None,
           markdown: bool = False, quality: str | None = None) -> str:
    """Load rows and give print-ready text; with ``out_dir``, also write the Pareto plot (PNG + SVG) there."""
    from harness.plot import pareto_plot
    from harness.results import load

    rows = load(*paths)
    summary = summarize(rows, baseline, quality=quality)
    q = summary["quality"].iloc[0] if "quality" in summary and len(summary) else None
    text = render_markdown(summary) if markdown else render_text(summary)
    lines = [text, "", *context_lines(rows, summary)]
    seeds = across_seeds(summary) if len(summary) else pd.DataFrame()
    if len(seeds):
        used = ", ".join(map(str, sorted(summary.seed.unique())))
        lines += ["", f"across seeds (replicates: t-intervals over seeds {used}; judge quality claims on these, "
                  "not on one seed's bootstrap interval)",
                  render_across_seeds(seeds, markdown)]
    if out_dir is not None:
        files = pareto_plot(summary, Path(out_dir) / f"pareto_{q or 'quality'}_latency", quality=q) if q else []
        lines.append("plot: " + (", ".join(map(str, files)) or "none"))
    return "\n".join(lines)

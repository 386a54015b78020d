"""Static HTML pages of the analysis commands: one self-contained file each, opened offline.

Rendering only. The numbers come from the data layer (``harness.report.summarize``,
``harness.analysis.pareto_table``, ``harness.budget``, ``harness.compare``, ``harness.claims``)
and are printed through ``harness.fmt``, so a page shows the cells the terminal shows. Plots are
inline SVG (``harness.svgplot``); the page's style and script (``harness/assets``) are embedded,
so nothing is fetched when the page is viewed.

A page holds one or more result sets; with several (folders from two commits or GPUs), a picker
at the top shows one at a time.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from harness import fmt
from harness.svgplot import Plot, color

ASSETS = Path(__file__).resolve().parent / "assets"
# What the environment block shows, in this order; columns absent from the rows are skipped.
ENV_FIELDS = ("experiment", "hardware", "device", "device_name", "device_count", "driver", "cuda", "torch", "python",
              "cpu", "threads", "launcher", "hostname", "git_sha", "run_id")


# ---------------------------------------------------------------- building blocks

def document(title: str, sets: Sequence[tuple[str, str]], subtitle: str = "") -> str:
    """A whole page: ``sets`` are (label, HTML body); more than one gets a picker."""
    css = (ASSETS / "page.css").read_text()
    js = (ASSETS / "page.js").read_text()
    picker = ""
    if len(sets) > 1:
        options = "".join(f'<option value="{i}">{escape(label)}</option>' for i, (label, _) in enumerate(sets))
        picker = (f'<div class="picker"><label for="set-picker">result set ({len(sets)}):</label>'
                  f'<select id="set-picker">{options}</select></div>')
    sections = "".join(f'<section class="resultset" data-set="{i}" aria-label="{escape(label)}">'
                       + (f"<h2>{escape(label)}</h2>" if len(sets) > 1 else "") + body + "</section>"
                       for i, (label, body) in enumerate(sets))
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{css}</style></head><body>"
            f"<h1>{escape(title)}</h1><p class=\"sub\">{escape(subtitle)}{' · ' if subtitle else ''}"
            f"written {made} by efficiency-harness</p>{picker}{sections}"
            f'<div id="tip" role="tooltip" hidden></div><script>{js}</script></body></html>\n')


def write(path: str | Path, page: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def table(header: Sequence[str], body: Sequence[Sequence[Any]], row_classes: Sequence[str] | None = None,
          cls: str = "data") -> str:
    """Cells as an HTML table; cells that are not strings go through ``fmt.num`` (as in ``fmt.table``)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    rows = []
    for i, r in enumerate(body):
        rc = row_classes[i] if row_classes else ""
        cells = "".join(f"<td>{escape(c if isinstance(c, str) else fmt.num(c))}</td>" for c in r)
        rows.append(f'<tr class="{rc}">{cells}</tr>' if rc else f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}' \
           "</tbody></table></div>"


def notes(lines: Sequence[str]) -> str:
    return '<ul class="notes">' + "".join(f"<li>{escape(x)}</li>" for x in lines if x) + "</ul>" if lines else ""


def environment(rows: pd.DataFrame) -> str:
    """Where and how the rows were measured: device, driver, torch, commit, threads, launcher,
    library versions (every distinct value, so a mixed set shows it is mixed)."""
    items = []
    for col in ENV_FIELDS:
        if col not in rows:
            continue
        vals = sorted({str(v) for v in rows[col].dropna()})
        if vals:
            items.append((col, " | ".join(vals)))
    if "libraries" in rows:
        libs: dict[str, set[str]] = {}
        for blob in rows["libraries"].dropna().unique():
            for k, v in json.loads(blob).items():
                libs.setdefault(k, set()).add(str(v))
        items += [(k, " | ".join(sorted(v))) for k, v in sorted(libs.items())]
    if "created_at" in rows and rows.created_at.notna().any():
        when = pd.to_datetime(rows.created_at, utc=True)
        items.append(("measured", f"{when.min():%Y-%m-%d %H:%M} to {when.max():%Y-%m-%d %H:%M} UTC"))
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items)
    return f'<h3>Environment</h3><dl class="env">{body}</dl>'


def _val(r: Any, key: str) -> float:
    v = r.get(key, np.nan) if hasattr(r, "get") else getattr(r, key, np.nan)
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _verdict_class(verdict: str) -> str:
    return "v-" + slug(verdict)


# ---------------------------------------------------------------- Pareto (report, pareto)

def pareto_chart(table: pd.DataFrame, cost: str, quality: str, higher_is_better: bool, title: str,
                 extra_tip: dict[str, list[str]] | None = None) -> str:
    """Quality vs cost, CI whiskers on both axes, the front as a step line per setting, points whose
    CIs reach the front hollow; one ``circle.mark`` per point with both values."""
    ok = table[table.get("status", pd.Series("ok", index=table.index)) == "ok"] if len(table) else table
    ok = ok.dropna(subset=[cost, quality]) if cost in ok and quality in ok else ok[:0]
    xs = [*ok[cost], *ok.get(f"{cost}_low", []), *ok.get(f"{cost}_high", [])]
    ys = [*ok[quality], *ok.get(f"{quality}_low", []), *ok.get(f"{quality}_high", [])]
    better = "higher" if higher_is_better else "lower"
    plot = Plot(title, f"{cost} (95% CI; hollow = CI reaches the front)", f"{quality} ({better} is better, 95% CI)",
                xs, ys, kind="pareto")
    methods = sorted(set(ok.method)) if len(ok) else []  # sorted, as matplotlib's groupby colours them
    settings = list(dict.fromkeys(ok.setting)) if len(ok) else []
    for k, setting in enumerate(settings):  # one front per comparable setting, never joined across them
        front = ok[(ok.setting == setting) & ok.on_front.astype(bool)].sort_values(cost)
        plot.step(list(front[cost]), list(front[quality]), "#333" if not k else color(7 + k), series="front",
                  dash=k > 0)
    for _, r in ok.iterrows():
        c = color(methods.index(r.method))
        x, y = float(r[cost]), float(r[quality])
        plot.whisker(_val(r, f"{cost}_low"), y, _val(r, f"{cost}_high"), y, c, r.method)
        plot.whisker(x, _val(r, f"{quality}_low"), x, _val(r, f"{quality}_high"), c, r.method)
    for _, r in ok.iterrows():
        c = color(methods.index(r.method))
        near = bool(r.get("near_front", False))
        where = ("on the Pareto front" if r.on_front else
                 "off the front; its CIs reach it" if near else "off the front")
        tip = [str(r.variant), f"{cost}: {fmt.ci(r[cost], _val(r, f'{cost}_low'), _val(r, f'{cost}_high'))}",
               f"{quality}: {fmt.ci(r[quality], _val(r, f'{quality}_low'), _val(r, f'{quality}_high'))}",
               *(extra_tip or {}).get(r.key, []), where]
        plot.mark(float(r[cost]), float(r[quality]), c, tip, series=r.method, hollow=near)
        plot.label(float(r[cost]), float(r[quality]), str(r.variant).split("/", 1)[-1], series=r.method)
    for k, m in enumerate(methods):
        plot.legend(m, color(k))
    if settings:
        plot.legend("Pareto front" + (" (one per setting)" if len(settings) > 1 else ""), "#333", "front", "line")
    return plot.svg()


def _report_body(rows: pd.DataFrame, baseline: str | None, quality: str | None) -> str:
    from harness.analysis import direction, estimates
    from harness.report import context_lines, summarize, table_cells

    summary = summarize(rows, baseline, quality=quality)
    header, body = table_cells(summary)
    classes = ["failed" if any(c.startswith("FAILED: ") for c in r) else
               "baseline" if any(c.endswith(" (baseline)") for c in r) else "" for r in body]
    parts = [table(header, body, classes), notes(context_lines(rows, summary))]
    q = summary["quality"].iloc[0] if "quality" in summary and len(summary) else None
    if q and q in summary and "latency" in summary:
        first = summary.iloc[0]
        tips = {r.key: [f"speedup: {fmt.ci(_val(r, 'speedup'), _val(r, 'speedup_low'), _val(r, 'speedup_high'))}",
                        f"n: {fmt.num(_val(r, 'n'), digits=6)}"] for _, r in summary.iterrows()}
        parts.append(pareto_chart(summary, "latency", q, direction(estimates(rows), q),
                                  f"{first.task} / {first.model} on {first.hardware}, batch {first.batch_size}", tips))
    parts.append(environment(rows))
    return "".join(parts)


def report_page(paths: Sequence[str | Path], baseline: str | None = None, quality: str | None = None) -> str:
    """``harness report`` as a page: the summary table, its notes, the Pareto front and the
    environment. Several folders (commits, GPUs): one result set each, the table of each as
    ``harness report FOLDER`` prints it, and a picker to switch between them."""
    from harness.results import load

    sets = [(str(p), _report_body(load(p), baseline, quality)) for p in paths]
    return document("Speedup and quality report", sets, ", ".join(map(str, paths)))


def pareto_page(est: pd.DataFrame, table_: pd.DataFrame, volumes: pd.DataFrame, cost: str, quality: str,
                rows: pd.DataFrame, source: str = "") -> str:
    """``harness pareto`` as a page: per setting, the hypervolume line and the points table; one plot."""
    from harness.analysis import direction

    parts = []
    for _, v in volumes.iterrows():
        parts.append(f"<h3>{escape(f'{v.task} / {v.model} on {v.hardware} ({v.device_name})')}</h3>")
        parts.append(notes([f"{v.front} of {v.points} points on the front; hypervolume {fmt.num(v.hypervolume)} "
                            f"against ({cost} {fmt.num(v.ref_cost)}, {quality} {fmt.num(v.ref_quality)}), "
                            f"{v.reference}"]))
        grp = table_[table_.setting == v.setting].sort_values(cost)
        cells = [[r.variant, fmt.ci(r[cost], r[f"{cost}_low"], r[f"{cost}_high"]),
                  fmt.ci(r[quality], r[f"{quality}_low"], r[f"{quality}_high"]),
                  "front" if r.on_front else ("CI reaches the front" if r.near_front else "")]
                 for _, r in grp.iterrows()]
        parts.append(table(["variant", cost, quality, ""], cells))
    n_of = est[est.metric == quality].set_index("key").n
    tips = {k: [f"n: {fmt.num(n_of.get(k), digits=6)}"] for k in table_.key}
    parts.append(pareto_chart(table_.assign(status="ok"), cost, quality, direction(est, quality),
                              f"Pareto front: {quality} vs {cost}", tips))
    parts.append(environment(rows))
    return document(f"Pareto front: {quality} vs {cost}", [("pareto", "".join(parts))], source)


# ---------------------------------------------------------------- budget

def budget_page(res: pd.DataFrame, rows: pd.DataFrame, source: str = "") -> str:
    """``harness budget``: with one budget (``--max``) the ranked table; over a range, the grid of
    best quality per method and budget and the quality-vs-budget curves with CI bands."""
    cost, quality = res.attrs["cost"], res.attrs["quality"]
    better = "higher" if res.attrs["higher_is_better"] else "lower"
    parts = []
    single = res.budget.nunique() == 1
    for _, grp in res.groupby("setting", sort=False):
        first = grp.iloc[0]
        parts.append(f"<h3>{escape(f'{first.task} / {first.model} on {first.hardware}')}</h3>")
        if single:
            parts.append(notes([f"best {quality} ({better} is better) with {cost} <= {fmt.num(first.budget)}"]))
            cells, classes = [], []
            for _, r in grp.iterrows():
                if pd.isna(r.variant):
                    cells.append(["-", r.method, "nothing within budget", "-",
                                  f"cheapest point: {fmt.num(r.cheapest)}", ""])
                    classes.append("failed")
                    continue
                flags = (["tie with #1 (CIs overlap)"] if r.tie else []) + (["cost CI reaches past the budget"]
                                                                           if r.cost_ci_over else [])
                cells.append([str(int(r["rank"])), r.method, r.variant,
                              fmt.ci(r.quality, r.quality_low, r.quality_high),
                              fmt.ci(r.cost, r.cost_low, r.cost_high), "; ".join(flags)])
                classes.append("baseline" if r["rank"] == 1 else "")
            parts.append(table(["rank", "method", "variant", quality, cost, ""], cells, classes))
            continue
        methods = list(dict.fromkeys(grp.method))
        parts.append(notes([f"best {quality} per method at each {cost} budget; * = best, = tie: paired "
                            "difference CI contains 0, else CIs overlap"]))
        cells = []
        for b, row in grp.groupby("budget", sort=True):
            line = [fmt.num(b)]
            for m in methods:
                r = row[row.method == m].iloc[0]
                mark = "*" if r["rank"] == 1 else ("=" if r.tie else "")
                line.append("-" if pd.isna(r.variant) else fmt.num(r.quality) + mark)
            cells.append(line)
        parts.append(table(["budget", *methods], cells))
    if not single:
        parts.append(budget_chart(res))
    parts.append(environment(rows))
    return document(f"Best {quality} within a {cost} budget", [("budget", "".join(parts))], source)


def budget_chart(res: pd.DataFrame) -> str:
    """Best quality within each budget, per method: a step curve with a CI band per method and
    setting; one ``circle.mark`` per (budget, method) where a point fits."""
    cost, quality = res.attrs["cost"], res.attrs["quality"]
    better = "higher" if res.attrs["higher_is_better"] else "lower"
    fit = res.dropna(subset=["quality"])
    plot = Plot(f"best {quality} within a {cost} budget", f"budget: {cost} at most",
                f"best {quality} ({better} is better; band = 95% CI)", list(res.budget),
                [*fit.quality, *fit.quality_low.dropna(), *fit.quality_high.dropna()], xlog=True, kind="budget")
    settings = list(dict.fromkeys(res.setting))
    methods = sorted(set(fit.method))  # a method keeps its colour across pages (as in pareto_chart)
    for k, ((setting, method), grp) in enumerate(fit.groupby(["setting", "method"], sort=False)):
        grp = grp.sort_values("budget")
        series = method + (f" ({setting})" if len(settings) > 1 else "")
        c = color(methods.index(method) + len(methods) * settings.index(setting))
        plot.band(list(grp.budget), list(grp.quality_low), list(grp.quality_high), c, series)
        plot.step(list(grp.budget), list(grp.quality), c, series, cls="curve")
        for _, r in grp.iterrows():
            plot.mark(r.budget, r.quality, c, [f"budget {cost} <= {fmt.num(r.budget)}", f"{method}: {r.variant}",
                                               f"{quality}: {fmt.ci(r.quality, r.quality_low, r.quality_high)}",
                                               f"{cost}: {fmt.ci(r.cost, r.cost_low, r.cost_high)}"],
                      series=series, radius=3.5)
        plot.legend(series, c)
    return plot.svg()


# ---------------------------------------------------------------- compare, history

def compare_page(c: Any, margin: float, a: str, b: str, rows_a: pd.DataFrame, rows_b: pd.DataFrame) -> str:
    """``harness compare``: verdicts per point and metric (coloured), per task, unmatched points,
    environment differences, and the ratios B/A with their CIs against the margin."""
    parts = [notes([f"A = {a}", f"B = {b}", f"ratio B/A (95% CI); verdict against a margin of {margin:.0%} "
                    "(higher-is-better metrics judged on A/B)"])]
    pp = c.per_point
    cells, classes = [], []
    for _, r in pp.iterrows():
        if r.metric == "status":
            cells.append([r.variant, "status", r.verdict, "", "", "", r.note])
        else:
            cells.append([r.variant, r.metric, r.verdict, fmt.ci(r.get("ratio"), r.get("low"), r.get("high")),
                          fmt.num(r.a), fmt.num(r.b), r.get("note") or ""])
        classes.append(_verdict_class(r.verdict))
    parts.append("<h3>Per point</h3>" + table(["variant", "metric", "verdict", "ratio B/A [95% CI]", "A", "B", "note"],
                                               cells, classes))
    if len(c.per_task):
        cells = [[f"{r.task}/{r.metric}", fmt.ci(r.gmean_ratio, r.low, r.high), str(r.points), r.verdict]
                 for _, r in c.per_task.iterrows()]
        parts.append("<h3>Per task: geometric mean of the ratios over points (latency: CI over runs; other "
                     "metrics: t-interval across points)</h3>"
                     + table(["task/metric", "ratio B/A [95% CI]", "points", "verdict"], cells,
                             [_verdict_class(r.verdict) for _, r in c.per_task.iterrows()]))
    unmatched = [f"only in {side} (unmatched): {', '.join(names)}" for side, names in (("A", c.only_a),
                                                                                     ("B", c.only_b)) if names]
    parts.append(notes(unmatched))
    if "ratio" in pp and pp.ratio.notna().any():
        parts.append(compare_chart(pp.dropna(subset=["ratio"]), margin))
    parts.append("<h3>Environment differences (A -> B)</h3>" + (
        table(["field", "A", "B"], [list(e) for e in c.env]) if c.env else
        notes(["no differences in device, driver, libraries, threads, host or commit"])))
    parts.append(environment(rows_a).replace("<h3>Environment</h3>", "<h3>Environment of A</h3>"))
    parts.append(environment(rows_b).replace("<h3>Environment</h3>", "<h3>Environment of B</h3>"))
    return document("Comparison: B against A", [("compare", "".join(parts))], f"A = {a}; B = {b}")


VERDICT_COLOURS = {"regression": "#d62728", "improvement": "#2ca02c", "no change": "#7f7f7f",
                   "inconclusive": "#e6a700", "reproduced": "#2ca02c", "not reproduced": "#d62728",
                   "not comparable here": "#7f7f7f"}


def compare_chart(pp: pd.DataFrame, margin: float) -> str:
    """Ratio B/A per point and metric with its CI, the no-change band shaded, coloured by verdict."""
    labels = [f"{r.variant} · {r.metric}" for _, r in pp.iterrows()]
    n = len(labels)
    left = min(320, 40 + 6 * max(len(x) for x in labels))
    plot = Plot("ratio B/A per point (95% CI); shaded: no change within the margin", "ratio B/A",
                "", [*pp.ratio, *pp.low.dropna(), *pp.high.dropna(), 1 / (1 + margin), 1 + margin], [-0.7, n - 0.3],
                xlog=True, ylog=False, height=max(160, 60 + 22 * n), margin=(34, 24, 44, left), kind="compare")
    plot.vspan(1 / (1 + margin), 1 + margin)
    plot.vline(1.0)
    for i, (_, r) in enumerate(pp.iterrows()):
        c, y = VERDICT_COLOURS.get(r.verdict, "#333"), n - 1 - i  # first row on top, as in the table
        plot.whisker(_val(r, "low"), y, _val(r, "high"), y, c, r.verdict)
        plot.mark(r.ratio, y, c, [labels[i], f"ratio B/A: {fmt.ci(r.ratio, _val(r, 'low'), _val(r, 'high'))}",
                                  f"A {fmt.num(r.a)}, B {fmt.num(r.b)}", f"verdict: {r.verdict}"], series=r.verdict)
    for v in dict.fromkeys(pp.verdict):
        plot.legend(v, VERDICT_COLOURS.get(v, "#333"))
    return plot.svg(yticks=[(float(n - 1 - i), (lab if len(lab) <= 48 else lab[:47] + "…"))
                            for i, lab in enumerate(labels)])


def history_page(h: pd.DataFrame, metric: str, rows: pd.DataFrame, source: str = "") -> str:
    """``harness history``: per point, its runs in time order and its persistent changes (change points
    confirmed by later runs, after/before with a CI over runs); the plot shows each point relative to its
    first run, rings at each change."""
    cells, classes = [], []
    for _, grp in h.groupby("match", sort=False):
        for _, r in grp.iterrows():
            ratio = f"x{fmt.ci(r.ratio, r.ratio_low, r.ratio_high)}" if r.change else ""
            cells.append([r.variant, f"{r.task}/{r.model}", str(r.seed), r.created_at.strftime("%Y-%m-%d %H:%M"),
                          str(r.git_sha)[:8], str(r.device_name), fmt.ci(r.value, r.low, r.high), ratio, r.change,
                          "rerun to confirm" if r.unconfirmed else ""])
            classes.append(_verdict_class(r.change) if r.change else "")
    parts = [notes([f"{metric} per point over runs: persistent changes (confirmed by the runs after them; the runs "
                    "before against the runs after, Welch over runs; false discovery rate 5% over all points)"]),
             table(["variant", "task/model", "seed", "when", "commit", "device", metric, "after / before",
                    "change", ""], cells, classes), history_chart(h, metric), environment(rows)]
    return document(f"{metric} history", [("history", "".join(parts))], source)


def history_chart(h: pd.DataFrame, metric: str) -> str:
    runs = h.sort_values("created_at").drop_duplicates("run_id")
    x_of = {r: i for i, r in enumerate(runs.run_id)}
    rel = []
    for _, grp in h.groupby("match", sort=False):
        ref = grp.value.iloc[0]
        rel += [*(grp.value / ref), *(grp.low.fillna(grp.value) / ref), *(grp.high.fillna(grp.value) / ref)]
    plot = Plot(f"{metric} relative to each point's first run; red ring = a change", "run (time order)",
                f"{metric} / first run (95% CI)", [-0.5, len(runs) - 0.5], [*rel, 1.0], xlog=False, ylog=False,
                kind="history", margin=(34, 24, 64, 74))
    plot.hline(1.0)
    for k, (_, grp) in enumerate(h.groupby("match", sort=False)):
        c, ref, series = color(k), grp.value.iloc[0], grp.variant.iloc[0]
        xs = [float(x_of[r]) for r in grp.run_id]
        plot.line(xs, list(grp.value / ref), c, series)
        for x, (_, r) in zip(xs, grp.iterrows()):
            lo, hi = _val(r, "low"), _val(r, "high")
            plot.whisker(x, (lo if not math.isnan(lo) else r.value) / ref, x,
                         (hi if not math.isnan(hi) else r.value) / ref, c, series)
            tip = [str(r.variant), f"{r.created_at:%Y-%m-%d %H:%M}  {str(r.git_sha)[:8]}  {r.device_name}",
                   f"{metric}: {fmt.ci(r.value, r.low, r.high)}"]
            if r.change:
                tip.append(f"{r.change}: after/before x{fmt.ci(r.ratio, r.ratio_low, r.ratio_high)}")
            plot.mark(x, r.value / ref, c, tip, series=series)
            if r.change:
                plot.ring(x, r.value / ref, series=series)
        plot.legend(series, c)
    ticks = [(float(i), f"{r.created_at:%m-%d %H:%M}\n{str(r.git_sha)[:7]}") for i, r in enumerate(runs.itertuples())]
    return plot.svg(xticks=ticks)


# ---------------------------------------------------------------- claims

def claims_page(header: Sequence[str], summary: Sequence[Sequence[str]], verdicts: Sequence[Any],
                errors: dict[str, str] | None = None) -> str:
    """``harness claims``: the summary table (claimed vs measured, verdict colours) and, per claim,
    the paper, the claim, where it was measured and each check with its estimator."""
    parts = [table(header, summary, [_verdict_class(r[-1]) for r in summary])]
    for v in verdicts:
        c = v.claim
        head = (f'<div class="claim" id="claim-{slug(c.id)}"><h3>{escape(c.id)} '
                f'<span class="verdict {_verdict_class(v.verdict)}">{escape(v.verdict)}</span></h3>')
        facts = [f"paper: {c.paper}; {c.source}", f"claim: {c.claim}",
                 f"claimed on: {c.claimed_on}; measured on: {v.measured_on}",
                 f"paper's timing covered: {c.timing_covered}",
                 f"baseline {c.baseline or '-'} vs method {c.method} (experiment {c.experiment}"
                 + (f", {' '.join(c.overrides)}" if c.overrides else "") + ")"]
        facts += [f"reason: {v.reason}"] if v.reason else []
        facts += [f"note: {c.notes}"] if c.notes else []
        cells = [[r.check.describe(), fmt.estimate(r.estimate), r.estimate.estimator, r.verdict] for r in v.checks]
        parts.append(head + notes(facts) + table(["check", "measured [95% CI]", "estimator", "verdict"], cells,
                                                 [_verdict_class(x[-1]) for x in cells]) + "</div>")
    for cid, why in (errors or {}).items():
        parts.append(f'<div class="claim"><h3>{escape(cid)} <span class="verdict v-no-verdict">no verdict</span>'
                     f"</h3>{notes([why])}</div>")
    return document("Paper claims: claimed vs measured", [("claims", "".join(parts))])

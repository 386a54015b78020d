"""HTML pages: the same cells as the terminal, one SVG mark per point, nothing fetched (no browser here;
tests/test_browser.py opens the pages in Chromium)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from harness import fmt
from harness.analysis import estimates
from harness.budget import best_within, curves, parse_range
from harness.budget import render as render_budget
from harness.claims import CheckResult, Verdict, parse_claim
from harness.cli import main
from harness.compare import compare, history
from harness.report import summarize, table_cells
from harness.results import load
from harness.stats import Estimate
from harness.webpage import budget_page, claims_page, compare_page, history_page, report_page
from tests.helpers import synthetic_point, write_set


class Tables(HTMLParser):
    """Text of every table cell, per table and row; and the tags with their attributes."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def marks(self, kind: str) -> list[dict[str, str | None]]:
        """``circle.mark`` elements inside ``svg.<kind>`` (tags are flat here; plots do not nest)."""
        out, inside = [], False
        for tag, attrs in self.tags:
            if tag == "svg":
                inside = kind in (attrs.get("class") or "").split()
            elif inside and tag == "circle" and "mark" in (attrs.get("class") or "").split():
                out.append(attrs)
        return out


def _sweep(folder: Path, seed: int = 0, scale: float = 1.0) -> Path:
    rng = np.random.default_rng(seed)
    pts = [synthetic_point("base/steps=50", scale * rng.lognormal(0, 0.03, 20), 8.0, rng.normal(8, 1, 40),
                           baseline="base/steps=50")]
    for steps in (5, 10, 20):
        q = 8 + 100 / steps
        pts.append(synthetic_point(f"fast/steps={steps}", scale * rng.lognormal(np.log(steps / 50), 0.03, 20), q,
                                   q + rng.normal(0, 1, 40), baseline="base/steps=50"))
    pts.append(synthetic_point("other/steps=7", scale * rng.lognormal(np.log(0.3), 0.03, 20), 30.0,
                               rng.normal(30, 1, 40), baseline="base/steps=50"))
    failed = synthetic_point("broken/steps=3", [1.0], baseline="base/steps=50")[:1]
    failed[0] |= {"status": "error", "error": "RuntimeError: boom\ntraceback", "metric": "error", "value": None}
    return write_set(folder, *pts, failed)


def self_contained(page: str) -> None:
    """Nothing in the page points outside it: no external script, style, image or font."""
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert "@import" not in page and not re.search(r"url\(\s*['\"]?(https?:|//)", page, re.I)


def test_report_page_shows_the_terminal_table_and_one_mark_per_point(tmp_path: Path) -> None:
    folder = _sweep(tmp_path / "a")
    page = report_page([folder])
    self_contained(page)
    parsed = Tables(page)
    header, body = table_cells(summarize(load(folder)))
    assert parsed.tables[0] == [header, *body]  # the terminal's cells, cell for cell
    assert any("FAILED: RuntimeError: boom" in c for r in body for c in r)
    marks = parsed.marks("pareto")
    assert len(marks) == 5  # the five points that ran, not the failed one
    tips = {m["data-tip"].splitlines()[0]: m["data-tip"] for m in marks}
    s = summarize(load(folder)).set_index("variant").loc["fast/steps=10"]
    assert f"latency: {fmt.ci(s.latency, s.latency_low, s.latency_high)}" in tips["fast/steps=10"]
    assert f"fid: {fmt.ci(s.fid, s.fid_low, s.fid_high)}" in tips["fast/steps=10"]
    assert "n: 100" in tips["fast/steps=10"]
    assert "cpu0" in page and 'id="set-picker"' not in page  # environment; one set, no picker


def test_several_folders_get_a_picker_and_a_set_each(tmp_path: Path) -> None:
    a, b = _sweep(tmp_path / "a", 1), _sweep(tmp_path / "b", 2, scale=1.5)
    parsed = Tables(report_page([a, b]))
    options = [attrs for tag, attrs in parsed.tags if tag == "option"]
    sections = [attrs for tag, attrs in parsed.tags if tag == "section"]
    assert len(options) == len(sections) == 2 and options[1]["value"] == "1"
    for k, folder in enumerate((a, b)):  # each folder's table as `harness report FOLDER` prints it
        header, body = table_cells(summarize(load(folder)))
        assert parsed.tables[k] == [header, *body]
    assert len(parsed.marks("pareto")) == 5 + 5


def test_budget_compare_history_pages_carry_the_terminal_numbers(tmp_path: Path) -> None:
    rows = load(_sweep(tmp_path / "a"))
    est = estimates(rows)
    res = curves(est, "latency", "fid", parse_range("0.05:2:6"))
    parsed = Tables(budget_page(res, rows))
    fits = res.dropna(subset=["quality"])
    assert len(parsed.marks("budget")) == len(fits)
    cells = {c for r in parsed.tables[0] for c in r}
    assert {fmt.num(q) + "*" for q in fits[fits["rank"] == 1].quality} <= cells
    best = best_within(est, "latency", "fid", 0.5)
    terminal = render_budget(best).splitlines()[1:]
    html_rows = Tables(budget_page(best, rows)).tables[0][1:]
    assert [r[2] for r in html_rows] == ["fast/steps=20", "other/steps=7", "nothing within budget"]
    for line, r in zip(terminal, html_rows):  # rank, method, variant, quality, cost: the printed strings
        assert all(cell in line for cell in r[:2] + r[3:5]), (line, r)

    rows = load(*[_sweep(tmp_path / "ca" / f"run{i}", 10 + i) for i in range(3)])  # runs are the unit
    other = load(*[_sweep(tmp_path / "cb" / f"run{i}", 20 + i, scale=1.3) for i in range(3)])
    c = compare(rows, other)
    parsed = Tables(compare_page(c, 0.05, "a", "b", rows, other))
    per_point = parsed.tables[0][1:]
    assert [r[3] for r in per_point if r[1] != "status"] == [fmt.ci(r.ratio, r.low, r.high)
                                                             for _, r in c.per_point.iterrows() if r.metric != "status"]
    verdict_rows = [attrs.get("class") for tag, attrs in parsed.tags if tag == "tr" and attrs.get("class")]
    assert "v-regression" in verdict_rows
    assert len(parsed.marks("compare")) == int(c.per_point.ratio.notna().sum())

    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    rng = np.random.default_rng(9)
    for i, scale in enumerate([1.0, 1.0, 1.3, 1.3]):
        write_set(tmp_path / "hist" / f"run{i}", synthetic_point("a/steps=1", scale * rng.lognormal(0, 0.01, 20),
                                                                 run_id=f"run{i}", created_at=t0 + timedelta(days=i),
                                                                 git_sha=f"sha{i}"))
    h = history(load(tmp_path / "hist"))
    page = history_page(h, "latency", load(tmp_path / "hist"))
    parsed = Tables(page)
    assert len(parsed.marks("history")) == 4 and page.count('class="ring"') == int(h.first_change.sum()) == 1
    assert [r[7] for r in parsed.tables[0][1:]] == [f"x{fmt.ci(r.ratio, r.ratio_low, r.ratio_high)}" if r.change
                                                    else "" for _, r in h.iterrows()]


def test_claims_page_colours_each_verdict() -> None:
    claim = parse_claim("demo", {"paper": "P", "source": "Table 1", "claim": "faster", "claimed_on": "any",
                                 "comparable_on": ["cpu"], "timing_covered": "end to end", "experiment": "e",
                                 "baseline": "a", "method": "b",
                                 "checks": [{"metric": "latency", "kind": "speedup", "claimed": 2.0,
                                             "rule": "at_least", "tolerance": 0.1}]})
    est = Estimate(2.5, 2.2, 2.9, "ABBA-paired")
    v = Verdict(claim, "reproduced", "", [CheckResult(claim.checks[0], est, "reproduced", {0: (est, "reproduced")})],
                "cpu0 (cpu), 1 threads", [], [0])
    header = ["claim", "claimed", "measured [95% CI]", "measured on", "verdict"]
    summary = [("demo", "latency speedup 2 on any", fmt.estimate(est), "cpu0 (cpu)", "reproduced"),
               ("gone", "-", "-", "-", "no verdict")]
    parsed = Tables(claims_page(header, summary, [v], {"gone": "ClaimError: point failed"}))
    assert parsed.tables[0] == [header, *[list(r) for r in summary]]
    classes = [attrs.get("class") for tag, attrs in parsed.tags if tag == "tr" and attrs.get("class")]
    assert classes[:2] == ["v-reproduced", "v-no-verdict"]
    assert parsed.tables[1][1][1] == "2.5 [2.2, 2.9]"


def test_html_flags_of_the_commands(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = _sweep(tmp_path / "a")
    b = _sweep(tmp_path / "b", 4, scale=1.2)
    runs = {"report": ["report", str(a)], "pareto": ["pareto", str(a), "--cost", "latency"],
            "budget": ["budget", str(a), "--range", "0.05:2:5"], "compare": ["compare", str(a), str(b)],
            "history": ["history", str(a), str(b)]}
    for name, args in runs.items():
        out = tmp_path / f"{name}.html"
        code = main([*args, "--html", str(out)])
        assert code in (0, 1, 2), name  # compare exits 1 on a regression, and this one has one
        printed = capsys.readouterr().out
        assert f"html: {out}" in printed
        page = out.read_text()
        self_contained(page)
        assert Tables(page).marks(name if name != "report" else "pareto"), name

"""The HTML pages in a real browser: headless Chromium (Debian's package; .ci/run installs it) opens each
page from disk, and the test fails on any console error, uncaught exception, error-level log entry
or request that leaves the file; checks that every point is drawn inside its plot, that hovering a
point shows its numbers, that the picker and the legend work; and keeps a screenshot of each page
in ``artifacts/`` (or ``$HARNESS_ARTIFACTS``)."""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from harness.analysis import estimates
from harness.budget import curves, parse_range
from harness.compare import compare
from harness.report import summarize
from harness.results import load
from tests.browser import Browser, find_chromium
from tests.helpers import ROOT, run_cli, synthetic_point, write_set

ARTIFACTS = Path(os.environ.get("HARNESS_ARTIFACTS", ROOT / "artifacts"))

# Marks of one plot that are drawn: a box of non-zero size inside the plot's frame.
DRAWN = """(() => {
  const out = [];
  for (const svg of document.querySelectorAll('section.resultset:not([hidden]) svg.%s')) {
    const frame = svg.getBoundingClientRect();
    for (const m of svg.querySelectorAll('circle.mark')) {
      const r = m.getBoundingClientRect();
      const inside = r.width > 0 && r.left >= frame.left && r.right <= frame.right && r.top >= frame.top
                     && r.bottom <= frame.bottom && getComputedStyle(m).display !== 'none';
      if (inside) out.push({x: r.left + r.width / 2, y: r.top + r.height / 2, tip: m.dataset.tip});
    }
  }
  return out;
})()"""


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = find_chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium not found: .ci/run installs Debian's chromium (apt-get install -y chromium)")
        pytest.skip("Chromium not installed (apt-get install -y chromium); CI installs it and runs this test")
    return exe


def _check(b: Browser, page: Path, kind: str, expected: int, shot: str) -> list[dict]:
    b.open(page)
    assert b.problems() == [], f"{page.name}: the browser reported problems"
    drawn = b.eval(DRAWN % kind)
    assert len(drawn) == expected, f"{page.name}: {len(drawn)} of {expected} points drawn"
    # the mouse acts in the window: bring the point into it first (a long table may push the plot below)
    at = b.eval("(() => { const m = document.querySelector('section.resultset:not([hidden]) svg.%s circle.mark');"
                " m.scrollIntoView({block: 'center'}); const r = m.getBoundingClientRect();"
                " return [r.left + r.width / 2, r.top + r.height / 2]; })()" % kind)
    b.hover(*at)
    tip = b.eval("(() => { const t = document.getElementById('tip'); return t.hidden ? null : t.textContent })()")
    # the point under the pointer (points can coincide: then the one drawn last is on top)
    under = b.eval("(() => { const m = document.elementFromPoint(%f, %f);"
                   " return m && m.classList.contains('mark') ? m.dataset.tip : null; })()" % tuple(at))
    assert under is not None and tip == under, f"{page.name}: hovering a point shows {tip!r}"
    b.hover(1, 1)
    b.screenshot(ARTIFACTS / f"{shot}.png")
    return drawn


@pytest.mark.slow
@pytest.mark.xdist_group("smoke_sweep")  # one worker runs the session fixture once
def test_pages_open_in_chromium_and_draw_every_point(smoke_sweep: tuple[Path, Path], chromium: str,
                                                     tmp_path: Path) -> None:
    work, folder = smoke_sweep
    rows = load(folder)
    n_points = int(summarize(rows).dropna(subset=["latency", "fid"]).shape[0])
    assert n_points == 4
    again = shutil.copytree(folder, tmp_path / "rerun")  # a second result set for the picker and compare
    res = curves(estimates(rows), "latency", "fid", parse_range("0.01:1:8"))
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    rng = np.random.default_rng(0)
    # history: four runs of two points, a persistent change at the third (confirmed by the fourth)
    for i, scale in enumerate([1.0, 1.0, 1.4, 1.4]):
        write_set(tmp_path / "hist" / f"run{i}", *[synthetic_point(v, scale * c * rng.lognormal(0, 0.01, 20),
                                                                   run_id=f"run{i}", git_sha=f"{i}abcdef",
                                                                   created_at=t0 + timedelta(days=i))
                                                   for v, c in (("a/steps=1", 1.0), ("b/steps=2", 2.0))])
    html = {name: tmp_path / f"{name}.html" for name in ("report", "budget", "compare", "history", "claims")}
    run_cli("report", str(folder), str(again), "--html", str(html["report"]))
    run_cli("budget", str(folder), "--range", "0.01:1:8", "--html", str(html["budget"]))
    run_cli("compare", str(folder), str(again), "--html", str(html["compare"]), check=False)
    run_cli("history", str(tmp_path / "hist"), "--html", str(html["history"]))
    # --seeds 0: the one seed the smoke fixture measured (a quality claim needs 3 for a final verdict)
    claims = run_cli("claims", "dpm_solver_beats_ddim_10nfe", "--set", "profile=smoke", "--no-run", "--seeds", "0",
                     "--html", str(html["claims"]), cwd=work)
    assert claims.stdout.count("), reused") == 2  # the smoke points ("finished earlier (<id>), reused"), not a new run

    start = time.monotonic()
    with Browser(chromium) as b:
        drawn = _check(b, html["report"], "pareto", n_points, "report")
        assert len(b.eval("[...document.querySelectorAll('#set-picker option')]")) == 2
        # the picker: the second folder's set replaces the first, and draws its points
        b.eval("(() => { const p = document.getElementById('set-picker'); p.value = '1';"
               " p.dispatchEvent(new Event('change')); })()")
        assert b.eval("document.querySelector('section[data-set=\"0\"]').hidden") is True
        assert len(b.eval(DRAWN % "pareto")) == n_points
        # the legend: a click hides one method's points, a second click shows them again
        ddim = sum(d["tip"].startswith("ddim/") for d in drawn)
        b.eval("document.querySelector('section[data-set=\"1\"] .legend-item[data-series=\"ddim\"]').click()")
        assert len(b.eval(DRAWN % "pareto")) == n_points - ddim
        b.eval("document.querySelector('section[data-set=\"1\"] .legend-item[data-series=\"ddim\"]').click()")
        assert len(b.eval(DRAWN % "pareto")) == n_points
        assert b.problems() == []
        _check(b, html["budget"], "budget", int(res.quality.notna().sum()), "budget")
        _check(b, html["compare"], "compare", int(compare(rows, load(again)).per_point.ratio.notna().sum()), "compare")
        _check(b, html["history"], "history", 8, "history")
        assert b.eval("document.querySelectorAll('svg.history circle.ring').length") == 2
        b.open(html["claims"])
        assert b.problems() == []
        assert b.eval("document.querySelector('table.data tbody tr').className") in (
            "v-reproduced", "v-not-reproduced", "v-inconclusive")
        b.screenshot(ARTIFACTS / "claims.png")
    print(f"browser: 5 pages checked in {time.monotonic() - start:.1f} s; screenshots in {ARTIFACTS}")

"""Statistics and verdicts of the analysis commands on synthetic rows whose truth is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.analysis import estimates, pareto_table
from harness.budget import best_within, curves, parse_range
from harness.cli import main
from harness.pareto import hypervolume, near_front_mask
from harness.report import summarize
from harness.results import load
from harness.stats import paired_difference_ci, paired_speedup_ci, speedup_ci
from tests.helpers import synthetic_point, write_set


def test_speedup_ci_covers_the_true_ratio_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(1)
    trials, hits = 300, 0
    for t in range(trials):  # true ratio of geometric means: exp(log 2 - log 0.5) = 4
        est = speedup_ci(rng.lognormal(np.log(2.0), 0.1, 15), rng.lognormal(np.log(0.5), 0.1, 15),
                         n_resamples=2000, seed=t)
        hits += est.low <= 4.0 <= est.high
    # percentile bootstrap at n=15 under-covers a little; 300 trials give a standard error of ~1.3%
    assert 0.89 <= hits / trials <= 0.99


def test_abba_pairing_cancels_drift_that_breaks_the_unpaired_interval() -> None:
    rng = np.random.default_rng(2)
    trials, paired_hits, unpaired_hits, widths = 300, 0, 0, []
    for _ in range(trials):
        blocks = 10  # a slow random-walk drift shared by both calls of a block (a neighbour's load)
        drift = np.repeat(np.exp(np.cumsum(rng.normal(0, 0.15, blocks))), 2)
        base = 2.5 * drift * rng.lognormal(0, 0.03, 2 * blocks)
        meth = 1.0 * drift * rng.lognormal(0, 0.03, 2 * blocks)
        p = paired_speedup_ci(base, meth)
        u = speedup_ci(base, meth, n_resamples=2000)
        paired_hits += p.low <= 2.5 <= p.high
        unpaired_hits += u.low <= 2.5 <= u.high
        widths.append((u.high - u.low) / (p.high - p.low))
    assert 0.90 <= paired_hits / trials <= 0.99
    assert np.median(widths) > 3  # the unpaired interval is dominated by the drift


def test_paired_difference_keeps_only_what_differs() -> None:
    rng = np.random.default_rng(3)
    shared = rng.normal(10, 3, 200)  # sample-to-sample variation common to both methods
    d = paired_difference_ci(10.0, 13.0, shared, shared + 3 + rng.normal(0, 0.1, 200))
    assert d.value == 3.0 and 2.7 < d.low < 3.0 < d.high < 3.3
    with pytest.raises(ValueError, match="equal counts"):
        paired_difference_ci(1, 2, [1.0] * 20, [1.0] * 21)


def test_summary_reports_paired_quality_deltas_and_abba_speedups(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    shared = rng.normal(0, 2, 50)
    base = synthetic_point("a/steps=50", rng.lognormal(0, 0.02, 20), 10.0, 10 + shared, baseline="a/steps=50")
    fast = synthetic_point("b/steps=5", rng.lognormal(np.log(0.25), 0.02, 20), 11.0, 11 + shared + 0.01 * shared,
                           baseline="a/steps=50", abba=("a/steps=50", rng.lognormal(0, 0.02, 20)))
    s = summarize(load(write_set(tmp_path, base, fast))).set_index("variant")
    b = s.loc["b/steps=5"]
    assert b.speedup_estimator.startswith("ABBA-paired") and b.speedup_low < 4 < b.speedup_high
    assert b.delta_estimator.startswith("paired") and 0.9 < b.delta_low < 1.0 < b.delta_high < 1.1
    assert abs(b.baseline_latency_s - s.loc["a/steps=50", "latency"]) < 1e-12


def test_another_baseline_than_the_interleaved_one_gets_an_estimator_that_exists_for_the_pair(tmp_path: Path) -> None:
    """``report --baseline X`` on interleaved results: the ABBA-paired samples exist only against the
    baseline the points were interleaved with, so against X the speedup is the two-sample ratio of
    medians (named as such), X's own row is 1, and every ratio is against X, not the old one."""
    rng = np.random.default_rng(5)
    a_lat, b_lat, c_lat = (rng.lognormal(np.log(m), 0.02, 20) for m in (2.0, 0.25, 0.8))
    a = synthetic_point("a/steps=50", a_lat, baseline="a/steps=50")
    paired = [("a/steps=50", rng.lognormal(np.log(2), 0.02, 20)) for _ in range(2)]
    b = synthetic_point("b/steps=5", b_lat, baseline="a/steps=50", abba=paired[0])
    c = synthetic_point("c/steps=10", c_lat, baseline="a/steps=50", abba=paired[1])
    rows = load(write_set(tmp_path, a, b, c))
    default = summarize(rows).set_index("variant")
    assert default.loc["b/steps=5"].speedup_estimator.startswith("ABBA-paired")
    s = summarize(rows, baseline="c/steps=10").set_index("variant")
    med = np.median
    assert s.loc["c/steps=10", "speedup"] == pytest.approx(1.0)
    assert s.loc["b/steps=5", "speedup"] == pytest.approx(med(c_lat) / med(b_lat))  # ~3.2, not ~8 against a
    assert s.loc["a/steps=50", "speedup"] == pytest.approx(med(c_lat) / med(a_lat))
    assert s.loc["b/steps=5", "speedup_low"] < med(c_lat) / med(b_lat) < s.loc["b/steps=5", "speedup_high"]
    for v in ("a/steps=50", "b/steps=5"):
        assert s.loc[v].speedup_estimator.startswith("ratio of medians"), s.loc[v].speedup_estimator


def test_another_baseline_says_which_estimator_in_the_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(6)
    a = synthetic_point("a/steps=50", rng.lognormal(np.log(2), 0.02, 20), baseline="a/steps=50")
    b = synthetic_point("b/steps=5", rng.lognormal(np.log(0.25), 0.02, 20), baseline="a/steps=50",
                        abba=("a/steps=50", rng.lognormal(np.log(2), 0.02, 20)))
    write_set(tmp_path, a, b)
    assert main(["report", str(tmp_path), "--baseline", "b/steps=5"]) == 0
    out = capsys.readouterr().out
    assert "b/steps=5 (baseline)" in out and "baseline b/steps=5:" in out
    assert "speedup = ratio of medians" in out and "within-run noise only" in out and "ABBA" not in \
        out.split("speedup =")[1].splitlines()[0]


def test_pareto_front_near_front_and_hypervolume_by_hand() -> None:
    cost, fid = [1, 2, 3, 4], [10, 5, 4, 8]
    # the union of [c, 5] x [q, 12] over the front (1,10), (2,5), (3,4): 8 + 15 + 2
    assert hypervolume(cost, fid, False, ref_cost=5, ref_quality=12) == pytest.approx(25.0)
    assert hypervolume(cost, [-q for q in fid], True, ref_cost=5, ref_quality=-12) == pytest.approx(25.0)
    assert hypervolume([6], [1], False, ref_cost=5, ref_quality=12) == 0.0  # beyond the reference adds nothing
    # optimistic corners: (2.5, 4.5) is not dominated by the front, (3.5, 8) is (by (3, 4))
    near = near_front_mask([2.5, 3.5], [4.5, 8], [1, 2, 3], [10, 5, 4], higher_is_better=False)
    assert near.tolist() == [True, False]


def test_pareto_table_from_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    pts = [synthetic_point(v, rng.lognormal(np.log(c), 0.01, 10), q)
           for v, c, q in (("a/steps=1", 1, 10), ("b/steps=2", 2, 5), ("c/steps=3", 3, 4), ("d/steps=4", 4, 8))]
    table, vol = pareto_table(estimates(load(write_set(tmp_path, *pts))), "latency", "fid", ref=(5, 12))
    assert table.set_index("variant").on_front.to_dict() == {"a/steps=1": True, "b/steps=2": True, "c/steps=3": True,
                                                             "d/steps=4": False}
    assert vol.hypervolume.iloc[0] == pytest.approx(25.0, rel=0.02)  # medians are within 1% of the costs


def _budget_rows(tmp_path: Path) -> pd.DataFrame:
    rng = np.random.default_rng(6)
    spec = [("a/steps=1", 1.0, 10.0), ("a/steps=3", 3.0, 5.0), ("b/steps=2", 2.0, 5.5), ("b/steps=4", 4.0, 3.0),
            ("c/steps=5", 5.0, 1.0)]
    pts = []
    for v, c, q in spec:  # independent replicates, sd 0.5: a paired difference has a CI of about +-1.4
        pts.append(synthetic_point(v, rng.lognormal(np.log(c), 0.01, 10), q, q + rng.normal(0, 0.5, 40)))
    return estimates(load(write_set(tmp_path, *pts)))


def test_budget_picks_the_best_point_per_method_within_the_budget(tmp_path: Path) -> None:
    est = _budget_rows(tmp_path)
    res = best_within(est, "latency", "fid", 3.5).set_index("method")
    assert res.loc["a", "variant"] == "a/steps=3" and res.loc["a", "rank"] == 1
    assert res.loc["b", "variant"] == "b/steps=2" and res.loc["b", "rank"] == 2
    assert bool(res.loc["b", "tie"])  # 5.5 vs 5.0 with CIs of about +-1: not separated
    assert pd.isna(res.loc["c", "variant"]) and res.loc["c", "cheapest"] == pytest.approx(5.0, rel=0.05)
    res = best_within(est, "latency", "fid", 10).set_index("method")
    assert res.loc["c", "rank"] == 1 and not res.tie.any()  # 1.0 vs 3.0 and 5.0: separated
    grid = curves(est, "time", "fid", parse_range("0.5:8:5"))
    assert sorted(grid.budget.unique()) == pytest.approx([0.5, 1, 2, 4, 8])
    assert grid[grid.budget == 0.5].variant.isna().all()
    with pytest.raises(ValueError, match="available: .*fid"):
        best_within(est, "latency", "clip", 1)
    with pytest.raises(ValueError, match="LO:HI"):
        parse_range("3")


def _set(folder: Path, scale: float, sd: float, n: int = 30, seed: int = 0, variants=("a/steps=1", "b/steps=2"),
         runs: int = 3, between: float = 0.01, **cols) -> Path:
    """``runs`` run folders under ``folder``, each point drifting by ``between`` (log sd) per run."""
    rng = np.random.default_rng(seed)
    for r in range(runs):
        drift = rng.lognormal(0, between)
        write_set(folder / f"run{r}", *[synthetic_point(v, scale * drift * (i + 1) * rng.lognormal(0, sd, n), 5.0 + i,
                                                        run_id=f"{folder.name}{r}", **cols)
                                        for i, v in enumerate(variants)])
    return folder


def test_compare_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = _set(tmp_path / "a", 1.0, 0.01, seed=1)
    assert main(["compare", str(a), str(_set(tmp_path / "aa", 1.0, 0.01, seed=2))]) == 0  # A/A: no change
    out = capsys.readouterr().out
    assert out.count("no change") >= 4 and "environment: no differences" in out and "3/3" in out
    slow = _set(tmp_path / "slow", 1.2, 0.01, seed=3, device_name="gpu-new")
    assert main(["compare", str(a), str(slow)]) == 1
    out = capsys.readouterr().out
    assert "regression" in out and "device_name: cpu0 -> gpu-new" in out
    noisy = _set(tmp_path / "noisy", 1.04, 0.3, n=5, seed=4, between=0.2)
    assert main(["compare", str(a), str(noisy), "--metrics", "latency"]) == 2
    assert "inconclusive" in capsys.readouterr().out
    fast = _set(tmp_path / "fast", 0.5, 0.01, seed=5)
    assert main(["compare", str(a), str(fast), "--metrics", "latency"]) == 0
    assert "improvement" in capsys.readouterr().out
    other = _set(tmp_path / "other", 1.0, 0.01, variants=("a/steps=1", "z/steps=9"))
    assert main(["compare", str(a), str(other)]) == 3
    assert "only in A (unmatched): b/steps=2" in capsys.readouterr().out
    assert main(["compare", str(a), str(other), "--allow-unmatched"]) == 0
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 3
    assert main(["compare", str(a), str(slow), "--metrics", "clip"]) == 3
    assert "not in the results" in capsys.readouterr().err


def test_compare_false_alarm_rate_on_synthetic_aa_pairs(tmp_path: Path) -> None:
    from harness.compare import compare

    verdicts = []
    for k in range(20):  # three runs a side, runs drifting by 1%: alarms should be rare
        a = load(_set(tmp_path / f"a{k}", 1.0, 0.02, n=20, seed=2 * k, between=0.01))
        b = load(_set(tmp_path / f"b{k}", 1.0, 0.02, n=20, seed=2 * k + 1, between=0.01))
        verdicts += list(compare(a, b, ["latency"], 0.05).per_point.verdict)
    assert verdicts.count("regression") + verdicts.count("improvement") <= 1
    assert verdicts.count("no change") >= 0.5 * len(verdicts)


def test_failed_point_in_b_is_a_regression(tmp_path: Path) -> None:
    from harness.compare import compare

    a = load(_set(tmp_path / "a", 1.0, 0.01))
    b = load(_set(tmp_path / "b", 1.0, 0.01))
    b.loc[b.variant == "b/steps=2", "status"] = "error"
    c = compare(a, b)
    assert c.per_point.set_index("variant").loc["b/steps=2", "verdict"] == "regression" and c.exit_code == 1


def test_small_samples_use_welch_and_keep_their_coverage() -> None:
    rng = np.random.default_rng(8)
    trials, hits = 300, 0
    for _ in range(trials):  # the timer's minimum: 7 repeats; the percentile bootstrap covered 88% here
        est = speedup_ci(rng.lognormal(0, 0.1, 7), rng.lognormal(0, 0.1, 7))
        hits += est.low <= 1.0 <= est.high
    assert "Welch" in est.estimator and 0.91 <= hits / trials <= 0.99


def test_report_takes_seeds_as_replicates(tmp_path: Path) -> None:
    from harness.report import across_seeds, report

    rng = np.random.default_rng(7)
    pts, deltas = [], []
    for seed in (0, 1, 2):
        shared = rng.normal(0, 1, 40)
        d = 1.0 + seed  # the seed-to-seed spread of the difference: 1, 2, 3
        deltas.append(d)
        pts.append(synthetic_point("a/steps=50", rng.lognormal(0, 0.02, 20), 10.0, 10 + shared, seed=seed,
                                   baseline="a/steps=50", run_id=f"s{seed}"))
        pts.append(synthetic_point("b/steps=5", rng.lognormal(np.log(0.25), 0.02, 20), 10 + d, 10 + d + shared,
                                   seed=seed, baseline="a/steps=50", run_id=f"s{seed}"))
    folder = write_set(tmp_path, *pts)
    seeds = across_seeds(summarize(load(folder))).set_index("variant")
    b = seeds.loc["b/steps=5"]
    assert b.seeds == 3 and b.delta == pytest.approx(2.0)
    half = 4.303 * np.std(deltas, ddof=1) / np.sqrt(3)  # t(0.975, 2)
    assert b.delta_low == pytest.approx(2.0 - half, abs=1e-3) and b.delta_high == pytest.approx(2.0 + half, abs=1e-3)
    assert 3.5 < b.speedup < 4.5
    assert "across seeds (replicates: t-intervals over seeds 0, 1, 2" in report([folder])

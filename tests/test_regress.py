"""Regression verdicts with the run as the unit: statistics on synthetic runs whose truth is known."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import noise
from harness.cli import main
from harness.compare import CHANGED, INCONCLUSIVE, NO_CHANGE, REGRESSION, compare, history, load_side
from harness.machine import busy_runs, quiet, snapshot, state_json
from harness.reruns import ab_order
from harness.results import load
from harness.stats import (
    benjamini_hochberg,
    change_points,
    detectable_change,
    paired_speedup_ci,
    run_ratio_ci,
    speedup_ci,
)
from tests.helpers import synthetic_point, write_set

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
VARIANTS = ("a/steps=1", "b/steps=2")


def _runs(folder: Path, n_runs: int, rng: np.random.Generator, scale: float = 1.0, between: float = 0.1,
          within: float = 0.02, repeats: int = 25, start: int = 0, **cols) -> list[Path]:
    """``n_runs`` run folders of two points: every run draws its own offset (between-run drift, log sd
    ``between``), shared by its points; repeats vary around it by ``within``."""
    out = []
    for r in range(start, start + n_runs):
        offset = rng.lognormal(0, between)
        pts = [synthetic_point(v, scale * offset * (i + 1) * rng.lognormal(0, within, repeats), 5.0 + i,
                               run_id=f"{folder.name}{r}", created_at=T0 + timedelta(minutes=r), **cols)
               for i, v in enumerate(VARIANTS)]
        out.append(write_set(folder / f"run{r:02d}", *pts))
    return out


def test_run_level_interval_covers_the_truth_when_runs_drift() -> None:
    rng = np.random.default_rng(0)
    hits = trials = 400
    hits = 0
    for _ in range(trials):  # per-run log medians: between-run sd 0.1, true ratio 1.2
        e = run_ratio_ci(rng.normal(0, 0.1, 3), rng.normal(np.log(1.2), 0.1, 3))
        hits += e.low <= 1.2 <= e.high
    assert 0.92 <= hits / trials <= 0.98
    assert np.isnan(run_ratio_ci([0.0], [0.1, 0.2]).low)  # one run, no profile: no CI
    one = run_ratio_ci([0.0], [0.1, 0.2, 0.15], spread_a=noise.Spread(0.05, 9, "profile"))
    assert np.isfinite(one.low) and "profile" in one.estimator


def test_detectable_change_shrinks_with_runs_and_exceeds_the_margin() -> None:
    d = [detectable_change(0.1 * np.sqrt(2 / r), 2 * r - 2, 0.05) for r in (2, 3, 5, 10)]
    assert all(x > y for x, y in zip(d, d[1:])) and d[-1] > 0.05
    assert detectable_change(0.0, np.inf, 0.05) == pytest.approx(0.05)


def test_aa_sets_of_runs_give_no_false_alarms_where_one_run_each_did(tmp_path: Path) -> None:
    """Runs drift by 10% while repeats vary by 2%: the repeat-level CI of one run per side calls most
    pairs a change; three runs per side, with the run as the unit, call none."""
    rng = np.random.default_rng(1)
    alarms, judged = 0, 0
    for k in range(15):
        a = load(*_runs(tmp_path / f"a{k}", 3, rng))
        b = load(*_runs(tmp_path / f"b{k}", 3, rng))
        v = compare(a, b, ["latency"], 0.05).per_point.verdict
        alarms += int(v.isin([REGRESSION, "improvement"]).sum())
        judged += len(v)
    assert alarms <= 1
    old = 0
    for k in range(15):  # the old unit: one run each side, bootstrap over its repeats
        ra, rb = load(tmp_path / f"a{k}" / "run00"), load(tmp_path / f"b{k}" / "run00")
        sel = lambda r: r[(r.variant == VARIANTS[0]) & (r.metric == "latency")].value.to_numpy()  # noqa: E731
        e = speedup_ci(sel(rb), sel(ra), n_resamples=1000)
        old += not (1 / 1.05 <= e.low and e.high <= 1.05) and (e.low > 1.05 or e.high < 1 / 1.05)
    assert old >= 5


def test_injected_regression_is_detected_with_its_detectable_effect(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    a = load(*_runs(tmp_path / "a", 4, rng, between=0.03))
    b = load(*_runs(tmp_path / "b", 4, rng, between=0.03, scale=1.3))
    c = compare(a, b, ["latency"], 0.05)
    assert (c.per_point.verdict == REGRESSION).all() and (c.per_point.detectable < 0.3).all()
    assert c.exit_code == 1 and c.runs == (4, 4)
    assert "regression" in c.per_task.verdict.tolist()


def test_one_run_per_side_is_inconclusive_without_a_noise_profile(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(3)
    a = _runs(tmp_path / "a", 1, rng, between=0.05)[0]
    b = _runs(tmp_path / "b", 1, rng, between=0.05, scale=1.5)[0]
    assert main(["compare", str(a), str(b), "--metrics", "latency", "--noise", "none"]) == 2
    out = capsys.readouterr().out
    assert "between-run variance unknown" in out and "harness aa" in out
    assert "t/latency: " in out and out.split("t/latency: ")[1].split("\n")[0].count("[") == 0  # summary: no CI
    # a profile of this machine (same host, device and point ids) gives the missing spread
    prof = noise.build(load(*_runs(tmp_path / "aa", 5, rng, between=0.05)))
    assert {p["runs"] for p in prof["points"]} == {5} and not any(p["unstable"] for p in prof["points"])
    path = noise.save(prof, tmp_path / "aa" / noise.FILE_NAME)
    assert main(["compare", str(a), str(b), "--metrics", "latency", "--noise", str(path)]) == 1
    out = capsys.readouterr().out
    assert "regression" in out and "noise profile" in out and "between-run variance unknown" not in out


def test_unstable_points_are_marked_and_noted(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    prof = noise.build(load(*_runs(tmp_path / "aa", 4, rng, between=0.3)))
    assert all(p["unstable"] for p in prof["points"]) and "UNSTABLE" in noise.render(prof)
    assert all(p["excess"] > 10 for p in prof["points"])  # the runs differ far more than repeats predict
    a = load(_runs(tmp_path / "a", 1, rng)[0])
    b = load(_runs(tmp_path / "b", 1, rng)[0])
    c = compare(a, b, ["latency"], profiles=[noise.Profile("p", prof)])
    assert c.per_point.note.str.contains("unstable on this machine").all()


def test_changed_deterministic_metric_fails_the_comparison(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    a = load(*_runs(tmp_path / "a", 3, rng, between=0.01, extra_metrics={"nfe": 10}))
    b = load(*_runs(tmp_path / "b", 3, rng, between=0.01, extra_metrics={"nfe": 12}))
    c = compare(a, b)
    per = c.per_point.set_index(["variant", "metric"])
    assert per.loc[(VARIANTS[0], "nfe"), "verdict"] == CHANGED
    assert per.loc[(VARIANTS[0], "latency"), "verdict"] == NO_CHANGE
    assert c.exit_code == 1
    same = compare(a, a)
    assert same.per_point.set_index(["variant", "metric"]).loc[(VARIANTS[0], "nfe"), "verdict"] == NO_CHANGE


def test_benjamini_hochberg_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5, np.nan]
    # sorted: .005 .01 .03 .04 .5; thresholds k*.05/5: .01 .02 .03 .04 .05 -> largest passing k = 4
    assert benjamini_hochberg(p, 0.05).tolist() == [True, True, True, True, False, False]
    assert benjamini_hochberg([0.02, 0.03], 0.05).tolist() == [True, True]
    assert not benjamini_hochberg([0.04, 0.9, 0.9, 0.9], 0.05).any()  # 0.04 > 0.05 / 4


def test_many_borderline_verdicts_are_held_to_the_false_discovery_rate(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    variants = [f"v{i}/steps={i}" for i in range(12)]
    for side in ("a", "b"):
        for r in range(3):  # one point with a large change, eleven without
            write_set(tmp_path / side / f"run{r}", *[
                synthetic_point(v, (1.5 if side == "b" and i == 0 else 1.0) * rng.lognormal(0, 0.05)
                                * rng.lognormal(0, 0.01, 20), run_id=f"{side}{r}") for i, v in enumerate(variants)])
    c = compare(load(tmp_path / "a"), load(tmp_path / "b"), ["latency"])
    assert c.fdr_tested == 12
    assert c.per_point.set_index("variant").loc[variants[0], "verdict"] == REGRESSION
    alarms = c.per_point[c.per_point.variant != variants[0]].verdict.isin([REGRESSION, "improvement"]).sum()
    assert alarms == 0


def test_paired_rounds_cancel_drift_between_rounds(tmp_path: Path) -> None:
    """Interleaved A/B: the machine drifts by 20% between rounds, B is 10% slower within each round."""
    rng = np.random.default_rng(7)
    for r in range(4):
        drift = rng.lognormal(0, 0.2)
        for side, scale in (("A", 1.0), ("B", 1.1)):
            write_set(tmp_path / f"r{r}-{side}", synthetic_point(
                "a/steps=1", drift * scale * rng.lognormal(0, 0.02, 20), run_id=f"r{r}{side}",
                created_at=T0 + timedelta(minutes=2 * r + (side == "B"))))
    a = load(*[tmp_path / f"r{r}-A" for r in range(4)])
    b = load(*[tmp_path / f"r{r}-B" for r in range(4)])
    paired = compare(a, b, ["latency"], paired=True).per_point.iloc[0]
    unpaired = compare(a, b, ["latency"]).per_point.iloc[0]
    assert paired.verdict == REGRESSION and unpaired.verdict == INCONCLUSIVE
    assert "paired runs" in paired.estimator
    assert ab_order(3) == [(0, "A"), (0, "B"), (1, "B"), (1, "A"), (2, "A"), (2, "B")]


def test_paired_speedup_keeps_coverage_with_unequal_noise_and_outliers() -> None:
    rng = np.random.default_rng(8)
    for draw in (lambda n: (4 * rng.lognormal(0, 0.05, n), rng.lognormal(0, 0.3, n)),
                 lambda n: (4 * rng.lognormal(0, 0.05, n) * np.where(rng.random(n) < 0.05, 10, 1),
                            rng.lognormal(0, 0.05, n) * np.where(rng.random(n) < 0.05, 10, 1))):
        hits = sum(e.low <= 4 <= e.high for e in (paired_speedup_ci(*draw(100)) for _ in range(300)))
        assert 0.93 <= hits / 300 <= 0.995
    assert "sign-test" in paired_speedup_ci([2.0] * 10, [1.0] * 10).estimator


def test_unpaired_speedup_targets_the_ratio_of_medians_despite_outliers() -> None:
    rng = np.random.default_rng(9)
    hits = 0
    for t in range(200):  # 5% of the baseline's calls 10x slower: the ratio of geometric means is 4.49
        b = 4 * rng.lognormal(0, 0.05, 40) * np.where(rng.random(40) < 0.05, 10, 1)
        e = speedup_ci(b, rng.lognormal(0, 0.05, 40), n_resamples=1000, seed=t)
        hits += e.low <= 4.014 <= e.high  # the ratio of medians of this mixture
    assert hits / 200 >= 0.93 and "ratio of medians" in e.estimator


def test_change_points_find_a_confirmed_step_and_ignore_a_one_off() -> None:
    step = np.log([1.0, 1.02, 0.99, 1.01, 1.3, 1.31, 1.29, 1.32])
    assert [k for k, _ in change_points(step)] == [4]
    one_off = np.log([1.0, 1.02, 0.99, 1.01, 1.8, 1.0, 1.01, 0.99])
    assert change_points(one_off) == []
    rng = np.random.default_rng(10)
    found = sum(bool(change_points(rng.normal(0, 0.1, 10))) for _ in range(300))
    assert found / 300 <= 0.06  # A/A series: the Bonferroni-corrected search stays near its level


def test_history_reports_persistent_changes_only(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    for i, scale in enumerate([1.0, 1.0, 1.0, 1.3, 1.3, 1.3, 1.3, 1.8]):
        write_set(tmp_path / f"run{i}", synthetic_point("a/steps=1", scale * rng.lognormal(0, 0.01, 20),
                                                        run_id=f"run{i}", created_at=T0 + timedelta(days=i),
                                                        git_sha=f"sha{i}"))
    h = history(load(tmp_path), "latency")
    assert h.change.tolist() == ["", "", "", REGRESSION, "", "", "", ""]
    assert h.first_change.tolist() == [False, False, False, True, False, False, False, False]
    assert h.unconfirmed.tolist()[-1]  # the last run jumped again: flagged, not yet a change
    assert main(["history", str(tmp_path), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "history_latency.png").exists()


def test_machine_state_is_recorded_and_read_back() -> None:
    s = snapshot("cpu")
    assert s["cpus"] >= 1 and (s["load"] is None or len(s["load"]) == 3)
    assert quiet({"load": [0.4, 0, 0], "affinity": [0, 1]}, threads=2) is True
    assert quiet({"load": [3.9, 0, 0], "affinity": [0, 1]}, threads=2) is False
    rows = pd.DataFrame([{"run_id": "r1", "point_id": "p", "file": "f", "threads": 2,
                          "machine": state_json({"load": [3.9, 3, 3], "affinity": [0, 1]},
                                                {"load": [1.0, 1, 1], "affinity": [0, 1]})}])
    assert busy_runs(rows, "A") == ["A run r1 (1 reading(s), e.g. 1-min load 3.9 before, 2 thread(s) on 2 core(s))"]
    # rows with the load columns measured before timing (harness.machine.measure_load) use those
    assert busy_runs(rows.assign(free_cores=0.2), "A") == ["A run r1 (1 reading(s), e.g. 0.2 free core(s) for 2 "
                                                           "thread(s))"]
    assert busy_runs(rows.assign(free_cores=1.9), "A") == []


def test_sides_are_folders_globs_or_run_ids(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    _runs(tmp_path / "res" / "aa", 3, rng)
    rows = load_side(f"{tmp_path}/res/aa/run0*")
    assert rows.run_id.nunique() == 3
    both = load_side(f"{tmp_path}/res/aa/run00,{tmp_path}/res/aa/run01")
    assert both.run_id.nunique() == 2
    by_id = load_side("aa1", runs_root=tmp_path / "res")
    assert set(by_id.run_id) == {"aa1"}
    with pytest.raises(FileNotFoundError, match="no run id under"):
        load_side("nope", runs_root=tmp_path / "res")
    cfg = json.loads(rows.config.iloc[0])
    assert cfg["method"]["name"] in ("a", "b")


FAKE_PYTHON = """#!{python}
# Stands in for `python -m harness OVERRIDES results_dir=DIR report=false`: writes one synthetic run
# (a point whose latency drifts by 3% between runs), importing no more than harness.results.
import json, os, sys, zlib
from datetime import datetime, timezone
import numpy as np
sys.path.insert(0, {root!r})
from harness.results import write_point
args = dict(a.split("=", 1) for a in sys.argv[3:] if "=" in a)
folder = args["results_dir"]
rng = np.random.default_rng(zlib.crc32(folder.encode()))
lat = {scale} * rng.lognormal(0, 0.03) * rng.lognormal(0, 0.01, 20)
base = dict(run_id=os.path.basename(folder), point_id="p1", created_at=datetime.now(timezone.utc), status="ok",
            task="t", model="m", method="a", variant="a/steps=1", seed=0, device_name="cpu0", threads=1,
            config=json.dumps(dict(task=dict(name="t"), model=dict(name="m"), method=dict(name="a"), seed=0)))
write_point(folder, "p1", [base | dict(metric="latency", stage="end_to_end", sample=i, value=float(v), unit="s",
                                       higher_is_better=False) for i, v in enumerate(lat)])
"""


def _fake_python(path: Path, scale: float) -> str:
    import sys

    root = str(Path(__file__).resolve().parent.parent)
    path.write_text(FAKE_PYTHON.format(python=sys.executable, root=root, scale=scale))
    path.chmod(0o755)
    return str(path)


def test_aa_and_ab_commands_run_fresh_processes_and_judge_them(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    same, slow = _fake_python(tmp_path / "same.py", 1.0), _fake_python(tmp_path / "slow.py", 1.3)
    assert main(["aa", "experiment=samplers_digits", "--runs", "3", "--out", str(tmp_path / "aa"),
                 "--python", same]) == 0
    out = capsys.readouterr().out
    assert "noise profile: 3 runs" in out and "R=5" in out and (tmp_path / "aa.meta" / noise.FILE_NAME).exists()
    assert sorted(p.name for p in (tmp_path / "aa").glob("run*") if p.suffix != ".meta") == ["run00", "run01", "run02"]
    code = main(["ab", f"python:{same}", f"python:{slow}", "--rounds", "4", "--out", str(tmp_path / "ab"),
                 "experiment=samplers_digits"])
    out = capsys.readouterr().out
    assert code == 1 and "paired rounds" in out and "regression" in out
    assert (tmp_path / "ab" / "r01-B.meta" / "run.json").exists() and not (tmp_path / "ab.meta" / "trees").exists()
    # the same side twice: no regression
    assert main(["ab", f"python:{same}", f"python:{same}", "--rounds", "4", "--out", str(tmp_path / "aa2"),
                 "experiment=samplers_digits"]) in (0, 2)
    assert "regression" not in capsys.readouterr().out.split("note")[1].split("false discovery")[0]


def test_gpu_state_reads_nvml_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: a stand-in pynvml module checks what is read and how it is converted."""
    import sys
    import types

    import harness.machine as machine

    fake = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    fake.NVMLError = NVMLError
    fake.NVML_CLOCK_SM, fake.NVML_CLOCK_MEM, fake.NVML_TEMPERATURE_GPU = 1, 2, 0
    fake.nvmlClocksThrottleReasonGpuIdle, fake.nvmlClocksThrottleReasonSwPowerCap = 1, 4
    fake.nvmlInit = lambda: None
    fake.nvmlDeviceGetHandleByUUID = lambda uuid: ("h", uuid)
    fake.nvmlDeviceGetHandleByIndex = lambda i: ("h", i)
    fake.nvmlDeviceGetClockInfo = lambda h, kind: {1: 1980, 2: 2619}[kind]
    fake.nvmlDeviceGetEnforcedPowerLimit = lambda h: 700_000
    fake.nvmlDeviceGetTemperature = lambda h, kind: 41
    fake.nvmlDeviceGetCurrentClocksThrottleReasons = lambda h: 4
    fake.nvmlDeviceGetTotalEnergyConsumption = lambda h: 123_456
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr("torch.cuda.get_device_properties", lambda i: types.SimpleNamespace(uuid="abc"))
    s = machine.gpu_state(0)
    assert s == {"sm_clock_mhz": 1980, "mem_clock_mhz": 2619, "power_limit_w": 700.0, "temperature_c": 41,
                 "throttle_reasons": ["SwPowerCap"], "energy_j": 123.456}
    assert machine.energy_per_call(lambda: None, "cpu", 10) is None  # CPU points have no energy metric
    assert machine.calls_for(1.0, 0.003) == 334 and machine.calls_for(1.0, 5.0) == 10


def test_strict_refuses_runs_from_a_busy_machine(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(13)
    busy = state_json({"load": [3.5, 3, 3], "affinity": [0, 1]}, {"load": [3.6, 3, 3], "affinity": [0, 1]})
    a = tmp_path / "a"
    _runs(a, 2, rng, between=0.01)
    _runs(tmp_path / "b", 2, rng, between=0.01, machine=busy)
    assert main(["compare", str(a), str(tmp_path / "b"), "--metrics", "latency"]) in (0, 2)
    assert "warning: the machine was not quiet during B run b0" in capsys.readouterr().out
    assert main(["compare", str(a), str(tmp_path / "b"), "--metrics", "latency", "--strict"]) == 3
    assert "--strict" in capsys.readouterr().err

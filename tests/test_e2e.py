"""A short sweep through the real command line: files, summary, plot, resume, failures, -m, report."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from harness.results import SCHEMA, aside_dir, load
from tests.helpers import SMOKE, run_cli

POINTS = "points=[{name: ddim, steps: 20}, {name: ddim, steps: 4}, {name: dpm_solver, steps: 2000}]"


@pytest.mark.slow
def test_sweep_resume_failure_and_report(tmp_path: Path, tiny_unet_dir: Path) -> None:
    out = tmp_path / "res"
    args = ["model=local_unet", f"model.source={tiny_unet_dir}", SMOKE, "task.fid_bootstrap=20",
            POINTS, "baseline='ddim/steps=20'", f"results_dir={out}"]
    first = run_cli(*args, check=False)
    assert first.returncode == 1, first.stderr  # a failed point fails the run, after the sweep went on
    files = sorted(out.glob("*.parquet"))
    assert len(files) == 3, first.stdout
    # dpm_solver with more steps than the model's 1000 training steps is a bad combination at run time:
    # recorded with its error, and the sweep went on
    assert "FAILED, recorded, going on" in first.stdout and "1 point(s) failed" in first.stdout
    rows = load(out)
    bad = rows[rows.status == "error"]
    assert bad.variant.unique().tolist() == ["dpm_solver/steps=2000"]
    assert "method.steps=2000 exceeds the model's num_train_timesteps=1000" in bad.error.iloc[0]
    ok = rows[rows.status == "ok"]
    assert set(ok.variant) == {"ddim/steps=20", "ddim/steps=4"}
    assert pq.read_schema(files[0]).remove_metadata().equals(SCHEMA)
    nfe = ok[ok.metric == "nfe"].set_index("variant").value
    assert nfe["ddim/steps=20"] == 20 and nfe["ddim/steps=4"] == 4
    steps = ok[(ok.metric == "latency") & (ok.stage == "denoise_step")]
    assert steps.groupby("variant").size().to_dict() == {"ddim/steps=20": 20, "ddim/steps=4": 4}
    assert (ok[ok.metric == "flops"].value > 0).all() and (ok[ok.metric == "peak_memory"].value > 0).all()
    assert ok.threads.eq(1).all() and ok.device.eq("cpu").all() and ok.cpu.notna().all()
    # the load before each point was measured and recorded
    assert ok.cpus.ge(1).all() and ok.free_cores.between(0, ok.cpus.max()).all() and ok.busy_cores.notna().all()
    # the printed summary and the plot come from the rows; the plot goes next to the folder, not in it
    assert "ddim/steps=20 (baseline)" in first.stdout and "FID [95% CI]" in first.stdout
    plots = aside_dir(out, "plots")
    assert (plots / "pareto_fid_latency.png").stat().st_size > 0 and (plots / "pareto_fid_latency.svg").exists()
    assert sorted(p.suffix for p in out.iterdir()) == [".parquet"] * 3

    # a result file cut short (a full disk) is set aside and its point measured again, never a crash
    broken = next(f for f in files if pq.read_table(f, columns=["status"]).column(0)[0].as_py() == "ok")
    broken.write_bytes(broken.read_bytes()[:100])
    second = run_cli(*args, check=False)
    assert f"WARNING: {broken}: not a readable parquet file" in second.stdout
    assert second.stdout.count("finished earlier, skipped") == 1  # the failed and the broken point run again
    assert len(list(out.glob("*.parquet"))) == 3 and len(list(aside_dir(out, "set_aside").iterdir())) == 1
    assert load(broken).status.eq("ok").all()

    rep = run_cli("report", str(out), "--markdown", "--baseline", "ddim/steps=4")
    assert "| ddim/steps=4 (baseline) |" in rep.stdout and "FAILED" in rep.stdout


@pytest.mark.slow
def test_multirun_from_the_command_line(tmp_path: Path, tiny_unet_dir: Path) -> None:
    # no results_dir: the experiment's own folder, relative to where the command runs
    proc = run_cli("-m", "model=local_unet", f"model.source={tiny_unet_dir}", SMOKE, "method=ddim,euler",
                   "method.steps=2,3", "baseline='ddim/steps=3'", cwd=tmp_path)
    folder = tmp_path / "results" / "samplers_digits-smoke"  # the smoke profile keeps its own folder
    rows = load(folder)
    assert sorted(rows.variant.unique()) == ["ddim/steps=2", "ddim/steps=3", "euler/steps=2", "euler/steps=3"]
    assert "note: method given on the command line" in proc.stdout
    assert proc.stdout.count("speedup x") == 1, "one report at the end of the multirun"
    # Hydra's multirun.yaml and the plot go next to the folder: it holds result files only, so every
    # documented reader (docs/results.md) reads it as one dataset, as written there
    assert (aside_dir(folder, "hydra") / "multirun.yaml").exists() and any(aside_dir(folder, "plots").iterdir())
    n = len(rows)
    assert len(pd.read_parquet(folder)) == n and pq.read_table(folder).num_rows == n
    assert len(pl.read_parquet(folder)) == n
    sql = f"SELECT count(*) FROM read_parquet('{folder}/*.parquet', union_by_name = true)"
    assert duckdb.connect().execute(sql).fetchone()[0] == n
    docs_sql = ("SELECT variant, median(value) AS latency_s "  # docs/results.md's example, on this folder
                f"FROM read_parquet('{folder}/*.parquet', union_by_name = true) "
                "WHERE metric = 'latency' AND stage = 'end_to_end' AND status = 'ok' "
                "GROUP BY variant ORDER BY latency_s")
    assert len(duckdb.connect().execute(docs_sql).fetchall()) == 4
    lat = pd.read_parquet(folder)  # the docs' example, word for word
    lat = lat[(lat.metric == "latency") & (lat.stage == "end_to_end")]
    assert len(lat.groupby("variant").value.median()) == 4


def test_unknown_subcommand_and_bad_override_fail_fast() -> None:
    proc = run_cli("compaer", check=False)
    assert proc.returncode != 0 and "valid: report" in proc.stderr
    proc = run_cli("method=ddim", "method.order=2", check=False)
    assert proc.returncode != 0 and "order" in proc.stderr


@pytest.mark.slow
def test_interleaved_abba_run_pairs_every_point_with_the_baseline(tmp_path: Path, tiny_unet_dir: Path) -> None:
    out = tmp_path / "abba"
    proc = run_cli("model=local_unet", f"model.source={tiny_unet_dir}", SMOKE, "timing.min_repeats=4",
                   "points=[{name: ddim, steps: 6}, {name: ddim, steps: 2}]", "baseline='ddim/steps=6'",
                   "interleave=true", f"results_dir={out}")
    rows = load(out)
    lat = rows[rows.metric == "latency"]
    method = lat[lat.variant == "ddim/steps=2"]
    paired = method[method.stage == "abba_baseline"]
    own = method[method.stage == "end_to_end"]
    assert len(paired) == len(own) >= 4 and len(own) % 2 == 0  # two calls of each per ABBA block
    assert lat[lat.variant == "ddim/steps=6"].stage.ne("abba_baseline").all()  # the baseline is not paired
    assert "interleaved ABBA" in rows[rows.variant == "ddim/steps=2"].timing.iloc[0]
    assert "speedup = ABBA-paired" in proc.stdout
    bad = run_cli("model=local_unet", f"model.source={tiny_unet_dir}", SMOKE, "points=[{name: ddim, steps: 2}]",
                  "baseline='nope/steps=6'", "interleave=true", f"results_dir={out}", check=False)
    assert bad.returncode != 0 and "interleave=true needs the baseline 'nope/steps=6'" in bad.stderr


@pytest.mark.slow
def test_rerun_of_a_sweep_compares_as_no_change(tmp_path: Path, tiny_unet_dir: Path) -> None:
    args = ["model=local_unet", f"model.source={tiny_unet_dir}", SMOKE, "task.fid_bootstrap=20", "report=false",
            "points=[{name: ddim, steps: 4}, {name: unipc, steps: 3}]", "baseline='ddim/steps=4'"]
    run_cli(*args, f"results_dir={tmp_path / 'a'}")
    run_cli(*args, f"results_dir={tmp_path / 'b'}")
    # Quality and counts are deterministic at a seed: a rerun must match them exactly. Latency on a
    # shared machine is judged by bench/compare_aa.py, whose false-alarm rates are in docs/analysis.md.
    proc = run_cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--metrics", "fid,nfe,flops")
    # 2 points x 3 metrics, and the per-task summary of FID (exact co-metrics are judged per point only)
    assert proc.stdout.count("no change") == 6 + 1
    verdicts = [line.split()[2:4] for line in proc.stdout.splitlines() if line.startswith("  ") and "/steps=" in line]
    assert len(verdicts) == 6 and all(v == ["no", "change"] for v in verdicts), proc.stdout
    assert "git_sha" not in proc.stdout  # same commit, same machine: no environment difference but the run

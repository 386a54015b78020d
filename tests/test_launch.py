"""Launchers: isolated points, Slurm through submitit (local and debug clusters), Ray with fake GPUs,
locks under two launchers, resume after kill -9, progress. Faults come from a test-only workload
(tests/fixtures/fault_plugin), loaded as an entry-point plug-in by every process these tests start."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from harness import progress, results
from harness.launch.base import chunks_of
from harness.launch.config import LAUNCHERS, ProcessConfig, SlurmConfig
from harness.launch.lock import PointLock
from harness.results import load
from tests.helpers import ROOT, compose_cfg

PLUGIN = ROOT / "tests" / "fixtures" / "fault_plugin"
SEARCH = f"hydra.searchpath=[file://{PLUGIN / 'conf'}]"
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PLUGIN), str(ROOT)]), HF_HUB_OFFLINE="1",
           PYTHONUNBUFFERED="1", RAY_AUTH_MODE="disabled")


def _points(*specs: str) -> str:
    return "points=[" + ",".join("{name:fault," + s + "}" for s in specs) + "]"


def harness(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    flags = [a for a in args if a.startswith("-")]  # Hydra takes -m before the overrides
    overrides = [a for a in args if not a.startswith("-")]
    proc = subprocess.run([sys.executable, "-m", "harness", *flags, "experiment=faults", "profile=smoke", SEARCH,
                           "report=false", *overrides], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"harness exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _log(path: Path) -> list[tuple[str, int, str, float]]:
    """(label, pid, start|end, time) per line the fault workload logged."""
    if not path.exists():
        return []
    return [(tag.split("/", 1)[1], int(pid), what, float(t))
            for tag, pid, what, t in (line.split() for line in path.read_text().splitlines())]


def _by_label(rows: pd.DataFrame) -> dict[str, pd.Series]:
    first = rows.drop_duplicates("point_id")
    return {v.split("label=")[1].split(",")[0]: r for v, (_, r) in zip(first.variant, first.iterrows())}


def _no_stray_files(folder: Path) -> None:
    """Only <point_id>.parquet files (locks live in <folder>.meta/launch): nothing a reader trips on."""
    visible = [p.name for p in folder.iterdir()]
    assert all(n.endswith(".parquet") and len(n) == len("0123456789abcdef.parquet") for n in visible), visible
    pd.read_parquet(folder)  # pandas/pyarrow skip hidden files and folders
    load(folder)


# --- configuration ---------------------------------------------------------------------------------

def test_launcher_group_validates_and_lists_options() -> None:
    composed = compose_cfg(["launcher=slurm", "launcher.cluster=local", "launcher.partition=gpu"])
    cfg = OmegaConf.to_object(composed.launcher)
    assert isinstance(cfg, SlurmConfig) and cfg.cluster == "local" and cfg.partition == "gpu"
    assert OmegaConf.to_object(compose_cfg([]).launcher).name == "inline"  # the default stays in-process
    for name, schema in LAUNCHERS.items():  # every option composes into its schema, defaults valid
        assert type(OmegaConf.to_object(compose_cfg([f"launcher={name}"]).launcher)) is schema
    with pytest.raises(Exception, match="(?s)launcher/nope.*inline.*process.*ray.*slurm"):
        compose_cfg(["launcher=nope"])
    with pytest.raises(ValueError, match="launcher.chunk='x'; valid: workload, point"):
        OmegaConf.to_object(compose_cfg(["launcher=process", "launcher.chunk=x"]).launcher)
    with pytest.raises(ValueError, match="launcher.cluster='pbs'; valid: slurm, local, debug"):
        OmegaConf.to_object(compose_cfg(["launcher=slurm", "launcher.cluster=pbs"]).launcher)
    with pytest.raises(ValueError, match="launcher.timeout_s must be > 0"):
        ProcessConfig(timeout_s=0)


def test_gpu_points_are_planned_without_a_gpu_for_cluster_launchers() -> None:
    """A Slurm login node or a Ray driver plans GPU points without a GPU; points run here are checked here."""
    from harness.plan import plan

    if torch.cuda.is_available():
        pytest.skip("checks the planning host without a GPU")
    assert plan(compose_cfg(["hardware=cuda", "launcher=slurm"]))[0].hardware["device"] == "cuda"
    with pytest.raises(ValueError, match="torch.cuda.is_available"):
        plan(compose_cfg(["hardware=cuda", "launcher=process"]))


def test_chunks_group_points_by_workload_in_order() -> None:
    from harness.plan import plan

    cfg = compose_cfg(["experiment=samplers_digits", "profile=smoke"])
    points = plan(cfg)
    other = [p.__class__(**{**p.__dict__, "seed": 1}) for p in points[:2]]
    mixed = [points[0], other[0], points[1], other[1]]
    kw = dict(results_dir="r", experiment="e", baseline=None, run_id="x", launcher="process", since=0.0)
    # The seed is not part of the workload (model, data, hardware): one chunk, one model load.
    assert [len(c.points) for c in chunks_of(mixed, "workload", **kw)] == [4]
    hw = {**points[0].hardware, "threads": points[0].hardware["threads"] + 1}
    split = [points[0], points[1].__class__(**{**points[1].__dict__, "hardware": hw}), points[2]]
    assert [[p.point_id for p in c.points] for c in chunks_of(split, "workload", **kw)] == \
        [[split[0].point_id, split[2].point_id], [split[1].point_id]]
    assert [len(c.points) for c in chunks_of(split, "point", **kw)] == [1, 1, 1]


def test_slurm_knobs_reach_the_sbatch_file(tmp_path: Path) -> None:
    """What the user sets is what Slurm gets (checked on submitit's own sbatch text; no cluster here)."""
    import submitit

    from harness.launch.cluster import slurm_parameters

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake / "srun").chmod(0o755)
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{fake}{os.pathsep}{old}"  # submitit's Slurm executor insists on finding srun
    try:
        ex = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="slurm")
    finally:
        os.environ["PATH"] = old
    cfg = SlurmConfig(partition="gpu", account="proj", qos="high", cpus_per_task=8, mem_gb=32, exclusive=True,
                      array_parallelism=4, timeout_min=90, setup=["module load cuda"])
    ex.update_parameters(**slurm_parameters(cfg, "samplers"))
    ex._executor.parameters["map_count"] = 10  # what map_array sets for an array of 10 chunks
    text = ex._executor._make_submission_file_text("python -m x", "uid")
    for line in ("--partition=gpu", "--account=proj", "--qos=high", "--gpus-per-node=1", "--cpus-per-task=8",
                 "--mem=32GB", "--time=90", "--exclusive", "--array=0-9%4", "--job-name=harness-samplers"):
        assert f"#SBATCH {line}\n" in text, (line, text)
    assert "module load cuda\n" in text


# --- locks and progress ----------------------------------------------------------------------------

def test_a_point_lock_excludes_others_and_dies_with_its_holder(tmp_path: Path) -> None:
    a, b = PointLock(tmp_path, "p"), PointLock(tmp_path, "p")
    assert a.acquire()
    a.claim({"token": "run/0", "pid": os.getpid()})
    assert not b.acquire() and b.holder() == {"token": "run/0", "pid": os.getpid()}
    a.release()
    assert b.holder() is None and b.acquire()
    b.release()
    # A holder killed with -9 while it holds the lock: the kernel lets go, the claim it wrote stays.
    code = (f"from harness.launch.lock import PointLock; l = PointLock({str(tmp_path)!r}, 'p'); "
            "assert l.acquire(); l.claim({'token': 'dead/1'}); print('held', flush=True); import time; time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    assert not a.acquire()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert a.acquire() and a.holder() == {"token": "dead/1"}
    a.release()


def test_progress_is_a_bar_on_a_terminal_and_lines_in_a_log() -> None:
    labels = {"p1": "[1/3] a seed=0", "p2": "[2/3] b seed=0", "p3": "[3/3] c seed=0"}
    log = io.StringIO()
    shown = progress.SweepProgress(labels, total=3, skipped=0, stream=log)
    for ev in ({"event": "start", "point": "p1"}, {"event": "end", "point": "p1", "status": "ok", "error": None},
               {"event": "start", "point": "p2"}, {"event": "end", "point": "p2", "status": "error",
                                                   "error": "Timeout: ran past 5 s\nstack"},
               {"event": "skip", "point": "p3", "why": "finished earlier, skipped (p3)"}):
        shown.event(ev)
    shown.close()
    assert log.getvalue().splitlines() == [
        "[1/3] a seed=0: running", "[2/3] b seed=0: running (1 done, 0 failed; ETA 0 s)",
        "[2/3] b seed=0: FAILED, recorded, going on: Timeout: ran past 5 s", "[3/3] c seed=0: finished earlier, "
        "skipped (p3)"]

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = progress.SweepProgress(labels, total=3, skipped=1, stream=tty)
    bar.event({"event": "start", "point": "p1"})
    bar.event({"event": "progress", "point": "p1", "desc": "FID samples", "done": 640, "total": 1797})
    assert "1/3" in tty.getvalue() and "running 1: [1/3] a seed=0 FID samples 640/1797" in tty.getvalue()
    bar.close()
    # A long point reports through whatever sink the launcher set (a worker's event pipe).
    seen: list[dict] = []
    progress.set_sink(seen.append)
    try:
        assert list(progress.track(range(3), desc="samples")) == [0, 1, 2]
    finally:
        progress.set_sink(None)
    assert seen[0] == {"event": "progress", "desc": "samples", "done": 1, "total": 3}
    assert seen[-1] == {"event": "progress", "desc": "samples", "done": 3, "total": 3}


def test_inline_launch_runs_skips_and_records_where(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The default launcher through the Python API: the fault workload's plug-in imported here."""
    sys.path.insert(0, str(PLUGIN))
    try:
        import harness_fault_plugin  # noqa: F401  (registers the task and method in this process)
    finally:
        sys.path.remove(str(PLUGIN))
    from harness.launch.config import InlineConfig
    from harness.launch.launcher import launch
    from harness.plan import plan

    cfg = compose_cfg(["experiment=faults", "profile=smoke", SEARCH, _points("kind:ok,label:a", "kind:raise,label:b")])
    points = plan(cfg)
    kw = dict(results_dir=str(tmp_path), experiment="faults", baseline=None)
    first = launch(points, InlineConfig(), **kw).wait()
    assert (first.ok, first.failed, first.missing, first.skipped) == (1, 1, 0, 0)
    again = launch(points, InlineConfig(), **kw).wait()  # the ok point is skipped, the failed one retried
    assert (again.ok, again.failed, again.skipped) == (0, 1, 1)
    out = capsys.readouterr().out
    assert "[1/2] fault/kind=ok,label=a seed=0: running" in out and "finished earlier, skipped" in out
    assert "[2/2] fault/kind=raise,label=b seed=0: FAILED, recorded, going on: RuntimeError: fault b" in out
    rows = load(tmp_path)
    assert set(rows.launcher) == {"inline"} and rows.slurm_job_id.isna().all() and rows.ray_task_id.isna().all()
    assert (rows.schema_version == results.SCHEMA_VERSION).all()
    _no_stray_files(tmp_path)


# --- faults under the process launcher -------------------------------------------------------------

@pytest.mark.slow
def test_crash_hang_memory_and_raise_become_error_rows_and_the_sweep_goes_on(tmp_path: Path) -> None:
    """The experiment's seven points: a, c, g good; b segfaults, d hangs, e passes the memory limit, f raises."""
    # timeout 20 s: the memory point (e) must reach its limit before the timeout also on a loaded CI machine
    # (at 8 s it was killed as a timeout while another test worker shared the 2 cores)
    proc = harness(f"results_dir={tmp_path / 'res'}", "launcher=process", "launcher.timeout_s=20",
                   "launcher.mem_limit_gb=1.5", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "4 point(s) failed" in proc.stdout
    rows = _by_label(load(tmp_path / "res"))
    assert {k: r.status for k, r in rows.items()} == {"a": "ok", "b": "error", "c": "ok", "d": "error", "e": "error",
                                                      "f": "error", "g": "ok"}
    assert rows["b"].error.startswith("WorkerKilled: the worker running this point was killed by signal 11 (SIGSEGV)")
    assert "peak memory seen" in rows["b"].error and "Fatal Python error: Segmentation fault" in rows["b"].error
    assert rows["d"].error.startswith("Timeout: the point ran past launcher.timeout_s=20")
    assert "in call" in rows["d"].error  # the hung point's stack, dumped before the kill
    assert rows["e"].error.startswith("MemoryLimit: the worker's resident memory reached")
    assert "launcher.mem_limit_gb=1.5" in rows["e"].error
    assert rows["f"].error.startswith("RuntimeError: fault f: raised on purpose")
    assert set(load(tmp_path / "res").launcher) == {"process"}
    _no_stray_files(tmp_path / "res")


@pytest.mark.slow
def test_kill_9_of_the_launcher_then_rerun_measures_every_point_exactly_once(tmp_path: Path) -> None:
    res, log = tmp_path / "res", tmp_path / "points.log"
    args = [f"results_dir={res}", "launcher=process", f"task.log={log}",
            _points(*(f"kind:ok,label:{k},seconds:1.5" for k in "abcd"))]
    first = subprocess.Popen([sys.executable, "-m", "harness", "experiment=faults", "profile=smoke", SEARCH,
                              "report=false", *args], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not any(w == "end" for _, _, w, _ in _log(log)) and time.monotonic() < deadline:  # one point done ...
        time.sleep(0.1)
    while sum(w == "start" for _, _, w, _ in _log(log)) < 2 and time.monotonic() < deadline:  # ... one running
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = {pid for _, pid, _, _ in _log(log)}
    time.sleep(3)  # the worker dies with its launcher (PR_SET_PDEATHSIG): it must not finish its point
    assert [e for e in _log(log) if e[1] in killed and e[2] == "end"] == [e for e in _log(log) if e[2] == "end"]
    assert len([e for e in _log(log) if e[2] == "end"]) == 1
    _no_stray_files(res)
    second = harness(*args)
    assert second.stdout.count("finished earlier, skipped") == 1
    ends = Counter(label for label, _, what, _ in _log(log) if what == "end")
    assert ends == {"a": 1, "b": 1, "c": 1, "d": 1}  # every point measured to its end exactly once
    rows = load(res)
    assert len(set(rows.point_id)) == 4 and (rows.status == "ok").all()
    _no_stray_files(res)


@pytest.mark.slow
def test_two_launchers_on_one_folder_never_measure_a_point_twice(tmp_path: Path) -> None:
    res, log = tmp_path / "res", tmp_path / "points.log"
    cmd = [sys.executable, "-m", "harness", "experiment=faults", "profile=smoke", SEARCH, "report=false",
           f"results_dir={res}", "launcher=process", f"task.log={log}",
           _points(*(f"kind:ok,label:{k},seconds:1" for k in "abcde"))]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    entries = _log(log)
    assert Counter(label for label, _, what, _ in entries if what == "start") == dict.fromkeys("abcde", 1)
    rows = load(res)
    assert len(set(rows.point_id)) == 5 and (rows.status == "ok").all()
    # They met: one waited for a point the other held, or skipped points the other had finished.
    assert any("being measured by" in o or "finished earlier" in o or "under another launcher" in o for o in outs)


# --- Slurm through submitit ------------------------------------------------------------------------

@pytest.mark.slow
def test_slurm_local_partial_array_failure_then_resubmits_only_the_missing_point(tmp_path: Path) -> None:
    """cluster=local: the same submitit path as on Slurm, jobs as local processes. One array task
    segfaults in its own process (isolate=false, so the job itself dies): the launcher records it from
    the job's state; the rerun submits that one point only."""
    res, log = tmp_path / "res", tmp_path / "points.log"
    args = [f"results_dir={res}", "launcher=slurm", "launcher.cluster=local", "launcher.chunk=point",
            "launcher.isolate=false", "launcher.poll_s=0.5", f"task.log={log}",
            _points("kind:ok,label:a", "kind:crash,label:b,times:1", "kind:ok,label:c")]
    first = harness(*args, check=False)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "submitted 3 slurm job(s) for 3 point(s)" in first.stdout
    rows = _by_label(load(res))
    assert (rows["a"].status, rows["b"].status, rows["c"].status) == ("ok", "error", "ok")
    assert rows["b"].error.startswith("JobFailed: slurm job") and rows["a"].launcher == "slurm/local"
    second = harness(*args)
    assert "submitted 1 slurm job(s) for 1 point(s)" in second.stdout
    assert second.stdout.count("finished earlier, skipped") == 2
    assert Counter(label for label, _, what, _ in _log(log) if what == "end") == {"a": 1, "b": 1, "c": 1}
    assert (load(res).status == "ok").all()


@pytest.mark.slow
def test_multirun_on_slurm_submits_every_job_then_waits_and_reports_once(tmp_path: Path) -> None:
    """submitit's debug cluster (jobs run in this process when waited for): both seeds' points are
    submitted before either runs, and one report follows at the end."""
    proc = harness("-m", "seed=0,1", f"results_dir={tmp_path / 'res'}", "launcher=slurm", "launcher.cluster=debug",
                   "launcher.isolate=false", _points("kind:ok,label:a"), "report=true")
    out = proc.stdout
    assert out.count("submitted 1 slurm job(s)") == 2
    assert out.rindex("submitted 1 slurm job(s)") < out.index("running")
    # one report (its seeds 0 and 1 also give it an across-seeds table, whose header has no latency column)
    assert out.count("latency s (median") == 1 and len(set(load(tmp_path / "res").seed)) == 2


@pytest.mark.slow
def test_no_wait_returns_at_once_and_report_reads_what_landed(tmp_path: Path) -> None:
    res = tmp_path / "res"
    proc = harness(f"results_dir={res}", "launcher=slurm", "launcher.cluster=local", "--no-wait",
                   _points("kind:ok,label:a,seconds:1"))
    assert "not waiting: results land in" in proc.stdout and ": running" not in proc.stdout
    deadline = time.monotonic() + 300
    while not list(res.glob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.5)
    rep = subprocess.run([sys.executable, "-m", "harness", "report", str(res)], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert rep.returncode == 0 and "fault/kind=ok,label=a" in rep.stdout, rep.stdout + rep.stderr
    inline = harness(f"results_dir={tmp_path / 'x'}", "--no-wait", check=False)
    assert inline.returncode != 0 and "launcher.wait=false (--no-wait) needs jobs that outlive" in inline.stderr


# --- Ray -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_ray_tasks_get_their_own_fake_gpu_and_an_impossible_request_fails_in_time(tmp_path: Path) -> None:
    res = tmp_path / "res"
    ray = ["launcher=ray", "launcher.chunk=point", "launcher.local_num_cpus=2", "launcher.local_num_gpus=2",
           "launcher.poll_s=0.5"]
    harness(f"results_dir={res}", *ray, _points("kind:ok,label:a,seconds:3", "kind:ok,label:b,seconds:3"))
    rows = load(res).drop_duplicates("point_id")
    assert sorted(rows.cuda_visible_devices) == ["0", "1"]  # Ray gave the two concurrent tasks distinct devices
    assert set(rows.launcher) == {"ray"} and rows.ray_task_id.nunique() == 2 and rows.ray_node_id.notna().all()
    started = time.monotonic()
    bad = harness(f"results_dir={tmp_path / 'bad'}", *ray, "launcher.num_gpus=4", "launcher.schedule_timeout_s=2",
                  _points("kind:ok,label:a"), check=False)
    assert bad.returncode != 0 and time.monotonic() - started < 120
    assert "asks for launcher.num_gpus=4" in bad.stderr and "node 0: 2 GPU" in bad.stderr, bad.stderr

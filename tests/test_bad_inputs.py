"""A catalogue of bad inputs: each gets one line naming the value and what was expected, exit code 3.

Across the sweep's config (values, groups, keys, model folders, user modules, results folders),
every analysis subcommand (missing, empty, malformed and foreign inputs, bad options) and result
files (corrupt, left-over temp files, permissions). Nothing here measures anything: the sweep's
checks all run before the first point (``harness.cli.precheck``, ``harness.plan``,
``harness.preflight``), and the analysis commands read small synthetic result sets.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from harness import results
from harness.cli import main
from harness.errors import EXIT_BAD_INPUT
from harness.plan import plan
from harness.preflight import preflight
from tests.helpers import compose_cfg, run_cli, synthetic_point, write_set

ZOO = Path(__file__).resolve().parent.parent / "tasks" / "zoo"


def one_error_line(capsys: pytest.CaptureFixture, code: int, *names: str) -> str:
    """The command exited 3 with one line on stderr that names every string in ``names``."""
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT, f"exit code {code}, stderr: {err}"
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for name in names:
        assert name in err, f"{name!r} not in: {err}"
    return err


# -- the sweep: config values, groups and keys (checked before any point runs) --------------------------

SWEEP = [
    (["seed=1.5"], ["seed=1.5", "whole number from 0 to 4294967295"]),
    (["seed=abc"], ["seed='abc'", "whole number"]),
    (["seed=-1"], ["seed=-1", "from 0"]),
    (["seed=4294967296"], ["seed=4294967296", "to 4294967295"]),
    (["+foo=bar"], ["+foo=bar", "top-level keys: ", "seed", "method"]),
    (["+model.extra=1"], ["+model.extra=1", "top-level keys: "]),
    (["method=greedy"], ["method='greedy'", "image_generation", "methods for this task: ddim, ddpm"]),
    (["experiment=bleu_kernel", "method=ddim"], ["method='ddim'", "bleu_kernel", "nltk, sacrebleu, token_bleu"]),
    (["experiment=repeated_sampling_arith", "method=speculative"], ["method='speculative'", "greedy", "sampling"]),
    (["method=nope"], ["method/nope", "Available options in 'method': ", "ddim, ddpm"]),
    (["method.steps=abc"], ["method.steps=abc", "Integer"]),
    (["method.stepz=3"], ["stepz", "valid keys: name, steps, timestep_spacing"]),
    (["method.steps=0"], ["method.steps", "got 0", ">= 1"]),
    (["method=dpm_solver", "method.order=7"], ["order", "7", "1, 2 or 3"]),
    (["method=ddim", "method.timestep_spacing=odd"], ["'odd'", "leading, trailing, linspace"]),
    (["task.n_samples=0"], ["task.n_samples", "got 0", ">= 1"]),
    (["task.nsamples=5"], ["nsamples", "valid keys: ", "n_samples"]),
    (["task.features=clip"], ["'clip'", "digits_classifier, inception"]),
    (["task.features=python:no_such_module_xyz:build"], ["no_such_module_xyz", "python:MODULE:FACTORY"]),
    (["task.features=python:os:no_such_factory"], ["os.no_such_factory", "python:MODULE:FACTORY"]),
    (["task.features=python:oops"], ["python:oops", "python:MODULE:FACTORY"]),
    (["task.classifier=zoo:nope"], ["task.classifier='zoo:nope'", "shipped: ", "digits_classifier"]),
    (["task.fid_bootstrap=5"], ["task.fid_bootstrap", "got 5", ">= 20"]),
    (["model=local_unet"], ["model.source", "model=local_unet", "set model.source="]),
    (["model.source=/no/such/folder"], ["'/no/such/folder'", "no such folder", "zoo:NAME", "hub id"]),
    (["model.source=zoo:nope"], ["'zoo:nope'", "shipped: ", "digits_ddpm"]),
    (["model.source=nobody-xyz/not-cached"], ["'nobody-xyz/not-cached'", "HF_HUB_OFFLINE", "zoo:NAME"]),
    (["model.source=zoo:digits_classifier"], ["'zoo:digits_classifier'", "model_index.json", "diffusers"]),
    (["model.foo=1"], ["model.foo", "valid keys: name, source"]),
    (["model=nope"], ["model/nope", "digits_unet, local_lm"]),
    (["experiment=decoding_bytes", "model.tokenizer=words"], ["'words'", "bytes, auto"]),
    (["experiment=decoding_bytes", "model.draft=/no/draft"], ["model.draft='/no/draft'", "zoo:NAME"]),
    (["experiment=decoding_bytes", "model.source=zoo:digits_ddpm"], ["'zoo:digits_ddpm'", "config.json"]),
    (["hardware.threads=0"], ["hardware.threads=0", ">= 1"]),
    (["hardware.threads=abc"], ["hardware.threads='abc'", ">= 1"]),
    (["hardware.thread=2"], ["hardware.thread", "valid keys: ", "threads"]),
    (["hardware.device=tpu"], ["'tpu'", "cpu, cuda, cuda:N"]),
    (["hardware.dtype=float8"], ["'float8'", "float32, float16, bfloat16"]),
    (["hardware=tpu"], ["hardware/tpu", "cpu, cuda, h100"]),
    (["timing.min_repeats=1"], ["min_repeats", "1", "2 <= min_repeats <= max_repeats"]),
    (["timing.max_time_s=abc"], ["timing.max_time_s=abc", "Float"]),
    (["timing.confidence=1.5"], ["timing.confidence", "1.5", "(0, 1)"]),
    (["timing.max_tim=1"], ["max_tim", "valid keys: ", "max_time_s"]),
    (["points=[{name: foo}]"], ["'foo'", "registered: ", "ddim"]),
    (["points=[{name: ddim, stepz: 3}]"], ["stepz", "valid keys: name, steps"]),
    (["baseline=nope"], ["'nope'", "ddim/steps=50", "dpm_solver/steps=10"]),
    (["interleave=false", "baseline='ddim/steps=7'"], ["ddim/steps=7", "not one of the experiment's points",
                                                      "this run's points: ", "ddim/steps=50"]),
    (["baseline=ddim/steps=50"], ["baseline=ddim/steps=50", "needs quotes"]),
    (["interleave=false", "baseline=nope/x"], ["'nope/x'", "labels look like ddim/steps=50"]),
    (["interleave=yes"], ["interleave='yes'", "true or false"]),
    (["report=maybe"], ["report='maybe'", "true or false"]),
    (["experiment=nope"], ["experiment/nope", "samplers_digits"]),
    (["profile=fast"], ["profile/fast", "smoke"]),
    (["results_dir=/tmp/run(1)"], ["'('", "needs quotes", "results_dir="]),
    (["results_dir=/tmp/a,b"], ["results_dir=/tmp/a,b", "needs quotes"]),
    (["results_dir=~/x"], ["results_dir=~/x", "needs quotes"]),
    (["-m", "method.steps=5,0"], ["method.steps", "got 0"]),
    (["-m", "seed=0,1.5"], ["seed=1.5", "whole number"]),
]


@pytest.mark.parametrize("argv,names", SWEEP, ids=[" ".join(a) for a, _ in SWEEP])
def test_bad_sweep_input_is_one_line_before_anything_runs(argv: list[str], names: list[str], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    if not any(a.startswith("results_dir=") for a in argv):
        argv = [*argv, f"results_dir={tmp_path / 'res'}"]
    one_error_line(capsys, main(argv), *names)
    assert not (tmp_path / "res").exists(), "nothing may be written before the inputs are valid"


def test_bad_model_folders(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    afile = tmp_path / "weights.bin"
    afile.write_bytes(b"x")
    empty = tmp_path / "empty_model"
    empty.mkdir()
    one_error_line(capsys, main(["model=local_unet", f"model.source={afile}"]), str(afile), "is a file", "zoo:NAME")
    one_error_line(capsys, main(["model=local_unet", f"model.source={empty}"]), str(empty), "model_index.json")
    one_error_line(capsys, main(["experiment=decoding_bytes", "model=local_lm", f"model.source={empty}"]), str(empty),
                   "config.json", "transformers causal LM")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_gpu_hardware_without_a_gpu(capsys: pytest.CaptureFixture) -> None:
    one_error_line(capsys, main(["hardware=cuda"]), "cuda", "torch.cuda.is_available() is False", "hardware=cpu")


def test_results_folder_that_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    one_error_line(capsys, main(["method=ddim", "method.steps=2", f"results_dir={blocker / 'res'}"]),
                   str(blocker / "res"), "cannot write there", "results_dir=")
    if os.geteuid() != 0:  # root writes anywhere: a read-only folder stops only other users
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        one_error_line(capsys, main(["method=ddim", "method.steps=2", f"results_dir={ro}"]), str(ro),
                       "cannot write there")


def test_unknown_subcommand(capsys: pytest.CaptureFixture) -> None:
    one_error_line(capsys, main(["reprot", "results"]), "'reprot'", "valid: report, pareto, compare")


def test_a_path_with_spaces_needs_no_quoting(tmp_path: Path) -> None:
    folder = tmp_path / "my results"
    cfg = compose_cfg([f"results_dir={folder}"])
    assert cfg.results_dir == str(folder)
    assert plan(cfg)


def test_through_the_real_command_line(tmp_path: Path) -> None:
    proc = run_cli("seed=1.5", f"results_dir={tmp_path}", check=False)
    assert proc.returncode == 3 and proc.stderr.strip() == \
        "harness: error: seed=1.5: expected a whole number from 0 to 4294967295", proc.stderr
    proc = run_cli("report", str(tmp_path / "nope"), check=False)
    assert proc.returncode == 3 and len(proc.stderr.strip().splitlines()) == 1 and "does not exist" in proc.stderr
    debug = run_cli("report", str(tmp_path / "nope"), "--debug", check=False)
    assert debug.returncode != 0 and "Traceback" in debug.stderr  # tracebacks only when asked for


# -- analysis subcommands --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A good result set, and folders that are missing, empty, malformed or hold a foreign file."""
    root = tmp_path_factory.mktemp("analysis")
    rng = np.random.default_rng(0)
    reps = rng.normal(0, 1, 30)
    good = write_set(root / "good", synthetic_point("a/steps=50", rng.lognormal(0, 0.02, 20), 10.0, 10 + reps,
                                                    baseline="a/steps=50", extra_metrics={"nfe": 50}),
                     synthetic_point("b/steps=5", rng.lognormal(-1, 0.02, 20), 12.0, 12 + reps,
                                     baseline="a/steps=50", extra_metrics={"nfe": 5}))
    (root / "empty").mkdir()
    malformed = root / "malformed"
    shutil.copytree(good, malformed)
    (malformed / "0000broken.parquet").write_bytes(b"PAR1 this is not parquet")
    foreign = root / "foreign"
    shutil.copytree(good, foreign)
    pq.write_table(pa.table({"user": ["x"], "score": [1.0]}), foreign / "export.parquet")
    text = root / "notes.txt"
    text.write_text("hello")
    return {"good": good, "empty": root / "empty", "malformed": malformed, "foreign": foreign,
            "missing": root / "missing", "text": text}


PATH_CASES = [
    ("missing", ["does not exist", "results folder"]),
    ("empty", ["no .parquet result files", "a folder a harness run wrote"]),
    ("malformed", ["0000broken.parquet", "not a readable parquet file", "result file of this harness"]),
    ("foreign", ["export.parquet", "not a result file of this harness", "user, score", "docs/results.md"]),
    ("text", ["notes.txt", "not a .parquet file"]),
]
COMMANDS = [["report"], ["pareto"], ["history"], ["budget", "--max", "1"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("case,names", PATH_CASES, ids=[c for c, _ in PATH_CASES])
def test_bad_results_path(command: list[str], case: str, names: list[str], folders: dict[str, Path],
                          capsys: pytest.CaptureFixture) -> None:
    path = str(folders[case])
    one_error_line(capsys, main([command[0], path, *command[1:]]), path, *names)


@pytest.mark.parametrize("case,names", PATH_CASES, ids=[c for c, _ in PATH_CASES])
def test_compare_bad_results_path(case: str, names: list[str], folders: dict[str, Path],
                                  capsys: pytest.CaptureFixture) -> None:
    path = str(folders[case])
    one_error_line(capsys, main(["compare", str(folders["good"]), path]), path, *names)


OPTION_CASES = [
    (["report", "{good}", "--baseline", "nope"], ["--baseline 'nope'", "variants: a/steps=50, b/steps=5"]),
    (["report", "{good}", "--quality", "nope"], ["'nope'", "available: ", "fid", "latency"]),
    (["report", "{good}", "--quality", "nfe"], ["'nfe'", "not a quality metric", "quality metrics here: fid"]),
    (["report", "{good}", "--bogus"], ["--bogus", "harness report --help"]),
    (["report"], ["results", "required"]),
    (["pareto", "{good}", "--cost", "nope"], ["'nope'", "available: ", "latency"]),
    (["pareto", "{good}", "--quality", "nope"], ["'nope'", "available: "]),
    (["pareto", "{good}", "--ref", "a,b"], ["--ref", "'a,b'", "COST,QUALITY"]),
    (["pareto", "{good}", "--ref", "1"], ["--ref", "'1'", "COST,QUALITY"]),
    (["compare", "{good}", "{good}", "--margin", "2"], ["--margin", "'2'", ">= 0 and < 1"]),
    (["compare", "{good}", "{good}", "--margin", "abc"], ["--margin", "'abc'", ">= 0 and < 1"]),
    (["compare", "{good}", "{good}", "--metrics", "nope"], ["'nope'", "available: ", "latency"]),
    (["compare", "{good}"], ["b", "required"]),
    (["history", "{good}", "--metric", "nope"], ["'nope'", "available: ", "latency"]),
    (["history", "{good}", "--margin", "-0.1"], ["--margin", "'-0.1'", ">= 0"]),
    (["budget", "{good}", "--max", "-1"], ["--max", "'-1'", "> 0"]),
    (["budget", "{good}", "--max", "0"], ["--max", "'0'", "> 0"]),
    (["budget", "{good}", "--max", "abc"], ["--max", "'abc'", "> 0"]),
    (["budget", "{good}", "--max", "nan"], ["--max", "'nan'", "> 0"]),
    (["budget", "{good}"], ["--max", "--range", "required"]),
    (["budget", "{good}", "--range", "5:1"], ["--range '5:1'", "0 < LO < HI"]),
    (["budget", "{good}", "--range", "abc"], ["--range 'abc'", "LO:HI"]),
    (["budget", "{good}", "--max", "1", "--cost", "nope"], ["'nope'", "available: "]),
    (["budget", "{good}", "--max", "1", "--quality", "nope"], ["'nope'", "available: "]),
    (["claims", "no_such_claim"], ["no_such_claim", "registered: ", "dpm_solver_speedup_equal_fid"]),
    (["claims", "--claims-dir", "{missing}"], ["{missing}", "does not exist", "claim YAML files"]),
    (["claims", "--claims-dir", "{empty}"], ["{empty}", "no .yaml claim files"]),
]


@pytest.mark.parametrize("argv,names", OPTION_CASES, ids=[" ".join(a) for a, _ in OPTION_CASES])
def test_bad_analysis_option(argv: list[str], names: list[str], folders: dict[str, Path],
                             capsys: pytest.CaptureFixture) -> None:
    fill = {k: str(v) for k, v in folders.items()}
    one_error_line(capsys, main([a.format(**fill) for a in argv]), *[n.format(**fill) for n in names])


def test_malformed_claim_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "broken.yaml").write_text("paper: [unclosed\n")
    one_error_line(capsys, main(["claims", "--claims-dir", str(tmp_path)]), "broken.yaml", "not valid YAML")
    (tmp_path / "broken.yaml").write_text("- a list\n")
    one_error_line(capsys, main(["claims", "--claims-dir", str(tmp_path)]), "broken.yaml", "expected a mapping")
    (tmp_path / "broken.yaml").write_text("paper: x\nbogus: 1\n")
    one_error_line(capsys, main(["claims", "--claims-dir", str(tmp_path)]), "bogus", "valid: ")


def test_good_inputs_still_work(folders: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    good = str(folders["good"])
    for argv in (["report", good], ["pareto", good], ["history", good], ["budget", good, "--max", "2"]):
        assert main(argv) == 0, capsys.readouterr().err
    assert "b/steps=5" in capsys.readouterr().out


# -- result files ----------------------------------------------------------------------------------------

def _one_point(tmp_path: Path):  # noqa: ANN202  (a planned Point)
    return plan(compose_cfg(["method=ddim", "method.steps=2", f"results_dir={tmp_path}"]))[0]


def test_corrupt_point_file_is_set_aside_and_measured_again(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    point = _one_point(tmp_path)
    broken = results.point_file(tmp_path, point.point_id)
    broken.write_bytes(b"")  # a write cut short by a full disk
    assert not results.is_finished(tmp_path, point.point_id)  # never a crash: the point is measured again
    preflight([point], str(tmp_path))
    out = capsys.readouterr().out
    assert str(broken) in out and "not a readable parquet file" in out and "measured again" in out
    assert not broken.exists()
    moved = list(results.aside_dir(tmp_path, "set_aside").glob(f"{point.point_id}.parquet.*"))
    assert len(moved) == 1 and moved[0].read_bytes() == b""


def test_temp_files_of_killed_writes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    host = socket.gethostname()
    dead = tmp_path / f".p1.{host}.999999999.abcd.tmp"  # no such pid
    live = tmp_path / f".p2.{host}.{os.getpid()}.abcd.tmp"  # this process: a write in progress
    other = tmp_path / ".p3.elsewhere.1.abcd.tmp"  # another host's, recent: it may still be writing
    old = tmp_path / ".p4.elsewhere.1.abcd.tmp"
    for f in (dead, live, other, old):
        f.write_bytes(b"")
    os.utime(old, (1, 1))
    removed = results.clean_temp_files(tmp_path)
    assert sorted(removed) == sorted([dead, old]) and live.exists() and other.exists()


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_result_files_respect_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    before = os.umask(umask)
    try:
        path = write_set(tmp_path, synthetic_point("a/steps=1", [1.0, 1.0]))
    finally:
        os.umask(before)
    (f,) = path.glob("*.parquet")
    assert f.stat().st_mode & 0o777 == mode


# -- first contact -----------------------------------------------------------------------------------------

def test_help_shows_subcommands_and_the_groups_a_user_can_set(capsys: pytest.CaptureFixture) -> None:
    for flag in ("--help", "-h", "help"):
        assert main([flag]) == 0
        out = capsys.readouterr().out
        for word in ("report", "pareto", "compare", "history", "budget", "claims", "experiment", "method",
                     "hardware", "profile", "timing", "samplers_digits", "ddim", "hardware.threads", "exit codes"):
            assert word in out, word
        groups = out.split("config groups")[1].split("keys (KEY=VALUE)")[0]
        assert "\n  claims" not in groups  # conf/claims holds claim files, not a config group


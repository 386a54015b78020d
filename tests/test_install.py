"""The package installs from a wheel and runs outside the repository: configs, claims and the zoo's
weights are package data, and a user's own config folder joins through Hydra's search path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

from harness.results import load
from tests.helpers import ROOT


def _run(*cmd: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | {"HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repository(tmp_path: Path) -> None:
    start = time.monotonic()
    dist = tmp_path / "dist"
    # the project's build backend (hatchling, in the test extra), without a network
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", dist, ROOT,
         cwd=tmp_path)
    wheel = next(dist.glob("efficiency_harness-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"harness/conf/config.yaml", "harness/conf/claims/speculative_lossless.yaml",
            "harness/conf/experiment/samplers_digits.yaml", "harness/assets/page.js",
            "tasks/zoo/digits_ddpm/unet/diffusion_pytorch_model.safetensors",
            "tasks/zoo/bytes_target/model.safetensors", "methods/diffusion/ddim.py"} <= names
    assert not any(n.startswith(("tests/", "conf/", "results/", "bench/")) for n in names)

    # A fresh venv outside the repository: the package only from the wheel; its dependencies from this
    # venv's site-packages through a .pth line (a path, not a site dir: this venv's editable hook stays out).
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                     cwd=tmp_path).stdout.strip())
    (site / "deps_from_test_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel,
         cwd=tmp_path)
    built = time.monotonic() - start

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = json.loads(_run(python, "-c", "import json, harness, tasks, methods; print(json.dumps([harness.__file__, "
                            "str(harness.CONF_DIR), tasks.__file__, methods.__file__]))", cwd=elsewhere).stdout)
    assert all(p.startswith(str(site)) for p in where), where  # not the repository's copy
    assert where[1] == str(site / "harness" / "conf")

    harness = venv / "bin" / "harness"
    helped = _run(harness, "claims", "--help", cwd=elsewhere)
    assert "Claimed vs measured" in helped.stdout and "--html" in helped.stdout

    run = _run(harness, "profile=smoke", "method=ddim", "method.steps=5", cwd=elsewhere)
    folder = elsewhere / "results" / "samplers_digits-smoke"
    rows = load(folder)
    assert set(rows.variant) == {"ddim/steps=5"} and (rows.status == "ok").all()
    assert "ddim/steps=5" in run.stdout and "FID [95% CI]" in run.stdout  # the report from the packaged configs
    assert rows.git_sha.isna().all()  # no repository around an installed package: its version instead
    assert json.loads(rows.libraries.iloc[0])["efficiency-harness"] == "0.1.0"
    report = _run(harness, "report", folder, "--html", elsewhere / "report.html", cwd=elsewhere)
    assert "ddim/steps=5" in report.stdout and (elsewhere / "report.html").stat().st_size > 0

    # a user's own configs: Hydra's search path adds a folder next to the packaged conf/
    mine = elsewhere / "myconf" / "experiment"
    mine.mkdir(parents=True)
    (mine / "mine.yaml").write_text("# @package _global_\nexperiment_name: mine\nbaseline: ddim/steps=8\n"
                                    "points:\n  - {name: ddim, steps: 8}\n  - {name: unipc, steps: 4}\n")
    cfg = _run(harness, f"hydra.searchpath=[file://{elsewhere / 'myconf'}]", "experiment=mine", "--cfg", "job",
               cwd=elsewhere)
    assert "experiment_name: mine" in cfg.stdout and "steps: 4" in cfg.stdout
    print(f"wheel {wheel.stat().st_size / 1e6:.1f} MB, built and installed in {built:.1f} s; "
          f"test {time.monotonic() - start:.1f} s")

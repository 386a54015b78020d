"""Runs as the unit: R fresh-process reruns of an experiment (``harness aa``), and interleaved A/B
rounds of two code versions on one machine (``harness ab``).

Every run is its own ``python -m harness OVERRIDES results_dir=...`` process (a fresh interpreter,
allocator, thread pool and page cache state, as pyperf's worker processes and asv's rounds), into its
own folder, so the spread between folders is the spread between runs. A folder whose run finished
(``<folder>.meta/run.json`` with exit code 0; a results folder holds result files only) is not run
again, so an interrupted series resumes.

``ab`` alternates the two sides A B B A A B ... (ABBA over rounds, as asv's ``continuous`` mode
runs both commits on one machine): drift slower than a round hits both sides alike and cancels in
the per-round ratios that ``compare(..., paired=True)`` judges.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.results import meta_dir

ROOT = Path(__file__).resolve().parent.parent
MARKER = "run.json"


class RerunError(RuntimeError):
    """A run that did not finish (its exit code and the tail of its output are in the message)."""


@dataclass(frozen=True)
class Side:
    """One code version: the interpreter that runs it and the checkout it runs in."""

    label: str  # as the user gave it
    python: str
    cwd: Path
    git_ref: str | None = None  # resolved commit, when the side is a git ref


def run_once(folder: Path, overrides: list[str], python: str = sys.executable, cwd: Path = ROOT,
             quiet: bool = True) -> Path:
    """``python -m harness OVERRIDES results_dir=FOLDER report=false`` in a fresh process, unless a
    finished run is already there. Raises ``RerunError`` when the process fails."""
    folder = folder.resolve()
    if finished(folder):
        return folder
    marker = meta_dir(folder) / MARKER
    cmd = [python, "-m", "harness", *overrides, f"results_dir={folder}", "report=false"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=quiet, text=True)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"command": cmd, "cwd": str(cwd), "returncode": proc.returncode}, indent=1) + "\n")
    if proc.returncode != 0:
        tail = "\n".join(((proc.stdout or "") + (proc.stderr or "")).splitlines()[-15:])
        raise RerunError(f"run into {folder} exited {proc.returncode}: {' '.join(cmd)} (in {cwd})\n{tail}")
    return folder


def finished(folder: Path) -> bool:
    """A run into ``folder`` finished (its marker says exit code 0). Runs written before the marker
    moved next to the folder kept it inside (``folder/run.json``)."""
    for marker in (meta_dir(folder) / MARKER, folder / MARKER):
        if marker.exists() and json.loads(marker.read_text()).get("returncode") == 0:
            return True
    return False


def aa_runs(out: Path, overrides: list[str], runs: int, python: str = sys.executable, cwd: Path = ROOT) -> list[Path]:
    """R reruns of the same experiment, each in a fresh process: ``out/run00``, ``out/run01``, ..."""
    if runs < 2:
        raise ValueError(f"an A/A profile needs at least 2 runs (3 or more to say much), got {runs}")
    folders = []
    for i in range(runs):
        print(f"[aa {i + 1}/{runs}] {out / f'run{i:02d}'}", flush=True)
        folders.append(run_once(out / f"run{i:02d}", overrides, python, cwd))
    return folders


def resolve_side(spec: str, trees: Path) -> Side:
    """A side of ``harness ab``: ``python:/path/to/python`` (another environment, this checkout), a
    folder holding a checkout (its ``harness/``), or a git ref of this repository (checked out once
    into a worktree under ``trees``)."""
    if spec.startswith("python:"):
        python = spec.removeprefix("python:")
        if not Path(python).exists():
            raise ValueError(f"side {spec!r}: interpreter {python} does not exist")
        return Side(spec, python, ROOT)
    if Path(spec).is_dir():
        if not (Path(spec) / "harness").is_dir():
            raise ValueError(f"side {spec!r} is a folder but not a checkout of this project (no harness/ in it)")
        return Side(spec, sys.executable, Path(spec).resolve())
    sha = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"], cwd=ROOT,
                         capture_output=True, text=True)
    if sha.returncode != 0:
        raise ValueError(f"side {spec!r} is neither python:PATH, a checkout folder, nor a git ref of {ROOT}")
    commit = sha.stdout.strip()
    tree = (trees / commit[:12]).resolve()
    if not (tree / "harness").is_dir():
        trees.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True,
                       capture_output=True, text=True)
    return Side(spec, sys.executable, tree, commit)


def ab_order(rounds: int) -> list[tuple[int, str]]:
    """(round, side) in run order: A B, B A, A B, ... so that each side runs first in half the rounds."""
    return [(r, s) for r in range(rounds) for s in (("A", "B") if r % 2 == 0 else ("B", "A"))]


def ab_runs(out: Path, a: Side, b: Side, overrides: list[str], rounds: int) -> tuple[list[Path], list[Path]]:
    """Interleaved rounds: ``out/r00-A``, ``out/r00-B``, ``out/r01-B``, ``out/r01-A``, ..."""
    if rounds < 2:
        raise ValueError(f"interleaved A/B needs at least 2 rounds for a paired CI, got {rounds}")
    folders: dict[str, list[Path]] = {"A": [], "B": []}
    order = ab_order(rounds)
    for i, (r, s) in enumerate(order, 1):
        side = a if s == "A" else b
        folder = out / f"r{r:02d}-{s}"
        print(f"[ab {i}/{len(order)}] round {r} side {s} ({side.label}) -> {folder}", flush=True)
        folders[s].append(run_once(folder, overrides, side.python, side.cwd))
    return folders["A"], folders["B"]


def remove_trees(trees: Path) -> None:
    """Drop the worktrees ``resolve_side`` made (their results stay under the run folders)."""
    if not trees.is_dir():
        return
    for tree in trees.iterdir():
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)

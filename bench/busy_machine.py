"""Benchmark (not a test): wall time of whole commands on a quiet machine and next to busy neighbours.

Each command runs once quiet and once while ``--load`` pure-Python spinning processes hold the
CPUs (a stand-in for another user's job), in that order, and the table gives both wall times and
their ratio, with the first line of the command's output that warns about a busy machine. Run it
alone (``flock /work/cpu.lock``): its point is what other work does.

    .venv/bin/python bench/busy_machine.py --load 2 "python -m harness profile=smoke results_dir=/tmp/bm-{run}" \\
        "pytest -q tests/test_x.py"
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(command: str, label: str) -> tuple[float, int, str]:
    """(wall seconds, exit code, the busy-machine warning or note it printed, if any); ``{run}`` in the
    command becomes ``label`` (quiet, busy), e.g. to give each run its own results folder."""
    t0 = time.perf_counter()
    proc = subprocess.run(shlex.split(command.replace("{run}", label)), cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    warn = next((ln.strip() for ln in out.splitlines() if "busy machine" in ln), "")
    return wall, proc.returncode, warn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--load", type=int, default=2, help="spinning processes while busy")
    ap.add_argument("commands", nargs="+", help="commands, each one argument (python = this interpreter)")
    args = ap.parse_args()
    commands = [c.replace("python ", f"{sys.executable} ", 1) if c.startswith("python ") else c
                for c in args.commands]
    commands = [c.replace("pytest ", f"{sys.executable} -m pytest ", 1) if c.startswith("pytest ") else c
                for c in commands]
    print(f"# busy-machine benchmark, {time.strftime('%Y-%m-%d %H:%M')}, busy = {args.load} spinning processes\n")
    print("| command | quiet s | busy s | busy / quiet | exit codes | warning printed when busy |")
    print("| --- | --- | --- | --- | --- | --- |", flush=True)
    for command in commands:
        quiet, rc_q, _ = run(command, "quiet")
        spinners = [subprocess.Popen([sys.executable, "-c", "while True:\n    pass"]) for _ in range(args.load)]
        try:
            time.sleep(1.0)
            busy, rc_b, warn = run(command, "busy")
        finally:
            for p in spinners:
                p.kill()
                p.wait()
        shown = command.replace(sys.executable, "python")
        print(f"| `{shown}` | {quiet:.0f} | {busy:.0f} | {busy / quiet:.2f} | {rc_q}, {rc_b} | {warn[:160]} |",
              flush=True)


if __name__ == "__main__":
    main()

"""What a launcher adds to a sweep: wall time of the same smoke sweep under each launcher, side by side.

Each round runs the complete command (``python -m harness EXPERIMENT profile=smoke launcher=...``)
once per launcher, each into a fresh results folder, so every run pays what a user's run pays:
process start, imports, model load, the points, the report. The order of the launchers alternates
between rounds (ABBA ...), so drift on this shared machine hits them alike; the ratio to ``inline``
is taken per round (paired) and summarised by its median and range. The overhead per chunk is
(launcher - inline) / chunks: ``process`` with ``chunk=workload`` has one chunk per workload,
``process-per-point`` one per point.

    flock /work/cpu.lock .venv/bin/python bench/launch_overhead.py --rounds 2 \\
        --launchers inline,process,process-per-point,slurm-local,ray
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.timing import wall_time  # noqa: E402

LAUNCHERS = {
    "inline": [],
    "process": ["launcher=process"],
    "process-per-point": ["launcher=process", "launcher.chunk=point"],
    # Jobs of the local cluster run at once; with one chunk there is one job, as on one GPU node.
    "slurm-local": ["launcher=slurm", "launcher.cluster=local", "launcher.poll_s=0.2"],
    "ray": ["launcher=ray", "launcher.num_gpus=0", "launcher.poll_s=0.2"],
}


def run(name: str, experiment: str, folder: Path) -> float:
    env = dict(os.environ, HF_HUB_OFFLINE="1", RAY_AUTH_MODE="disabled")
    cmd = [sys.executable, "-m", "harness", f"experiment={experiment}", "profile=smoke", f"results_dir={folder}",
           *LAUNCHERS[name]]
    proc, seconds = wall_time(lambda: subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True))
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiment", default="samplers_digits")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--launchers", default="inline,process,process-per-point,slurm-local,ray")
    args = p.parse_args()
    names = args.launchers.split(",")
    bad = [n for n in names if n not in LAUNCHERS]
    if bad or "inline" not in names:
        raise SystemExit(f"--launchers {bad or names}: choose from {', '.join(LAUNCHERS)}, inline included")
    from harness.plan import compose_config, plan

    points = plan(compose_config([f"experiment={args.experiment}", "profile=smoke"]))
    workloads = len({(str(p.task), str(p.model), str(p.hardware)) for p in points})
    chunks = {n: len(points) if n.endswith("per-point") else workloads for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                t = run(name, args.experiment, Path(tmp) / f"{name}-{r}")
                times[name].append(t)
                print(f"round {r + 1} {name:18s} {t:7.1f} s", flush=True)
    base = np.array(times["inline"])
    print(f"\n{args.experiment} profile=smoke: {len(points)} points, {workloads} workload(s); {args.rounds} round(s), "
          f"order alternating; wall time of the whole command")
    print(f"{'launcher':18s} {'median s':>9s} {'ratio to inline (median [min, max] over rounds)':>50s} "
          f"{'chunks':>6s} {'added s per chunk':>18s}")
    for name in names:
        t = np.array(times[name])
        ratio = t / base
        added = np.median(t - base) / chunks[name]
        print(f"{name:18s} {np.median(t):9.1f} {np.median(ratio):27.3f} [{ratio.min():.3f}, {ratio.max():.3f}]"
              f"{'':9s} {chunks[name]:6d} {added if name != 'inline' else 0:18.2f}")


if __name__ == "__main__":
    main()

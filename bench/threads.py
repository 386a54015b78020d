"""Benchmark (not a test): one sampler call at 1 and 2 threads, OpenMP wait policies, on a quiet and a busy machine.

Each cell is a fresh process (the OpenMP runtime reads ``OMP_WAIT_POLICY`` once, when torch loads
it) timing one call of the default experiment's workload: DDIM at ``--steps`` steps on a batch of
``--batch`` digits images, with ``harness.timing.measure`` under a ``--budget`` second cap. "busy N"
starts N pure-Python spinning processes (a stand-in for a neighbour's job) before the cell and
stops them after. Run it alone (``flock /work/cpu.lock``): its point is what other work does.

    .venv/bin/python bench/threads.py [--loads 0 2] [--threads 1 2] [--waits unset PASSIVE] [--steps 5] [--rounds 3]

Prints one row per cell and round, then per cell the median over rounds of the per-round medians
(rounds alternate the cells, so slow drift on a shared machine spreads over all of them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPIN = "while True:\n    pass"


def child(threads: int, steps: int, batch: int, budget: float) -> None:
    import numpy as np
    import torch

    from harness.machine import measure_load
    from harness.registry import lookup
    from harness.timing import TimingPolicy, measure

    load = measure_load()
    torch.set_num_threads(threads)
    task_cls, method_cls = lookup("task", "image_generation"), lookup("method", "ddim")
    task = task_cls(task_cls.Config(name="image_generation", batch_size=batch, n_samples=32, kid_subsets=0),
                    {"name": "digits_unet", "source": "zoo:digits_ddpm"}, torch.device("cpu"), torch.float32)
    prepared = task.prepare(method_cls(method_cls.Config(name="ddim", steps=steps)), 0)
    policy = TimingPolicy(warmup_min_calls=2, warmup_min_s=0.0, min_repeats=3, min_time_s=0.5, max_time_s=budget)
    t0 = time.perf_counter()
    with torch.no_grad():
        m = measure(prepared.call, policy)
    s = np.asarray(m.samples_s)
    print(json.dumps({"median": float(np.median(s)), "min": float(s.min()), "max": float(s.max()), "n": len(s),
                      "cold": m.cold_s, "wall": time.perf_counter() - t0, "busy_before": load.busy_cores,
                      "threads": torch.get_num_threads()}))


def spinners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loads", type=int, nargs="+", default=[0, 2], help="spinning processes per block")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--waits", nargs="+", default=["unset", "PASSIVE"], help="OMP_WAIT_POLICY values (unset: none)")
    ap.add_argument("--steps", type=int, nargs="+", default=[5])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--budget", type=float, default=3.0, help="timing cap per cell, s (min 3 repeats)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.threads[0], args.steps[0], args.batch, args.budget)
        return
    import torch

    from harness.env import environment
    from harness.machine import measure_load

    print(f"# threads benchmark: torch {torch.__version__}, {environment(torch.device('cpu'))['cpu']}, "
          f"{len(os.sched_getaffinity(0))} CPUs, DDIM batch {args.batch}, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"# before: {measure_load(1.0)}\n")
    print("| load | steps | threads | OMP_WAIT_POLICY | round | median s per call | min - max | repeats | busy cores "
          "before | cell wall s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    cells = [(load, steps, threads, wait) for load in args.loads for steps in args.steps for threads in args.threads
             for wait in args.waits]
    medians: dict[tuple, list[float]] = {c: [] for c in cells}
    for load in args.loads:
        procs = spinners(load)
        try:
            time.sleep(1.0)
            for rnd in range(args.rounds):
                for cell in [c for c in cells if c[0] == load]:
                    r = run_cell(*cell[1:], args)
                    name = "quiet" if load == 0 else f"busy {load}"
                    if "error" in r:
                        print(f"| {name} | {cell[1]} | {cell[2]} | {cell[3]} | {rnd} | FAILED: {r['error']} |",
                              flush=True)
                        continue
                    medians[cell].append(r["median"])
                    print(f"| {name} | {cell[1]} | {r['threads']} | {cell[3]} | {rnd} | {r['median']:.4g} | "
                          f"{r['min']:.3g} - {r['max']:.3g} | {r['n']} | {r['busy_before']:.2f} | {r['wall']:.1f} |",
                          flush=True)
        finally:
            for p in procs:
                p.kill()
                p.wait()
    print("\n| load | steps | threads | OMP_WAIT_POLICY | median over rounds, s per call | range of round medians "
          "| rounds |\n| --- | --- | --- | --- | --- | --- | --- |")
    for (load, steps, threads, wait), meds in medians.items():
        if meds:
            print(f"| {'quiet' if load == 0 else f'busy {load}'} | {steps} | {threads} | {wait} | "
                  f"{statistics.median(meds):.4g} | {min(meds):.3g} - {max(meds):.3g} | {len(meds)} |")


def run_cell(steps: int, threads: int, wait: str, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if wait != "unset":
        env["OMP_WAIT_POLICY"] = wait
    cmd = [sys.executable, __file__, "--child", "--threads", str(threads), "--steps", str(steps), "--batch",
           str(args.batch), "--budget", str(args.budget)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()

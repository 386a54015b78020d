"""How fast does this machine's speed change? One process times the same call for a while and prints
the median of each time window, then a few fresh processes do the same for a short while.

Interleaved A/B (``harness ab``, ``bench/interleaved_ab.py``) pairs run i of A with run i of B, which
ran next to each other. The pairing cancels changes of the machine's speed that are slower than a
round (two fresh processes, ~25 s here); changes faster than that stay in the per-round ratios. If
the window medians of one process move as much as the run medians of fresh processes, the noise is
the machine's (co-tenants, steal time), not a per-process state such as memory layout, and more
rounds, not pinning or pairing, are what narrow a verdict.

The call is a stack of 8 3x3 convolutions on a 64 x 64 x 16 x 16 batch, one thread, as the digits
UNet's work is (small convolutions, cache resident). Each window is one ``harness.timing.measure``
with a fixed repeat cap and no precision stop. The machine's steal time (``/proc/stat``, VMs only)
over the whole run is printed as well.

    .venv/bin/python bench/machine_drift.py --seconds 40 --fresh 6
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.timing import TimingPolicy, measure  # noqa: E402


def _steal_ticks() -> int | None:
    """Cumulative steal time of all CPUs in clock ticks (field 8 of /proc/stat's cpu line), if readable."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        return int(fields[8])
    except (OSError, IndexError, ValueError):
        return None


def windows(seconds: float, window: float) -> list[float]:
    """Median call time (ms) of each ``window``-second window over ``seconds`` seconds, in one process."""
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 64, 16, 16, generator=gen)
    w = torch.randn(64, 64, 3, 3, generator=gen) / 24

    def call() -> torch.Tensor:
        y = x
        for _ in range(8):
            y = torch.nn.functional.conv2d(y, w, padding=1).tanh()
        return y

    # Stop on time only: a precision stop would end a window early whenever it is quiet.
    policy = TimingPolicy(warmup_min_calls=3, min_repeats=2, min_time_s=window, max_time_s=window,
                          max_repeats=100_000, target_rel_ci=0.0)
    n = max(1, round(seconds / window))
    return [float(np.median(measure(call, policy).samples_s)) * 1e3 for _ in range(n)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=40.0, help="length of the long process's series")
    p.add_argument("--window", type=float, default=2.0, help="seconds per window")
    p.add_argument("--fresh", type=int, default=6, help="fresh processes of two windows each")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(" ".join(f"{m:.2f}" for m in windows(args.seconds, args.window)))
        return
    steal0 = _steal_ticks()
    series = windows(args.seconds, args.window)
    fresh = []
    for _ in range(args.fresh):
        out = subprocess.run([sys.executable, __file__, "--child", "--seconds", str(2 * args.window),
                              "--window", str(args.window)], capture_output=True, text=True, check=True)
        fresh.append([float(v) for v in out.stdout.split()])
    steal1 = _steal_ticks()

    def sd_log(v: list[float]) -> float:
        return float(np.std(np.log(v), ddof=1)) if len(v) > 1 else float("nan")

    print(f"one process, {len(series)} windows of {args.window:g} s (median ms per call, 1 thread):")
    print("  " + " ".join(f"{m:.1f}" for m in series))
    print(f"  range {min(series):.1f}-{max(series):.1f} ms, sd of log window medians {sd_log(series):.3f}, "
          f"lag-1 autocorrelation {np.corrcoef(np.log(series[:-1]), np.log(series[1:]))[0, 1]:.2f}")
    print(f"{len(fresh)} fresh processes, 2 windows each:")
    print("  " + " | ".join(" ".join(f"{m:.1f}" for m in f) for f in fresh))
    firsts = [f[0] for f in fresh]
    print(f"  sd of log first-window medians across processes {sd_log(firsts):.3f}; "
          f"mean |log ratio| of a process's two windows {np.mean([abs(np.log(f[1] / f[0])) for f in fresh]):.3f}")
    if steal0 is not None and steal1 is not None:
        print(f"steal time over the whole run: {(steal1 - steal0) / 100:.1f} s of CPU (all CPUs, 100 ticks/s)")


if __name__ == "__main__":
    main()

"""Interleaved A/B on this machine (``harness ab``): false alarms of a commit against itself, and
detection of a variant that is really slower.

Each trial is one interleaved A/B: ``--rounds`` rounds of fresh-process runs in the order
A B, B A, A B, ... (``harness.reruns.ab_runs``), judged by ``compare(..., paired=True)`` on the
per-round ratios at a 5% margin. Trials of the same commit against itself count false alarms
(a regression or improvement verdict on any point); trials against a scratch checkout of the same
commit patched to do more work with the same outputs (``--variant``, default ``denoiser:3``: one
extra denoiser call every third call, about 30% more work) count detections. The slowdown the
variant really causes is measured by the trials themselves.

    .venv/bin/python bench/interleaved_ab.py --same 20 --slow 10 --rounds 12 --out results/bench_ab
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import fmt  # noqa: E402
from harness.compare import CHANGED, IMPROVEMENT, REGRESSION, compare  # noqa: E402
from harness.reruns import ab_runs, finished, resolve_side  # noqa: E402
from harness.results import load  # noqa: E402

SWEEP = ["profile=smoke", "interleave=false", "baseline='ddim/steps=10'"]
POINTS = "[{name: ddim, steps: 10}, {name: unipc, steps: 5}]"
TARGET = "tasks/diffusion/image_generation.py"
STEP = "        eps = unet(scheduler.scale_model_input(x, t), t).sample\n"


# The slower variants, as patches after the denoiser call of the sampling loop. ``matmul``: one extra
# N x N matmul per denoiser call; its cost does not follow its FLOPs, since it shares the caches with
# the UNet (448, 576, 608 and 704 made DDIM-10 3%, 22%, 44% and 58% slower on this VM), so each size
# has to be measured first. ``denoiser``: one extra (discarded) denoiser call every N-th call: the same
# kernels on the same tensors, so the work grows by 1/N of the UNet's share of a sampling call.
VARIANTS = {
    "matmul": ("        torch.mm(_EXTRA, _EXTRA)  # bench/interleaved_ab.py: slower variant\n",
               "\n\n_EXTRA = torch.randn({n}, {n})  # bench/interleaved_ab.py: read by denoise at call time\n"),
    "denoiser": ("        _CALLS[0] += 1  # bench/interleaved_ab.py: slower variant\n"
                 "        if _CALLS[0] % {n} == 0:\n"
                 "            unet(scheduler.scale_model_input(x, t), t)\n",
                 "\n\n_CALLS = [0]  # bench/interleaved_ab.py: denoiser calls so far in this process\n"),
}


def parse_variant(text: str) -> tuple[str, int]:
    kind, _, n = text.partition(":")
    if kind not in VARIANTS or not n.isdigit() or int(n) < 1:
        raise SystemExit(f"--variant {text!r}: expected KIND:N with KIND one of {', '.join(VARIANTS)} and N >= 1")
    return kind, int(n)


def slow_tree(ref: str, out: Path, kind: str, n: int) -> Path:
    """A worktree of ``ref`` whose sampling loop does more work with the same outputs (``VARIANTS``):
    the really slower variant."""
    # The matmul variant keeps the folder name of the series run before --variant existed.
    tree = (out / (f"slow-extra{n}" if kind == "matmul" else f"slow-{kind}{n}")).resolve()
    if not (tree / "harness").is_dir():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), ref], cwd=ROOT, check=True,
                       capture_output=True)
        (tree / TARGET).write_text(patched((tree / TARGET).read_text(), kind, n))
    return tree


def patched(src: str, kind: str, n: int) -> str:
    """``TARGET``'s source with the slower variant's lines after its denoiser call."""
    if STEP not in src:
        raise RuntimeError(f"{TARGET} has no line {STEP.strip()!r} to patch")
    patch, tail = VARIANTS[kind]
    return src.replace(STEP, STEP + patch.format(n=n)) + tail.format(n=n)


def trial(out: Path, a: str, b: str, rounds: int, sweep: list[str]) -> tuple[list[str], list[float], list[str], list]:
    """Run (or reuse) one interleaved A/B; its latency verdicts and ratios, its co-metric verdicts, and
    one table row per point: the paired verdict next to the unpaired one (Welch over the same runs)."""
    trees = out.parent / "trees"
    fa, fb = ab_runs(out, resolve_side(a, trees), resolve_side(b, trees), sweep, rounds)
    ra, rb = load(*fa), load(*fb)
    c = compare(ra, rb, ["latency"], 0.05, paired=True)
    welch = compare(ra, rb, ["latency"], 0.05).per_point.set_index("variant")
    exact = compare(ra, rb, ["flops", "nfe"], 0.05, paired=True)
    rows = [[out.name, r.variant, fmt.ci(r.ratio, r.low, r.high), r.verdict, fmt.num(r.se * np.sqrt(rounds)),
             f"{r.detectable:.0%}", f"{welch.detectable[r.variant]:.0%}", welch.verdict[r.variant]]
            for r in c.per_point.itertuples()]
    return list(c.per_point.verdict), list(c.per_point.ratio), list(exact.per_point.verdict), rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--same", type=int, default=20, help="trials of the commit against itself")
    p.add_argument("--slow", type=int, default=10, help="trials against the slower variant")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--ref", default="HEAD")
    p.add_argument("--variant", default="denoiser:3", help="the slower variant: matmul:N (an extra N x N matmul "
                   "per denoiser call) or denoiser:N (an extra denoiser call every N-th call); default denoiser:3")
    p.add_argument("--out", default="results/bench_ab")
    p.add_argument("--max-new", type=int, default=None, help="run at most this many new trials, then stop")
    p.add_argument("--report", action="store_true", help="only summarise the trials already run")
    p.add_argument("--points", default=POINTS, help=f"the sweep's points (default {POINTS})")
    p.add_argument("--set", action="append", default=[], metavar="OVERRIDE",
                   help="extra Hydra override for every run (e.g. hardware.threads=1); repeatable")
    args = p.parse_args()
    sweep = [*SWEEP, f"points={args.points}", *args.set]
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pinned = out / "ref"  # a resumed series keeps the commit it started with
    ref = pinned.read_text().strip() if pinned.exists() else subprocess.run(
        ["git", "rev-parse", args.ref], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    pinned.write_text(ref + "\n")
    kind, n = parse_variant(args.variant)
    slow = str(slow_tree(ref, out, kind, n))
    prefix = f"slow{n}-" if kind == "matmul" else f"slow-{kind}{n}-"  # matmul: the names of older series
    # Alternate same-commit and slower-variant trials, so that a partial series has both.
    same = [("same", t, ref, ref) for t in range(args.same)]
    slower = [(prefix, t, ref, slow) for t in range(args.slow)]
    plans = [p for pair in zip(same, slower) for p in pair] + same[len(slower):] + slower[len(same):]
    new = 0
    results: dict[str, list] = {"same": [], "slow": []}  # slower-variant folders name their --variant
    for kind, t, a, b in plans:
        folder = out / f"{kind}{t:02d}"
        if not all(finished(folder / f"r{r:02d}-{s}") for r in range(args.rounds) for s in "AB"):
            if args.report or (args.max_new is not None and new >= args.max_new):
                continue
            new += 1
        results["same" if kind == "same" else "slow"].append(trial(folder, a, b, args.rounds, sweep))
    print(f"interleaved A/B, {args.rounds} rounds per trial (A B, B A, ...), fresh process per run; "
          f"{' '.join(sweep)}; commit {ref[:12]}; margin 5%, paired t over rounds, FDR 5% across points\n")
    print(fmt.table(["trial", "point", "B/A [95% CI], paired", "verdict", "sd of per-round log ratio",
                     "detectable (80% power)", "detectable unpaired", "verdict unpaired"],
                    [row for kind in ("same", "slow") for *_, rows in results[kind] for row in rows], markdown=True))
    print()
    same = results["same"]
    alarms = [any(v in (REGRESSION, IMPROVEMENT) for v in vs) for vs, _, _, _ in same]
    print(f"same commit against itself: {len(same)} trials, {sum(alarms)} with a false alarm on some point; "
          f"verdicts over trials x points: " + ", ".join(
              f"{k} {sum(v == k for vs, *_ in same for v in vs)}" for k in ("no change", "inconclusive",
                                                                              REGRESSION, IMPROVEMENT)))
    slow_r = results["slow"]
    if slow_r:
        ratios = np.array([r for _, rs, *_ in slow_r for r in rs])
        det = [all(v == REGRESSION for v in vs) for vs, *_ in slow_r]
        per_point = sum(v == REGRESSION for vs, *_ in slow_r for v in vs)
        changed = sum(any(v == CHANGED for v in ex) for _, _, ex, _ in slow_r)
        print(f"variant {args.variant}: measured slowdown (geometric mean of the "
              f"paired ratios) x{np.exp(np.log(ratios).mean()):.3f} (range {ratios.min():.3f}-{ratios.max():.3f}); "
              f"{sum(det)} of {len(slow_r)} trials detected it on every point ({per_point} of {len(ratios)} point "
              f"verdicts 'regression'); FLOPs/NFE co-metrics flagged 'changed' in {changed} of {len(slow_r)} trials")


if __name__ == "__main__":
    main()

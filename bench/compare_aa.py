"""A/A false alarms and injected regressions of ``harness compare``, on real fresh-process reruns.

N runs of one small smoke sweep, each in a fresh process (``harness.reruns.run_once``), are split
into disjoint sets of R runs. Every verdict between two sets of the same code is a false alarm
(regression or improvement) or a non-answer (inconclusive). Then the same comparisons with side B's
latencies multiplied by 1.3 (an injected 30% regression): the detection rate, for the points whose
printed detectable effect is below 30% and for all. Also shown, on the same runs:

- the repeat-level verdicts ``compare`` gave before the run became the unit (one run per side,
  bootstrap over the repeats of one process): the false alarms this issue was about;
- one run per side, with the between-run spread from a noise profile built from the other runs;
- ``history`` on the N-run series (no change should be found), and with a 1.3x step injected
  halfway (it should be);
- what R buys: the median detectable regression at R runs per side.

    .venv/bin/python bench/compare_aa.py --runs 12 --set-size 3 --out /tmp/aa
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import noise  # noqa: E402
from harness.compare import IMPROVEMENT, INCONCLUSIVE, NO_CHANGE, REGRESSION, compare, history, verdict  # noqa: E402
from harness.reruns import finished, run_once  # noqa: E402
from harness.results import load  # noqa: E402
from harness.stats import speedup_ci  # noqa: E402

SWEEP = ["profile=smoke", "interleave=false", "baseline='ddim/steps=10'",
         "points=[{name: ddim, steps: 10}, {name: dpm_solver, steps: 10}, {name: unipc, steps: 5}]"]
MARGIN = 0.05
INJECT = 1.3


def share(hits: list[bool]) -> str:
    return f"{np.mean(hits):.0%} ({sum(hits)}/{len(hits)})" if hits else "- (no such point)"


def rates(verdicts: list[str]) -> str:
    v = np.asarray(verdicts)
    if not len(v):
        return "-"
    alarm = np.isin(v, [REGRESSION, IMPROVEMENT]).mean()
    return f"{np.mean(v == NO_CHANGE):.0%} / {np.mean(v == INCONCLUSIVE):.0%} / {alarm:.0%} ({len(v)})"


def latency(rows: pd.DataFrame) -> pd.DataFrame:
    """End-to-end latency rows only (what is judged), so comparisons stay fast."""
    return rows[(rows.metric == "latency") & (rows.stage == "end_to_end")]


def inject(rows: pd.DataFrame, factor: float) -> pd.DataFrame:
    out = rows.copy()
    out["value"] = out.value * factor
    return out


def old_verdicts(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """What compare did before: one run per side, a bootstrap CI over the repeats of each process."""
    out = []
    for v in sorted(set(a.variant)):
        e = speedup_ci(b[b.variant == v].value.to_numpy(), a[a.variant == v].value.to_numpy(), n_resamples=2000)
        out.append(verdict(e.low, e.high, MARGIN, False))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=12)
    p.add_argument("--set-size", type=int, default=3)
    p.add_argument("--out", default="/tmp/compare_aa")
    p.add_argument("--only-run", action="store_true", help="run the missing reruns, then stop (to split the work)")
    p.add_argument("--max-new", type=int, default=None, help="at most this many new runs in this invocation")
    p.add_argument("--set", action="append", default=[], metavar="OVERRIDE",
                   help="extra Hydra override for every run (e.g. hardware.threads=1); repeatable")
    args = p.parse_args()
    sweep = SWEEP + args.set
    out = Path(args.out)
    done = 0
    for i in range(args.runs):
        folder = out / f"run{i:02d}"
        if not finished(folder):
            if args.max_new is not None and done >= args.max_new:
                print(f"stopping after {done} new runs; rerun to continue", flush=True)
                return
            done += 1
        run_once(folder, sweep)
    if args.only_run:
        return
    runs = [latency(load(out / f"run{i:02d}")) for i in range(args.runs)]
    r = args.set_size
    sets = [pd.concat(runs[i:i + r], ignore_index=True) for i in range(0, args.runs - r + 1, r)]
    per_run = pd.DataFrame({i: x.groupby("variant").value.median() for i, x in enumerate(runs)})
    spread = (per_run.max(axis=1) / per_run.min(axis=1) - 1)
    between = np.log(per_run).std(axis=1, ddof=1)
    print(f"{args.runs} fresh-process runs of {len(per_run)} points ({' '.join(sweep)}); per point: largest "
          f"spread of the run medians {', '.join(f'{v} {s:.0%}' for v, s in spread.items())}; between-run sd of "
          f"log median {', '.join(f'{v} {s:.3f}' for v, s in between.items())}\n")

    print(f"| comparison (margin {MARGIN:.0%}) | comparisons x points | no change / inconclusive / false alarm (n) | "
          f"median detectable | injected x{INJECT}: detected where detectable < 30% | injected: detected, all |")
    print("| --- | --- | --- | --- | --- | --- |")
    pairs = list(itertools.combinations(range(len(sets)), 2))
    verdicts, dets, hits_small, hits_all = [], [], [], []
    for i, j in pairs:
        c = compare(sets[i], sets[j], ["latency"], MARGIN)
        verdicts += list(c.per_point.verdict)
        dets += list(c.per_point.detectable)
        ci = compare(sets[i], inject(sets[j], INJECT), ["latency"], MARGIN)
        hit = ci.per_point.verdict == REGRESSION
        hits_small += list(hit[c.per_point.detectable.to_numpy() < INJECT - 1])
        hits_all += list(hit)
    print(f"| {r} vs {r} runs, disjoint consecutive sets | {len(pairs)} x {len(per_run)} | {rates(verdicts)} | "
          f"{np.median(dets):.0%} | {share(hits_small)} | {share(hits_all)} |")

    rng = np.random.default_rng(0)
    verdicts, dets, hits_small, hits_all = [], [], [], []
    for _ in range(100):
        pick = rng.permutation(args.runs)[: 2 * r]
        a = pd.concat([runs[k] for k in pick[:r]], ignore_index=True)
        b = pd.concat([runs[k] for k in pick[r:]], ignore_index=True)
        c = compare(a, b, ["latency"], MARGIN)
        verdicts += list(c.per_point.verdict)
        dets += list(c.per_point.detectable)
        hit = compare(a, inject(b, INJECT), ["latency"], MARGIN).per_point.verdict == REGRESSION
        hits_small += list(hit[c.per_point.detectable.to_numpy() < INJECT - 1])
        hits_all += list(hit)
    print(f"| {r} vs {r} runs, 100 random disjoint splits | 100 x {len(per_run)} | {rates(verdicts)} | "
          f"{np.median(dets):.0%} | {share(hits_small)} | {share(hits_all)} |")

    one = list(itertools.combinations(range(args.runs), 2))
    old, plain, prof_v, prof_d, prof_hit = [], [], [], [], []
    for i, j in one:
        old += old_verdicts(runs[i], runs[j])
        plain += list(compare(runs[i], runs[j], ["latency"], MARGIN).per_point.verdict)
        rest = [runs[k] for k in range(args.runs) if k not in (i, j)]
        prof = noise.Profile("leave-two-out", noise.build(pd.concat(rest, ignore_index=True)))
        c = compare(runs[i], runs[j], ["latency"], MARGIN, profiles=[prof])
        prof_v += list(c.per_point.verdict)
        prof_d += list(c.per_point.detectable)
        prof_hit += list(compare(runs[i], inject(runs[j], INJECT), ["latency"], MARGIN,
                                 profiles=[prof]).per_point.verdict == REGRESSION)
    print(f"| 1 vs 1 run, repeat-level CI (compare before this change) | {len(one)} x {len(per_run)} | "
          f"{rates(old)} | - | - | - |")
    print(f"| 1 vs 1 run, no noise profile | {len(one)} x {len(per_run)} | {rates(plain)} | - | - | - |")
    print(f"| 1 vs 1 run, noise profile from the other {args.runs - 2} runs | {len(one)} x {len(per_run)} | "
          f"{rates(prof_v)} | {np.nanmedian(prof_d):.0%} | - | {np.mean(prof_hit):.0%} |")

    print("\nwhat R buys (median detectable regression at a 5% margin over 100 random disjoint splits):")
    for rr in range(2, args.runs // 2 + 1):
        d = []
        for _ in range(100):
            pick = rng.permutation(args.runs)[: 2 * rr]
            a = pd.concat([runs[k] for k in pick[:rr]], ignore_index=True)
            b = pd.concat([runs[k] for k in pick[rr:]], ignore_index=True)
            d += list(compare(a, b, ["latency"], MARGIN).per_point.detectable)
        print(f"  R={rr} runs per side: {np.median(d):.0%}")

    series = pd.concat(runs, ignore_index=True)
    h = history(series, "latency", MARGIN)
    step = pd.concat([x if k < args.runs // 2 else inject(x, INJECT) for k, x in enumerate(runs)], ignore_index=True)
    hs = history(step, "latency", MARGIN)
    found = hs[hs.change == REGRESSION]
    print(f"\nhistory over the {args.runs} runs: {int(h.change.astype(bool).sum())} change(s) found over "
          f"{h.match.nunique()} points; with x{INJECT} from run {args.runs // 2} on: {len(found)} regression(s) "
          f"found (run index {args.runs // 2} expected on each point):")
    for _, grp in hs.groupby("match"):
        ks = list(grp.reset_index(drop=True).index[grp.change.to_numpy() == REGRESSION])
        print(f"  {grp.variant.iloc[0]}: change at run(s) {ks}")


if __name__ == "__main__":
    main()

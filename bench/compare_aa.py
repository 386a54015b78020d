"""False-positive rate of ``harness compare`` on A/A pairs: the same sweep rerun, compared pairwise.

Every rerun measures the same points in a fresh process, so any verdict other than "no change"
is a false alarm (regression/improvement) or a non-answer (inconclusive). Reports the rates per
margin for real reruns on this machine, and for synthetic A/A pairs drawn from one distribution
(what the statistics alone would give without between-run drift).

    .venv/bin/python bench/compare_aa.py --reruns 8 --out /tmp/aa
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.compare import INCONCLUSIVE, NO_CHANGE, compare  # noqa: E402
from harness.results import load  # noqa: E402

SWEEP = ["task.n_samples=200", "task.batch_size=16", "task.eval_batch=200", "task.fid_bootstrap=50",
         "timing.max_time_s=3", "report=false", "baseline='ddim/steps=10'",
         "points=[{name: ddim, steps: 10}, {name: dpm_solver, steps: 10}, {name: unipc, steps: 5}]"]
MARGINS = (0.02, 0.05, 0.10, 0.20)


def rerun(out: Path, i: int) -> Path:
    folder = out / f"run{i}"
    if not folder.exists():
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        subprocess.run([sys.executable, "-m", "harness", *SWEEP, f"results_dir={folder}"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
    return folder


def rates(verdicts: list[str]) -> tuple[float, float, float]:
    v = np.asarray(verdicts)
    return (float(np.mean(v == NO_CHANGE)), float(np.mean(v == INCONCLUSIVE)),
            float(np.mean((v != NO_CHANGE) & (v != INCONCLUSIVE))))


def synthetic(n_pairs: int, repeats: int, sd: float, margin: float, rng: np.random.Generator) -> list[str]:
    from harness.compare import verdict
    from harness.stats import speedup_ci

    out = []
    for _ in range(n_pairs):
        a, b = rng.lognormal(0, sd, repeats), rng.lognormal(0, sd, repeats)
        e = speedup_ci(b, a, n_resamples=2000, seed=int(rng.integers(1 << 31)))
        out.append(verdict(e.low, e.high, margin, False))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reruns", type=int, default=8)
    p.add_argument("--out", default="/tmp/compare_aa")
    args = p.parse_args()
    out = Path(args.out)
    folders = [rerun(out, i) for i in range(args.reruns)]
    sets = [load(f) for f in folders]
    lat = [r[(r.metric == "latency") & (r.stage == "end_to_end")] for r in sets]
    medians = pd.DataFrame({i: x.groupby("variant").value.median() for i, x in enumerate(lat)})
    spread = (medians.max(axis=1) / medians.min(axis=1) - 1).max()
    reps = int(np.median([len(x) / x.variant.nunique() for x in lat]))
    within_sd = float(np.median([np.log(g.value).std() for x in lat for _, g in x.groupby("variant")]))
    print(f"{args.reruns} reruns x {medians.shape[0]} points; largest spread of a point's median across reruns "
          f"{spread:.1%}; median repeats per point {reps}; median within-run sd of log latency {within_sd:.3f}")
    print("| margin | pairs x points | real reruns: no change / inconclusive / false alarm | "
          "synthetic A/A: no change / inconclusive / false alarm | fid: false alarm |")
    print("| --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    for margin in MARGINS:
        lat_v, fid_v = [], []
        for a, b in itertools.combinations(sets, 2):
            c = compare(a, b, ["latency", "fid"], margin)
            lat_v += list(c.per_point[c.per_point.metric == "latency"].verdict)
            fid_v += list(c.per_point[c.per_point.metric == "fid"].verdict)
        syn = synthetic(len(lat_v), reps, within_sd, margin, rng)
        r, s, f = rates(lat_v), rates(syn), rates(fid_v)
        print(f"| {margin:.0%} | {len(lat_v)} | {r[0]:.0%} / {r[1]:.0%} / {r[2]:.0%} | "
              f"{s[0]:.0%} / {s[1]:.0%} / {s[2]:.0%} | {f[2]:.0%} |")


if __name__ == "__main__":
    main()

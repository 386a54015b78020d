"""Does one seed's interval describe the next seed? Quality contrasts of the claims, seed by seed.

For each (baseline, method) pair, every seed gives a paired-bootstrap estimate d_s of the quality
difference with its interval (``harness.contrast``). This script measures, over seeds 0..N-1:

- how often one seed's interval contains the mean of all N seeds' estimates (the quantity a claim is
  about), and how often it contains another seed's estimate;
- how often a 3-seed t-interval across seeds (what ``harness claims`` now uses) contains the mean of
  the other N - 3 seeds, over all disjoint (triple, rest) splits;
- the seed-to-seed sd of d against the bootstrap's own sd (half-width / 1.96).

Points run through the harness itself with the experiments' own settings, into the experiments' own
folders, so ``harness claims`` reuses them (and they reuse the default run's). On this 2-core machine
the digits points take about 2.5 min per seed.

    .venv/bin/python bench/seed_coverage.py --seeds 0-9
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import fmt  # noqa: E402
from harness.analysis import estimates  # noqa: E402
from harness.contrast import contrast  # noqa: E402
from harness.launch.launcher import launch  # noqa: E402
from harness.plan import compose_config, plan  # noqa: E402
from harness.results import load  # noqa: E402
from harness.stats import mean_t_ci  # noqa: E402

# (experiment, metric, baseline, methods): the quality checks of the registered claims.
STUDIES = {
    "digits": ("samplers_digits", "fid", "ddim/steps=50",
               ["ddim/steps=10", "dpm_solver/steps=10", "unipc/steps=10", "deis/steps=10"],
               # the points of the registered digits claims, and UniPC-10
               "points=[{name: ddim, steps: 50}, {name: ddim, steps: 10}, {name: dpm_solver, steps: 10}, "
               "{name: unipc, steps: 10}, {name: deis, steps: 10}, {name: dpm_solver, steps: 5}, "
               "{name: unipc, steps: 5}]"),
    "arith": ("repeated_sampling_arith", "coverage_at_n", "greedy", ["sampling"],
              "points=[{name: greedy}, {name: sampling}]"),
}


def run_seed(study: str, seed: int) -> str:
    experiment, _, _, _, points = STUDIES[study]
    cfg = compose_config([f"experiment={experiment}", "report=false", f"seed={seed}", points])
    launch(plan(cfg), OmegaConf.to_object(cfg.launcher), results_dir=cfg.results_dir, experiment=cfg.experiment_name,
           baseline=cfg.baseline).wait()
    return str(cfg.results_dir)


def per_seed(study: str, folder: str, seeds: list[int]) -> pd.DataFrame:
    _, metric, base, methods, _ = STUDIES[study]
    est = estimates(load(folder))
    out = []
    for seed in seeds:
        q = est[(est.metric == metric) & (est.seed == seed)].set_index("variant")
        for m in methods:
            e = contrast(q.loc[base], q.loc[m], "difference")
            out.append({"seed": seed, "method": m, "d": e.value, "low": e.low, "high": e.high,
                        "estimator": e.estimator})
    return pd.DataFrame(out)


def coverage(d: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for m, g in d.groupby("method", sort=False):
        g = g.sort_values("seed")
        v, lo, hi = g.d.to_numpy(), g.low.to_numpy(), g.high.to_numpy()
        n = len(v)
        mean = v.mean()
        one_mean = np.mean((lo <= mean) & (mean <= hi)) if not np.isnan(lo).all() else np.nan
        other = [(lo[i] <= v[j] <= hi[i]) for i in range(n) for j in range(n) if i != j]
        triples, hits = 0, 0
        for idx in itertools.combinations(range(n), 3):
            rest = np.delete(v, idx).mean()
            e = mean_t_ci(v[list(idx)])
            hits += e.low <= rest <= e.high
            triples += 1
        rows.append({"method": m, "seeds": n, "mean d": mean, "seed sd of d": v.std(ddof=1),
                     "bootstrap sd": np.nanmean((hi - lo) / 2 / 1.96),
                     "1-seed CI contains N-seed mean": one_mean,
                     "1-seed CI contains another seed's d": np.mean(other) if other else np.nan,
                     "3-seed t-interval contains the other seeds' mean": hits / triples if triples else np.nan})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-9", help="FIRST-LAST")
    ap.add_argument("--studies", default="digits,arith")
    ap.add_argument("--no-run", action="store_true", help="only tabulate the seeds already measured")
    args = ap.parse_args()
    first, last = (int(x) for x in args.seeds.split("-"))
    seeds = list(range(first, last + 1))
    for study in args.studies.split(","):
        folder = [run_seed(study, s) for s in seeds][-1] if not args.no_run else \
            str(compose_config([f"experiment={STUDIES[study][0]}"]).results_dir)
        d = per_seed(study, folder, seeds)
        table = coverage(d)
        _, metric, base, _, _ = STUDIES[study]
        print(f"\n{study}: d{metric} = method - {base}, per seed (paired bootstrap where replicates exist)")
        print(fmt.table(["method", *[f"seed {s}" for s in sorted(d.seed.unique())]],
                        [[m, *[fmt.ci(r.d, r.low, r.high) for _, r in g.sort_values("seed").iterrows()]]
                         for m, g in d.groupby("method", sort=False)], markdown=True))
        print()
        print(fmt.table(list(table.columns), table.values.tolist(), markdown=True))


if __name__ == "__main__":
    main()

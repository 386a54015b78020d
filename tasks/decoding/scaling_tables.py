"""Test-time scaling tables from result rows only: accuracy / coverage / utility against k for the weak
verifier (``experiment=imperfect_verifier_arith``) and the multi-draft acceptance rates
(``experiment=multidraft_bytes``).

``python -m tasks.decoding.scaling_tables verifier RESULTS [--seed N] [--plot OUT.png]`` and
``python -m tasks.decoding.scaling_tables multidraft RESULTS`` print markdown; with several seeds in
RESULTS every number is the mean over seeds (the seeds are listed).
"""

from __future__ import annotations

import argparse
import re

import numpy as np
import pandas as pd

from harness import fmt
from harness.analysis import estimates


def _k(stage: str) -> int:
    return int(re.fullmatch(r"k=(\d+)", stage).group(1))  # type: ignore[union-attr]


def verifier_curves(rows: pd.DataFrame) -> pd.DataFrame:
    """Long table: variant, k, coverage, verified_accuracy, utility (means over the seeds present)."""
    ok = rows[(rows.status == "ok") & rows.metric.isin(["coverage", "verified_accuracy", "utility"])
              & rows["stage"].fillna("").str.fullmatch(r"k=\d+")]
    ok = ok.assign(k=ok["stage"].map(_k))
    return ok.pivot_table(index=["variant", "k"], columns="metric", values="value", aggfunc="mean").reset_index()


def verifier_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per variant: pass@1, false-positive rate, accuracy ceiling, utility-optimal k (mean and per seed)."""
    ok = rows[rows.status == "ok"]
    out = []
    for variant, df in ok.groupby("variant"):
        rec = {"variant": variant, "seeds": ",".join(map(str, sorted(df.seed.unique())))}
        for m in ("pass_at_1", "false_positive_rate", "accuracy_ceiling", "utility_optimal_k"):
            vals = df[df.metric == m].sort_values("seed").value.to_numpy()
            rec[m] = float(np.mean(vals)) if len(vals) else np.nan
            if m == "utility_optimal_k":
                rec["optimal_k_per_seed"] = "/".join(str(int(v)) for v in vals)
        out.append(rec)
    return pd.DataFrame(out)


def verifier_markdown(rows: pd.DataFrame) -> str:
    """The summary per variant, then one row per k with "coverage / verified accuracy / utility" per variant."""
    curves, summary = verifier_curves(rows), verifier_summary(rows)
    text = [fmt.table(list(summary.columns), summary.values.tolist(), markdown=True), ""]
    variants = list(summary.variant)
    body = []
    for k in sorted(curves.k.unique()):
        line: list[object] = [k]
        for v in variants:
            r = curves[(curves.variant == v) & (curves.k == k)]
            line.append(" / ".join(f"{float(r[m].iloc[0]):.3f}" for m in ("coverage", "verified_accuracy", "utility"))
                        if len(r) else "")
        body.append(line)
    text.append(fmt.table(["k"] + [f"{v}: cov / acc / util" for v in variants], body, markdown=True))
    return "\n".join(text)


def verifier_plot(rows: pd.DataFrame, out: str) -> None:
    """Coverage (dashed) and verified accuracy (solid) against k, one colour per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = verifier_curves(rows)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for i, (variant, df) in enumerate(curves.groupby("variant")):
        c = f"C{i}"
        ax[0].plot(df.k, df.coverage, "--", color=c)
        ax[0].plot(df.k, df.verified_accuracy, "-o", ms=3, color=c, label=variant)
        ax[1].plot(df.k, df.utility, "-o", ms=3, color=c, label=variant)
    for a, title in zip(ax, ("coverage (dashed) and accuracy with the weak verifier (solid)",
                             "utility: +1 right, -1 false positive, 0 abstain")):
        a.set_xscale("log", base=2)
        a.set_xlabel("samples k")
        a.set_title(title, fontsize=9)
        a.grid(alpha=0.3)
    ax[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def multidraft_markdown(rows: pd.DataFrame) -> str:
    """Per variant and seed: acceptance with / without replacement and the gain, with bootstrap CIs."""
    est = estimates(rows)
    metrics = ["acceptance_one_draft", "acceptance_with_replacement", "acceptance_without_replacement",
               "replacement_gain", "support_mass_target", "support_mass_draft", "latency"]
    body = []
    for (variant, seed), df in est.groupby(["variant", "seed"]):
        line: list[object] = [variant, int(seed)]
        for m in metrics:
            r = df[df.metric == m]
            line.append(fmt.estimate(r.iloc[0]) if len(r) else "")
        body.append(line)
    return fmt.table(["variant", "seed", *metrics], body, markdown=True)


def main(argv: list[str] | None = None) -> None:
    from harness.results import load

    ap = argparse.ArgumentParser(prog="python -m tasks.decoding.scaling_tables", description=__doc__.split("\n")[0])
    ap.add_argument("table", choices=["verifier", "multidraft"])
    ap.add_argument("results")
    ap.add_argument("--plot", help="verifier: also draw accuracy/coverage/utility vs k into this PNG")
    ap.add_argument("--seed", type=int, help="only this seed's rows (default: every seed, averaged)")
    args = ap.parse_args(argv)
    rows = load(args.results)
    if args.seed is not None:
        rows = rows[rows.seed == args.seed]
    if args.table == "verifier":
        print(verifier_markdown(rows))
        if args.plot:
            verifier_plot(rows, args.plot)
    else:
        print(multidraft_markdown(rows))


if __name__ == "__main__":
    main()

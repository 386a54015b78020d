"""Accuracy curves of the data-selection methods (tasks/training) from their result rows.

    python bench/rs2_curves.py results/data_selection_digits --out docs/rs2_curves.png

Reads the ``curve_accuracy`` / ``curve_wall`` / ``curve_examples`` rows (one per evaluation,
``sample`` = round) of every point, prints per method the mean test accuracy over seeds at a few
rounds with the mean wall time and example passes there, and draws accuracy over training wall
time and over examples seen (thin lines: seeds; thick: their mean).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from harness.results import load

CURVES = ("curve_accuracy", "curve_wall", "curve_examples")


def curves(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, seed, round): accuracy, wall seconds, examples."""
    ok = rows[(rows.status == "ok") & rows.metric.isin(CURVES)]
    if ok.empty:
        raise SystemExit("no curve rows (curve_accuracy, ...) in these results; run experiment=data_selection_digits")
    wide = ok.pivot_table(index=["variant", "seed", "sample"], columns="metric", values="value").reset_index()
    return wide.rename(columns={"sample": "round", "curve_accuracy": "accuracy", "curve_wall": "wall_s",
                                "curve_examples": "examples"})


def table(df: pd.DataFrame, rounds: list[int]) -> str:
    lines = ["| method | seeds | " + " | ".join(f"round {r}: acc / s / examples" for r in rounds) + " |",
             "|---" * (2 + len(rounds)) + "|"]
    for variant, grp in df.groupby("variant"):
        cells = []
        for r in rounds:
            at = grp[grp["round"] == r]
            cells.append("-" if at.empty else f"{at.accuracy.mean():.3f} / {at.wall_s.mean():.2f} / "
                         f"{at.examples.mean():.0f}")
        lines.append(f"| {variant} | {grp.seed.nunique()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(df: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = df[df["round"] > 0]  # log axes: the untrained model (round 0, no time, no examples) is left out
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for i, (variant, grp) in enumerate(df.groupby("variant")):
        color = f"C{i}"
        for _, seed in grp.groupby("seed"):
            axes[0].plot(seed.wall_s, seed.accuracy, color=color, alpha=0.25, lw=0.8)
            axes[1].plot(seed.examples, seed.accuracy, color=color, alpha=0.25, lw=0.8)
        mean = grp.groupby("round")[["wall_s", "examples", "accuracy"]].mean()
        axes[0].plot(mean.wall_s, mean.accuracy, color=color, lw=2, label=variant)
        axes[1].plot(mean.examples, mean.accuracy, color=color, lw=2, label=variant)
    axes[0].set(xlabel="training wall time, s (1 thread; setup included, evaluation excluded)",
                ylabel="test accuracy", xscale="log", ylim=(0.5, 1.0))
    axes[1].set(xlabel="example passes (forward+backward = 1)", xscale="log")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle("digits CNN, fixed budget of rounds: mean over seeds (thin: each seed)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", help="result folders or files of experiment data_selection_digits")
    p.add_argument("--rounds", default="1,5,20,60", help="rounds to tabulate (comma-separated)")
    p.add_argument("--out", help="PNG to draw the curves into")
    args = p.parse_args(argv)
    df = curves(load(*args.results))
    print(table(df, [int(r) for r in args.rounds.split(",")]))
    if args.out:
        plot(df, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The attention grid from stored rows: one table (markdown) and a plot of latency and TFLOP/s vs seqlen.

    .venv/bin/python bench/attention_grid.py results/attention [more folders] [--out DIR] [--baseline naive_attention]

Speedups are against the baseline in the same setting (same seqlen, causality, shape, device), with the
estimator ``harness.contrast`` picks (ABBA-paired where the sweep interleaved). TFLOP/s use the
workload's FLOP convention (tasks/attention/task.py); ``cold s`` is the first call, which for a compiled
FlexAttention is its compile time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness import fmt  # noqa: E402
from harness.analysis import estimates  # noqa: E402
from harness.contrast import contrast, pick  # noqa: E402
from harness.plot import save_figure  # noqa: E402
from harness.results import load  # noqa: E402


def grid(rows: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """One row per point: its task shape, the figures of the table, and the speedup against ``baseline``."""
    est = estimates(rows)
    configs = {f: json.loads(c) for f, c in rows.drop_duplicates("file")[["file", "config"]].itertuples(index=False)}
    task = {f: c["task"] for f, c in configs.items()}
    hw = {f: c["hardware"] for f, c in configs.items()}
    out = []
    for key, df in est.groupby("key", sort=False):
        first = df.iloc[0]
        get = lambda m: pick(est, key, m)  # noqa: E731
        base = est[(est.setting == first.setting) & (est.variant == baseline)].drop_duplicates("key")
        lat = get("latency")
        speed = None
        if len(base) and lat is not None and first.variant != baseline:
            speed = contrast(pick(est, base.iloc[0].key, "latency"), lat, "speedup", est=est)
        t = task[key]
        out.append({"seqlen": t["seqlen"], "causal": t["causal"], "batch": t["batch_size"], "heads": t["heads"],
                    "head_dim": t["head_dim"], "dtype": hw[key]["dtype"], "device": first.device_name,
                    "variant": first.variant, "latency": lat, "speedup": speed, "tflops": get("tflops"),
                    "fraction_of_peak": get("fraction_of_peak"), "working_memory": get("working_memory"),
                    "peak_memory_increase": get("peak_memory_increase"), "error": get("attention_max_abs_error"),
                    "token_density": get("token_density"), "block_density": get("block_density"),
                    "cold": get("latency_cold")})
    return pd.DataFrame(out).sort_values(["head_dim", "causal", "seqlen", "variant"], kind="stable")


def _val(e: object) -> float:
    return float("nan") if e is None else float(e.value)  # type: ignore[attr-defined]


def _mb(e: object) -> str:
    return "-" if e is None else fmt.num(e.value / 1e6)  # type: ignore[attr-defined]


def table(g: pd.DataFrame, baseline: str) -> str:
    peak = g.fraction_of_peak.notna().any()
    header = ["S", "causal", "method", "latency s [95% CI]", f"speedup vs {baseline}", "TFLOP/s",
              *(["of peak"] if peak else []), "working MB", "max abs err", "density tokens / blocks", "cold s"]
    body = []
    for r in g.itertuples():
        dens = "-" if r.token_density is None else f"{r.token_density.value:.1%}" + (
            "" if r.block_density is None else f" / {r.block_density.value:.1%}")
        body.append([str(r.seqlen), str(r.causal), r.variant, fmt.estimate(r.latency),
                     "-" if r.speedup is None else fmt.estimate(r.speedup) + "x",
                     "-" if r.tflops is None else fmt.num(r.tflops.value),
                     *([("-" if r.fraction_of_peak is None else f"{r.fraction_of_peak.value:.1%}")] if peak else []),
                     _mb(r.working_memory), "-" if r.error is None else fmt.num(r.error.value, 2), dens,
                     "-" if r.cold is None else fmt.num(r.cold.value, 3)])
    return fmt.table(header, body, markdown=True)


def plot(g: pd.DataFrame, stem: Path) -> list[Path]:
    fig, (ax_l, ax_t) = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = {v: f"C{i}" for i, v in enumerate(sorted(g.variant.unique()))}
    for (variant, causal), grp in g.groupby(["variant", "causal"], sort=True):
        grp = grp.sort_values("seqlen")
        style = dict(color=colours[variant], ls="--" if causal else "-", marker="o", ms=3,
                     label=f"{variant}{' (causal)' if causal else ''}")
        lat = [_val(e) for e in grp.latency]
        err = [[v - e.low for v, e in zip(lat, grp.latency)], [e.high - v for v, e in zip(lat, grp.latency)]]
        ax_l.errorbar(grp.seqlen, lat, yerr=err, capsize=2, **style)
        ax_t.plot(grp.seqlen, [_val(e) for e in grp.tflops], **style)
    first = g.iloc[0]
    where = f"{first.device}, {first.dtype}, B={first.batch} H={first.heads} D={first.head_dim}"
    for ax, ylabel in ((ax_l, "latency per call (s), median [95% CI]"), (ax_t, "TFLOP/s (4·B·S²·H·D, /2 causal)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    ax_l.set_yscale("log")
    ax_l.set_title(f"attention forward: {where}")
    ax_t.set_title("throughput (solid: full, dashed: causal)")
    ax_t.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return save_figure(fig, stem)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--baseline", default="naive_attention")
    ap.add_argument("--out", help="folder for attention_grid.png/.svg (default: the first results folder)")
    args = ap.parse_args(argv)
    rows = load(*args.results)
    g = grid(rows[rows.status == "ok"], args.baseline)
    failed = rows[rows.status != "ok"].drop_duplicates("point_id")
    print(table(g, args.baseline))
    for r in failed.itertuples():
        print(f"failed: {r.variant} ({str(r.error).splitlines()[0]})")
    files = plot(g, Path(args.out or args.results[0]) / "attention_grid")
    print("plot: " + ", ".join(map(str, files)))


if __name__ == "__main__":
    main()

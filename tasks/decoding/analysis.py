"""The decoding table from result rows only: tokens/s, TTFT, TPOT, speedup, acceptance and the
speedup Leviathan et al.'s eq. 1 predicts. ``python -m tasks.decoding.analysis RESULTS [BASELINE]``
prints it as markdown (the tables in docs/decoding.md).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness import fmt
from harness.analysis import items_per_call


def _median(df: pd.DataFrame, metric: str, stage: str | None = None) -> float:
    sel = df[(df.metric == metric) & ((df["stage"] == stage) if stage else df["stage"].isna())].value.dropna()
    return float(np.median(sel)) if len(sel) else float("nan")


def leviathan_alpha(tokens_per_call: float, k: float) -> float:
    """Leviathan et al.'s acceptance rate alpha from measured tokens per target call, by inverting eq. 1.

    Eq. 1: E = (1 - alpha^(k+1)) / (1 - alpha), increasing in alpha from 1 to k + 1. Not the same as
    accepted / drafted: after the first rejection the rest of a round's draft is wasted but drafted.
    """
    if tokens_per_call >= k + 1:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(60):  # bisection; E(alpha) is monotone
        mid = (lo + hi) / 2
        e = (1 - mid ** (k + 1)) / (1 - mid)
        lo, hi = (mid, hi) if e < tokens_per_call else (lo, mid)
    return (lo + hi) / 2


def summarize_decoding(rows: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """One row per point: tokens/s, TTFT, TPOT, speedup, acceptance, predicted speculative speedup.

    All from stored rows (medians of the timed repeats). Speculative decoding's predicted speedup
    follows Leviathan et al. (2023) Sec. 3.3: E tokens per target call over a round costing k c + 1
    target calls, c = draft / target per-token cost (the ratio of their greedy-decoding latencies),
    with E the measured tokens per target call; ``alpha`` is eq. 1 inverted at that E.
    """
    out = []
    rows = rows.sort_values("created_at", kind="stable") if "created_at" in rows else rows  # the sweep's order
    ok = rows[rows.status == "ok"]
    for _, df in rows[rows.status != "ok"].groupby("point_id", sort=False):
        out.append({"variant": df.variant.iloc[0], "model": df.model.iloc[0], "seed": int(df.seed.iloc[0]),
                    "batch_size": int(df.batch_size.iloc[0]), "error": str(df.error.iloc[0]).splitlines()[0]})
    for _, df in ok.groupby("point_id", sort=False):
        tokens = _median(df, "tokens_generated")
        batch = int(df.batch_size.iloc[0])
        # One timed call is a pass over several prompts, batch_size per generate call (text_generation).
        sequences = items_per_call(df.iloc[0]) or batch
        per_seq, per_generate = tokens / sequences, batch / sequences
        lat, ttft = _median(df, "latency", "end_to_end"), _median(df, "latency", "prefill")
        rec = {"variant": df.variant.iloc[0], "model": df.model.iloc[0], "seed": int(df.seed.iloc[0]),
               "batch_size": batch, "latency_s": lat, "tokens_per_s": tokens / lat,
               "ttft_ms": 1e3 * ttft, "tpot_ms": 1e3 * (lat * per_generate - ttft) / max(per_seq - 1, 1)}
        for m in ("exact_match", "token_agreement", "bleu", "bits_per_byte", "flops_per_token", "acceptance_rate",
                  "tokens_per_target_call", "draft_tokens_per_round", "peak_memory"):
            rec[m] = _median(df, m)
        d, t = _median(df, "latency", "draft_greedy"), _median(df, "latency", "target_greedy")
        if not math.isnan(d):
            tau, k, c = rec["tokens_per_target_call"], rec["draft_tokens_per_round"], d / t
            rec |= {"cost_ratio_c": c, "alpha": leviathan_alpha(tau, k), "predicted_speedup": tau / (k * c + 1)}
            agree = _median(df, "draft_agreement")
            if not math.isnan(agree):  # eq. 1 at the teacher-forced agreement on held-out text
                e = (1 - agree ** (k + 1)) / (1 - agree) if agree < 1 else k + 1
                rec |= {"draft_agreement": agree, "predicted_speedup_heldout": e / (k * c + 1)}
        out.append(rec)
    table = pd.DataFrame(out)
    if table.empty:
        return table
    base = baseline or (ok.baseline.dropna().iloc[0] if ok.baseline.notna().any() else None)
    table["speedup"] = np.nan  # baseline latency / point latency, within one model, seed and batch size
    table["bpb_change"] = np.nan  # bits per byte minus the baseline's: what quantization costs
    for _, grp in table.groupby(["model", "seed", "batch_size"]):
        ref = grp[(grp.variant == base) & grp.latency_s.notna()]
        if len(ref) == 1:
            table.loc[grp.index, "speedup"] = float(ref.latency_s.iloc[0]) / grp.latency_s
            table.loc[grp.index, "bpb_change"] = grp.bits_per_byte - float(ref.bits_per_byte.iloc[0])
    return table


def render_markdown(table: pd.DataFrame, columns: list[str] | None = None) -> str:
    """The decoding table as markdown (``harness.fmt``); ``columns`` picks and orders columns."""
    cols = columns or [c for c in table.columns if c not in ("model", "seed", "error")]
    rows = [[r.variant, f"FAILED: {r.error[:90]}", *[""] * (len(cols) - 2)] if isinstance(r.get("error"), str)
            else [r[c] for c in cols] for _, r in table.iterrows()]
    return fmt.table(cols, rows, markdown=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m tasks.decoding.analysis RESULTS_DIR [BASELINE]``: the decoding table as markdown."""
    import sys

    from harness.results import load

    args = sys.argv[1:] if argv is None else argv
    table = summarize_decoding(load(args[0]), args[1] if len(args) > 1 else None)
    print(render_markdown(table))


if __name__ == "__main__":
    main()

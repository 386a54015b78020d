"""The TensorBLEU-shaped table from the rows of ``experiment=bleu_kernel`` (reads results; times nothing).

    ./bin/harness -m experiment=bleu_kernel          # writes results/bleu_kernel (the 6 x 2 grid, 1 thread)
    .venv/bin/python bench/token_bleu.py [results/bleu_kernel]

One line per (batch, length): each method's median latency per call with its 95% CI, its speedup
over NLTK (ratio of medians of the repeat times, bootstrap 95% CI: harness.stats.speedup_ci,
the estimator the report uses), and its largest per-sentence difference from NLTK.
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from harness.results import load
from harness.stats import median_ci, speedup_ci

METHODS = ("nltk", "sacrebleu", "token_bleu")


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def table(rows: pd.DataFrame) -> str:
    ok = rows[rows.status == "ok"].copy()
    cfg = ok.config.map(json.loads)
    ok["batch"] = cfg.map(lambda c: c["task"]["batch_size"])
    ok["length"] = cfg.map(lambda c: c["task"]["length"])
    head = ["batch", "length", "NLTK s", "sacrebleu s", "sacrebleu speedup", "token_bleu s", "token_bleu speedup",
            "token_bleu max abs err", "sacrebleu max abs err", "mean BLEU"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for (batch, length), cell in ok.groupby(["batch", "length"]):
        lat, err = {}, {}
        for m in METHODS:
            sel = cell[(cell.variant == m) & (cell.metric == "latency") & (cell["stage"] == "end_to_end")]
            lat[m] = sel.sort_values("sample").value.to_numpy()
            e = cell[(cell.variant == m) & (cell.metric == "bleu_max_abs_error")].value
            err[m] = float(e.iloc[0]) if len(e) else float("nan")
        if any(len(v) < 2 for v in lat.values()):
            continue
        med = {m: median_ci(lat[m]) for m in METHODS}
        sp = {m: speedup_ci(lat["nltk"], lat[m]) for m in ("sacrebleu", "token_bleu")}
        mean = cell[(cell.variant == "nltk") & (cell.metric == "sentence_bleu_mean")].value.iloc[0]
        cells = [str(batch), str(length)]
        cells += [f"{_fmt(med['nltk'].value)} [{_fmt(med['nltk'].low)}, {_fmt(med['nltk'].high)}]"]
        for m in ("sacrebleu", "token_bleu"):
            cells += [f"{_fmt(med[m].value)} [{_fmt(med[m].low)}, {_fmt(med[m].high)}]",
                      f"{sp[m].value:.2f}x [{sp[m].low:.2f}, {sp[m].high:.2f}]"]
        cells += [f"{err['token_bleu']:.1e}", f"{err['sacrebleu']:.1e}", f"{mean:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    env = ok.iloc[0]
    lines += ["", f"hardware {env.hardware} ({env.get('cpu', '-')}), threads {env.threads}, torch {env.torch}, "
                  f"git {env.git_sha}, seed {env.seed}; latency = one call scoring `batch` sentences"]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="?", default="results/bleu_kernel")
    print(table(load(p.parse_args().results)))


if __name__ == "__main__":
    main()

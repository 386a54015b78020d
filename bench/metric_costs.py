"""Benchmark (not a test): the cost of one call of each quality metric at a stated size, 1 thread.

    .venv/bin/python bench/metric_costs.py [--clip-model FOLDER]

Timed with ``harness.timing.measure`` (the harness's policy, 2 s cap per metric). Inputs are
synthetic and seeded: 128-d features (the digits classifier's width) for FID/KID, random-word
sentences for sacrebleu. CLIP score is timed only when a local CLIP folder is given (its cost is
two forward passes of that model). Token-ID BLEU costs are in the bleu_kernel table.
"""

from __future__ import annotations

import argparse
import math
import random

import torch

from harness.env import environment
from harness.metrics import token_bleu
from harness.metrics.fid import FrechetDistance, KernelDistance
from harness.metrics.text import accuracy, bits_per_byte, chrf, corpus_bleu, exact_match, perplexity
from harness.stats import median_ci
from harness.timing import TimingPolicy, measure

POLICY = TimingPolicy(warmup_min_calls=1, min_repeats=3, min_time_s=0.2, max_time_s=2.0)


def sentences(n: int, words: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(2000)]
    return [" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(n)]


def noisy(lines: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(w if rng.random() > 0.3 else "x" for w in s.split()) for s in lines]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip-model", help="a local CLIP folder (save_pretrained layout)")
    args = p.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(1797, 128, generator=g), torch.randn(1797, 128, generator=g) + 0.1
    fid = FrechetDistance(real)
    kid = KernelDistance(real, subsets=10, subset_size=1000)
    refs = sentences(1000, 25, 1)
    hyps = noisy(refs, 2)
    cand = [[int(t) for t in torch.randint(1, 32000, (1024,), generator=g)] for _ in range(8)]
    labels = torch.randint(0, 10, (10_000,), generator=g)
    cases = {
        "fid (1797 x 1797, 128-d)": lambda: fid(fake),
        "fid_bootstrap (200 resamples, same size)": lambda: fid.bootstrap(fake, 200, 0),
        "kid (10 subsets of 1000, 128-d)": lambda: kid(fake, 0),
        "bleu, sacrebleu corpus (1000 sentences x 25 words)": lambda: corpus_bleu(hyps, [[r] for r in refs]),
        "chrf, sacrebleu corpus (1000 sentences x 25 words)": lambda: chrf(hyps, [[r] for r in refs]),
        "token_bleu, lists (8 sentences x 1024 tokens, 1 ref)": lambda: token_bleu(cand, [[c] for c in cand]),
        "accuracy (10k labels)": lambda: accuracy(labels, labels.roll(1)),
        "exact_match (1000 strings)": lambda: exact_match(hyps, refs),
        "perplexity / bits_per_byte (scalars)": lambda: (perplexity(1e4, 5000), bits_per_byte(1e4, 20000)),
    }
    if args.clip_model:
        from harness.metrics.clip import ClipScore

        clip = ClipScore(args.clip_model)
        images = torch.rand(16, 3, 224, 224, generator=g) * 2 - 1
        cases["clip_score (16 images 224x224, given model)"] = lambda: clip(images, ["a photo"] * 16)
    env = environment(torch.device("cpu"))
    print(f"metric costs: torch {env.get('torch')}, {env.get('cpu')}, threads 1, policy: warm-up 1 call, "
          f">= 3 repeats, 2 s cap\n")
    print("| metric (size) | median per call | 95% CI |")
    print("| --- | --- | --- |")
    for name, fn in cases.items():
        m = measure(fn, POLICY)
        est = median_ci(m.samples_s)
        unit, scale = ("ms", 1e3) if est.value < 1 else ("s", 1.0)
        lo = "-" if math.isnan(est.low) else f"{est.low * scale:.3g}"
        hi = "-" if math.isnan(est.high) else f"{est.high * scale:.3g}"
        print(f"| {name} | {est.value * scale:.3g} {unit} | [{lo}, {hi}] |")


if __name__ == "__main__":
    main()

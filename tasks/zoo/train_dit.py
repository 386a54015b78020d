"""Train the embedded flow DiT (class-conditional rectified flow on digits) and the independent judge classifier.

Regenerate what this script ships under ``tasks/zoo/``::

    .venv/bin/python -m tasks.zoo.train_dit --threads 1                # DiT (~6 min) and judge (~20 s)
    .venv/bin/python -m tasks.zoo.train_dit --threads 1 --only judge

- ``digits_dit/``: a diffusers ``DiTTransformer2DModel`` (patch 2 on 8x8, 16 tokens, 10 classes) in
  ``transformer/`` and a ``FlowMatchEulerDiscreteScheduler`` config in ``scheduler/``. Rectified flow
  (Liu et al. 2022, arXiv 2209.03003; Lipman et al. 2022, arXiv 2210.02747): x_t = (1 - t) x0 + t eps,
  the model predicts the velocity v = eps - x0, and sampling integrates dx/dt = v from t=1 to 0. The
  timestep the model sees is 1000 t, diffusers' flow-matching convention (``sigma * num_train_timesteps``).
  Time sampling: logit-normal (SD3, Esser et al. 2024, arXiv 2403.03206, eq. 19) mixed with 20% uniform
  t, because logit-normal alone leaves t near 0 undertrained and Heun's last corrector step suffers.
  Labels are dropped 10% of the time (DiT's own ``class_dropout_prob``), so an unconditional branch
  exists for guidance-based caches; sampling is unguided class-conditional by default.
- ``digits_judge/``: a second digits classifier (``DigitsClassifier``, other width, seed and split) used
  only to judge noise search, whose verifier is the shipped ``digits_classifier``: a search that
  games its verifier does not fool an independently trained judge.

Reproducibility: fixed seeds and step counts; weights are bit-identical at the same thread count and
torch version (both in ``card.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tasks.zoo.digits import DigitsClassifier, digits_tensor, heldout_split
from tasks.zoo.train_digits import _digest, _provenance

ZOO = Path(__file__).resolve().parent
DIT_DIR = ZOO / "digits_dit"
JUDGE_DIR = ZOO / "digits_judge"
REGENERATE = "python -m tasks.zoo.train_dit"


def dit_config() -> dict:
    # ~0.4M parameters: width 64 (4 heads of 16), 4 blocks, adaLN-zero conditioning on (t, class).
    return dict(
        num_attention_heads=4, attention_head_dim=16, in_channels=1, out_channels=1, num_layers=4,
        sample_size=8, patch_size=2, num_embeds_ada_norm=10, norm_num_groups=1,
    )


def sample_t(batch: int, gen: torch.Generator, uniform_frac: float = 0.2) -> torch.Tensor:
    """Training times in (0, 1): logit-normal(0, 1) (SD3 eq. 19) with ``uniform_frac`` uniform mass."""
    t = torch.sigmoid(torch.randn(batch, generator=gen))
    uniform = torch.rand(batch, generator=gen)
    pick = torch.rand(batch, generator=gen) < uniform_frac
    return torch.where(pick, uniform, t).clamp(1e-4, 1 - 1e-4)


def train_dit(threads: int, seed: int = 0, steps: int = 4000, batch: int = 128, lr: float = 1e-3) -> dict:
    from diffusers import DiTTransformer2DModel, FlowMatchEulerDiscreteScheduler

    torch.manual_seed(seed)  # also drives DiT's internal label dropout (torch.rand)
    x, y = digits_tensor()
    model = DiTTransformer2DModel(**dit_config())
    ema = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup = 100
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    losses = []
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        x0, labels = x[idx], y[idx]
        eps = torch.randn(x0.shape, generator=gen)
        t = sample_t(batch, gen)
        tt = t.view(-1, 1, 1, 1)
        xt = (1 - tt) * x0 + tt * eps  # rectified-flow interpolation
        v = model(xt, timestep=t * 1000, class_labels=labels).sample
        loss = F.mse_loss(v, eps - x0)  # flow-matching loss, velocity target eps - x0
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            torch._foreach_lerp_(ema, [p.detach() for p in model.parameters()], 1 - decay)
        losses.append(loss.item())
        if (step + 1) % 250 == 0:
            print(f"dit step {step + 1}/{steps} loss(last 250) {np.mean(losses[-250:]):.4f} "
                  f"{time.perf_counter() - t0:.0f}s", flush=True)
    with torch.no_grad():
        for p, e in zip(model.parameters(), ema):
            p.copy_(e)
    model.eval().save_pretrained(str(DIT_DIR / "transformer"))
    FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0).save_pretrained(str(DIT_DIR / "scheduler"))
    card = _provenance(threads, seed, steps) | {
        "regenerate": REGENERATE,
        "params": sum(p.numel() for p in model.parameters()),
        "tokens": (8 // 2) ** 2,
        "batch": batch,
        "lr": lr,
        "ema_decay": 0.999,
        "objective": "rectified flow, v = eps - x0, x_t = (1-t) x0 + t eps, timestep = 1000 t",
        "time_sampling": "logit-normal(0,1) with 20% uniform",
        "class_dropout_prob": 0.1,
        "final_loss_mean_last_250": round(float(np.mean(losses[-250:])), 5),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "data": "sklearn.datasets.load_digits, 1797 images scaled to [-1, 1], labels 0-9",
    }
    card["sha256_16"] = _digest(DIT_DIR)
    (DIT_DIR / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def train_judge(threads: int, seed: int = 7, epochs: int = 40) -> dict:
    """A classifier independent of the verifier: other width/features, seed, split and data order."""
    torch.manual_seed(seed)
    x, y = digits_tensor()
    train_idx, test_idx = heldout_split(len(x), seed=seed)
    model = DigitsClassifier(width=24, num_features=96)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    steps = 0
    for _ in range(epochs):
        for idx in train_idx[torch.randperm(len(train_idx), generator=gen)].split(64):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
    model.eval()
    with torch.no_grad():
        acc = (model(x[test_idx]).argmax(1) == y[test_idx]).float().mean().item()
    card = _provenance(threads, seed, steps) | {
        "regenerate": REGENERATE + " --only judge",
        "heldout_accuracy": round(acc, 4),
        "heldout_n": len(test_idx),
        "split": f"tasks.zoo.digits.heldout_split(1797, frac=0.2, seed={seed})",
        "role": "independent judge for noise search (the verifier is digits_classifier)",
    }
    model.save_pretrained(JUDGE_DIR, card)
    card["sha256_16"] = _digest(JUDGE_DIR)
    (JUDGE_DIR / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["dit", "judge"], default=None)
    parser.add_argument("--threads", type=int, default=1, help="recorded in card.json; weights depend on it")
    parser.add_argument("--dit-steps", type=int, default=4000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only in (None, "judge"):
        print("judge:", json.dumps(train_judge(args.threads)), flush=True)
    if args.only in (None, "dit"):
        print("dit:", json.dumps(train_dit(args.threads, steps=args.dit_steps)), flush=True)


if __name__ == "__main__":
    main()

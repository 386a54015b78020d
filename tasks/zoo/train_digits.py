"""Train the embedded digits models: a small DDPM UNet and the classifier whose features drive FID.

Regenerate everything shipped under ``tasks/zoo/`` with::

    .venv/bin/python -m tasks.zoo.train_digits            # both models, ~4 min on 2 threads
    .venv/bin/python -m tasks.zoo.train_digits --only classifier

Data: scikit-learn's ``load_digits`` (1797 images, 8x8, values 0..16), which ships inside the
package, so nothing is downloaded. The UNet is saved in diffusers' pipeline layout
(``model_index.json``, ``unet/``, ``scheduler/``) and loads with ``from_pretrained(local_dir)``
exactly as a hub model would.

Reproducibility: fixed seeds and a fixed step count (never a wall-clock budget). Weights are
bit-identical across runs at the same thread count and torch version, not across thread counts,
so both are recorded in each model's ``card.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tasks.zoo.digits import DigitsClassifier, digits_tensor, heldout_split

ZOO = Path(__file__).resolve().parent
UNET_DIR = ZOO / "digits_ddpm"
CLASSIFIER_DIR = ZOO / "digits_classifier"


def _provenance(threads: int, seed: int, steps: int) -> dict:
    return {
        "torch": torch.__version__,
        "threads": threads,
        "seed": seed,
        "steps": steps,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "regenerate": "python -m tasks.zoo.train_digits",
    }


def _digest(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted(folder.rglob("*.safetensors"))
    }


def train_classifier(threads: int, seed: int = 0, epochs: int = 40) -> dict:
    torch.manual_seed(seed)
    x, y = digits_tensor()
    train_idx, test_idx = heldout_split(len(x))
    model = DigitsClassifier()
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
        "heldout_accuracy": round(acc, 4),
        "heldout_n": len(test_idx),
        "split": "tasks.zoo.train_digits.heldout_split(1797, frac=0.2, seed=0)",
    }
    model.save_pretrained(CLASSIFIER_DIR, card)
    card["sha256_16"] = _digest(CLASSIFIER_DIR)
    (CLASSIFIER_DIR / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def unet_config() -> dict:
    # 0.70M parameters: channels 32/64, self-attention at 4x4 and in the mid block.
    return dict(
        sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
        block_out_channels=(32, 64), norm_num_groups=8, attention_head_dim=32,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    )


def train_unet(threads: int, seed: int = 0, steps: int = 3000, batch: int = 128, lr: float = 2e-3) -> dict:
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)
    x, _ = digits_tensor()
    unet = UNet2DModel(**unet_config())
    # clip_sample=False: DDIM with clipping misbehaves on these models (see shared DESIGN notes).
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
    ema = [p.detach().clone() for p in unet.parameters()]
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    warmup = 100
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    gen = torch.Generator().manual_seed(seed)
    acp = scheduler.alphas_cumprod
    t0 = time.perf_counter()
    losses = []
    for step in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        x0 = x[idx]
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, 1000, (batch,), generator=gen)
        a = acp[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise  # DDPM forward process, Ho et al. 2020 eq. 4
        loss = F.mse_loss(unet(xt, t).sample, noise)  # simple epsilon loss, eq. 14
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            torch._foreach_lerp_(ema, [p.detach() for p in unet.parameters()], 1 - decay)
        losses.append(loss.item())
        if (step + 1) % 500 == 0:
            print(f"unet step {step + 1}/{steps} loss(last 500) {np.mean(losses[-500:]):.4f}", flush=True)
    with torch.no_grad():
        for p, e in zip(unet.parameters(), ema):
            p.copy_(e)
    DDPMPipeline(unet=unet.eval(), scheduler=scheduler).save_pretrained(str(UNET_DIR))
    card = _provenance(threads, seed, steps) | {
        "params": sum(p.numel() for p in unet.parameters()),
        "batch": batch,
        "lr": lr,
        "ema_decay": 0.999,
        "final_loss_mean_last_500": round(float(np.mean(losses[-500:])), 5),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "data": "sklearn.datasets.load_digits, 1797 images scaled to [-1, 1]",
    }
    card["sha256_16"] = _digest(UNET_DIR)
    (UNET_DIR / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["unet", "classifier"], default=None)
    parser.add_argument("--threads", type=int, default=2, help="recorded in card.json; weights depend on it")
    parser.add_argument("--unet-steps", type=int, default=3000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only in (None, "classifier"):
        print("classifier:", json.dumps(train_classifier(args.threads)), flush=True)
    if args.only in (None, "unet"):
        print("unet:", json.dumps(train_unet(args.threads, steps=args.unet_steps)), flush=True)


if __name__ == "__main__":
    main()

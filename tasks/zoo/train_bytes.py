"""Train the embedded byte-level language models: a deep target, a one-layer draft, an adder.

Regenerate what ships under ``tasks/zoo/bytes_*`` with::

    .venv/bin/python -m tasks.zoo.train_bytes                 # all three, ~58 min on 1 thread
    .venv/bin/python -m tasks.zoo.train_bytes --only draft    # draft 7 min, target 42, arith 9 (shared 2-core box)

Data: the Python standard library's own source files (``Path(os.__file__).parent/*.py``, sorted),
which ship with every Python, so nothing is downloaded. Every 20th file (index % 20 == 19) is held
out for validation (``stdlib_split``). The files depend on the Python version, which the model card
records. Tokens are bytes 0..255; 256 is the end-of-text token between files (BOS = EOS = PAD).

Sizes are chosen for the speculative-decoding demo, not for quality: on CPU at batch 1 the
per-token latency of these models is driven by per-layer overhead (kernel launches, Python), so
the target is deep and narrow (20 layers, d128) and the draft has one layer (d64). Measured here
before training, per generated token under ``generate``: draft ~1.2 ms, target ~9-10 ms, i.e.
a cost ratio c ~ 0.12; Leviathan et al. (2023) need c well below the acceptance rate for a gain.
The price of depth under a fixed step budget: the target sees 8x fewer tokens than the draft and
ends with worse validation bits per byte (2.86 vs 2.06); speed, not quality, is what it demonstrates.

Reproducibility: fixed seeds and fixed step counts (never a wall-clock budget). Weights are
bit-identical across runs at the same thread count and torch version, so both are recorded in
each ``card.json``. Weights are stored in float16 (half the size); the reported validation bits per
byte are computed with the float16-rounded weights run in float32, i.e. what the task loads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tasks.zoo.bytes import (  # noqa: F401 (re-exported for the training code)
    ARITH_DIGITS,
    CONTEXT,
    EOT,
    VOCAB,
    arith_line,
    arith_split,
    bits_per_byte,
    byte_stream,
    nll_stream,
    stdlib_split,
)

ZOO = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Spec:
    n_layer: int
    n_embd: int
    n_head: int
    steps: int
    lr: float
    batch: int = 16
    seq: int = CONTEXT
    corpus: str = "stdlib"  # stdlib | arith


SPECS = {
    # One cheap layer; trained for more steps, because acceptance depends on how well it tracks the target.
    "bytes_draft": Spec(n_layer=1, n_embd=64, n_head=2, steps=4000, lr=3e-3),
    # Deep and narrow: per-token cost at batch 1 ~ depth; training cost ~ depth * width^2.
    "bytes_target": Spec(n_layer=20, n_embd=128, n_head=4, steps=550, lr=2e-3),
    # Repeated sampling (Large Language Monkeys): a small model that adds 3-digit numbers, often
    # but not always right, so coverage grows with the number of samples; an exact checker.
    "bytes_arith": Spec(n_layer=2, n_embd=64, n_head=2, steps=3000, lr=3e-3, batch=32, seq=64, corpus="arith"),
}

def arith_stream(pairs: np.ndarray, n_lines: int, seed: int) -> torch.Tensor:
    """``n_lines`` problems drawn (seeded, with replacement) from ``pairs``, as one byte stream."""
    rng = np.random.default_rng(seed)
    text = "".join(arith_line(int(a), int(b)) for a, b in pairs[rng.integers(0, len(pairs), n_lines)])
    return torch.from_numpy(np.frombuffer(text.encode(), dtype=np.uint8).astype(np.int64))


def corpus(name: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(train stream, validation stream, what the model card says about the data) of a training corpus."""
    if name == "stdlib":
        train_files, val_files = stdlib_split()
        return byte_stream(train_files), byte_stream(val_files), {
            "data": "sorted Path(os.__file__).parent/*.py; validation = every 20th file (index % 20 == 19)",
            "data_files": {"train": len(train_files), "validation": len(val_files)}}
    if name == "arith":
        train, held = arith_split()
        return arith_stream(train, 200_000, seed), arith_stream(held, 5_000, seed + 1), {
            "data": "200k seeded problems a+b=c (a, b in 0..999, zero-padded); validation: 5k problems from the "
                    "held-out pairs (index % 20 == 19 of all 10^6 pairs), never seen in training"}
    raise ValueError(f"corpus={name!r}; valid: stdlib, arith")


def gpt2_config(spec: Spec):  # -> GPT2Config
    from transformers import GPT2Config

    return GPT2Config(vocab_size=VOCAB, n_positions=CONTEXT, n_embd=spec.n_embd, n_layer=spec.n_layer,
                      n_head=spec.n_head, bos_token_id=EOT, eos_token_id=EOT, pad_token_id=EOT,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(folder.glob("*.safetensors"))}


def train(name: str, spec: Spec, threads: int, seed: int = 0) -> dict:
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    data, val, described = corpus(spec.corpus, seed)
    model = GPT2LMHeadModel(gpt2_config(spec)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.95), weight_decay=0.01)
    warmup = max(1, spec.steps // 20)
    # linear warm-up, then cosine decay to 10% of the peak rate
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / spec.steps))))
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    losses = []
    for step in range(spec.steps):
        starts = torch.randint(0, len(data) - spec.seq - 1, (spec.batch,), generator=gen)
        window = data[starts.unsqueeze(1) + torch.arange(spec.seq + 1)]
        logits = model(input_ids=window[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), window[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            print(f"{name} step {step + 1}/{spec.steps} loss(last 50) {np.mean(losses[-50:]) / math.log(2):.3f} bits "
                  f"{time.perf_counter() - t0:.0f}s", flush=True)
    train_seconds = time.perf_counter() - t0
    model = model.eval().to(torch.float16)  # stored in float16 ...
    folder = ZOO / name
    model.save_pretrained(str(folder))
    model = GPT2LMHeadModel.from_pretrained(str(folder), dtype=torch.float32).eval()  # ... and run in float32
    bpb, n_val = bits_per_byte(model, val, seq=spec.seq)
    card = {
        "name": name,
        "architecture": "transformers GPT2LMHeadModel, byte-level (vocab 256 bytes + end-of-text 256)",
        "n_layer": spec.n_layer, "n_embd": spec.n_embd, "n_head": spec.n_head, "n_positions": CONTEXT,
        "params": sum(p.numel() for p in model.parameters()),
        "storage_dtype": "float16",
        "val_bits_per_byte": round(bpb, 4),
        "val_bytes": n_val,
        "train_bytes": len(data),
        "train_loss_bits_last_50": round(float(np.mean(losses[-50:])) / math.log(2), 4),
        "steps": spec.steps, "batch": spec.batch, "seq": spec.seq, "lr": spec.lr, "seed": seed,
        "schedule": "AdamW(0.9, 0.95, wd 0.01), linear warm-up steps/20, cosine to 10%, grad clip 1.0",
        **described,
        "threads": threads,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "train_seconds": round(train_seconds, 1),
        "regenerate": f"python -m tasks.zoo.train_bytes --only {name.removeprefix('bytes_')} --threads {threads}",
    }
    card["sha256_16"] = _digest(folder)
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=[k.removeprefix("bytes_") for k in SPECS], default=None)
    parser.add_argument("--threads", type=int, default=1, help="recorded in card.json; weights depend on it")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name, spec in SPECS.items():
        if args.only in (None, name.removeprefix("bytes_")):
            print(name, json.dumps(train(name, spec, args.threads)), flush=True)


if __name__ == "__main__":
    main()

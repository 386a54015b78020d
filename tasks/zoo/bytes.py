"""Runtime side of the byte-level zoo: token constants, the held-out data and the NLL loop.

Tasks import this module; the training script (``tasks/zoo/train_bytes.py``) imports it too, and
nothing at run time imports the training script.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

EOT = 256  # end-of-text between files; also BOS and PAD
VOCAB = 257
CONTEXT = 256  # n_positions: prompt + generated tokens must fit


def stdlib_files() -> list[Path]:
    """The standard library's top-level ``*.py`` files, sorted: the corpus of the byte models."""
    return sorted(Path(os.__file__).parent.glob("*.py"))


def stdlib_split() -> tuple[list[Path], list[Path]]:
    """(train, validation): every 20th file (index % 20 == 19) is held out."""
    files = stdlib_files()
    return [f for i, f in enumerate(files) if i % 20 != 19], [f for i, f in enumerate(files) if i % 20 == 19]


def byte_stream(files: list[Path]) -> torch.Tensor:
    """The files' bytes as one int64 stream, each file followed by the end-of-text token."""
    parts = []
    for f in files:
        parts.append(np.frombuffer(f.read_bytes(), dtype=np.uint8).astype(np.int64))
        parts.append(np.array([EOT], dtype=np.int64))
    return torch.from_numpy(np.concatenate(parts))


ARITH_DIGITS = 3  # operands 0..999, zero-padded: "012+345=0357\n"


def arith_line(a: int, b: int) -> str:
    """One problem and its answer, fixed width so every prompt and answer has the same length."""
    return f"{a:0{ARITH_DIGITS}d}+{b:0{ARITH_DIGITS}d}={a + b:0{ARITH_DIGITS + 1}d}\n"


def arith_split() -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) operand pairs, shape (n, 2): every 20th pair (index % 20 == 19) is held out."""
    n = 10**ARITH_DIGITS
    pairs = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2)
    held = np.arange(len(pairs)) % 20 == 19
    return pairs[~held], pairs[held]


@torch.no_grad()
def nll_stream(model: torch.nn.Module, ids: torch.Tensor, seq: int, batch: int = 16,
               ignore_id: int | None = None) -> tuple[float, int]:
    """Summed next-token NLL (nats) over non-overlapping windows of ``seq`` predictions, and the
    number of predictions scored. Each window starts fresh (no carried context); targets equal to
    ``ignore_id`` are not scored. Shared by training and the text-generation task."""
    n_win = (len(ids) - 1) // seq
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for start in range(0, n_win, batch):
        idx = torch.arange(start, min(start + batch, n_win)).unsqueeze(1) * seq + torch.arange(seq + 1)
        window = ids[idx].to(device)
        x, y = window[:, :-1], window[:, 1:]
        logits = model(input_ids=x).logits.float()
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
        keep = (y != ignore_id).reshape(-1) if ignore_id is not None else torch.ones_like(nll, dtype=torch.bool)
        total += nll[keep].sum().item()
        count += int(keep.sum())
    return total, count


def bits_per_byte(model: torch.nn.Module, stream: torch.Tensor, seq: int = CONTEXT, batch: int = 16,
                  max_bytes: int | None = None) -> tuple[float, int]:
    """Validation bits per byte: mean next-byte cross-entropy / ln 2 over non-overlapping windows;
    end-of-text targets are not bytes and are ignored. Returns (bits per byte, bytes scored)."""
    if max_bytes is not None:
        stream = stream[: max_bytes + 1]
    total, count = nll_stream(model, stream, seq, batch, ignore_id=EOT)
    return total / count / math.log(2), count

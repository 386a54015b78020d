"""SqueezeLLM: sensitivity-weighted non-uniform quantization with a dense-and-sparse split
(Kim et al. 2023, "SqueezeLLM: Dense-and-Sparse Quantization", arXiv 2306.07629).

1. Sensitivity (Sec. 4.1). The quantization error's effect on the loss is approximated by the
   Fisher information, eq. (3): F = 1/|D| sum_d g_d g_d^T, of which only the diagonal is kept.
   Here g_d is the gradient of the next-byte loss of one calibration sequence (``n_calib`` windows
   of ``calib_len`` bytes from seeded offsets into the zoo's *training* text; the paper uses 100
   C4 samples); F_ii is the mean of the squared per-sequence gradients.
2. Non-uniform codebook per output channel (Sec. 4.1, eq. (4)):
       Q(w)* = argmin_Q sum_i F_ii (w_i - Q(w_i))^2,
   a weighted 1-D k-means with 2^bits centroids over each row of each linear layer, solved by
   Lloyd iterations (``kmeans_iters``) from centroids spread evenly over the row's range (the
   uniform grid, so the search starts from RTN's levels). Centroids are stored as float16.
3. Dense-and-sparse decomposition (Sec. 4.2, eq. (5)): W = D + S with
       D = W[T_min <= w <= T_max],  S = W[w < T_min or w > T_max],
   thresholds chosen per layer so that ``outlier_frac`` of the weights (largest |w|) fall in S;
   the most sensitive ``sensitive_frac`` weights (largest F_ii) join S too. The paper keeps 0.45%
   of the values (0.40% outliers + 0.05% sensitive) in float16 as a sparse matrix; their positions
   get no weight in the k-means, so the codebook serves the dense rest.

Memory: codes at ``bits`` bits, 2^bits float16 centroids per row, 48 bits per sparse weight
(``tasks.decoding.lowbit``). The paper compares at equal memory against GPTQ / AWQ with groups of
128 (stronger than round-to-nearest); this workload's baseline is RTN.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from harness.plugin import PluginConfig
from harness.registry import register_method
from tasks.decoding.lowbit import (
    LowBitLinear,
    as_stored,
    calibration_text,
    conv1d_to_linear,
    quantizable_linears,
    replace_module,
)
from tasks.decoding.protocol import DecodingMethod

if TYPE_CHECKING:
    from tasks.decoding.text_generation import TextGeneration


@dataclass
class SqueezeLLMConfig(PluginConfig):
    bits: int = 3
    outlier_frac: float = 0.004  # largest-magnitude weights per layer kept in float16 (eq. 5)
    sensitive_frac: float = 0.0005  # largest-Fisher weights per layer kept in float16
    n_calib: int = 64  # calibration sequences for the Fisher diagonal (eq. 3)
    calib_len: int = 128  # bytes per calibration sequence
    kmeans_iters: int = 30  # Lloyd iterations of the weighted k-means (eq. 4)
    LABEL_ALWAYS = ("bits",)

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 8:
            raise ValueError(f"method.bits must be in 2..8, got {self.bits}")
        for key in ("outlier_frac", "sensitive_frac"):
            if not 0 <= getattr(self, key) < 0.5:
                raise ValueError(f"method.{key} must be in [0, 0.5), got {getattr(self, key)}")
        for key in ("n_calib", "calib_len", "kmeans_iters"):
            if getattr(self, key) < 1:
                raise ValueError(f"method.{key} must be >= 1, got {getattr(self, key)}")


def fisher_diagonal(model: nn.Module, seqs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Eq. (3), diagonal: mean over sequences of the squared gradient of each linear weight."""
    targets = dict(quantizable_linears(model))
    fisher = {n: torch.zeros_like(m.weight) for n, m in targets.items()}
    params = [m.weight for m in targets.values()]
    for p in params:
        p.requires_grad_(True)
    with torch.enable_grad():
        for seq in seqs:
            x, y = seq[None, :-1], seq[None, 1:]
            loss = F.cross_entropy(model(input_ids=x).logits.float().reshape(-1, model.config.vocab_size),
                                   y.reshape(-1))
            grads = torch.autograd.grad(loss, params)
            for n, g in zip(targets, grads):
                fisher[n] += g.detach() ** 2
    for p in params:
        p.requires_grad_(False)
    return {n: f / len(seqs) for n, f in fisher.items()}


def weighted_kmeans(w: torch.Tensor, weight: torch.Tensor, k: int, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (4) per row of ``w`` (rows x n): centroids (rows x k) minimising sum_i weight_i (w_i - c(w_i))^2,
    and each weight's code. Rows are solved together; a centroid left without weight keeps its place."""
    lo, hi = w.amin(1, keepdim=True), w.amax(1, keepdim=True)
    cent = lo + (hi - lo) * torch.linspace(0, 1, k, dtype=w.dtype)  # start from the uniform grid
    for _ in range(iters):
        codes = (w[:, :, None] - cent[:, None, :]).abs().argmin(-1)
        onehot = F.one_hot(codes, k).to(w.dtype) * weight[:, :, None]  # rows x n x k
        mass = onehot.sum(1)
        new = (onehot * w[:, :, None]).sum(1) / mass.clamp_min(1e-30)
        cent = torch.where(mass > 0, new, cent)
    cent = as_stored(cent)
    codes = (w[:, :, None] - cent[:, None, :]).abs().argmin(-1)
    return cent, codes


def sparse_mask(w: torch.Tensor, fisher: torch.Tensor, outlier_frac: float, sensitive_frac: float) -> torch.Tensor:
    """Eq. (5): weights outside [T_min, T_max] (the largest |w|, ``outlier_frac`` of the layer) plus the
    ``sensitive_frac`` with the largest Fisher value."""
    mask = torch.zeros_like(w, dtype=torch.bool)
    for score, frac in ((w.abs(), outlier_frac), (fisher, sensitive_frac)):
        n = int(round(frac * w.numel()))
        if n:
            mask.view(-1)[score.reshape(-1).topk(n).indices] = True
    return mask


@register_method("squeezellm", SqueezeLLMConfig)
class SqueezeLLM(DecodingMethod):
    def calibration(self, task: TextGeneration, seed: int) -> torch.Tensor:
        """(n_calib, calib_len + 1) byte ids from seeded offsets into the zoo's training text."""
        cfg = self.cfg
        text = calibration_text()
        gen = torch.Generator().manual_seed(seed)
        starts = torch.randint(0, len(text) - cfg.calib_len - 1, (cfg.n_calib,), generator=gen).tolist()
        return torch.tensor([list(text[s: s + cfg.calib_len + 1]) for s in starts], dtype=torch.long)

    def model(self, task: TextGeneration) -> nn.Module:
        if task.dtype != torch.float32:
            raise ValueError(f"method squeezellm quantizes a float32 model; hardware.dtype is {task.dtype}")
        cfg, seed = self.cfg, task.current_seed

        def build() -> nn.Module:
            m = conv1d_to_linear(copy.deepcopy(task.model))
            fisher = fisher_diagonal(m, self.calibration(task, seed).to(task.device))
            with torch.no_grad():
                for name, lin in quantizable_linears(m):
                    w, f = lin.weight.detach().float().cpu(), fisher[name].float().cpu()
                    mask = sparse_mask(w, f, cfg.outlier_frac, cfg.sensitive_frac)
                    # Sparse positions carry no weight in eq. (4); a tiny floor keeps rows whose Fisher
                    # values all vanish solvable (they fall back to plain k-means).
                    kw = torch.where(mask, torch.zeros_like(f), f + 1e-12 * f.mean().clamp_min(1e-30))
                    cent, codes = weighted_kmeans(w, kw, 2 ** cfg.bits, cfg.kmeans_iters)
                    index = mask.nonzero()
                    q = LowBitLinear(codes, cent[:, None, :], cfg.bits, w.shape[1], lin.bias,
                                     table_entries_stored=2 ** cfg.bits, sparse_index=index,
                                     sparse_value=as_stored(w[mask]))
                    replace_module(m, name, q.to(task.device))
            return m.eval()

        key = f"squeezellm/{cfg.bits}/{cfg.outlier_frac}/{cfg.sensitive_frac}/{cfg.n_calib}/{cfg.calib_len}/" \
              f"{cfg.kmeans_iters}/seed={seed}"
        return task.variant(key, build)

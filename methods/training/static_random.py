"""Static random subset: one uniform random subset of ``fraction`` of the training set, drawn once
from the seed and trained on in every round (random pruning, the baseline of the data-pruning
literature; Okanovic et al. 2023, arXiv 2305.18424, Table 1 "Random")."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.registry import register_method
from tasks.training.protocol import DataSelectionMethod, SelectionConfig


@dataclass
class StaticRandomConfig(SelectionConfig):
    pass


@register_method("static_random", StaticRandomConfig)
class StaticRandom(DataSelectionMethod):
    def select(self, round_index: int, n_train: int, seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)  # the same subset every round
        return torch.randperm(n_train, generator=gen)[: self.subset_size(n_train)]

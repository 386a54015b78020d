"""RS2 without replacement: Repeated Sampling of Random Subsets (Okanovic et al. 2023, arXiv 2305.18424).

Algorithm 1 of the paper (RS2 w/o replacement): each round trains on r*N examples drawn uniformly at
random from those not yet used in the current pass over the data; when every example has been used,
a new pass starts from a fresh permutation. Over R rounds the model thus sees R*r*N examples,
spread over all of the data, instead of the same r*N of a static pruned subset.

Here the rounds' selections are consecutive slices of the endless sequence perm_0 ++ perm_1 ++ ...
where perm_p is the p-th pass's permutation drawn from (seed, p): a pure function of the round, so
the timed round and the training run draw the same examples. A slice that crosses a pass boundary
takes the rest of one pass and the start of the next (no example repeats within a round unless
r*N > N, impossible for r <= 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.registry import register_method
from tasks.training.protocol import DataSelectionMethod, SelectionConfig


@dataclass
class RS2Config(SelectionConfig):
    pass


@register_method("rs2", RS2Config)
class RS2(DataSelectionMethod):
    @staticmethod
    def _pass(p: int, n_train: int, seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + p + 1)
        return torch.randperm(n_train, generator=gen)

    def select(self, round_index: int, n_train: int, seed: int) -> torch.Tensor:
        k = self.subset_size(n_train)
        start, stop = round_index * k, (round_index + 1) * k
        first, last = start // n_train, (stop - 1) // n_train
        seq = torch.cat([self._pass(p, n_train, seed) for p in range(first, last + 1)])
        offset = start - first * n_train
        return seq[offset: offset + k]

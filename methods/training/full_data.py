"""Full data: every round is one pass over the whole training set (the reference curve).

``fraction`` must be 1: a fixed subset is ``static_random``, a fresh one per round ``rs2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.registry import register_method
from tasks.training.protocol import DataSelectionMethod, SelectionConfig


@dataclass
class FullDataConfig(SelectionConfig):
    fraction: float = 1.0
    LABEL_ALWAYS = ()

    def __post_init__(self) -> None:
        if self.fraction != 1.0:
            raise ValueError(f"method full_data trains on all data (fraction 1), got method.fraction={self.fraction}; "
                             "use static_random or rs2 for a fraction")


@register_method("full_data", FullDataConfig)
class FullData(DataSelectionMethod):
    def select(self, round_index: int, n_train: int, seed: int) -> torch.Tensor:
        return torch.arange(n_train)

"""The training workload's method protocol: a data-selection method chooses each round's examples.

Two verbs: ``setup`` does one-time work before training (scoring examples for a static pruned
subset) and says how many example passes it spent; ``select`` returns the training indices of one
round as a pure function of the round and the seed (so the timed round and the training run draw
the same data). The task owns the model, the optimiser, the clock and the evaluation: every method
trains the same network with the same schedule, and only the data differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from harness.plugin import Method, PluginConfig

if TYPE_CHECKING:
    from tasks.training.time_to_accuracy import TimeToAccuracy


@dataclass
class SelectionConfig(PluginConfig):
    """``fraction``: share of the training set trained on per round (the RS2 paper's selection ratio r)."""

    fraction: float = 0.1
    LABEL_ALWAYS = ("fraction",)

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"method.fraction must be in (0, 1], got {self.fraction}")


class DataSelectionMethod(Method):
    """Chooses the examples of every training round; subclasses implement ``select``."""

    def setup(self, task: TimeToAccuracy, seed: int) -> float:
        """One-time work before the first round; the task times it and charges it to the method.

        Returns the example passes it spent (forward + backward of one example counts 1, a forward
        alone 1/3, the usual FLOP ratio), added to the examples-seen axis of the curves.
        """
        return 0.0

    def select(self, round_index: int, n_train: int, seed: int) -> torch.Tensor:
        """Indices into the training set for round ``round_index`` (the task shuffles them into batches)."""
        raise NotImplementedError(f"{type(self).__name__} must implement select(round_index, n_train, seed)")

    def subset_size(self, n_train: int) -> int:
        return max(1, int(round(self.cfg.fraction * n_train)))

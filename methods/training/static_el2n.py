"""Static hardest subset by EL2N score (Paul et al. 2021, "Deep Learning on a Data Diet", arXiv 2107.07075).

EL2N score of example (x, y) (their Sec. 2, eq. 2): E_w || p(w, x) - onehot(y) ||_2, the L2 norm of
the error vector of the softmax output, averaged over ``score_models`` networks trained from
different initialisations for ``score_epochs`` epochs on the full training set (early in training:
the paper scores at epoch ~20 of 200). The ``fraction`` of examples with the highest scores (the
hardest) is kept and trained on in every round.

The scoring is the cost data pruning pays before training: the task times ``setup`` and adds it to
the curves' wall-time axis, and the example passes it spends (training: 1 per example per epoch;
scoring forward: 1/3 per example) to the examples axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from harness.registry import register_method
from tasks.training.protocol import DataSelectionMethod, SelectionConfig

if TYPE_CHECKING:
    from tasks.training.time_to_accuracy import TimeToAccuracy


@dataclass
class StaticEL2NConfig(SelectionConfig):
    score_models: int = 2  # networks the score is averaged over (the paper: 10)
    score_epochs: int = 3  # full-data epochs each scoring network trains before scoring

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.score_models < 1 or self.score_epochs < 1:
            raise ValueError(f"method.score_models and method.score_epochs must be >= 1, got {self.score_models} "
                             f"and {self.score_epochs}")


@register_method("static_el2n", StaticEL2NConfig)
class StaticEL2N(DataSelectionMethod):
    subset: torch.Tensor | None = None

    def setup(self, task: TimeToAccuracy, seed: int) -> float:
        cfg, n = self.cfg, task.n_train
        scores = torch.zeros(n)
        steps = cfg.score_epochs * -(-n // task.cfg.batch_size)
        for m in range(cfg.score_models):
            model = task.new_model(seed * 7919 + 1000 + m)  # other inits than the trained model's
            opt, sched = task.optimiser(model, steps)
            gen = torch.Generator().manual_seed(seed * 7919 + m)
            for _ in range(cfg.score_epochs):
                task.train_round(model, opt, sched, torch.arange(n), gen)
            model.eval()
            with torch.no_grad():  # eq. 2: || softmax(f(x)) - onehot(y) ||_2
                p = F.softmax(model(task.x_train), dim=1)
                scores += (p - F.one_hot(task.y_train, p.shape[1]).float()).norm(dim=1).cpu()
        self.subset = scores.argsort(descending=True)[: self.subset_size(n)]
        return float(cfg.score_models * (cfg.score_epochs * n + n / 3))

    def select(self, round_index: int, n_train: int, seed: int) -> torch.Tensor:
        if self.subset is None:
            raise RuntimeError("static_el2n: setup() must score the examples before select()")
        return self.subset

"""Time to accuracy of a small CNN on scikit-learn digits under a fixed budget of training rounds.

Every method trains the same network (``tasks.zoo.digits.DigitsClassifier``, initialised from the
point's seed) with the same optimiser and learning-rate schedule for ``rounds`` rounds; a round is
one pass over the examples the method selects for it (the whole training set, a static subset, or
RS2's fresh random subset). This is the RS2 paper's setting (Okanovic et al. 2023, arXiv 2305.18424,
Sec. 3: a fixed number of rounds, each training on a selection ratio r of the data, the schedule
spread over the reduced number of iterations).

The train / test split is fixed (``tasks.zoo.digits.heldout_split``: 1438 train, 359 test); the seed
changes the initialisation, the batch order and the methods' random draws. Training noise dominates
at this size, so claims use several seeds.

Measured per point:
- the timed call: one round of training on the method's round-0 selection (selection + SGD steps);
- ``accuracy``: test accuracy after the last round; ``time_to_accuracy`` / ``examples_to_accuracy``:
  training wall time (setup included, evaluation excluded) and example passes until the test
  accuracy first reaches ``target_accuracy`` (absent, and ``reached_target`` = 0, if never);
- ``selection_cost``: wall time of the method's one-time setup (EL2N scoring), already inside the
  curves' time axis;
- the curves, one row per evaluation (``sample`` = round): ``curve_accuracy``, ``curve_wall``
  (seconds) and ``curve_examples`` (example passes), for plots of accuracy over time and over data.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from harness.metrics import MetricInfo, register_metric
from harness.plugin import Observation, PluginConfig, Prepared, Task
from harness.registry import register_task
from tasks.training.protocol import DataSelectionMethod
from tasks.zoo.digits import DigitsClassifier, digits_tensor, heldout_split

for _name, _meta in {
    "time_to_accuracy": MetricInfo("s", False, "training wall time (method setup included, evaluation excluded) "
                                   "until the test accuracy first reaches task.target_accuracy", "one run", True),
    "examples_to_accuracy": MetricInfo("examples", False, "example passes (forward+backward = 1, forward = 1/3) "
                                       "until the test accuracy first reaches task.target_accuracy", "one run", True),
    "reached_target": MetricInfo("", True, "1 if the test accuracy reached task.target_accuracy within the budget",
                                 "one run"),
    "examples_seen": MetricInfo("examples", False, "example passes of the whole run, setup included", "count", True),
    "train_time": MetricInfo("s", False, "training wall time of the whole run, setup included", "one run", True),
    "selection_cost": MetricInfo("s", False, "wall time of the method's one-time setup (EL2N scoring)", "one run",
                                 True),
    "curve_accuracy": MetricInfo("", None, "test accuracy after round `sample` (a curve point, for plots)"),
    "curve_wall": MetricInfo("s", None, "training wall time at round `sample` (a curve point, for plots)"),
    "curve_examples": MetricInfo("examples", None, "example passes at round `sample` (a curve point, for plots)"),
}.items():
    register_metric(_name, _meta)


@dataclass
class TimeToAccuracyConfig(PluginConfig):
    SMOKE = {"rounds": 3}  # profile=smoke
    rounds: int = 60  # the budget: training rounds, each one pass over the method's selection
    batch_size: int = 32
    lr: float = 0.05  # SGD peak learning rate; cosine decay to 0 over the budget's steps
    momentum: float = 0.9
    weight_decay: float = 5e-4
    width: int = 16  # DigitsClassifier conv width
    target_accuracy: float = 0.95  # time/examples to this test accuracy
    eval_every: int = 1  # rounds between test evaluations (curve points)

    def __post_init__(self) -> None:
        for key in ("rounds", "batch_size", "width", "eval_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"task.{key} must be >= 1, got {getattr(self, key)}")
        if self.lr <= 0 or not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ValueError(f"task.lr must be > 0, task.momentum in [0, 1), task.weight_decay >= 0; got "
                             f"{self.lr}, {self.momentum}, {self.weight_decay}")
        if not 0 < self.target_accuracy <= 1:
            raise ValueError(f"task.target_accuracy must be in (0, 1], got {self.target_accuracy}")


@register_task("time_to_accuracy", TimeToAccuracyConfig)
class TimeToAccuracy(Task):
    method_protocol = DataSelectionMethod

    def __init__(self, cfg: TimeToAccuracyConfig, model: dict[str, Any], device: torch.device, dtype: torch.dtype):
        if dtype != torch.float32:
            raise ValueError(f"task time_to_accuracy trains in float32; hardware.dtype is {dtype}")
        self.cfg, self.device = cfg, device
        x, y = digits_tensor()
        train, test = heldout_split(len(x))
        self.x_train, self.y_train = x[train].to(device), y[train].to(device)
        self.x_test, self.y_test = x[test].to(device), y[test].to(device)

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    def new_model(self, seed: int) -> DigitsClassifier:
        torch.manual_seed(seed)
        return DigitsClassifier(width=self.cfg.width, num_features=64).to(self.device)

    def steps_per_round(self, method: DataSelectionMethod) -> int:
        return math.ceil(method.subset_size(self.n_train) / self.cfg.batch_size)

    def train_round(self, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any, idx: torch.Tensor,
                    gen: torch.Generator) -> None:
        """One pass over ``idx`` in shuffled mini-batches."""
        model.train()
        order = idx[torch.randperm(len(idx), generator=gen)]
        for batch in order.split(self.cfg.batch_size):
            with torch.enable_grad():
                loss = F.cross_entropy(model(self.x_train[batch]), self.y_train[batch])
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()
            sched.step()

    @torch.no_grad()
    def test_accuracy(self, model: torch.nn.Module) -> float:
        model.eval()
        return (model(self.x_test).argmax(1) == self.y_test).float().mean().item()

    def optimiser(self, model: torch.nn.Module, total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
        cfg = self.cfg
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0,
                              weight_decay=cfg.weight_decay)
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))

    def prepare(self, method: Any, seed: int) -> Prepared:
        if not isinstance(method, DataSelectionMethod):
            raise TypeError(f"task time_to_accuracy needs a data-selection method, got {type(method).__name__}")
        cfg = self.cfg
        t0 = time.perf_counter()
        setup_examples = float(method.setup(self, seed))
        setup_s = time.perf_counter() - t0
        total_steps = cfg.rounds * self.steps_per_round(method)
        scratch = self.new_model(seed)
        scratch_opt, scratch_sched = self.optimiser(scratch, total_steps)
        scratch_gen = torch.Generator().manual_seed(seed)

        def one_round() -> None:  # the timed call: selection + one round of SGD (on a scratch model)
            idx = method.select(0, self.n_train, seed)
            self.train_round(scratch, scratch_opt, scratch_sched, idx, scratch_gen)

        def evaluate() -> list[Observation]:
            model = self.new_model(seed)
            opt, sched = self.optimiser(model, total_steps)
            gen = torch.Generator().manual_seed(seed)
            wall, examples = setup_s, setup_examples
            curve: list[tuple[int, float, float, float]] = [(0, self.test_accuracy(model), wall, examples)]
            for r in range(cfg.rounds):
                t = time.perf_counter()
                idx = method.select(r, self.n_train, seed)
                self.train_round(model, opt, sched, idx, gen)
                wall += time.perf_counter() - t
                examples += len(idx)
                if (r + 1) % cfg.eval_every == 0 or r + 1 == cfg.rounds:
                    curve.append((r + 1, self.test_accuracy(model), wall, examples))
            obs = []
            for r, acc, w, e in curve:
                obs += [Observation("curve_accuracy", acc, sample=r, n=len(self.y_test)),
                        Observation("curve_wall", w, sample=r), Observation("curve_examples", e, sample=r)]
            hit = next((c for c in curve if c[1] >= cfg.target_accuracy), None)
            obs += [Observation("accuracy", curve[-1][1], n=len(self.y_test)),
                    Observation("reached_target", float(hit is not None)),
                    Observation("examples_seen", examples), Observation("train_time", wall),
                    Observation("selection_cost", setup_s)]
            if hit is not None:
                obs += [Observation("time_to_accuracy", hit[2]), Observation("examples_to_accuracy", hit[3])]
            return obs

        return Prepared(call=one_round, batch_size=method.subset_size(self.n_train), evaluate=evaluate,
                        flops_call=None)


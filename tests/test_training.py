"""Training time-to-accuracy workload: data-selection methods, the task's curves, validation."""

from __future__ import annotations

import pytest
import torch

from harness.registry import lookup
from tasks.training.protocol import DataSelectionMethod
from tasks.training.time_to_accuracy import TimeToAccuracy, TimeToAccuracyConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _method(name: str, **params: object) -> DataSelectionMethod:
    cls = lookup("method", name)
    return cls(cls.Config(name=name, **params))


@pytest.fixture(scope="module")
def task() -> TimeToAccuracy:
    cfg = TimeToAccuracyConfig(name="time_to_accuracy", rounds=4, target_accuracy=0.2)
    return TimeToAccuracy(cfg, {"name": "digits_cnn"}, torch.device("cpu"), torch.float32)


def test_rs2_draws_every_example_once_per_pass_and_repeats_its_rounds() -> None:
    rs2, n = _method("rs2", fraction=0.1), 1000
    rounds = [rs2.select(r, n, seed=3) for r in range(10)]  # exactly one pass: 10 x 100
    assert all(len(r) == 100 for r in rounds)
    assert sorted(torch.cat(rounds).tolist()) == list(range(n))  # without replacement
    assert torch.equal(rs2.select(4, n, seed=3), rounds[4])  # a pure function of (round, seed)
    crossing = rs2.select(3, 350, seed=0)  # 35 per round: round 9 straddles the first pass's end
    assert len(set(rs2.select(9, 350, seed=0).tolist())) == 35 and len(crossing) == 35
    assert not torch.equal(rs2.select(0, n, seed=3), rs2.select(0, n, seed=4))


def test_static_subsets_stay_fixed_and_full_data_takes_all() -> None:
    static = _method("static_random", fraction=0.1)
    assert torch.equal(static.select(0, 500, seed=1), static.select(7, 500, seed=1))
    assert len(static.select(0, 500, seed=1)) == 50
    assert _method("full_data").select(5, 30, seed=0).tolist() == list(range(30))


def test_el2n_keeps_the_highest_scores_and_charges_its_scoring(task: TimeToAccuracy) -> None:
    el2n = _method("static_el2n", fraction=0.1, score_models=1, score_epochs=1)
    with pytest.raises(RuntimeError, match="setup"):
        el2n.select(0, task.n_train, seed=0)
    obs = {o.metric: o.value for o in task.prepare(el2n, seed=0).evaluate() if o.sample is None}
    assert len(el2n.select(0, task.n_train, seed=0)) == round(0.1 * task.n_train)
    assert obs["selection_cost"] > 0
    # scoring: one epoch of training + a forward pass over the training set, then 4 rounds of 10%
    assert obs["examples_seen"] == pytest.approx(task.n_train * (1 + 1 / 3) + 4 * round(0.1 * task.n_train))


def test_task_records_curves_over_time_and_examples(task: TimeToAccuracy) -> None:
    prepared = task.prepare(_method("rs2", fraction=0.1), seed=0)
    prepared.call()  # the timed call: one round on a scratch model
    obs = prepared.evaluate()
    curve = {m: [o for o in obs if o.metric == m] for m in ("curve_accuracy", "curve_wall", "curve_examples")}
    assert [o.sample for o in curve["curve_accuracy"]] == [0, 1, 2, 3, 4]
    walls = [o.value for o in curve["curve_wall"]]
    final = {o.metric: o.value for o in obs if o.sample is None}
    assert walls == sorted(walls) and walls[0] == final["selection_cost"]  # the clock starts with the setup
    assert [o.value for o in curve["curve_examples"]] == [r * 144 for r in range(5)]
    assert final["accuracy"] == curve["curve_accuracy"][-1].value
    assert final["reached_target"] in (0.0, 1.0)
    if final["reached_target"]:
        assert final["time_to_accuracy"] <= final["train_time"]


def test_bad_configs_name_the_field() -> None:
    with pytest.raises(ValueError, match="method.fraction"):
        lookup("method", "rs2").Config(name="rs2", fraction=0.0)
    with pytest.raises(ValueError, match="full_data"):
        lookup("method", "full_data").Config(name="full_data", fraction=0.5)
    with pytest.raises(ValueError, match="task.target_accuracy"):
        TimeToAccuracyConfig(name="time_to_accuracy", target_accuracy=1.5)
    with pytest.raises(ValueError, match="task.rounds"):
        TimeToAccuracyConfig(name="time_to_accuracy", rounds=0)

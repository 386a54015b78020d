"""Resampling with a weak verifier (tasks/decoding/verifier.py): the verifier, the unbiased curves, and a
false-positive rate that is counted on the samples."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from harness.registry import lookup
from tasks.decoding.arithmetic import ANSWER_LEN
from tasks.decoding.verifier import (
    VerifiedResampling,
    VerifiedResamplingConfig,
    resampling_curves,
    weak_verifier_passes,
)


def test_weak_verifier_checks_only_the_last_digits() -> None:
    want = "0357\n"
    assert weak_verifier_passes(want, want, 2)
    assert weak_verifier_passes("1257\n", want, 2)  # wrong carry into the hundreds: a false positive
    assert not weak_verifier_passes("1257\n", want, 3)
    assert not weak_verifier_passes("0358\n", want, 2)
    assert not weak_verifier_passes("0357", want, 2) and not weak_verifier_passes("0357x", want, 2)


def test_curves_equal_brute_force_over_every_sample_order() -> None:
    # One problem, n = 5 samples: 1 right, 2 false positives, 2 rejected. Resampling returns the first
    # passing sample of a random order; averaging over all 120 orders is the exact expectation.
    labels = ["right", "fp", "fp", "no", "no"]
    n, cost = len(labels), 1.0
    curves = resampling_curves(np.array([1]), np.array([3]), n, list(range(1, n + 1)), cost)
    for k in range(1, n + 1):
        acc = util = cov = 0.0
        orders = list(itertools.permutations(labels))
        for order in orders:
            first = next((x for x in order[:k] if x != "no"), None)
            acc += first == "right"
            util += {"right": 1.0, "fp": -cost, None: 0.0}[first]
            cov += "right" in order[:k]
        assert curves["verified_accuracy"][k - 1] == pytest.approx(acc / len(orders))
        assert curves["utility"][k - 1] == pytest.approx(util / len(orders))
        assert curves["coverage"][k - 1] == pytest.approx(cov / len(orders))
    assert curves["verified_accuracy"][-1] == pytest.approx(1 / 3)  # the ceiling c / p, not coverage's 1
    with pytest.raises(ValueError, match="correct <= passing"):
        resampling_curves(np.array([2]), np.array([1]), 4, [1], 1.0)


@pytest.fixture(scope="module")
def task() -> VerifiedResampling:
    torch.set_num_threads(1)
    cfg = VerifiedResamplingConfig(name="verified_resampling", n_problems=4, n_samples=8, batch_size=4, gain_from_k=2)
    return VerifiedResampling(cfg, {"name": "bytes_arith", "source": "zoo:bytes_arith"}, torch.device("cpu"),
                              torch.float32)


def _sampling(temperature: float) -> object:
    cls = lookup("method", "sampling")
    return cls(cls.Config(name="sampling", temperature=temperature))


def _obs(task: VerifiedResampling, method: object) -> dict[str, float]:
    return {o.metric + (f"@{o.stage}" if o.stage else ""): o.value for o in task.prepare(method, 0).evaluate()}


def test_false_positive_rate_is_counted_on_the_samples(task: VerifiedResampling, monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    _, answers = task.problems(0)

    def fake(kind: str) -> object:
        def sample(method: object, prompts: torch.Tensor, seed: int) -> torch.Tensor:
            i0 = seed  # the task passes seed + index of the batch's first problem; the test runs seed 0
            out = []
            for want in answers[i0:i0 + len(prompts)]:
                fp = str((int(want[0]) + 1) % 10) + want[1:]  # thousands digit wrong, last two right
                bad = want[:3] + str((int(want[3]) + 1) % 10) + "\n"  # last digit wrong: rejected
                rows = [want, want] + [fp if kind == "fp" else bad] * 3 + [bad] * 3
                out += [list(r.encode()) for r in rows]
            return torch.tensor(out).view(-1, ANSWER_LEN)
        return sample

    monkeypatch.setattr(task, "sample", fake("fp"))
    obs = _obs(task, _sampling(1.0))
    assert obs["false_positive_rate"] == pytest.approx(3 / 6)  # 6 wrong per problem, 3 of them pass
    assert obs["pass_at_1"] == pytest.approx(2 / 8)
    assert obs["accuracy_ceiling"] == pytest.approx(2 / 5)
    assert obs["verified_accuracy@k=8"] == pytest.approx(2 / 5) and obs["coverage@k=8"] == 1.0
    monkeypatch.setattr(task, "sample", fake("none"))
    obs = _obs(task, _sampling(1.0))
    assert obs["false_positive_rate"] == 0.0 and obs["verified_accuracy@k=8"] == 1.0


def test_real_samples_give_curves_and_an_optimum(task: VerifiedResampling) -> None:
    obs = _obs(task, _sampling(2.5))
    assert 0 <= obs["false_positive_rate"] <= 1
    assert obs["verified_accuracy@k=1"] == pytest.approx(obs["pass_at_1"])  # one sample: nothing to verify
    for k in (1, 2, 4, 8):
        assert obs[f"verified_accuracy@k={k}"] <= obs[f"coverage@k={k}"] + 1e-12
    assert 1 <= obs["utility_optimal_k"] <= 8
    assert obs["coverage_gain@k=2..8"] == pytest.approx(obs["coverage@k=8"] - obs["coverage@k=2"])


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="task.verifier_digits must be in 1..3"):
        VerifiedResamplingConfig(verifier_digits=4)
    with pytest.raises(ValueError, match="task.gain_from_k"):
        VerifiedResamplingConfig(n_samples=8, gain_from_k=8)

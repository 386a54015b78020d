"""Resampling with an imperfect verifier on 3-digit addition (Stroebl, Kapoor and Narayanan 2024,
"Inference Scaling fLaws: The Limits of LLM Resampling with Imperfect Verifiers", arXiv 2411.17501).

The arithmetic task (``tasks/decoding/arithmetic.py``) has an exact checker, so coverage (oracle
pass@k) only grows with k. Here a weak verifier stands in for a unit-test suite of limited
coverage: it checks only the last ``verifier_digits`` digits of the answer against the true sum's,
so an answer with a wrong carry into the hundreds passes (a false positive). Resampling (the
paper's Sec. 2 setting) draws samples one by one and returns the first that passes the verifier;
after k samples without a pass it abstains.

Per problem, with n samples drawn, c of them correct and p of them passing the verifier (every
correct answer passes, so c <= p), the outcome of "resample up to k" is estimated without bias
from the n samples: the k samples are a uniformly random ordered subset of the n, the first
passing one is uniform over the p passing ones, so

- P(some sample of k passes) = 1 - C(n-p, k) / C(n, k)   (pass@k with p "successes")
- P(right answer returned)  = that * c / p                  (``verified_accuracy@k``)
- P(wrong answer returned)  = that * (p - c) / p            (a false positive reaches the user)
- utility@k = P(right) - cost * P(wrong); abstaining scores 0 (the paper's Sec. 4: a false
  positive has negative utility compared to abstaining, which bends the scaling curve down).

As k grows, verified accuracy tends to the mean of c / p, not to 1 (the paper's ceiling, eq. 1),
while coverage (pass@k with c successes) keeps growing. ``utility_optimal_k`` is the k in 1..n
with the highest mean utility (the smallest such k on ties). The false-positive rate is counted on
the samples (wrong answers that pass / wrong answers), never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.metrics import MetricInfo, register_metric
from harness.plugin import Observation, Prepared
from harness.registry import register_task
from tasks.decoding.arithmetic import ANSWER_LEN, Arithmetic, ArithmeticConfig, answer_text, pass_at_k
from tasks.zoo.bytes import ARITH_DIGITS

for _name, _meta in {
    "verified_accuracy": MetricInfo("", True, "resampling with the weak verifier: fraction of problems whose returned "
                                    "answer is right; the stage names k (k=8)",
                                    "mean over problems of (1 - C(n-p, k) / C(n, k)) * c / p"),
    "utility": MetricInfo("", True, "resampling with the weak verifier: +1 right answer returned, -cost wrong answer "
                          "returned, 0 abstained; the stage names k", "mean over problems"),
    "accuracy_ceiling": MetricInfo("", True, "verified accuracy as k -> infinity: the verifier's precision per problem",
                                   "mean over problems of c / p (0 where nothing passed)"),
    "false_positive_rate": MetricInfo("", False, "weak verifier: wrong answers that pass / wrong answers",
                                      "pooled over all samples of all problems; n = wrong answers"),
    "utility_optimal_k": MetricInfo("samples", None, "the k in 1..n with the highest mean utility (smallest on ties)",
                                    "argmax over k of the mean over problems"),
    "verified_accuracy_gain": MetricInfo("", True, "verified accuracy at k=n minus at the stage's first k "
                                         "(k=16..256): how much the last doublings still add", "difference of means"),
    "coverage_gain": MetricInfo("", True, "coverage (oracle pass@k) at k=n minus at the stage's first k", "difference "
                                "of means"),
}.items():
    register_metric(_name, _meta)


def weak_verifier_passes(answer: str, want: str, digits: int) -> bool:
    """The weak verifier: the answer's last ``digits`` digits (before the newline) equal the true sum's.

    Answers are fixed width ("0357\\n"), so the last digits sit at fixed places; a malformed answer
    (wrong length, no newline) fails.
    """
    if len(answer) != len(want) or not answer.endswith("\n"):
        return False
    return answer[-1 - digits:-1] == want[-1 - digits:-1]


def resampling_curves(correct: np.ndarray, passing: np.ndarray, n: int, ks: list[int],
                      cost: float) -> dict[str, np.ndarray]:
    """Per-k means over problems: coverage (oracle pass@k), verified accuracy and utility.

    ``correct[i]`` (c) and ``passing[i]`` (p) count problem i's right and verifier-passing samples
    out of ``n``; c <= p is required (a right answer always passes).
    """
    correct, passing = np.asarray(correct, dtype=int), np.asarray(passing, dtype=int)
    if (correct > passing).any() or (passing > n).any() or (correct < 0).any():
        raise ValueError(f"need 0 <= correct <= passing <= n={n} per problem; got correct={correct.tolist()}, "
                         f"passing={passing.tolist()}")
    cov, acc, util = [], [], []
    for k in ks:
        some = np.array([pass_at_k(n, int(p), k) for p in passing])
        right = np.where(passing > 0, correct / np.maximum(passing, 1), 0.0)
        cov.append(np.mean([pass_at_k(n, int(c), k) for c in correct]))
        acc.append(np.mean(some * right))
        util.append(np.mean(some * (right - cost * np.where(passing > 0, 1 - right, 0.0))))
    return {"coverage": np.array(cov), "verified_accuracy": np.array(acc), "utility": np.array(util)}


@dataclass
class VerifiedResamplingConfig(ArithmeticConfig):
    SMOKE = {"n_problems": 4, "n_samples": 16, "batch_size": 4, "gain_from_k": 4}  # profile=smoke
    # Larger than the arithmetic task's defaults: the plateau and the optimum need k up to 256.
    n_problems: int = 128
    n_samples: int = 256
    batch_size: int = 4
    verifier_digits: int = 2  # the weak verifier checks only the answer's last this-many digits
    false_positive_cost: float = 1.0  # utility of a wrong answer returned is -cost (a right one +1, abstaining 0)
    gain_from_k: int = 16  # verified_accuracy_gain / coverage_gain span k = gain_from_k .. n_samples

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.verifier_digits <= ARITH_DIGITS:
            raise ValueError(f"task.verifier_digits must be in 1..{ARITH_DIGITS} (a verifier checking all "
                             f"{ARITH_DIGITS + 1} digits would be the exact checker), got {self.verifier_digits}")
        if self.false_positive_cost < 0:
            raise ValueError(f"task.false_positive_cost must be >= 0, got {self.false_positive_cost}")
        if not 1 <= self.gain_from_k < self.n_samples:
            raise ValueError(f"task.gain_from_k must be in 1..n_samples-1 ({self.n_samples - 1}), got "
                             f"{self.gain_from_k}")


@register_task("verified_resampling", VerifiedResamplingConfig)
class VerifiedResampling(Arithmetic):
    """The arithmetic task's problems and sampler, scored by resampling against the weak verifier."""

    cfg: VerifiedResamplingConfig

    def prepare(self, method: Any, seed: int) -> Prepared:
        prepared = super().prepare(method, seed)  # validates the method; its timed call is reused as is
        cfg = self.cfg
        prompts, answers = self.problems(seed)

        def evaluate() -> list[Observation]:
            n = cfg.n_samples
            correct, passing, wrong, false_pos = [], [], 0, 0
            for i in range(0, len(prompts), cfg.batch_size):
                out = self.sample(method, prompts[i:i + cfg.batch_size], seed + i).view(-1, n, ANSWER_LEN)
                for j, samples in enumerate(out):
                    want = answers[i + j]
                    texts = [answer_text(s.tolist()) for s in samples]
                    right = [t == want for t in texts]
                    passed = [weak_verifier_passes(t, want, cfg.verifier_digits) for t in texts]
                    if any(r and not p for r, p in zip(right, passed)):
                        raise AssertionError(f"the weak verifier rejected a right answer to {want!r}")
                    correct.append(sum(right))
                    passing.append(sum(passed))
                    wrong += n - sum(right)
                    false_pos += sum(p and not r for r, p in zip(right, passed))
            correct_a, passing_a = np.array(correct), np.array(passing)
            ks = sorted({2**e for e in range(int(np.log2(n)) + 1)} | {n, cfg.gain_from_k})
            curves = resampling_curves(correct_a, passing_a, n, ks, cfg.false_positive_cost)
            every = resampling_curves(correct_a, passing_a, n, list(range(1, n + 1)), cfg.false_positive_cost)
            at = {k: i for i, k in enumerate(ks)}
            gain = {name: float(curves[name][at[n]] - curves[name][at[cfg.gain_from_k]])
                     for name in ("verified_accuracy", "coverage")}
            span = f"k={cfg.gain_from_k}..{n}"
            m = len(correct)
            ceiling = np.where(passing_a > 0, correct_a / np.maximum(passing_a, 1), 0.0)
            obs = [Observation("pass_at_1", float(correct_a.mean()) / n, n=m),
                   Observation("coverage_at_n", float(np.mean(correct_a > 0)), n=m),
                   Observation("false_positive_rate", false_pos / wrong if wrong else float("nan"), n=wrong),
                   Observation("accuracy_ceiling", float(ceiling.mean()), n=m),
                   Observation("utility_optimal_k", float(1 + int(np.argmax(every["utility"]))), n=m),
                   Observation("verified_accuracy_gain", gain["verified_accuracy"], stage=span, n=m),
                   Observation("coverage_gain", gain["coverage"], stage=span, n=m),
                   Observation("tokens_generated", float(min(cfg.batch_size, m) * n * ANSWER_LEN))]
            for name in ("coverage", "verified_accuracy", "utility"):
                obs += [Observation(name, float(v), stage=f"k={k}", n=m) for k, v in zip(ks, curves[name])]
            return obs

        return Prepared(call=prepared.call, batch_size=prepared.batch_size, flops_call=prepared.flops_call,
                        stage_module=prepared.stage_module, stage=prepared.stage, evaluate=evaluate)


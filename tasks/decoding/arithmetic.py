"""Repeated sampling on a task with an exact checker: 3-digit addition (Large Language Monkeys, arXiv 2407.21787).

The model (``zoo:bytes_arith``, ``tasks/zoo/train_bytes.py``) completes "012+345=" with four
digits and a newline; an answer is correct iff it equals the true sum, so correctness needs no
judge. Problems are seeded draws from the held-out operand pairs the model never trained on.

For every problem the method draws ``n_samples`` answers; with c of them correct, coverage at k
samples is the unbiased pass@k estimator 1 - C(n-c, k) / C(n, k) (Chen et al. 2021, arXiv
2107.03374, eq. 1, in its numerically stable product form), averaged over problems; the paper's
claim is that coverage grows log-linearly in k. Cost grows linearly in k: ``flops`` counts one
problem's n answers, so k answers cost k / n of it and coverage reads against compute directly.
The timed call draws all ``n_samples`` answers for ``batch_size`` problems in one batched ``generate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness.metrics import MetricInfo, register_metric
from harness.plugin import Observation, PluginConfig, Prepared, Task
from harness.registry import register_task
from tasks.decoding.protocol import DecodingMethod, load_causal_lm
from tasks.zoo import check_source
from tasks.zoo.bytes import ARITH_DIGITS, arith_line, arith_split

PROMPT_LEN = 2 * ARITH_DIGITS + 2  # "012+345="
ANSWER_LEN = ARITH_DIGITS + 2  # "0357\n"

for _name, _meta in {
    # The coverage curve: one row per k, with stage "k=<k>" (so ``coverage@k=8`` in analysis); never a
    # summary over k, which would mean nothing.
    "coverage": MetricInfo("", True, "repeated sampling: unbiased pass@k; the stage names k (k=8)",
                           "mean over problems of 1 - C(n-c, k) / C(n, k)"),
    "coverage_at_n": MetricInfo("", True, "repeated sampling: fraction of problems with a correct answer among all n",
                                "mean over problems"),
    "pass_at_1": MetricInfo("", True, "repeated sampling: fraction of correct answers among all samples",
                            "mean over problems and samples"),
    "tokens_generated": MetricInfo("tokens/call", None, "new tokens of one timed call, all sequences of the batch",
                                   "count", deterministic=True),
}.items():
    register_metric(_name, _meta)


def answer_text(ids: list[int]) -> str:
    """An answer's bytes as text; a non-byte token (end-of-text, id 256, which hot sampling can draw)
    becomes NUL, so such an answer is simply wrong instead of crashing ``bytes``."""
    return "".join(chr(i) if i < 256 else "\0" for i in ids)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k: the chance that k of n samples (c correct), drawn without replacement, hold a correct one.

    1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k / i), which avoids huge binomials.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


@dataclass
class ArithmeticConfig(PluginConfig):
    SMOKE = {"n_problems": 8, "n_samples": 8, "batch_size": 4}  # profile=smoke
    n_problems: int = 64  # held-out problems scored
    n_samples: int = 64  # answers drawn per problem: n of pass@k; coverage is reported for k = 1, 2, 4, ..., n
    batch_size: int = 1  # problems per timed call, each with n_samples answers

    def __post_init__(self) -> None:
        for key in ("n_problems", "n_samples", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"task.{key} must be >= 1, got {getattr(self, key)}")
        if self.batch_size > self.n_problems:
            raise ValueError(f"task.batch_size={self.batch_size} exceeds task.n_problems={self.n_problems}")


@register_task("arithmetic", ArithmeticConfig)
class Arithmetic(Task):
    method_protocol = DecodingMethod

    @classmethod
    def fits(cls, method: type) -> str | None:
        why = super().fits(method)
        if why is None and (method.batch_one_only or method.uses_draft):
            why = "it decodes batch 1 or needs a draft model, and this task samples many answers per batch"
        if why is None and method.model is not DecodingMethod.model:
            why = "it replaces the task's model"
        return why

    @classmethod
    def check(cls, cfg: ArithmeticConfig, model: dict[str, Any]) -> None:
        super().check(cfg, model)
        check_source(model.get("source"), "model.source", "transformers causal LM", marker="config.json")

    def __init__(self, cfg: ArithmeticConfig, model: dict[str, Any], device: torch.device, dtype: torch.dtype):
        self.cfg, self.device = cfg, device
        self.model = load_causal_lm(model["source"], device, dtype)
        if self.model.config.vocab_size < 256:
            raise ValueError(f"model {model['source']!r} has vocab_size={self.model.config.vocab_size}; the "
                             "arithmetic task feeds bytes (ids 0..255)")
        self.held_out = arith_split()[1]

    def problems(self, seed: int) -> tuple[torch.Tensor, list[str]]:
        """(n_problems, PROMPT_LEN) prompt bytes and the correct completions, seeded held-out pairs."""
        rng = np.random.default_rng(seed)
        pairs = self.held_out[rng.choice(len(self.held_out), self.cfg.n_problems, replace=False)]
        lines = [arith_line(int(a), int(b)) for a, b in pairs]
        prompts = torch.tensor([list(line[:PROMPT_LEN].encode()) for line in lines], device=self.device)
        return prompts, [line[PROMPT_LEN:] for line in lines]

    def sample(self, method: DecodingMethod, prompts: torch.Tensor, seed: int) -> torch.Tensor:
        """``n_samples`` answers per prompt: (len(prompts) * n_samples, ANSWER_LEN) new tokens."""
        from transformers import GenerationConfig

        kwargs = {"do_sample": False} | method.generate_kwargs(self)  # type: ignore[arg-type]
        if kwargs["do_sample"]:
            torch.manual_seed(seed)  # the same draws on every repeat
        ids = prompts.repeat_interleave(self.cfg.n_samples, dim=0)
        gc = GenerationConfig(max_new_tokens=ANSWER_LEN, **kwargs)
        with method.context(self):  # type: ignore[arg-type]
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gc)
        return out[:, PROMPT_LEN:]

    def prepare(self, method: Any, seed: int) -> Prepared:
        if not isinstance(method, DecodingMethod) or method.batch_one_only or method.uses_draft:
            raise TypeError(f"task arithmetic samples many answers per batch with the task's model: method "
                            f"{getattr(method, 'name', method)!r} does not fit (use greedy or sampling)")
        if type(method).model is not DecodingMethod.model:
            raise TypeError(f"task arithmetic runs its own model; method {method.name!r} replaces the model")
        cfg = self.cfg
        prompts, answers = self.problems(seed)
        batch = prompts[: cfg.batch_size]

        def evaluate() -> list[Observation]:
            n = cfg.n_samples
            correct = []
            for i in range(0, len(prompts), cfg.batch_size):
                out = self.sample(method, prompts[i:i + cfg.batch_size], seed + i).view(-1, n, ANSWER_LEN)
                for j, samples in enumerate(out):
                    want = answers[i + j]
                    correct.append(sum(answer_text(s.tolist()) == want for s in samples))
            ks = sorted({2**e for e in range(int(np.log2(n)) + 1)} | {n})
            obs = [Observation("coverage_at_n", float(np.mean([c > 0 for c in correct])), n=len(correct)),
                   Observation("pass_at_1", float(np.mean(correct)) / n, n=len(correct)),
                   Observation("tokens_generated", float(batch.shape[0] * n * ANSWER_LEN))]
            obs += [Observation("coverage", float(np.mean([pass_at_k(n, c, k) for c in correct])), stage=f"k={k}",
                                n=len(correct)) for k in ks]
            return obs

        return Prepared(
            call=lambda: self.sample(method, batch, seed),
            batch_size=cfg.batch_size,
            flops_call=lambda: self.sample(method, batch[:1], seed),
            stage_module=self.model,
            stage="target_call",
            evaluate=evaluate,
        )

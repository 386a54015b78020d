"""Quality metrics shared by tasks. Each declares its direction and unit once, in ``METRICS``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    unit: str
    higher_is_better: bool | None  # None: not a quality direction (a cost or a count)
    description: str


METRICS: dict[str, MetricInfo] = {
    "fid": MetricInfo("", False, "Frechet distance between generated and real feature distributions"),
    "fid_bootstrap": MetricInfo("", False, "FID of one bootstrap resample of the generated samples"),
    "inception_score": MetricInfo("", True, "exp(E KL(p(y|x) || p(y))) under the task's classifier (IS-like)"),
    "mean_confidence": MetricInfo("", True, "mean max softmax probability of the task's classifier"),
    "label_entropy": MetricInfo("nats", True, "entropy of the marginal predicted label distribution"),
    "latency": MetricInfo("s", False, "wall time of one call (stage says which part)"),
    "latency_cold": MetricInfo("s", False, "first call, before warm-up"),
    "nfe": MetricInfo("calls/sample", False, "denoiser evaluations per generated sample"),
    "flops": MetricInfo("FLOP/sample", False, "FLOPs per generated sample, FlopCounterMode"),
    "peak_memory": MetricInfo("bytes", False, "peak memory during the timed calls"),
    "peak_memory_increase": MetricInfo("bytes", False, "peak memory during the timed calls minus memory in use before"),
    "error": MetricInfo("", None, "the point failed; the error column says why"),
    # text generation
    "tokens_generated": MetricInfo("tokens/call", None, "new tokens of one timed call, all sequences of the batch"),
    "flops_per_token": MetricInfo("FLOP/token", False, "FlopCounterMode FLOPs of one sequence / its new tokens"),
    "bits_per_byte": MetricInfo("bits/byte", False, "next-byte cross-entropy / ln 2, model as run, held-out text"),
    "exact_match": MetricInfo("", True, "fraction of prompts whose output equals greedy decoding's"),
    "token_agreement": MetricInfo("", True, "fraction of generated positions equal to plain greedy decoding's token"),
    "bleu": MetricInfo("", True, "sacrebleu corpus BLEU (character tokens) of the outputs against greedy decoding's"),
    "acceptance_rate": MetricInfo("", None, "speculative: accepted draft tokens / drafted tokens"),
    "tokens_per_target_call": MetricInfo("tokens/call", None, "speculative: new tokens per target forward call"),
    "draft_tokens_per_round": MetricInfo("tokens/call", None, "speculative: drafted tokens per target call (k)"),
    "draft_agreement": MetricInfo("", None, "speculative: draft argmax = target argmax, held-out text"),
    "coverage": MetricInfo("", True, "repeated sampling: unbiased pass@k over problems, k = the sample column"),
    "pass_at_1": MetricInfo("", True, "repeated sampling: fraction of correct answers among all samples"),
    "coverage_at_n": MetricInfo("", True, "repeated sampling: fraction of problems with a correct answer among all n"),
}


def info(metric: str) -> MetricInfo:
    if metric not in METRICS:
        raise KeyError(f"unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}")
    return METRICS[metric]

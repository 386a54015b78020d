"""Metrics shared by tasks, and the registry every metric is declared in once (direction, unit, aggregation).

Generic metrics and costs are declared here; a workload declares its own with ``register_metric``
in its task module (``tasks/<workload>/``), so a new workload edits nothing here.

Functions: ``token_bleu`` (per-sentence BLEU on token-ID tensors, equal to NLTK), and in
``harness.metrics.text`` sacrebleu corpus BLEU / chrF, accuracy, exact match, perplexity, bits per
byte; ``harness.metrics.fid`` FID / KID; ``harness.metrics.clip`` CLIP score.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.metrics.bleu import token_bleu

__all__ = ["METRICS", "MetricInfo", "info", "register_metric", "token_bleu"]


@dataclass(frozen=True)
class MetricInfo:
    unit: str
    higher_is_better: bool | None  # None: no direction (a count, a diagnostic)
    description: str
    aggregation: str = ""  # how per-item values become the reported value (e.g. "mean over sentences")
    cost: bool = False  # what a method spends (time, evaluations, FLOPs, memory), not a quality
    # The same code, config and seed give the same value on every run and machine (a count, a hash):
    # ``compare`` checks it exactly, and a changed value fails a comparison on its own.
    deterministic: bool = False


METRICS: dict[str, MetricInfo] = {
    "fid": MetricInfo("", False, "Frechet distance between generated and real feature distributions",
                      "Gaussian fit to all n generated samples' features vs all real features"),
    "fid_bootstrap": MetricInfo("", False, "FID of one bootstrap resample of the generated samples",
                                "one resample with replacement of the n generated samples"),
    "inception_score": MetricInfo("", True, "exp(E KL(p(y|x) || p(y))) under the task's classifier (IS-like)",
                                  "over all n generated samples"),
    "mean_confidence": MetricInfo("", True, "mean max softmax probability of the task's classifier", "mean over items"),
    "label_entropy": MetricInfo("nats", True, "entropy of the marginal predicted label distribution",
                                "over all n generated samples"),
    "kid": MetricInfo("", False, "Kernel Inception Distance (unbiased MMD^2, cubic polynomial kernel) on the task's "
                      "features", "mean over random subsets; n = generated samples"),
    "kid_std": MetricInfo("", None, "standard deviation of KID over the subsets (its spread, not a CI)",
                          "std over the same subsets"),
    "clip_score": MetricInfo("", True, "max(100 * mean cos(image, caption), 0) in CLIP embedding space",
                             "mean over image-caption pairs, then clamped at 0 (torchmetrics)"),
    "bleu": MetricInfo("BLEU (0-100)", True, "sacrebleu corpus BLEU (text generation: character tokens, against "
                       "plain greedy decoding's outputs)", "corpus statistics"),
    "chrf": MetricInfo("chrF (0-100)", True, "sacrebleu chrF (character n-gram F-score, beta 2)", "corpus statistics"),
    "accuracy": MetricInfo("", True, "fraction of predictions equal to their label", "mean over items"),
    "exact_match": MetricInfo("", True, "fraction of outputs equal to their reference (text generation: plain "
                              "greedy decoding's tokens, every token)",
                              "mean over items"),
    "perplexity": MetricInfo("", False, "exp(total NLL / total tokens)", "token-weighted over the corpus"),
    "bits_per_byte": MetricInfo("bits/byte", False, "total NLL in bits / total UTF-8 bytes (text generation: the "
                                "model as the method runs it, on held-out text)",
                                "byte-weighted over the corpus"),
    # costs
    "latency": MetricInfo("s", False, "wall time of one call (stage says which part)", "median of repeats", True),
    "latency_cold": MetricInfo("s", False, "first call, before warm-up", "one call", True),
    "latency_per_item": MetricInfo("s/item", False,
                                   "latency / items per timed call; derived by harness.analysis, not stored",
                                   "median of repeats / items per call", True),
    "energy": MetricInfo("J/call", False, "GPU energy of one call: NVML total-energy counter over >= 1 s of calls "
                         "/ calls (CUDA points with the nvml extra)", "counter difference / calls", True),
    "nfe": MetricInfo("calls/sample", False, "denoiser evaluations per generated sample", "count", True, True),
    "flops": MetricInfo("FLOP/sample", False, "FLOPs per generated sample, FlopCounterMode", "count", True, True),
    "peak_memory": MetricInfo("bytes", False, "peak memory during one call of the method", "max", True),
    "peak_memory_increase": MetricInfo("bytes", False, "peak memory during one call minus memory in use before",
                                       "max", True),
    # Efficiency figures derived by harness.analysis (not stored); higher is better, but not a quality.
    "tflops": MetricInfo("TFLOP/s", True, "counted FLOPs of one call / its latency; derived, not stored",
                         "flops * items per call / median latency", True),
    "fraction_of_peak": MetricInfo("", True, "tflops / the hardware config's spec-sheet peak_tflops; derived",
                                   "tflops / peak", True),
    "error": MetricInfo("", None, "the point failed; the error column says why"),
}


def register_metric(name: str, meta: MetricInfo) -> None:
    """Declare a workload's own metric once (in its task module); a second, different declaration fails."""
    if name in METRICS and METRICS[name] != meta:
        raise ValueError(f"metric {name!r} is declared twice, differently: {METRICS[name]} and {meta}")
    METRICS[name] = meta


def info(metric: str) -> MetricInfo:
    if metric not in METRICS:
        from harness.registry import load_plugins

        load_plugins()  # workloads declare their own metrics when they are imported
    if metric not in METRICS:
        raise KeyError(f"unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}")
    return METRICS[metric]

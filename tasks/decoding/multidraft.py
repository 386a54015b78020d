"""Multi-draft speculative sampling on the byte models' next-token distributions: how often can one
target step accept one of K drafted tokens?

With K drafts the draft model proposes a set S of tokens (drawn from its distribution q with or
without replacement); a verifier outputs a token Y that must be distributed exactly as the
target's p (lossless), and a step is accepted when Y is in S. Any verifier is a coupling of S ~ Q
and Y ~ p, so the best acceptance rate is an optimal-transport problem (Sun et al. 2023, SpecTr,
arXiv 2310.15141, Sec. 3; Hu et al. 2025, "Towards Optimal Multi-draft Speculative Decoding",
arXiv 2502.18779, Sec. 3): maximise P(Y in S) over couplings. Since only the accepted mass
matters, it is the bipartite max-flow LP

    max sum_{S, y in S} x[S, y]   s.t.  sum_{y in S} x[S, y] <= Q(S),  sum_{S ni y} x[S, y] <= p(y),  x >= 0,

whose value for K = 1 is sum_y min(p(y), q(y)) (Leviathan et al. 2023), and whose dual is
min over token sets T of p(T) + 1 - Q(S subset of T) (Hu et al.'s subset form; tested here).
This module holds what every verifier shares: the contexts, the two models' distributions on them,
the top-m truncation, and the distribution Q of the drafted set under both draft schemes. The
verifiers (``methods/decoding/optimal_transport.py``, ``methods/decoding/recursive_rejection.py``)
give an exact acceptance rate for a (p, q, K, scheme) and a ``verify`` that runs one step.

Truncation, said plainly: the LP has one variable per (set, member) pair, C(257, 4) * 4 ~ 7e8 for
4 drafts over the full byte vocabulary. Each context's p and q are restricted to the ``support``
tokens with the largest p + q and renormalised there; every verifier is scored on the same
truncated pair, and the mass kept (``support_mass_target`` / ``support_mass_draft``) is reported.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness.metrics import MetricInfo, register_metric
from harness.plugin import Method, Observation, PluginConfig, Prepared, Task
from harness.registry import register_task
from tasks.decoding.protocol import load_causal_lm
from tasks.zoo import check_source
from tasks.zoo.bytes import byte_stream, stdlib_split

SCHEMES = {"with_replacement": True, "without_replacement": False}

for _name, _meta in {
    "acceptance_with_replacement": MetricInfo("", True, "multi-draft: P(output token is one of the K drafts), drafts "
                                              "drawn i.i.d. from the draft model", "mean over contexts"),
    "acceptance_without_replacement": MetricInfo("", True, "multi-draft: P(output token is one of the K drafts), "
                                                 "K distinct drafts drawn without replacement", "mean over contexts"),
    "replacement_gain": MetricInfo("", True, "multi-draft: acceptance without replacement minus with replacement",
                                   "mean over contexts of the per-context difference"),
    "acceptance_one_draft": MetricInfo("", True, "one draft: sum_y min(p(y), q(y)) on the truncated support "
                                       "(Leviathan et al.'s acceptance rate); the same for every verifier",
                                       "mean over contexts"),
    "support_mass_target": MetricInfo("", None, "target probability kept by the top-m support truncation",
                                      "mean over contexts"),
    "support_mass_draft": MetricInfo("", None, "draft probability kept by the top-m support truncation",
                                     "mean over contexts"),
}.items():
    register_metric(_name, _meta)
    if _meta.higher_is_better is not None:
        register_metric(f"{_name}_bootstrap", MetricInfo("", _meta.higher_is_better, f"{_name} of one bootstrap "
                                                         "resample of the contexts", "one resample with replacement"))


def draft_set_distribution(q: np.ndarray, drafts: int, replacement: bool) -> tuple[list[np.ndarray], np.ndarray]:
    """The distribution Q of the SET of drafted tokens: (sets grouped by size, their probabilities).

    ``sets[j]`` is an (N_j, size_j) int array of sorted token sets; ``probs`` concatenates their
    probabilities in the same order. With replacement (K i.i.d. draws from q) the set of distinct
    tokens has Q(S) = sum_{T subset of S} (-1)^{|S|-|T|} q(T)^K (inclusion-exclusion over "every draw
    lands in T"); without replacement (each draw from q renormalised over the tokens not drawn yet)
    every set has K tokens and Q(S) sums, over the K! orders, prod_t q(s_t) / (1 - q(s_1..s_{t-1})).
    """
    q = np.asarray(q, dtype=float)
    m = len(q)
    if drafts < 1:
        raise ValueError(f"drafts must be >= 1, got {drafts}")
    if not replacement and drafts > int((q > 0).sum()):
        raise ValueError(f"{drafts} drafts without replacement need at least {drafts} tokens with q > 0; "
                         f"this q has {int((q > 0).sum())}")
    sets, probs = [], []
    sizes = range(1, drafts + 1) if replacement else [drafts]
    for size in sizes:
        s = np.array(list(itertools.combinations(range(m), size)), dtype=np.int64).reshape(-1, size)
        qs = q[s]  # (N, size)
        if replacement:
            pr = np.zeros(len(s))
            for mask in range(1, 2**size):
                bits = [b for b in range(size) if mask >> b & 1]
                pr += (-1) ** (size - len(bits)) * qs[:, bits].sum(1) ** drafts
        else:
            pr = np.zeros(len(s))
            for order in itertools.permutations(range(size)):
                qo = qs[:, list(order)]
                before = np.cumsum(qo, axis=1) - qo
                pr += np.prod(qo / np.maximum(1.0 - before, 1e-300), axis=1)
        sets.append(s)
        probs.append(np.clip(pr, 0.0, None))  # inclusion-exclusion can leave -1e-17 on empty sets
    out = np.concatenate(probs)
    if abs(out.sum() - 1.0) > 1e-6:
        raise AssertionError(f"draft set distribution sums to {out.sum()}, not 1 (q sums to {q.sum()})")
    return sets, out / out.sum()


def sample_drafts(q: np.ndarray, drafts: int, replacement: bool, rng: np.random.Generator) -> np.ndarray:
    """K drafted tokens from q, i.i.d. or without replacement, in draw order."""
    return rng.choice(len(q), size=drafts, replace=replacement, p=q)


def truncate(p: np.ndarray, q: np.ndarray, support: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Restrict p and q to the ``support`` tokens with the largest p + q, renormalised: (p', q', token ids,
    target mass kept, draft mass kept)."""
    keep = np.sort(np.argsort(-(p + q), kind="stable")[:support])
    mp, mq = float(p[keep].sum()), float(q[keep].sum())
    return p[keep] / mp, q[keep] / mq, keep, mp, mq


class MultiDraftVerifier(Method):
    """A multi-draft verifier: its exact acceptance rate on (p, q), and one verification step.

    ``acceptance`` is P(output in drafted set) for target p, draft q, K drafts and the draft scheme;
    ``verify`` takes the drafted tokens (in draw order) and returns the output token, which must be
    distributed as p when the drafts are drawn as the scheme says (lossless).
    """

    @property
    def drafts(self) -> int:
        """K, the drafted tokens per step (every verifier's config has ``drafts``)."""
        return int(self.cfg.drafts)

    def acceptance(self, p: np.ndarray, q: np.ndarray, replacement: bool) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement acceptance(p, q, replacement)")

    def verify(self, p: np.ndarray, q: np.ndarray, drafted: np.ndarray, replacement: bool,
               rng: np.random.Generator) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement verify(p, q, drafted, replacement, rng)")


@dataclass
class MultiDraftConfig(PluginConfig):
    SMOKE = {"n_contexts": 6, "support": 8, "bootstrap": 50}  # profile=smoke
    n_contexts: int = 200  # next-token positions scored, drawn from the held-out stdlib files
    context_len: int = 64  # bytes of text before each position
    support: int = 16  # top-m tokens (by p + q) kept per context; the LP grows as C(m, K) * K
    bootstrap: int = 1000  # resamples of the contexts for the CIs (paired across points of one seed)
    batch_size: int = 1  # contexts verified per timed call

    def __post_init__(self) -> None:
        for key in ("n_contexts", "context_len", "support", "bootstrap", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"task.{key} must be >= 1, got {getattr(self, key)}")
        if self.support > 24:
            raise ValueError(f"task.support={self.support}: the LP has C(support, K) * K variables per context; "
                             "keep it <= 24 on CPU (C(24, 4) * 4 = 42504)")
        if self.batch_size > self.n_contexts:
            raise ValueError(f"task.batch_size={self.batch_size} exceeds task.n_contexts={self.n_contexts}")


@register_task("multidraft", MultiDraftConfig)
class MultiDraft(Task):
    method_protocol = MultiDraftVerifier

    @classmethod
    def check(cls, cfg: MultiDraftConfig, model: dict[str, Any]) -> None:
        super().check(cfg, model)
        check_source(model.get("source"), "model.source", "transformers causal LM", marker="config.json")
        if not model.get("draft"):
            raise ValueError(f"model.draft is not set; model={model.get('name')} needs a draft model for multi-draft "
                             "verification (model=bytes_target has zoo:bytes_draft)")
        check_source(model["draft"], "model.draft", "transformers causal LM", marker="config.json")

    def __init__(self, cfg: MultiDraftConfig, model: dict[str, Any], device: torch.device, dtype: torch.dtype):
        self.cfg, self.device = cfg, device
        self.target = load_causal_lm(model["source"], device, dtype)
        self.draft = load_causal_lm(model["draft"], device, dtype)
        if self.target.config.vocab_size != self.draft.config.vocab_size:
            raise ValueError(f"draft {model['draft']!r} has vocab_size={self.draft.config.vocab_size}, the target "
                             f"{self.target.config.vocab_size}; multi-draft verification needs one vocabulary")
        self.stream = byte_stream(stdlib_split()[1])  # held-out files: text neither model trained on
        self._cache: dict[int, tuple[np.ndarray, ...]] = {}

    @torch.no_grad()
    def distributions(self, seed: int) -> tuple[np.ndarray, ...]:
        """Per context (seeded positions in the held-out text): truncated p, q, and the masses kept."""
        if seed not in self._cache:
            cfg = self.cfg
            rng = np.random.default_rng(seed)
            pos = rng.choice(np.arange(cfg.context_len, len(self.stream)), cfg.n_contexts, replace=False)
            ctx = torch.stack([self.stream[i - cfg.context_len:i] for i in pos]).to(self.device)
            ps, qs = [], []
            for i in range(0, len(ctx), 64):
                ps.append(torch.softmax(self.target(input_ids=ctx[i:i + 64]).logits[:, -1].double(), -1).cpu())
                qs.append(torch.softmax(self.draft(input_ids=ctx[i:i + 64]).logits[:, -1].double(), -1).cpu())
            p, q = torch.cat(ps).numpy(), torch.cat(qs).numpy()
            cut = [truncate(a, b, cfg.support) for a, b in zip(p, q)]
            self._cache[seed] = (np.stack([c[0] for c in cut]), np.stack([c[1] for c in cut]),
                                 np.array([c[3] for c in cut]), np.array([c[4] for c in cut]))
        return self._cache[seed]

    def prepare(self, method: Any, seed: int) -> Prepared:
        if not isinstance(method, MultiDraftVerifier):
            raise TypeError(f"task multidraft needs a multi-draft verifier; {getattr(method, 'name', method)!r} is not")
        cfg = self.cfg
        p, q, mass_p, mass_q = self.distributions(seed)
        if method.drafts > cfg.support:
            raise ValueError(f"method.drafts={method.drafts} exceeds task.support={cfg.support}: drafts without "
                             "replacement need that many distinct tokens")
        draw = np.random.default_rng(seed)
        timed = [(p[i], q[i], sample_drafts(q[i], method.drafts, False, draw)) for i in range(cfg.batch_size)]

        def call() -> list[int]:  # one verification step per context, drafts drawn without replacement
            rng = np.random.default_rng(seed)
            return [method.verify(pi, qi, d, False, rng) for pi, qi, d in timed]

        def evaluate() -> list[Observation]:
            n = len(p)
            per = {scheme: np.array([method.acceptance(p[i], q[i], repl) for i in range(n)])
                   for scheme, repl in SCHEMES.items()}
            per["replacement_gain"] = per["without_replacement"] - per["with_replacement"]
            one = np.minimum(p, q).sum(1)
            idx = np.random.default_rng(seed).integers(0, n, size=(cfg.bootstrap, n))  # same draws for every method
            obs = []
            for name, vals in (("acceptance_with_replacement", per["with_replacement"]),
                               ("acceptance_without_replacement", per["without_replacement"]),
                               ("replacement_gain", per["replacement_gain"]), ("acceptance_one_draft", one)):
                obs.append(Observation(name, float(vals.mean()), n=n))
                obs += [Observation(f"{name}_bootstrap", float(v), sample=j, n=n)
                        for j, v in enumerate(vals[idx].mean(1))]
            obs += [Observation("support_mass_target", float(mass_p.mean()), n=n),
                    Observation("support_mass_draft", float(mass_q.mean()), n=n)]
            return obs

        return Prepared(call=call, batch_size=cfg.batch_size, evaluate=evaluate)

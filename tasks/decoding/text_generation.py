"""Text generation with a transformers causal LM: the decoding workload.

Prompts are fixed seeded slices of held-out text (the standard library files that
``tasks/zoo/train_bytes.py`` holds out), all ``prompt_len`` tokens long, so a batch needs no
padding. Every call generates exactly ``max_new_tokens`` new tokens: end-of-text is switched off on
the loaded model (the usual "ignore EOS" benchmark setting), so every method does the same amount
of work and tokens/s is comparable.

The timed call is one pass over ``timed_prompts`` prompts (all ``n_prompts`` by default),
``batch_size`` prompts per ``generate`` call. One prompt is not enough: a speculative method's cost
depends on how well the draft predicts that prompt's continuation, and on the embedded models it is
bimodal (per prompt at k = 5, 0.4x to 3.2x of greedy's latency; docs/decoding.md), so a call on the
first prompt alone made the measured speedup a property of whichever prompt a seed drew first.
Quality is measured on all ``n_prompts``:
against plain greedy decoding with a KV cache at batch 1 (the reference, computed once per seed),
exact match per prompt, per-position token agreement and character BLEU; and the bits per byte of
the model as the method runs it (quantization changes it). A method that claims to be lossless
(greedy speculative decoding, prompt lookup) and changes any output fails its point.

Speculative decoding (Leviathan et al. 2023, arXiv 2211.17192) through transformers assisted
generation: forward pre-hooks count target and draft calls while generating. Every target call
after the first verifies a block of drafted tokens and yields the accepted ones plus one token of
its own; so, summed over a generation of N new tokens with R target calls and D drafted tokens,
accepted = N - R and acceptance rate = (N - R) / D (Sec. 3.1: tokens per step = accepted + 1).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from harness.metrics import MetricInfo, register_metric
from harness.plugin import Observation, PluginConfig, Prepared, Task
from harness.registry import register_task
from tasks.decoding.lowbit import weight_bytes
from tasks.decoding.protocol import DecodingMethod, count_calls, load_causal_lm
from tasks.zoo import check_source, resolve
from tasks.zoo.bytes import nll_stream, stdlib_split

TOKENIZERS = ("bytes", "auto")

for _name, _meta in {
    "tokens_generated": MetricInfo("tokens/call", None, "new tokens of one timed call, all sequences of the batch",
                                   "count", deterministic=True),
    "flops_per_token": MetricInfo("FLOP/token", False, "FlopCounterMode FLOPs of one sequence / its new tokens",
                                  "count", True, True),
    "token_agreement": MetricInfo("", True, "fraction of generated positions equal to plain greedy decoding's token",
                                  "mean over prompts and positions"),
    "acceptance_rate": MetricInfo("", None, "speculative: accepted draft tokens / drafted tokens"),
    "tokens_per_target_call": MetricInfo("tokens/call", None, "speculative: new tokens per target forward call"),
    "draft_tokens_per_round": MetricInfo("tokens/call", None, "speculative: drafted tokens per target call (k)"),
    "draft_agreement": MetricInfo("", None, "speculative: draft argmax = target argmax, held-out text"),
    "bits_per_byte_change": MetricInfo("bits/byte", False, "bits per byte of the model as the method runs it minus "
                                       "the loaded (float32) model's, same held-out text", "byte-weighted"),
    "perplexity_gap": MetricInfo("", False, "byte perplexity (2^bits_per_byte) of the model as the method runs it "
                                 "minus the loaded model's", "byte-weighted"),
    "weight_memory": MetricInfo("bytes", False, "bytes of the weights as stored (tasks.decoding.lowbit.weight_bytes: "
                                "float layers at their dtype, low-bit layers packed, tied weights once)", "count",
                                True),
}.items():
    register_metric(_name, _meta)


@dataclass
class TextGenerationConfig(PluginConfig):
    SMOKE = {"n_prompts": 2, "prompt_len": 16, "max_new_tokens": 8, "eval_bytes": 1024}  # profile=smoke
    n_prompts: int = 8  # quality (exact match, BLEU) and acceptance are measured on all of them
    prompt_len: int = 64  # tokens per prompt (bytes for the byte-level zoo models)
    max_new_tokens: int = 64  # generated per prompt, always exactly this many (EOS is off)
    batch_size: int = 1  # prompts per generate call; assisted generation supports 1 only
    timed_prompts: int | None = None  # prompts of one timed call (a pass, batch_size at a time); None: all
    eval_bytes: int = 16384  # held-out bytes for the bits-per-byte of the model as run (0: skip)

    def __post_init__(self) -> None:
        for key in ("n_prompts", "prompt_len", "max_new_tokens", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"task.{key} must be >= 1, got {getattr(self, key)}")
        if self.eval_bytes < 0:
            raise ValueError(f"task.eval_bytes must be >= 0 (0 skips bits per byte), got {self.eval_bytes}")
        if self.batch_size > self.n_prompts:
            raise ValueError(f"task.batch_size={self.batch_size} exceeds task.n_prompts={self.n_prompts}")
        timed = self.n_timed
        if not 1 <= timed <= self.n_prompts or timed % self.batch_size:
            raise ValueError(f"task.timed_prompts={timed} must be a multiple of task.batch_size={self.batch_size} "
                             f"between 1 and task.n_prompts={self.n_prompts} (null: all n_prompts)")

    @property
    def n_timed(self) -> int:
        return self.n_prompts if self.timed_prompts is None else self.timed_prompts


class _Tokens:
    """Text <-> token ids: raw bytes for the byte-level zoo models, or the model's own tokenizer."""

    def __init__(self, kind: str, source: str):
        self.kind = kind
        self.tok = None
        if kind == "auto":
            from transformers import AutoTokenizer

            self.tok = AutoTokenizer.from_pretrained(source)

    def encode(self, data: bytes) -> list[int]:
        if self.tok is None:
            return list(data)
        return self.tok(data.decode("utf-8", errors="ignore"), add_special_tokens=False)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        """Text for BLEU; bytes map one to one onto latin-1 characters so character BLEU sees bytes."""
        if self.tok is None:
            return bytes(i for i in ids if i < 256).decode("latin-1")
        return self.tok.decode(ids)

    def n_bytes(self, ids: list[int]) -> int:
        return len(ids) if self.tok is None else len(self.tok.decode(ids).encode("utf-8"))


@register_task("text_generation", TextGenerationConfig)
class TextGeneration(Task):
    method_protocol = DecodingMethod

    @classmethod
    def check(cls, cfg: TextGenerationConfig, model: dict[str, Any]) -> None:
        super().check(cfg, model)
        check_source(model.get("source"), "model.source", "transformers causal LM", marker="config.json")
        if model.get("draft"):
            check_source(model["draft"], "model.draft", "transformers causal LM", marker="config.json")
        if model.get("tokenizer", "bytes") not in TOKENIZERS:
            raise ValueError(f"model.tokenizer={model.get('tokenizer')!r}; valid: {', '.join(TOKENIZERS)}")

    def __init__(self, cfg: TextGenerationConfig, model: dict[str, Any], device: torch.device, dtype: torch.dtype):
        self.cfg, self.device, self.dtype = cfg, device, dtype
        self.source = model["source"]
        tokenizer = model.get("tokenizer", "bytes")
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"model.tokenizer={tokenizer!r}; valid: {', '.join(TOKENIZERS)}")
        self.tokens = _Tokens(tokenizer, resolve(self.source))
        self.model = load_causal_lm(self.source, device, dtype)
        vocab = self.model.config.vocab_size
        if tokenizer == "bytes" and vocab < 256:
            raise ValueError(f"model {self.source!r} has vocab_size={vocab} < 256; model.tokenizer=bytes needs "
                             "token ids 0..255 to be bytes (use model.tokenizer=auto for a model with a tokenizer)")
        context = getattr(self.model.config, "n_positions", None) or getattr(self.model.config,
                                                                             "max_position_embeddings", None)
        if context is not None and cfg.prompt_len + cfg.max_new_tokens > context:
            raise ValueError(f"task.prompt_len + task.max_new_tokens = {cfg.prompt_len + cfg.max_new_tokens} exceeds "
                             f"the model's context of {context} positions")
        self.draft_source = model.get("draft")
        self._draft: torch.nn.Module | None = None
        self._variants: dict[str, torch.nn.Module] = {}
        # Held-out text: the files the zoo models never trained on.
        self.text = b"".join(f.read_bytes() for f in stdlib_split()[1])
        self._reference: dict[int, torch.Tensor] = {}
        self._bpb: dict[int, float] = {}
        self._agreement: dict[tuple[int, int], tuple[float, int]] = {}
        self.current_seed = 0  # the seed of the point being prepared

    # -- models ---------------------------------------------------------------------------------
    @property
    def draft(self) -> torch.nn.Module:
        """The draft model named by ``model.draft`` (loaded once; same vocabulary as the target)."""
        if self._draft is None:
            if not self.draft_source:
                raise ValueError(f"model {self.source!r} names no draft model; set model.draft=<hub id or folder>")
            self._draft = load_causal_lm(self.draft_source, self.device, self.dtype)
            if self._draft.config.vocab_size != self.model.config.vocab_size:
                raise ValueError(f"draft {self.draft_source!r} has vocab_size={self._draft.config.vocab_size}, the "
                                 f"target {self.model.config.vocab_size}: assisted generation needs one vocabulary")
        return self._draft

    def variant(self, key: str, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
        """A derived model (reloaded with other options, converted), built once per process."""
        if key not in self._variants:
            self._variants[key] = build()
        return self._variants[key]

    # -- data -----------------------------------------------------------------------------------
    def prompts(self, seed: int) -> torch.Tensor:
        """(n_prompts, prompt_len) token ids from seeded offsets into the held-out text."""
        cfg = self.cfg
        gen = torch.Generator().manual_seed(seed)
        span = 8 * cfg.prompt_len  # bytes enough for prompt_len tokens under any tokenizer
        if len(self.text) <= span:
            raise ValueError(f"task.prompt_len={cfg.prompt_len} is too long for the {len(self.text)}-byte "
                             "held-out text")
        starts = torch.randint(0, len(self.text) - span, (cfg.n_prompts,), generator=gen).tolist()
        rows = []
        for s in starts:
            ids = self.tokens.encode(self.text[s:s + span])[: cfg.prompt_len]
            if len(ids) < cfg.prompt_len:
                raise ValueError(f"a prompt tokenized to {len(ids)} < task.prompt_len={cfg.prompt_len} tokens")
            rows.append(ids)
        return torch.tensor(rows, dtype=torch.long, device=self.device)

    def generate(self, model: torch.nn.Module, ids: torch.Tensor, seed: int, **kwargs: Any) -> torch.Tensor:
        """``generate`` exactly ``max_new_tokens`` new tokens; returns only the new tokens."""
        from transformers import GenerationConfig

        kwargs = {"do_sample": False} | kwargs
        extra = {k: kwargs.pop(k) for k in ("assistant_model",) if k in kwargs}
        gc = GenerationConfig(max_new_tokens=self.cfg.max_new_tokens, **kwargs)
        if kwargs["do_sample"]:
            torch.manual_seed(seed)  # sampling methods: the same draws on every repeat
        out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gc, **extra)
        new = out[:, ids.shape[1]:]
        if new.shape[1] != self.cfg.max_new_tokens:
            raise RuntimeError(f"generate returned {new.shape[1]} new tokens, expected {self.cfg.max_new_tokens}")
        return new

    @torch.no_grad()
    def reference(self, seed: int) -> torch.Tensor:
        """Plain greedy decoding with a KV cache, one prompt at a time: what lossless methods must reproduce."""
        if seed not in self._reference:
            prompts = self.prompts(seed)
            self._reference[seed] = torch.cat([self.generate(self.model, p[None], seed) for p in prompts])
        return self._reference[seed]

    @torch.no_grad()
    def bits_per_byte(self, model: torch.nn.Module) -> float:
        """Bits per byte of ``model`` on the first ``eval_bytes`` held-out bytes, windows of prompt + generation."""
        key = id(model)
        if key not in self._bpb:
            ids = torch.tensor(self.tokens.encode(self.text[: self.cfg.eval_bytes]), dtype=torch.long)
            seq = self.cfg.prompt_len + self.cfg.max_new_tokens
            nats, n_pred = nll_stream(model, ids, seq)
            # bytes covered by the predicted tokens: all but the first token of each window
            n_win = (len(ids) - 1) // seq
            predicted = [i for w in range(n_win) for i in ids[w * seq + 1: (w + 1) * seq + 1].tolist()]
            assert len(predicted) == n_pred
            self._bpb[key] = nats / math.log(2) / self.tokens.n_bytes(predicted)
        return self._bpb[key]

    @torch.no_grad()
    def draft_agreement(self, model: torch.nn.Module, draft: torch.nn.Module) -> tuple[float, int]:
        """How often the draft's argmax equals the target's on held-out text (teacher forced), and where.

        Leviathan et al.'s alpha for greedy decoding on natural text, independent of what either
        model's own greedy output looks like (small models' greedy output falls into runs of spaces).
        """
        key = (id(model), id(draft))
        if key not in self._agreement:
            ids = torch.tensor(self.tokens.encode(self.text[: self.cfg.eval_bytes]), dtype=torch.long)
            seq = self.cfg.prompt_len + self.cfg.max_new_tokens
            n_win = len(ids) // seq
            windows = ids[: n_win * seq].view(n_win, seq).to(self.device)
            same, total = 0, 0
            for chunk in windows.split(16):
                a, b = model(input_ids=chunk).logits.argmax(-1), draft(input_ids=chunk).logits.argmax(-1)
                same += int((a == b).sum())
                total += a.numel()
            self._agreement[key] = (same / total, total)
        return self._agreement[key]

    # -- the point ------------------------------------------------------------------------------
    def prepare(self, method: Any, seed: int) -> Prepared:
        if not isinstance(method, DecodingMethod):
            raise TypeError(f"task text_generation needs a decoding method, got {type(method).__name__}")
        cfg = self.cfg
        self.current_seed = seed  # methods that calibrate on data (squeezellm) draw it from the point's seed
        model = method.model(self)
        prompts = self.prompts(seed)
        batch = prompts[: cfg.batch_size]
        timed = prompts[: cfg.n_timed]
        if method.batch_one_only and cfg.batch_size != 1:
            raise ValueError(f"method {method.name!r} runs through transformers assisted generation, which "
                             f"supports batch size 1 only; got task.batch_size={cfg.batch_size}")

        def run(ids: torch.Tensor, with_context: bool = True) -> torch.Tensor:
            with method.context(self) if with_context else contextlib.nullcontext():
                return self.generate(model, ids, seed, **method.generate_kwargs(self))

        def timed_pass() -> list[torch.Tensor]:
            return [run(chunk) for chunk in timed.split(cfg.batch_size)]

        def prefill() -> Any:
            # Time to first token: one forward of the method's model over the prompts, building the
            # KV cache; the first new token is its last position's argmax. Speculative methods also
            # run a first draft round before their first token, so for them this is a lower bound.
            with method.context(self):
                out = model(input_ids=batch, attention_mask=torch.ones_like(batch), use_cache=True)
                return out.logits[:, -1].argmax(-1)

        stages: dict[str, Callable[[], Any]] = {"prefill": prefill}
        draft = self.draft if method.uses_draft else None
        if draft is not None:
            # Per-token costs of draft and target under plain greedy decoding: the cost ratio c of
            # Leviathan et al. (2023) Sec. 3.3 is their ratio; analysis divides by the token count.
            stages["draft_greedy"] = lambda: self.generate(draft, batch, seed)
            stages["target_greedy"] = lambda: self.generate(model, batch, seed)

        def evaluate() -> list[Observation]:
            ref = self.reference(seed)
            outs, target_calls, draft_calls = [], 0, 0
            with torch.no_grad(), count_calls(model, draft) as calls:
                for chunk in prompts.split(cfg.batch_size):
                    outs.append(run(chunk))
                target_calls, draft_calls = calls
            out = torch.cat(outs)
            n = len(out)
            same = (out == ref).all(dim=1)
            obs = [Observation("exact_match", same.float().mean().item(), n=n),
                   Observation("token_agreement", (out == ref).float().mean().item(), n=n),
                   Observation("bleu", _bleu([self.tokens.decode(o.tolist()) for o in out],
                                             [self.tokens.decode(r.tolist()) for r in ref]), n=n),
                   Observation("tokens_generated", float(cfg.n_timed * cfg.max_new_tokens))]
            if cfg.eval_bytes:
                bpb, ref_bpb = self.bits_per_byte(model), self.bits_per_byte(self.model)
                obs += [Observation("bits_per_byte", bpb), Observation("bits_per_byte_change", bpb - ref_bpb),
                        Observation("perplexity_gap", 2.0 ** bpb - 2.0 ** ref_bpb)]
            obs.append(Observation("weight_memory", float(weight_bytes(model))))
            from harness.counters import count_flops

            flops = count_flops(lambda: run(batch[:1], with_context=False))  # the SDPA backend changes no FLOPs
            obs.append(Observation("flops_per_token", flops / cfg.max_new_tokens))
            new = n * cfg.max_new_tokens
            if cfg.batch_size == 1:  # one sequence per call: prompt lookup's gain shows here too
                obs.append(Observation("tokens_per_target_call", new / target_calls, n=n))
            if draft is not None:
                obs += [Observation("acceptance_rate", (new - target_calls) / max(draft_calls, 1), n=n),
                        Observation("draft_tokens_per_round", draft_calls / target_calls, n=n)]
                if cfg.eval_bytes:
                    agree, positions = self.draft_agreement(model, draft)
                    obs.append(Observation("draft_agreement", agree, n=positions))
            if method.lossless and not bool(same.all()):
                bad = [i for i, s in enumerate(same.tolist()) if not s]
                first = int((out[bad[0]] != ref[bad[0]]).nonzero()[0])
                raise AssertionError(
                    f"method {method.name!r} claims greedy decoding's exact output but changed prompt(s) {bad} of "
                    f"{n} (first difference in prompt {bad[0]} at new token {first}: "
                    f"{out[bad[0], first].item()} vs greedy {ref[bad[0], first].item()})")
            return obs

        return Prepared(
            call=timed_pass,
            batch_size=cfg.n_timed,
            flops_call=lambda: run(batch[:1], with_context=False),
            stage_module=model,
            stage="target_call",
            evaluate=evaluate,
            timed_stages=stages,
        )


def _bleu(hyps: list[str], refs: list[str]) -> float:
    """Corpus BLEU of the outputs against greedy decoding's, sacrebleu with character tokens."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(hyps, [refs], tokenize="char").score)

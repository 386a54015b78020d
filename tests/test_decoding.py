"""Text generation: lossless methods on the embedded models, a hub-style model, validation, a CLI sweep."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from harness.analysis import estimates
from harness.registry import lookup
from harness.results import load
from tasks.decoding.analysis import summarize_decoding
from tasks.decoding.protocol import DecodingMethod
from tasks.decoding.text_generation import TextGeneration, TextGenerationConfig
from tests.helpers import SMOKE, compose_cfg, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")


ZOO_MODEL = {"name": "bytes_target", "source": "zoo:bytes_target", "draft": "zoo:bytes_draft", "tokenizer": "bytes"}


def _method(name: str, **params: object) -> DecodingMethod:
    cls = lookup("method", name)
    return cls(cls.Config(name=name, **params))


def _obs(task: TextGeneration, method: DecodingMethod, seed: int = 0) -> dict[str, float]:
    return {o.metric: o.value for o in task.prepare(method, seed).evaluate()}


@pytest.fixture(scope="module")
def zoo_task() -> TextGeneration:
    cfg = TextGenerationConfig(name="text_generation", n_prompts=3, prompt_len=32, max_new_tokens=24, eval_bytes=2048)
    return TextGeneration(cfg, ZOO_MODEL, torch.device("cpu"), torch.float32)


@pytest.mark.parametrize("name,params", [("speculative", {"num_assistant_tokens": 3}),
                                         ("speculative", {"num_assistant_tokens": 20,
                                                          "num_assistant_tokens_schedule": "heuristic",
                                                          "assistant_confidence_threshold": 0.4}),
                                         ("prompt_lookup", {}), ("no_kv_cache", {})])
def test_lossless_methods_reproduce_greedy_on_the_zoo(zoo_task: TextGeneration, name: str, params: dict) -> None:
    obs = _obs(zoo_task, _method(name, **params))
    assert obs["exact_match"] == 1.0 and obs["token_agreement"] == 1.0 and obs["bleu"] == pytest.approx(100)
    if name == "speculative":
        # trained draft and target agree on most bytes of held-out code; every target call yields >= 1 token
        assert 0.3 < obs["acceptance_rate"] <= 1.0
        assert 1.0 < obs["tokens_per_target_call"] <= params["num_assistant_tokens"] + 1
    if name == "no_kv_cache":  # recomputing the whole sequence costs more FLOPs per token than the cache
        assert obs["flops_per_token"] > _obs(zoo_task, _method("greedy"))["flops_per_token"]


def test_zoo_models_are_the_trained_ones(zoo_task: TextGeneration) -> None:
    import hashlib
    import json

    from tasks.zoo import ZOO_DIR

    for name in ("bytes_target", "bytes_draft", "bytes_arith"):
        card = json.loads((ZOO_DIR / name / "card.json").read_text())
        weights = (ZOO_DIR / name / "model.safetensors").read_bytes()
        assert hashlib.sha256(weights).hexdigest()[:16] == card["sha256_16"]["model.safetensors"]
    card = json.loads((ZOO_DIR / "bytes_target" / "card.json").read_text())
    assert sum(p.numel() for p in zoo_task.model.parameters()) == card["params"]
    # trained: far below the 8 bits per byte of a uniform guess on held-out text
    assert zoo_task.bits_per_byte(zoo_task.model) < 4


def test_a_lossless_method_that_changes_the_output_fails_loudly(zoo_task: TextGeneration) -> None:
    class Broken(DecodingMethod):  # claims losslessness but samples
        name, lossless = "broken", True

        def generate_kwargs(self, task: TextGeneration) -> dict:
            return {"do_sample": True, "temperature": 3.0}

    with pytest.raises(AssertionError, match="claims greedy decoding's exact output but changed prompt"):
        zoo_task.prepare(Broken(None), 0).evaluate()


def test_lossy_methods_report_their_distance(zoo_task: TextGeneration) -> None:
    sampled = _obs(zoo_task, _method("sampling", temperature=1.0))
    assert sampled["exact_match"] < 1 and 0 <= sampled["token_agreement"] < 1 and sampled["bleu"] < 100
    int8 = _obs(zoo_task, _method("int8"))
    greedy_bpb = zoo_task.bits_per_byte(zoo_task.model)
    assert int8["bits_per_byte"] != greedy_bpb and abs(int8["bits_per_byte"] - greedy_bpb) < 0.2
    assert int8["token_agreement"] > 0.5


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny GPT-2 with its own BPE tokenizer, saved from a config: the hub-model route."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_lm")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([Path(os.__file__).read_text()], vocab_size=300, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>").save_pretrained(str(folder))
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                               eos_token_id=0)).save_pretrained(str(folder))
    return folder


def test_a_hub_style_model_with_its_own_tokenizer(tiny_lm_dir: Path) -> None:
    cfg = TextGenerationConfig(name="text_generation", n_prompts=2, prompt_len=12, max_new_tokens=6, eval_bytes=1024)
    task = TextGeneration(cfg, {"name": "local_lm", "source": str(tiny_lm_dir), "draft": str(tiny_lm_dir),
                                "tokenizer": "auto"}, torch.device("cpu"), torch.float32)
    assert task.prompts(0).shape == (2, 12) and int(task.prompts(0).max()) < 300
    obs = _obs(task, _method("speculative"))  # the model drafts for itself: every draft token is accepted
    assert obs["exact_match"] == 1.0 and obs["acceptance_rate"] == 1.0
    assert 0 < obs["bits_per_byte"] < 20
    with pytest.raises(ValueError, match="exceeds the model's context of 64"):
        TextGeneration(TextGenerationConfig(name="text_generation", prompt_len=60, max_new_tokens=8),
                       {"source": str(tiny_lm_dir), "tokenizer": "auto"}, torch.device("cpu"), torch.float32)


def test_the_timed_call_is_a_pass_over_the_timed_prompts(zoo_task: TextGeneration) -> None:
    """Speculative decoding's cost depends on the prompt (bimodal on the zoo models), so a timed call
    on one prompt would make the speedup a property of that prompt: the call covers them all."""
    prepared = zoo_task.prepare(_method("speculative"), 0)
    assert prepared.batch_size == zoo_task.cfg.n_prompts == 3
    out = torch.cat(prepared.call())
    assert torch.equal(out, zoo_task.reference(0))  # every prompt, each generated in full


@pytest.mark.parametrize("override,match", [
    (["task.batch_size=0"], "task.batch_size must be >= 1"),
    (["task.batch_size=9"], "exceeds task.n_prompts=8"),
    (["task.timed_prompts=9"], "timed_prompts=9 must be a multiple of task.batch_size=1 between 1 and "
                               "task.n_prompts=8"),
    (["task.batch_size=2", "task.timed_prompts=3"], "timed_prompts=3 must be a multiple of task.batch_size=2"),
    (["points=[{name: speculative, num_assistant_tokens_schedule: fast}]"], "valid: constant, heuristic"),
    (["points=[{name: speculative, num_assistant_tokens: 0}]"], "num_assistant_tokens must be >= 1"),
    (["points=[{name: sampling, temperature: 0}]"], "temperature must be > 0"),
    (["points=[{name: attention, sdpa_backend: fast}]"], "valid: math, flash, efficient, cudnn"),
    (["points=[{name: attention, implementation: eager, sdpa_backend: math}]"], "needs method.implementation=sdpa"),
])
def test_bad_values_fail_before_anything_runs(override: list[str], match: str) -> None:
    from harness.plan import plan

    with pytest.raises(Exception, match=match):
        plan(compose_cfg(["experiment=decoding_bytes", *override]))


@pytest.mark.parametrize("task_kw,model_kw,method,match", [
    ({"batch_size": 2}, {}, ("speculative", {}), "supports batch size 1 only; got task.batch_size=2"),
    ({"batch_size": 2}, {}, ("prompt_lookup", {}), "supports batch size 1 only"),
    ({}, {"draft": None}, ("speculative", {}), "names no draft model"),
    ({}, {}, ("attention", {"sdpa_backend": "efficient"}), "no CPU kernel; on cpu the SDPA backends are math, flash"),
])
def test_unsupported_settings_fail_with_a_clear_message(task_kw: dict, model_kw: dict, method: tuple,
                                                        match: str) -> None:
    cfg = TextGenerationConfig(name="text_generation", n_prompts=2, prompt_len=8, max_new_tokens=4, **task_kw)
    task = TextGeneration(cfg, ZOO_MODEL | model_kw, torch.device("cpu"), torch.float32)
    with pytest.raises(ValueError, match=match):
        task.prepare(_method(method[0], **method[1]), 0)


@pytest.mark.slow
def test_decoding_sweep_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "dec"
    points = ("points=[{name: greedy}, {name: speculative, num_assistant_tokens: 4}, {name: prompt_lookup}, "
              "{name: int8}, {name: attention, sdpa_backend: cudnn}]")
    proc = run_cli("experiment=decoding_bytes", SMOKE, points, f"results_dir={out}", check=False)
    assert proc.returncode == 1 and "1 point(s) failed" in proc.stdout, proc.stderr  # cudnn: no CPU kernel
    rows = load(out)
    ok = rows[rows.status == "ok"]
    assert set(ok.variant) == {"greedy", "speculative/num_assistant_tokens=4", "prompt_lookup", "int8"}
    assert ok.threads.eq(1).all()
    stages = set(ok[ok.metric == "latency"].stage)
    assert {"end_to_end", "prefill", "target_call", "draft_greedy", "target_greedy"} <= stages
    nfe = ok[ok.metric == "nfe"].set_index("variant").value
    # target calls of one timed call: a pass over the smoke profile's 2 prompts, 8 new tokens each
    assert nfe["greedy"] == 16 and nfe["speculative/num_assistant_tokens=4"] < 16
    assert (ok[ok.metric == "tokens_generated"].value == 16).all()
    est = estimates(ok[ok.variant == "greedy"]).set_index("metric").value
    assert est["latency_per_item"] == pytest.approx(est["latency"] / 2)  # per prompt of the pass
    assert "greedy (baseline)" in proc.stdout  # the generic report prints these rows
    table = summarize_decoding(rows).set_index("variant")
    assert table.loc["greedy", "speedup"] == 1.0 and (table.tokens_per_s.drop("attention/sdpa_backend=cudnn") > 0).all()
    assert "no CPU kernel" in table.loc["attention/sdpa_backend=cudnn", "error"]
    spec = table.loc["speculative/num_assistant_tokens=4"]
    assert spec.exact_match == 1.0 and 0 < spec.cost_ratio_c < 1 and spec.predicted_speedup > 0 and 0 <= spec.alpha <= 1
    assert 0.3 < spec.draft_agreement < 1 and spec.predicted_speedup_heldout > 0
    printed = run_cli_module(out)
    assert "| speculative/num_assistant_tokens=4 |" in printed and "predicted_speedup" in printed
    assert "| attention/sdpa_backend=cudnn | FAILED: ValueError: method.sdpa_backend='cudnn' has no CPU" in printed


def run_cli_module(out: Path) -> str:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "tasks.decoding.analysis", str(out)], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parent.parent)
    return proc.stdout


# -- repeated sampling ------------------------------------------------------------------------------
def test_pass_at_k_equals_a_brute_force_count_over_all_k_subsets() -> None:
    from itertools import combinations

    from tasks.decoding.arithmetic import pass_at_k

    for n in range(1, 9):
        for c in range(n + 1):
            samples = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(combinations(samples, k))
                assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets), abs=1e-12)
    assert pass_at_k(10_000, 3, 5_000) == pytest.approx(1 - 0.5**3, rel=1e-3)  # no overflow at Monkeys' scale
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(4, 1, 5)


@pytest.mark.slow
def test_repeated_sampling_coverage_grows_with_samples(tmp_path: Path) -> None:
    from omegaconf import open_dict

    from harness.cli import sweep

    cfg = compose_cfg(["experiment=repeated_sampling_arith", SMOKE, "points=[{name: greedy}, {name: sampling}]",
                       "report=false"])
    with open_dict(cfg):
        cfg.results_dir = str(tmp_path)
    sweep(cfg)
    rows = load(tmp_path)
    cov = rows[rows.metric == "coverage"].assign(k=lambda d: d.stage.str.removeprefix("k=").astype(int))
    assert cov["sample"].isna().all()  # k is the stage, never a repeat index that analysis would summarise
    cov = cov.pivot(index="k", columns="variant", values="value")
    assert list(cov.index) == [1, 2, 4, 8]
    assert cov["greedy"].nunique() == 1  # one deterministic answer: more copies cover nothing new
    sampled = cov["sampling"]
    assert sampled.is_monotonic_increasing and sampled.iloc[-1] > sampled.iloc[0]
    assert (rows[(rows.metric == "nfe")].value == 5).all()  # 4 digits + newline, all samples in one batch
    est = estimates(rows)
    assert {"coverage@k=1", "coverage@k=8"} <= set(est.metric) and "coverage" not in set(est.metric)


def test_leviathan_alpha_inverts_eq_1() -> None:
    from tasks.decoding.analysis import leviathan_alpha

    for alpha in (0.0, 0.3, 0.7, 0.95):
        for k in (1, 3, 5, 8):
            e = (1 - alpha ** (k + 1)) / (1 - alpha)
            assert leviathan_alpha(e, k) == pytest.approx(alpha, abs=1e-9)
    assert leviathan_alpha(6.0, 5) == 1.0  # every draft accepted

"""The attention workload: every method equals a float64 reference of its pattern, FLOPs follow the stated
convention, densities, backend errors, working memory, and (slow) the smoke experiment and its claims.
CUDA tests run where a GPU is (bench/gpu_check.py runs them)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from harness.claims import NOT_COMPARABLE, ClaimError, evaluate, load_claims
from harness.registry import load_plugins, lookup
from tests.helpers import run_cli

load_plugins()
from tasks.attention.task import Attention, AttentionConfig, flops_per_sequence  # noqa: E402

CPU = torch.device("cpu")


def method(name: str, **params):  # noqa: ANN201  (a registered method instance)
    cls = lookup("method", name)
    return cls(cls.Config(name=name, **params))


def evaluate_point(task: Attention, m) -> dict[str, float]:  # noqa: ANN001
    prepared = task.prepare(m, seed=0)
    return {o.metric: o.value for o in prepared.evaluate()}


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("spec", [("naive_attention", {}), ("sdpa", {"backend": "math"}),
                                  ("sdpa", {"backend": "flash"}), ("flex_attention", {"compile": False}),
                                  ("flex_attention", {"compile": False, "pattern": "local", "density": 0.1}),
                                  ("flex_attention", {"compile": False, "pattern": "block_local", "density": 0.3})])
def test_every_method_equals_the_float64_reference_of_its_pattern(spec: tuple, causal: bool) -> None:
    task = Attention(AttentionConfig(batch_size=2, seqlen=256, heads=2, head_dim=32, causal=causal), {}, CPU,
                     torch.float32)
    obs = evaluate_point(task, method(spec[0], **spec[1]))
    assert 0 < obs["attention_max_abs_error"] < 1e-5  # fp32 rounding, not a different attention
    assert obs["token_density"] == pytest.approx(1.0 if spec[1].get("pattern", "full") == "full" and not causal
                                                 else obs["token_density"])


def test_a_wrong_pattern_is_caught_by_the_reference() -> None:
    """A kernel that attends to all keys while claiming a local pattern must show a large error."""
    task = Attention(AttentionConfig(seqlen=256, heads=2, head_dim=32), {}, CPU, torch.float32)
    flex = method("flex_attention", compile=False, pattern="local", density=0.1)
    real = flex.prepare
    dense = method("sdpa", backend="math")
    flex.prepare = lambda x: type(real(x))(dense.prepare(x).call, real(x).pattern, real(x).block_density)
    assert evaluate_point(task, flex)["attention_max_abs_error"] > 0.1


def test_flops_convention() -> None:
    cfg = AttentionConfig(seqlen=1024, heads=8, head_dim=64)
    dense = 4 * 1024**2 * 8 * 64
    assert flops_per_sequence(cfg, None, sparse=False) == dense
    assert flops_per_sequence(AttentionConfig(seqlen=1024, heads=8, head_dim=64, causal=True), 0.6, False) == dense / 2
    assert flops_per_sequence(cfg, 0.25, sparse=True) == dense * 0.25
    with pytest.raises(ValueError, match="block density"):
        flops_per_sequence(cfg, None, sparse=True)


def test_local_window_densities_at_4096() -> None:
    """Re-ttention's 3.1% of the tokens: 127 keys per query, ~9.2% of the 128-blocks; whole blocks: 3.1% both."""
    x = Attention(AttentionConfig(seqlen=4096, heads=1, head_dim=16), {}, CPU, torch.float32).inputs(0)
    local = method("flex_attention", pattern="local", density=0.031, compile=False).prepare(x)
    i = torch.arange(4096)
    assert float(local.pattern(i[:, None], i[None, :]).double().mean()) == pytest.approx(0.0308, abs=5e-4)
    assert local.block_density == pytest.approx(0.0918, abs=2e-3)
    blocks = method("flex_attention", pattern="block_local", density=0.031, compile=False).prepare(x)
    assert blocks.block_density == pytest.approx(float(blocks.pattern(i[:, None], i[None, :]).double().mean()))
    assert blocks.block_density == pytest.approx(1 / 32)


def test_bad_configs_name_the_field_and_the_choices() -> None:
    with pytest.raises(ValueError, match="valid: math, flash, efficient, cudnn"):
        method("sdpa", backend="xformers")
    with pytest.raises(ValueError, match="valid: full, local, block_local"):
        method("flex_attention", pattern="strided")
    with pytest.raises(ValueError, match="local patterns only"):
        method("flex_attention", density=0.5)
    with pytest.raises(ValueError, match=r"density must be in \(0, 1\)"):
        method("flex_attention", pattern="local", density=1.5)
    with pytest.raises(ValueError, match="task.seqlen must be >= 1"):
        AttentionConfig(seqlen=0)
    x = Attention(AttentionConfig(seqlen=200, heads=1, head_dim=16), {}, CPU, torch.float32).inputs(0)
    with pytest.raises(ValueError, match="multiple of method.block_size"):
        method("flex_attention").prepare(x)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU backends only")
@pytest.mark.parametrize("backend", ["efficient", "cudnn"])
def test_a_backend_the_device_lacks_fails_the_point_clearly(backend: str) -> None:
    x = Attention(AttentionConfig(seqlen=64, heads=1, head_dim=16), {}, CPU, torch.float32).inputs(0)
    expected = f"sdpa backend '{backend}' is not available .*CPU builds have math and flash"
    with pytest.raises(RuntimeError, match=expected):
        method("sdpa", backend=backend).prepare(x)


def test_working_memory_sees_the_materialised_scores() -> None:
    """At S=1024, H=8 the naive kernel holds two 32 MB score matrices; flash holds its 2 MB output and tiles."""
    task = Attention(AttentionConfig(seqlen=1024, heads=8, head_dim=64), {}, CPU, torch.float32)
    naive = evaluate_point(task, method("naive_attention"))["working_memory"]
    flash = evaluate_point(task, method("sdpa", backend="flash"))["working_memory"]
    assert naive >= 60e6 and 0 < flash < 8e6 and naive / flash > 8


def test_a_gpu_claim_without_a_peak_is_not_comparable_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """fraction_of_peak is not derived without a spec-sheet peak: a CUDA-only claim still gets its verdict
    on CPU, with the figures that were measured; a claim comparable here must fail instead."""
    import pandas as pd

    from harness import claims
    from tests.helpers import synthetic_point

    rows = pd.DataFrame(synthetic_point("sdpa/backend=flash", [0.1, 0.11, 0.12], extra_metrics={"flops": 1e9}))
    monkeypatch.setattr(claims, "_points", lambda claim, run, seed: (rows, ["reused"]))
    claim = load_claims(ids=["flashattention2_peak_fraction"])[0]
    v = evaluate(claim)
    assert v.verdict == NOT_COMPARABLE
    (frac, f_est, f_verdict), (tfl, t_est, _) = [(r.check, r.estimate, r.verdict) for r in v.checks]
    assert frac.metric == "fraction_of_peak" and math.isnan(f_est.value) and f_verdict == NOT_COMPARABLE
    assert "not measured on cpu" in f_est.estimator
    assert t_est.value == pytest.approx(1e9 * 8 / 1e12 / 0.11)  # flops x batch / median latency
    from dataclasses import replace

    with pytest.raises(ClaimError, match="fraction_of_peak"):
        evaluate(replace(claim, comparable_on=("cpu", "cuda")))


@pytest.mark.slow
def test_claims_end_to_end_on_small_copies(tmp_path: Path) -> None:
    """The three claims on small copies of their files (seqlen 256), in one ``harness claims`` process: each
    gets a verdict, the GPU-only one "not comparable here", and the rows carry the workload's figures.
    (tests/test_config.py smoke-runs the whole experiment.) About a minute on 2 cores, most of it
    torch.compile of FlexAttention."""
    out = tmp_path / "results"
    claims_dir = tmp_path / "claims"
    claims_dir.mkdir()
    ids = ("flashattention_fused_vs_naive", "flashattention2_peak_fraction", "rettention_attn_latency")
    for cid in ids:
        text = (Path(__file__).resolve().parent.parent / "conf" / "claims" / f"{cid}.yaml").read_text()
        small = f"[results_dir={out}, task.seqlen=256, task.heads=2, task.batch_size=1, task.head_dim=64, " \
                "timing.max_time_s=0.3, timing.min_time_s=0, "
        text = "\n".join(line.replace("[", small, 1) if line.startswith("overrides:") else line
                         for line in text.splitlines())
        (claims_dir / f"{cid}.yaml").write_text(text)
    proc = run_cli("claims", "--claims-dir", str(claims_dir))
    assert "NO VERDICT" not in proc.stdout
    verdicts = {line.split("|")[1].strip(): line.split("|")[-2].strip() for line in proc.stdout.splitlines()
                if line.startswith("| ") and line.split("|")[1].strip() in ids}
    assert verdicts["flashattention2_peak_fraction"] == "not comparable here"
    for cid in ("flashattention_fused_vs_naive", "rettention_attn_latency"):
        assert verdicts[cid] in ("reproduced", "not reproduced", "inconclusive"), proc.stdout
    from harness.analysis import estimates
    from harness.results import load

    est = estimates(load(out))
    assert set(est.variant) == {"naive_attention", "sdpa/backend=flash", "flex_attention/density=0.031,pattern=local"}
    for metric in ("latency", "latency_cold", "tflops", "flops", "attention_max_abs_error", "working_memory"):
        assert set(est[est.metric == metric].variant) == set(est.variant), metric
    local = est[est.variant == "flex_attention/density=0.031,pattern=local"].set_index("metric").value
    assert local["block_density"] > local["token_density"] > 0
    assert (est[est.metric == "attention_max_abs_error"].value < 1e-5).all()


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("backend", ["flash", "efficient", "cudnn"])
def test_cuda_backends_equal_the_reference_in_half_precision(backend: str) -> None:
    task = Attention(AttentionConfig(seqlen=512, heads=4, head_dim=64), {}, torch.device("cuda"), torch.bfloat16)
    obs = evaluate_point(task, method("sdpa", backend=backend))
    assert obs["attention_max_abs_error"] < 2e-2  # bf16 rounding of N(0, 1) averages
    assert obs["working_memory"] > 0


@cuda
def test_cuda_compiled_flex_block_sparse() -> None:
    task = Attention(AttentionConfig(seqlen=1024, heads=4, head_dim=64), {}, torch.device("cuda"), torch.bfloat16)
    obs = evaluate_point(task, method("flex_attention", pattern="local", density=0.1))
    assert obs["attention_max_abs_error"] < 2e-2 and 0 < obs["block_density"] < 1

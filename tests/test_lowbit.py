"""Low-bit weights: round-to-nearest and SqueezeLLM building blocks, memory counting, one zoo point."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.registry import lookup
from methods.decoding.rtn import rtn_quantize
from methods.decoding.squeezellm import sparse_mask, weighted_kmeans
from tasks.decoding.lowbit import LowBitLinear, weight_bytes

pytestmark = pytest.mark.usefixtures("one_thread")


def _dense(codes: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    out_f, in_f = codes.shape
    g = table.shape[1]
    return torch.gather(table, 2, codes.long().view(out_f, g, in_f // g)).view(out_f, in_f)


def test_rtn_error_is_within_half_a_step_and_groups_help() -> None:
    w = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    for bits in (3, 4):
        codes, table = rtn_quantize(w, bits, 0)
        step = (w.amax(1) - w.amin(1)) / (2 ** bits - 1)
        assert int(codes.max()) < 2 ** bits
        assert ((_dense(codes, table) - w).abs() <= step[:, None] * 0.5 + 1e-3).all()
    err = [(_dense(*rtn_quantize(w, 3, g)) - w).pow(2).mean() for g in (0, 16)]
    assert err[1] < err[0]
    with pytest.raises(ValueError, match="group_size"):
        rtn_quantize(w, 3, 48)


def test_weighted_kmeans_fits_the_heavy_weights_better_than_the_uniform_grid() -> None:
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(8, 128, generator=gen)
    f = torch.rand(8, 128, generator=gen) ** 4  # a few weights carry most of the sensitivity
    cent, codes = weighted_kmeans(w, f, 8, 30)
    codes_u, table_u = rtn_quantize(w, 3, 0)
    err_km = (f * (torch.gather(cent, 1, codes) - w) ** 2).sum()
    err_rtn = (f * (_dense(codes_u, table_u) - w) ** 2).sum()
    assert err_km < err_rtn


def test_sparse_mask_keeps_the_largest_and_most_sensitive() -> None:
    w = torch.zeros(10, 100)
    w[3, 7] = 50.0
    f = torch.zeros(10, 100)
    f[5, 5] = 1.0
    mask = sparse_mask(w, f, outlier_frac=0.001, sensitive_frac=0.001)
    assert mask.sum() == 2 and mask[3, 7] and mask[5, 5]


def test_lowbit_linear_forward_and_memory_count() -> None:
    lin = nn.Linear(64, 8)
    codes, table = rtn_quantize(lin.weight.detach(), 4, 32)
    q = LowBitLinear(codes, table, 4, 32, lin.bias, table_entries_stored=2,
                     sparse_index=torch.tensor([[0, 1]]), sparse_value=torch.tensor([9.0]))
    x = torch.randn(2, 64)
    w = _dense(codes, table)
    w[0, 1] = 9.0
    assert torch.allclose(q(x), x @ w.t() + lin.bias, atol=1e-5)
    # 8x64 codes at 4 bits + 8x2 groups x (scale, zero) at 16 bits + one sparse entry (48) + 8 fp32 biases
    assert q.storage_bits() == 8 * 64 * 4 + 16 * 2 * 16 + 48 + 8 * 32
    model = nn.Sequential(q, nn.Linear(8, 3))
    assert weight_bytes(model) == (q.storage_bits() + (8 * 3 + 3) * 32) // 8


def test_lowbit_methods_on_the_zoo_model() -> None:
    from tasks.decoding.text_generation import TextGeneration, TextGenerationConfig

    cfg = TextGenerationConfig(name="text_generation", n_prompts=2, prompt_len=16, max_new_tokens=8, eval_bytes=2048)
    task = TextGeneration(cfg, {"name": "bytes_target", "source": "zoo:bytes_target", "tokenizer": "bytes"},
                          torch.device("cpu"), torch.float32)
    fp32 = weight_bytes(task.model)
    for name, params in (("rtn", {"bits": 3, "group_size": 32}), ("squeezellm", {"bits": 3, "n_calib": 4})):
        cls = lookup("method", name)
        obs = {o.metric: o.value for o in task.prepare(cls(cls.Config(name=name, **params)), 0).evaluate()}
        assert obs["weight_memory"] < fp32 / 5  # 3-bit codes + tables, float embeddings
        assert obs["bits_per_byte_change"] == pytest.approx(obs["bits_per_byte"] - task.bits_per_byte(task.model))
        assert 0 < obs["bits_per_byte_change"] < 0.5 and obs["perplexity_gap"] > 0
        assert 0 <= obs["exact_match"] <= 1

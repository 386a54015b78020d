"""bench/interleaved_ab.py patches the sampling loop to build its slower variants: the patch must keep
applying to the current source, or the acceptance series of `harness ab` cannot be rerun."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.interleaved_ab import STEP, TARGET, VARIANTS, parse_variant, patched

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kind", sorted(VARIANTS))
def test_every_slower_variant_patches_the_current_sampling_loop(kind: str) -> None:
    src = (ROOT / TARGET).read_text()
    assert src.count(STEP) == 1
    out = patched(src, kind, 3)
    compile(out, TARGET, "exec")  # still valid Python, indentation included
    lines = out.splitlines()
    assert "bench/interleaved_ab.py" in lines[lines.index(STEP.rstrip("\n")) + 1]  # right after the call


def test_the_denoiser_variant_adds_one_call_in_n() -> None:
    out = patched((ROOT / TARGET).read_text(), "denoiser", 3)
    assert "_CALLS[0] % 3 == 0" in out and "_CALLS = [0]" in out


def test_a_bad_variant_names_the_choices() -> None:
    assert parse_variant("matmul:608") == ("matmul", 608)
    for bad in ("denoiser", "denoiser:0", "sleep:3", "matmul:x"):
        with pytest.raises(SystemExit, match="matmul, denoiser"):
            parse_variant(bad)
    with pytest.raises(RuntimeError, match="no line"):
        patched("def f():\n    pass\n", "denoiser", 3)

"""Kernel timing modes (``timing.l2_flush``, ``timing.cuda_graph``): the flush runs before every call and
outside the timed region, the modes are recorded, CUDA graphs fail clearly on CPU, and switching the modes
off keeps earlier point ids. The CUDA tests run where a GPU is (bench/gpu_check.py runs them)."""

from __future__ import annotations

import time
from dataclasses import asdict, replace

import pytest
import torch

from harness import timing
from harness.plan import Point, compose_config, plan
from harness.timing import TimingPolicy, cache_bytes, measure, measure_interleaved

FAST = TimingPolicy(warmup_min_calls=2, warmup_min_s=0.0, min_repeats=5, min_time_s=0.0, max_time_s=0.5,
                    max_repeats=8)


@pytest.fixture
def small_flush(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A 1 MiB flush buffer (the real one is twice this machine's largest cache) whose write takes 20 ms,
    so a flush inside the timed region would show in every sample; returns the times of the writes."""
    monkeypatch.setattr(timing, "cache_bytes", lambda device: 2**19)
    writes: list[float] = []
    real = timing._Clock._flush

    def slow_flush(self: timing._Clock) -> None:
        real(self)
        if self.flush_buffer is not None:
            writes.append(time.perf_counter())
            time.sleep(0.02)

    monkeypatch.setattr(timing._Clock, "_flush", slow_flush)
    return writes


def test_l2_flush_precedes_every_call_and_is_not_timed(small_flush: list[float]) -> None:
    calls: list[float] = []
    m = measure(lambda: calls.append(time.perf_counter()), replace(FAST, l2_flush=True))
    assert len(small_flush) == len(calls) == 1 + m.warmup_calls + len(m.samples_s)
    assert all(w < c for w, c in zip(small_flush, calls))  # each write comes before its call
    assert max(m.samples_s) < 0.01  # the 20 ms writes are outside the timed region
    note = m.as_dict()
    assert note["l2_flush_bytes"] == 2**20 and note["policy"]["l2_flush"] is True


def test_l2_flush_in_abba_blocks(small_flush: list[float]) -> None:
    a, b = measure_interleaved(lambda: None, lambda: None, replace(FAST, l2_flush=True))
    assert len(small_flush) == 2 + 2 * a.warmup_calls + len(a.samples_s) + len(b.samples_s)
    assert max(a.samples_s + b.samples_s) < 0.01 and a.l2_flush_bytes == b.l2_flush_bytes == 2**20


def test_no_flush_by_default(small_flush: list[float]) -> None:
    m = measure(lambda: None, FAST)
    assert small_flush == [] and m.l2_flush_bytes == 0 and m.as_dict()["policy"]["cuda_graph"] is False


def test_cpu_cache_size_from_sysfs() -> None:
    try:
        size = cache_bytes("cpu")
    except RuntimeError as exc:  # no sysfs (not Linux): the error must say what to do
        assert "l2_flush=false" in str(exc)
        return
    assert size >= 2**16  # at least an L1's worth; the largest level on any current CPU is far above


def test_cuda_graph_on_cpu_fails_clearly_before_any_point_runs() -> None:
    with pytest.raises(ValueError, match="cuda_graph=true .* needs a CUDA device"):
        measure(lambda: None, replace(FAST, cuda_graph=True), "cpu")
    with pytest.raises(ValueError, match="cuda_graph=false"):
        plan(compose_config(["experiment=bleu_kernel", "timing.cuda_graph=true"]))


def test_modes_switched_off_keep_earlier_point_ids() -> None:
    policy = asdict(TimingPolicy())
    before = {k: v for k, v in policy.items() if k not in ("l2_flush", "cuda_graph")}  # a policy without the modes
    args = ({"name": "t"}, {"name": "m"}, {"name": "x"}, {"name": "cpu", "device": "cpu"}, 0)
    assert Point(*args, policy).point_id == Point(*args, before).point_id
    assert Point(*args, policy | {"l2_flush": True}).point_id != Point(*args, policy).point_id


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_cuda_graph_replays_the_call() -> None:
    a = torch.randn(512, 512, device="cuda")
    out = torch.empty_like(a)
    eager = measure(lambda: torch.mm(a, a, out=out), FAST, "cuda")
    graphed = measure(lambda: torch.mm(a, a, out=out), replace(FAST, cuda_graph=True), "cuda")
    assert graphed.clock == "cuda_event" and graphed.policy.cuda_graph
    out.zero_()
    timing.cuda_graphed(lambda: torch.mm(a, a, out=out))()  # a replay writes the captured output buffer
    torch.cuda.synchronize()
    torch.testing.assert_close(out, a @ a)
    ratio = sorted(graphed.samples_s)[len(graphed.samples_s) // 2] / sorted(eager.samples_s)[len(eager.samples_s) // 2]
    assert 0.2 < ratio < 2.0  # the same kernel, minus the launch overhead


@cuda
def test_cuda_l2_flush_buffer_is_twice_the_l2() -> None:
    m = measure(lambda: None, replace(FAST, l2_flush=True), "cuda")
    assert m.l2_flush_bytes == 2 * torch.cuda.get_device_properties(0).L2_cache_size > 0

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from harness.stats import median_ci, speedup_ci
from harness.timing import TimingPolicy, measure, measure_interleaved, time_module_calls

FAST = TimingPolicy(warmup_min_calls=2, warmup_min_s=0.0, min_repeats=7, min_time_s=0.05, max_time_s=3.0,
                    target_rel_ci=0.05)


def _work(k: int):
    a = torch.randn(160, 160, generator=torch.Generator().manual_seed(0))

    def f() -> None:
        for _ in range(k):
            a @ a

    return f


def test_known_ratio_k_calls_vs_one() -> None:
    """k calls of f, measured against one call, must come out near k."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        k = 4
        one = measure(_work(1), FAST)
        many = measure(_work(k), FAST)
    finally:
        torch.set_num_threads(before)
    ratio = np.median(many.samples_s) / np.median(one.samples_s)
    assert 0.7 * k < ratio < 1.3 * k, ratio


def test_cold_call_is_kept_apart_and_minimums_hold() -> None:
    calls = []

    def f() -> None:
        calls.append(1)
        time.sleep(0.05 if len(calls) == 1 else 0.001)

    m = measure(f, TimingPolicy(warmup_min_calls=3, warmup_min_s=0.0, min_repeats=9, min_time_s=0.02,
                                max_time_s=2.0, target_rel_ci=0.5))
    assert m.cold_s >= 0.05
    assert max(m.samples_s) < 0.04
    assert len(m.samples_s) >= 9 and m.warmup_calls >= 3
    assert len(calls) == 1 + m.warmup_calls + len(m.samples_s)
    assert m.clock == "perf_counter_ns"


def test_stop_reasons() -> None:
    f = lambda: time.sleep(0.001)  # noqa: E731
    capped = measure(f, TimingPolicy(min_repeats=5, max_repeats=12, min_time_s=0.0, target_rel_ci=0.0))
    assert capped.stop_reason == "max_repeats" and len(capped.samples_s) == 12
    timed = measure(f, TimingPolicy(min_repeats=5, max_repeats=10_000, min_time_s=0.0, max_time_s=0.1,
                                    target_rel_ci=0.0))
    assert timed.stop_reason == "max_time" and 0.1 <= sum(timed.samples_s) < 0.3
    precise = measure(f, TimingPolicy(min_repeats=7, min_time_s=0.0, max_time_s=5.0, target_rel_ci=0.5))
    assert precise.stop_reason == "precision_reached"
    assert median_ci(precise.samples_s).rel_halfwidth <= 0.5


def test_bad_policy_and_gpu_clock_without_gpu() -> None:
    with pytest.raises(ValueError, match="min_repeats"):
        TimingPolicy(min_repeats=1)
    with pytest.raises(ValueError, match="warmup_min_s"):
        TimingPolicy(warmup_min_s=-1)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            measure(lambda: None, FAST, "cuda")


def test_stage_times_through_hooks() -> None:
    lin = torch.nn.Linear(4, 4)
    with time_module_calls(lin) as stages:
        for _ in range(5):
            lin(torch.zeros(1, 4))
            time.sleep(0.002)
    assert len(stages) == 5 and all(s >= 0.002 for s in stages)


def test_median_ci_coverage_near_nominal() -> None:
    rng = np.random.default_rng(0)
    true_median = np.log(2)  # exponential(1)
    hits = [median_ci(rng.exponential(size=15)) for _ in range(2000)]
    cover = np.mean([e.low <= true_median <= e.high for e in hits])
    assert 0.93 <= cover <= 0.995, cover  # order-statistic CIs are conservative by construction


def test_speedup_ci_covers_known_ratio_at_nominal_rate() -> None:
    rng = np.random.default_rng(1)
    cover = []
    for _ in range(150):
        base = rng.lognormal(np.log(3.0), 0.1, size=20)
        meth = rng.lognormal(np.log(1.0), 0.1, size=20)
        e = speedup_ci(base, meth, n_resamples=2000, seed=int(rng.integers(1 << 30)))
        cover.append(e.low <= 3.0 <= e.high)
    assert 0.88 <= np.mean(cover) <= 0.99, np.mean(cover)


def test_interleaved_calls_run_in_abba_blocks() -> None:
    calls: list[str] = []
    policy = TimingPolicy(warmup_min_calls=2, warmup_min_s=0, min_repeats=6, min_time_s=0, max_repeats=10,
                          max_time_s=5)
    a, b = measure_interleaved(lambda: calls.append("A"), lambda: calls.append("B"), policy)
    timed = "".join(calls[2 + 2 * a.warmup_calls:])  # after the two cold calls and the A/B warm-up pairs
    assert timed == "ABBA" * (len(b.samples_s) // 2) and len(a.samples_s) == len(b.samples_s) >= 6
    assert b.stop_reason.endswith("(interleaved ABBA)") and len(b.samples_s) <= 10

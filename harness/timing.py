"""The only place in the project that reads a clock (docs/design.md, "Timing").

- GPU: one pair of CUDA events per repeat on the current stream, read after one synchronize per
  chunk of repeats; never the host clock. Gated on ``torch.cuda.is_available()`` and on the
  device actually being CUDA, so CPU time is never reported as GPU time.
- CPU: ``time.perf_counter_ns`` with the garbage collector off inside the timed region.
- Warm-up by count AND time; then repeat until a minimum count AND a minimum duration are met,
  stop early once the CI of the median is within the target precision, hard caps on count and
  time. The cold first call is kept apart, and the stop reason is recorded.
- Kernel-level modes (as triton's ``do_bench`` / ``do_bench_cudagraph``), both off by default and
  recorded with the policy: ``l2_flush`` writes a buffer of twice the cache size before every
  call, outside the timed region, so each repeat starts with cold caches (CUDA: the L2; CPU: the
  largest cache level in sysfs); ``cuda_graph`` captures the call once in a CUDA graph after the
  cold call and times its replays, which removes the host's launch overhead (CUDA only).
"""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from harness.stats import Estimate, median_ci, paired_speedup_ci


@dataclass(frozen=True)
class TimingPolicy:
    warmup_min_calls: int = 3
    warmup_min_s: float = 0.025
    min_repeats: int = 7
    min_time_s: float = 0.5
    max_repeats: int = 200
    max_time_s: float = 8.0  # on a shared 2-core box the 2% target is often out of reach: cap the cost
    target_rel_ci: float = 0.02  # stop once the 95% CI half-width of the median is within 2%
    confidence: float = 0.95
    l2_flush: bool = False  # write 2x the cache size between calls (cold-cache kernel timing)
    cuda_graph: bool = False  # time replays of a captured CUDA graph (no launch overhead); CUDA only

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 0:
                raise ValueError(f"timing.{name} must be >= 0, got {value}")
        if self.min_repeats < 2 or self.max_repeats < self.min_repeats:
            raise ValueError(
                f"timing needs 2 <= min_repeats <= max_repeats, got {self.min_repeats} and {self.max_repeats}"
            )
        if not 0 < self.confidence < 1:
            raise ValueError(f"timing.confidence must be in (0, 1), got {self.confidence}")

    def check_device(self, device: torch.device | str) -> None:
        """Fail before anything runs when the policy asks for what the device cannot do."""
        if self.cuda_graph and torch.device(device).type != "cuda":
            raise ValueError(f"timing.cuda_graph=true replays a CUDA graph and needs a CUDA device, but the hardware "
                             f"device is {device}; use timing.cuda_graph=false (the default) on CPU")


@dataclass
class Measurement:
    samples_s: list[float]
    cold_s: float
    warmup_calls: int
    stop_reason: str
    clock: str
    policy: TimingPolicy = field(default_factory=TimingPolicy)
    l2_flush_bytes: int = 0  # size of the buffer written before every call (0: no flush)

    def as_dict(self) -> dict[str, Any]:
        return {"policy": asdict(self.policy), "stop_reason": self.stop_reason, "clock": self.clock,
                "warmup_calls": self.warmup_calls, "repeats": len(self.samples_s),
                "l2_flush_bytes": self.l2_flush_bytes}


def cache_bytes(device: torch.device | str) -> int:
    """Size of the cache an ``l2_flush`` must evict: the GPU's L2, or the CPU's largest cache level."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).L2_cache_size)
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = f.read_text().strip()
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        sizes.append(int(text.rstrip("KMG")) * scale)
    if not sizes:
        raise RuntimeError("timing.l2_flush=true on CPU needs the cache sizes in /sys/devices/system/cpu/cpu0/cache, "
                           "which are not readable here; use timing.l2_flush=false")
    return max(sizes)


class _Clock:
    """Times one call; ``cuda`` uses events, ``cpu`` the host's monotonic ns clock.

    With a flush buffer, every call is preceded by a write of the buffer outside the timed region
    (on CUDA the fill kernel is queued before the start event, as in triton's ``do_bench``).
    """

    def __init__(self, device: torch.device, policy: TimingPolicy):
        self.cuda = device.type == "cuda"
        if self.cuda and not torch.cuda.is_available():
            raise RuntimeError(f"device {device} requested but torch.cuda.is_available() is False")
        policy.check_device(device)
        self.name = "cuda_event" if self.cuda else "perf_counter_ns"
        # Twice the cache, so that (nearly) no line of the previous call survives a non-LRU policy.
        self.flush_buffer = torch.empty(2 * cache_bytes(device), dtype=torch.int8, device=device) \
            if policy.l2_flush else None

    @property
    def flush_bytes(self) -> int:
        return 0 if self.flush_buffer is None else self.flush_buffer.numel()

    def _flush(self) -> None:
        if self.flush_buffer is not None:
            self.flush_buffer.zero_()

    def run(self, fn: Callable[[], Any], n: int) -> list[float]:
        """Call ``fn`` n times; return each call's seconds."""
        if self.cuda:
            stream = torch.cuda.current_stream()
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
            for start, end in events:
                self._flush()
                start.record(stream)
                fn()
                end.record(stream)
            torch.cuda.synchronize()
            return [s.elapsed_time(e) / 1e3 for s, e in events]
        out = []
        for _ in range(n):
            self._flush()
            t0 = time.perf_counter_ns()
            fn()
            out.append((time.perf_counter_ns() - t0) / 1e9)
        return out


def cuda_graphed(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` captured once in a CUDA graph; the returned callable replays it on the current stream.

    The warm-up calls run on a side stream, as torch.cuda.graphs requires before a capture (lazy
    initialisation, cuBLAS workspaces and autotuning must not happen inside it). A replay reruns the
    captured kernels on the same memory: the call's output is overwritten, not reallocated.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            fn()
    except RuntimeError as exc:
        raise RuntimeError(f"timing.cuda_graph=true: the call cannot be captured in a CUDA graph ({exc}); time it "
                           "with timing.cuda_graph=false") from exc
    return graph.replay


@contextmanager
def _gc_off() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _on(device: torch.device) -> Any:
    """Make ``device`` current: CUDA events, streams and synchronize act on the current device."""
    return torch.cuda.device(device) if device.type == "cuda" else nullcontext()


def _precise(ci: Estimate, policy: TimingPolicy) -> bool:
    """The interval is a real CI (not the sample range that too few samples give: 2 repeats within
    2% of each other stopped smoke runs, and their medians then moved 24% between runs) and is within
    the target precision."""
    return "range" not in ci.estimator and ci.rel_halfwidth <= policy.target_rel_ci


def measure(fn: Callable[[], Any], policy: TimingPolicy, device: torch.device | str = "cpu") -> Measurement:
    """Time ``fn`` under ``policy``; every repeat's seconds are kept.

    ``min_repeats`` wins over ``max_time_s``: a call slower than max_time_s / min_repeats still
    gets its minimum count (the stop reason then says ``max_time`` or ``max_repeats``).
    """
    device = torch.device(device)
    clock = _Clock(device, policy)
    with _gc_off(), _on(device):
        cold = clock.run(fn, 1)[0]
        if policy.cuda_graph:  # the cold call stays an eager first call; warm-up and repeats replay
            fn = cuda_graphed(fn)
        warm_calls, warm_t = 0, 0.0
        while warm_calls < policy.warmup_min_calls or warm_t < policy.warmup_min_s:
            warm_t += clock.run(fn, 1)[0]
            warm_calls += 1
            if warm_t > policy.max_time_s:
                break
        samples: list[float] = []
        chunk = policy.min_repeats
        while True:
            samples += clock.run(fn, chunk)
            total = sum(samples)
            if len(samples) >= policy.max_repeats:
                reason = "max_repeats"
            elif total >= policy.max_time_s:
                reason = "max_time"
            elif total >= policy.min_time_s and (
                _precise(median_ci(samples, policy.confidence), policy)
            ):
                reason = "precision_reached"
            else:
                # Grow chunks geometrically so a CUDA run synchronizes O(log n) times, but never
                # overshoot the caps by more than one chunk.
                left_n = policy.max_repeats - len(samples)
                per_call = total / len(samples)
                left_t = max(1, int((policy.max_time_s - total) / max(per_call, 1e-9)))
                chunk = max(1, min(len(samples) // 2, left_n, left_t))
                continue
            break
    return Measurement(samples, cold, warm_calls, reason, clock.name, policy, clock.flush_bytes)


def measure_interleaved(baseline: Callable[[], Any], method: Callable[[], Any], policy: TimingPolicy,
                        device: torch.device | str = "cpu") -> tuple[Measurement, Measurement]:
    """Time two calls in ABBA blocks (baseline, method, method, baseline) so that drift slower
    than a block (thermal, clock, a neighbour's load) hits both alike and cancels in their ratio.

    Sample i of each returned measurement belongs to block i // 2. Stops like ``measure``, on the
    precision of the paired ratio (``harness.stats.paired_speedup_ci``) instead of one median;
    ``min_repeats``/``max_repeats`` count the method's calls, ``max_time_s`` both together; at
    least two blocks (4 calls of each) are always timed, whatever the caps.
    On CUDA each call synchronizes (one event pair per call is read before the next starts), which
    costs a little more host time per call than ``measure``'s chunks, but keeps blocks in order.
    """
    device = torch.device(device)
    clock = _Clock(device, policy)
    a: list[float] = []
    b: list[float] = []
    with _gc_off(), _on(device):
        cold_a, cold_b = clock.run(baseline, 1)[0], clock.run(method, 1)[0]
        if policy.cuda_graph:
            baseline, method = cuda_graphed(baseline), cuda_graphed(method)
        warm_calls, warm_t = 0, 0.0
        while warm_calls < policy.warmup_min_calls or warm_t < policy.warmup_min_s:
            warm_t += clock.run(baseline, 1)[0] + clock.run(method, 1)[0]
            warm_calls += 1
            if warm_t > policy.max_time_s:
                break
        while True:
            for fn, out in ((baseline, a), (method, b), (method, b), (baseline, a)):
                out += clock.run(fn, 1)
            total = sum(a) + sum(b)
            if len(b) < max(policy.min_repeats, 4):  # at least two blocks: a paired CI needs them
                continue
            if len(b) >= policy.max_repeats:
                reason = "max_repeats"
            elif total >= policy.max_time_s:
                reason = "max_time"
            elif total >= policy.min_time_s and (
                _precise(paired_speedup_ci(a, b, policy.confidence), policy)
            ):
                reason = "precision_reached"
            else:
                continue
            break
    return (Measurement(a, cold_a, warm_calls, reason + " (interleaved ABBA)", clock.name, policy, clock.flush_bytes),
            Measurement(b, cold_b, warm_calls, reason + " (interleaved ABBA)", clock.name, policy, clock.flush_bytes))


@contextmanager
def time_module_calls(module: torch.nn.Module | None, device: torch.device | str = "cpu") -> Iterator[list[float]]:
    """Per-stage times through a forward pre-hook: the time from one call of ``module`` to the next.

    For a sampler whose loop calls the denoiser once per step, entry i is step i's time (model
    plus solver update), the last one closed when the block exits. Filled on exit.
    """
    if module is None:  # a task without stages (a metric kernel): no per-stage rows
        yield []
        return
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    marks: list[Any] = []

    def hook(_mod: torch.nn.Module, _args: Any) -> None:
        if cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            marks.append(ev)
        else:
            marks.append(time.perf_counter_ns())

    out: list[float] = []
    handle = module.register_forward_pre_hook(hook)
    try:
        with _on(dev):
            yield out
    finally:
        handle.remove()
        hook(module, None)
        if cuda:
            torch.cuda.synchronize()
            out += [a.elapsed_time(b) / 1e3 for a, b in zip(marks, marks[1:])]
        else:
            out += [(b - a) / 1e9 for a, b in zip(marks, marks[1:])]


def wall_time(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and its seconds on the host clock: one call, no warm-up, for benchmarks of whole runs
    (bench/launch_overhead.py times complete sweeps, each in fresh processes; the caller repeats and
    interleaves them)."""
    t0 = time.perf_counter_ns()
    out = fn()
    return out, (time.perf_counter_ns() - t0) / 1e9

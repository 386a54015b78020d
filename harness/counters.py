"""Cost counters other than time: FLOPs and peak memory.

Known traps: FlopCounterMode counts CPU flash-SDPA as 0 FLOPs, so FLOPs are counted
under the MATH backend; tracemalloc does not see tensor memory, so memory is VmHWM (reset per
point) on CPU and the allocator peak on CUDA."""

from __future__ import annotations

import resource
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call, counted by ``FlopCounterMode``.

    Runs under the MATH SDPA backend: FlopCounterMode has no formula for CPU flash attention and
    silently counts it as 0, whereas the math path decomposes into counted matmuls.
    """
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter, torch.no_grad():
        fn()
    return int(counter.get_total_flops())


_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _vm_hwm_bytes() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    """Reset the process's peak RSS (Linux: writing 5 to clear_refs); False where not possible."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


@contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, Any]]:
    """Peak memory inside the block.

    ``bytes`` is the peak, ``increase`` the peak minus what was in use when the block started
    (the method's working memory, without the weights and data already loaded).
    CUDA: ``max_memory_allocated`` after a reset (tensor memory of the caching allocator).
    CPU: the process's peak resident set (VmHWM after a reset, so earlier points don't leak
    into this one). Where the reset is impossible it falls back to ``ru_maxrss`` and says so in
    ``kind``: that is the peak since process start, an upper bound, and ``increase`` is None.
    """
    out: dict[str, Any] = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        yield out
        torch.cuda.synchronize(device)
        peak = int(torch.cuda.max_memory_allocated(device))
        out.update(bytes=peak, increase=peak - start, kind="cuda_max_allocated")
        return
    reset = _reset_hwm()
    start = _vm_hwm_bytes() if reset else None  # right after the reset, VmHWM is the current RSS
    yield out
    hwm = _vm_hwm_bytes() if reset else None
    if hwm is not None and start is not None:
        out.update(bytes=hwm, increase=hwm - start, kind="process_peak_rss")
    else:
        scale = 1 if sys.platform == "darwin" else 1024
        out.update(bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, increase=None,
                   kind="process_peak_rss_since_start")
